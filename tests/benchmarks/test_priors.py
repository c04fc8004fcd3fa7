"""Prior rows and paired differences (saliency_gym.benchmarks.priors), by hand."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from saliency_gym.benchmarks.priors import (
    FixedMapExplainer,
    mean_map,
    mean_map_explainer,
    mean_map_label,
    mean_maps,
    paired_columns,
    paired_difference,
    paired_markdown,
)
from saliency_gym.benchmarks.suite import select_methods

T_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom


def test_mean_map_by_hand():
    maps = np.array([[[1, 2], [3, 4]], [[3, 2], [1, 0]], [[2, 5], [2, -1]]], np.float32)
    np.testing.assert_allclose(mean_map(maps), [[2, 3], [2, 1]])
    broadcast = mean_maps(maps)
    assert broadcast.shape == (3, 2, 2) and broadcast.dtype == np.float32
    assert (broadcast == np.array([[2, 3], [2, 1]])).all()
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        mean_map(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        mean_map(np.full((1, 2, 2), np.nan))


def test_fixed_map_and_mean_map_explainers(region_classifier):
    saliency = np.arange(64, dtype=np.float32).reshape(8, 8)
    fixed = FixedMapExplainer(region_classifier, saliency, name="ramp")
    explanation = fixed.explain(np.random.rand(3, 1, 8, 8).astype(np.float32), [0, 1, 1])
    assert explanation.queries == 0 and fixed.expected_queries() == 0 and explanation.method == "ramp"
    assert (explanation.maps == saliency).all()
    with pytest.raises(ValueError, match="classifier takes"):
        FixedMapExplainer(region_classifier, np.zeros((4, 4)))
    # the mean map of a fixed map is that map, named after the method
    prior = mean_map_explainer(fixed, np.random.rand(5, 1, 8, 8).astype(np.float32), 1)
    assert prior.name == "ramp (mean map)" == mean_map_label("ramp")
    assert (prior.explain(np.zeros((1, 1, 8, 8), np.float32), 0).maps[0] == saliency).all()


def test_paired_difference_by_hand():
    # differences 0.1, 0.2, 0.0: mean 0.1, standard deviation 0.1
    mean, half = paired_difference([0.5, 0.7, 0.9], [0.4, 0.5, 0.9])
    assert mean == pytest.approx(0.1)
    assert half == pytest.approx(T_975_2 * 0.1 / np.sqrt(3))
    assert paired_difference([0.3, 0.4], [0.1, 0.2]) == pytest.approx((0.2, 0.0))  # a constant difference
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0])


def test_paired_columns_and_markdown():
    per_image = {
        "agent": {"insertion": np.array([0.9, 0.8, 0.7]), "deletion": np.array([0.1, 0.2, 0.3])},
        "centre": {"insertion": np.array([0.8, 0.6, 0.7]), "deletion": np.array([0.1, 0.2, 0.3])},
        "agent (mean map)": {"insertion": np.array([0.9, 0.9, 0.9]), "deletion": np.array([0.2, 0.1, 0.3])},
    }
    cols = paired_columns("agent", per_image)
    assert cols["insertion_minus_centre"] == pytest.approx(0.1)  # differences 0.1, 0.2, 0.0
    assert cols["insertion_minus_centre_ci"] == pytest.approx(T_975_2 * 0.1 / np.sqrt(3))
    assert cols["deletion_minus_centre"] == pytest.approx(0.0) and cols["deletion_minus_centre_ci"] == 0.0
    assert cols["insertion_minus_mean_map"] == pytest.approx(-0.1)  # differences 0.0, -0.1, -0.2
    assert cols["deletion_minus_mean_map"] == pytest.approx(0.0)  # -0.1, 0.1, 0.0
    missing = paired_columns("agent", {"agent": per_image["agent"]})
    assert set(missing.values()) == {None} and len(missing) == 8

    @dataclass
    class Row:
        method: str
        insertion_minus_centre: float | None = None
        insertion_minus_centre_ci: float | None = None

    assert paired_markdown([Row("a"), Row("b")]) == ("", "", ["", ""])
    header, separator, cells = paired_markdown([Row("a", 0.0123, 0.004), Row("b")])
    assert header.startswith(" insertion − centre ↑ |") and separator == "---:|" * 4
    assert cells[0].startswith(" +0.012 ± 0.004 |") and cells[1] == "  |" * 4


def test_select_methods_keeps_an_agents_priors():
    def factory():
        raise AssertionError("not built")

    methods = {name: factory for name in ("agent-reveal", "agent-reveal (mean map)", "centre", "gradcam", "rise-500")}
    assert list(select_methods(methods, ["agent-reveal"])) == ["agent-reveal", "agent-reveal (mean map)", "centre"]
    assert list(select_methods(methods, ["gradcam"])) == ["gradcam"]
