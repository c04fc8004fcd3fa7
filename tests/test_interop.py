"""Interop (issue 12): raw modules, Captum's ``attribute`` spelling, and the Quantus adapter."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from saliency_gym import FrozenClassifier, load_classifier
from saliency_gym.baselines.gradcam import GradCAMExplainer
from saliency_gym.baselines.gradient_methods import GradientExplainer
from saliency_gym.baselines.occlusion import OcclusionExplainer
from saliency_gym.explainers import make_explainer
from saliency_gym.interop.quantus import as_quantus_metric, explain_func
from saliency_gym.metrics import (
    energy_pointing_game,
    gini_index,
    pointing_game,
    top_k_intersection_with_mask,
)

SHAPE = (3, 32, 32)


@pytest.fixture(scope="module")
def clf() -> FrozenClassifier:
    return load_classifier("shapes", device="cpu")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand((4, *SHAPE), generator=torch.Generator().manual_seed(0))


# --------------------------------------------------------------------------- item 1: raw modules
@pytest.mark.parametrize("cls", [GradientExplainer, GradCAMExplainer, OcclusionExplainer])
def test_raw_module_with_input_shape_matches_frozen_classifier(cls: type, clf: FrozenClassifier, x: torch.Tensor) -> None:
    from_module = cls(clf.module, input_shape=SHAPE)
    assert isinstance(from_module.classifier, FrozenClassifier)
    assert from_module.classifier.input_shape == SHAPE
    np.testing.assert_allclose(from_module.explain(x, 2).maps, cls(clf).explain(x, 2).maps, atol=1e-6)


def test_raw_module_without_input_shape_is_a_clear_error(clf: FrozenClassifier) -> None:
    with pytest.raises(TypeError, match="input_shape"):
        GradientExplainer(clf.module)
    with pytest.raises(TypeError, match="FrozenClassifier or an nn.Module"):
        GradientExplainer(lambda t: t)
    with pytest.raises(ValueError, match="disagrees"):
        GradientExplainer(clf, input_shape=(1, 32, 32))


def test_subclass_options_and_registry_unchanged(clf: FrozenClassifier) -> None:
    e = GradientExplainer(clf.module, abs=False, input_shape=SHAPE)
    assert e.classifier.input_shape == SHAPE
    assert type(make_explainer("gradient", clf, abs=False)) is GradientExplainer
    with pytest.raises(TypeError, match="does not take"):
        make_explainer("gradient", clf, input_shape=SHAPE)


# --------------------------------------------------------------------------- item 2: Captum spelling
def test_captum_attribute_equals_explain(clf: FrozenClassifier, x: torch.Tensor) -> None:
    e = GradientExplainer(clf)
    expected = e.explain(x, 3).maps
    for maps in (e.attribute(x, target=3), e.attribute(inputs=x, target=3), e.attribute(x, target=[3] * 4),
                 e.attribute(x, target=torch.full((4,), 3))):
        assert isinstance(maps, torch.Tensor) and maps.shape == (4, 32, 32) and maps.device == x.device
        np.testing.assert_array_equal(maps.numpy(), expected)
    # No target: the predicted class, as explain(x) does.
    np.testing.assert_array_equal(e.attribute(x).numpy(), e.explain(x).maps)
    np.testing.assert_allclose(e.attribute(x[0], target=3).numpy(), expected[0], atol=1e-6)  # batch of one


def test_captum_attribute_validates_and_counts(clf: FrozenClassifier, x: torch.Tensor) -> None:
    e = GradientExplainer(clf)
    before = clf.queries
    e.attribute(x, target=3)
    assert clf.queries - before == e.explain(x, 3).queries > 0
    with pytest.raises(ValueError):
        e.attribute(x * 5, target=3)  # outside [0, 1]
    with pytest.raises(ValueError):
        e.attribute(x, target=99)
    with pytest.raises(TypeError):
        e.attribute(x, torch.zeros(4, dtype=torch.long), target=3)


def test_subclass_hook_is_attribute_batch(clf: FrozenClassifier, x: torch.Tensor) -> None:
    e = GradientExplainer(clf)
    hook = e.attribute_batch(x, torch.full((4,), 3))
    np.testing.assert_allclose(hook.detach().numpy(), e.explain(x, 3).maps, atol=1e-6)
    # Two positional arguments are Captum's (inputs, target) too.
    np.testing.assert_allclose(e.attribute(x, torch.full((4,), 3)).numpy(), e.explain(x, 3).maps)


# --------------------------------------------------------------------------- item 3: Quantus
def test_core_does_not_import_quantus() -> None:
    code = "import sys, saliency_gym, saliency_gym.explainers, saliency_gym.interop; print('quantus' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_explain_func_matches_explain(clf: FrozenClassifier, x: torch.Tensor) -> None:
    y = np.array([0, 1, 2, 3])
    a = explain_func(model=clf.module, inputs=x.numpy(), targets=y, method="gradient")
    assert a.shape == (4, 1, 32, 32) and a.dtype == np.float32
    np.testing.assert_allclose(a[:, 0], GradientExplainer(clf).explain(x, y).maps, atol=1e-6)
    with pytest.raises(TypeError, match="does not take"):
        explain_func(model=clf.module, inputs=x.numpy(), targets=y, method="gradient", bogus=1)


def _random_batch(seed: int, n: int = 6, h: int = 12, w: int = 12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (N, 1, H, W), signed maps a (N, 1, H, W) and non-empty masks s (N, 1, H, W)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, h, w)).astype(np.float32)
    a = rng.normal(size=(n, 1, h, w)).astype(np.float32)
    s = rng.random((n, 1, h, w)) < rng.uniform(0.1, 0.5, size=(n, 1, 1, 1))
    s[:, 0, 0, 0] = True
    return x, a, s.astype(np.float32)


def _quantus_scores(metric: object, x: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
    scores = metric(model=None, x_batch=x, y_batch=np.zeros(len(x), dtype=int), a_batch=a, s_batch=s)  # type: ignore[operator]
    return np.asarray(scores, dtype=np.float64)


SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
def test_pointing_game_agrees_with_quantus(seed: int) -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = _random_batch(seed)
    theirs = _quantus_scores(quantus.PointingGame(disable_warnings=True), x, a, s)
    ours = np.asarray(as_quantus_metric("PointingGame", ties="any")(None, x, None, a, s))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(ours, pointing_game(a[:, 0], s[:, 0] > 0, ties="any"))
    # A plateau of two maxima, one in the mask (pixel (0, 0)) and one outside: Quantus (and
    # ties="any") score a hit; ours' default ties="all" does not.
    plateau = a.copy()
    for i in range(len(a)):
        outside = np.argwhere(s[i, 0] == 0)[0]
        plateau[i, 0, 0, 0] = plateau[i, 0, outside[0], outside[1]] = a.max() + 1
    np.testing.assert_array_equal(_quantus_scores(quantus.PointingGame(disable_warnings=True), x, plateau, s), 1.0)
    np.testing.assert_array_equal(pointing_game(plateau[:, 0], s[:, 0] > 0), 0.0)


def test_pointing_game_empty_mask_differs_from_quantus() -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = _random_batch(3)
    s[1] = 0.0
    theirs = _quantus_scores(quantus.PointingGame(disable_warnings=True), x, a, s)
    ours = np.asarray(as_quantus_metric("pointing_game", ties="any")(None, x, None, a, s))
    assert theirs[1] == 1.0  # Quantus: NaN written into a bool array is True, a hit
    assert np.isnan(ours[1])  # ours: no evidence to point at
    np.testing.assert_allclose(np.delete(ours, 1), np.delete(theirs, 1), atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_attribution_localisation_agrees_with_quantus(seed: int) -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = _random_batch(seed)
    theirs_abs = _quantus_scores(quantus.AttributionLocalisation(disable_warnings=True), x, a, s)
    ours_abs = np.asarray(as_quantus_metric("AttributionLocalisation", normalize="abs")(None, x, None, a, s))
    np.testing.assert_allclose(ours_abs, theirs_abs, atol=1e-6)
    theirs_relu = _quantus_scores(
        quantus.AttributionLocalisation(abs=False, positive_attributions=True, disable_warnings=True), x, a, s
    )
    ours_relu = energy_pointing_game(a[:, 0], s[:, 0] > 0, normalize="relu")
    np.testing.assert_allclose(ours_relu, theirs_relu, atol=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_sparseness_agrees_with_quantus(seed: int) -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = _random_batch(seed)
    theirs = _quantus_scores(quantus.Sparseness(disable_warnings=True), x, a, s)
    ours = np.asarray(as_quantus_metric("Sparseness")(None, x, None, a))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(ours, gini_index(a[:, 0]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 10, 40])
def test_top_k_intersection_agrees_with_quantus(seed: int, k: int) -> None:
    quantus = pytest.importorskip("quantus")
    x, a, s = _random_batch(seed)
    theirs = _quantus_scores(quantus.TopKIntersection(k=k, disable_warnings=True), x, a, s)
    ours = np.asarray(as_quantus_metric("TopKIntersection", k=k)(None, x, None, a, s))
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(ours, top_k_intersection_with_mask(a[:, 0], s[:, 0] > 0, k=k))


def test_as_quantus_metric_errors_and_explain_func(clf: FrozenClassifier, x: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        as_quantus_metric("Faithfulness")
    with pytest.raises(ValueError, match="s_batch"):
        as_quantus_metric("pointing_game")(None, None, None, np.zeros((2, 4, 4)))
    masks = np.zeros((4, 1, 32, 32), dtype=np.float32)
    masks[:, :, 8:24, 8:24] = 1
    metric = as_quantus_metric("pointing_game")
    scores = metric(model=clf.module, x_batch=x.numpy(), y_batch=np.arange(4), a_batch=None, s_batch=masks,
                    explain_func=explain_func, explain_func_kwargs={"method": "gradient"})
    maps = GradientExplainer(clf).explain(x, np.arange(4)).maps
    np.testing.assert_array_equal(scores, pointing_game(maps, masks[:, 0] > 0))


def test_quantus_runs_our_explain_func(clf: FrozenClassifier) -> None:
    quantus = pytest.importorskip("quantus")
    from saliency_gym.data import ShapesSource

    samples = [ShapesSource(split="test", n=4, seed=0)[i] for i in range(4)]
    x = np.stack([sample.image for sample in samples]).astype(np.float32)
    y = np.array([sample.label for sample in samples])
    s = np.stack([sample.mask for sample in samples]).astype(np.float32)[:, None]
    scores = quantus.PointingGame(disable_warnings=True)(
        model=clf.module, x_batch=x, y_batch=y, a_batch=None, s_batch=s,
        explain_func=explain_func, explain_func_kwargs={"method": "gradient"},
    )
    assert len(scores) == 4 and set(np.asarray(scores, dtype=float)) <= {0.0, 1.0}
    maps = GradientExplainer(clf).explain(x, y).maps
    np.testing.assert_array_equal(scores, pointing_game(maps, s[:, 0] > 0, ties="any"))
