"""Explainers by name, the random baseline, and the ``saliency-gym explain`` command."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_gym import Explainer
from saliency_gym.baselines import (
    GradCAMExplainer,
    RandomMapExplainer,
    RISEExplainer,
    available_explainers,
    explainer_options,
    make_explainer,
)
from saliency_gym.cli.main import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = [
    "rise", "occlusion", "random", "gradient", "integrated_gradients", "smoothgrad",
    "gradient_shap", "deeplift", "input_x_gradient", "gradcam", "centre",
]  # fmt: skip

# Cheap settings so every method runs in well under a second on two images.
FAST = {
    "rise": {"n_masks": 40},
    "occlusion": {"window": 8, "stride": 8},
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"nt_samples": 3},
    "gradient_shap": {"n_samples": 3},
}


def test_available_explainers():
    # The registry also holds the policy explainer (agents), declared as an entry point like these.
    assert set(NAMES) | {"policy"} == set(available_explainers())


@pytest.mark.parametrize("name", NAMES)
def test_every_explainer_runs_by_name(shapes_classifier, shapes_small, name):
    explainer = make_explainer(name, shapes_classifier, **FAST.get(name, {}))
    assert isinstance(explainer, Explainer) and explainer.name == name
    batch = shapes_small.get_batch(range(2))
    explanation = explainer.explain(batch.images, batch.labels)
    assert explanation.maps.shape == (2, 32, 32) and explanation.maps.dtype == np.float32
    assert np.isfinite(explanation.maps).all()
    assert explanation.method == name
    assert explanation.queries == explainer.expected_queries() * 2
    assert explanation.maps.std() > 0  # not a constant map


def test_make_explainer_passes_options(shapes_classifier):
    rise = make_explainer("rise", shapes_classifier, n_masks=123, grid_size=5, p=0.25)
    assert isinstance(rise, RISEExplainer) and (rise.n_masks, rise.grid_size, rise.p) == (123, 5, 0.25)
    gradcam = make_explainer("gradcam", shapes_classifier, layer="features.11")
    assert isinstance(gradcam, GradCAMExplainer) and gradcam.layer is shapes_classifier.module.features[11]
    assert "n_masks" in explainer_options("rise") and "classifier" not in explainer_options("rise")


def test_registry_errors(shapes_classifier):
    with pytest.raises(ValueError, match="unknown explainer 'lime'") as info:
        make_explainer("lime", shapes_classifier)
    for name in NAMES:  # the message lists the valid names
        assert name in str(info.value)
    with pytest.raises(TypeError, match="does not take option"):
        make_explainer("rise", shapes_classifier, n_mask=10)
    with pytest.raises(TypeError, match="string"):
        make_explainer(None, shapes_classifier)
    with pytest.raises(ValueError, match="n_masks"):
        make_explainer("rise", shapes_classifier, n_masks=0)
    with pytest.raises(ValueError, match="p must be"):
        make_explainer("rise", shapes_classifier, p=1.5)
    with pytest.raises(TypeError, match="FrozenClassifier"):
        make_explainer("gradient", shapes_classifier.module)


def test_random_map(region_classifier):
    images = torch.rand(3, 1, 8, 8)
    region_classifier.reset_queries()
    first = RandomMapExplainer(region_classifier, seed=4).explain(images, [0, 1, 1])
    assert first.queries == 0 and region_classifier.queries == 0
    assert first.maps.shape == (3, 8, 8) and first.maps.min() >= 0 and first.maps.max() < 1
    explainer = RandomMapExplainer(region_classifier, seed=4)
    np.testing.assert_array_equal(explainer.explain(images, 1).maps, first.maps)  # seeded
    assert not np.array_equal(explainer.explain(images, 1).maps, first.maps)  # successive draws differ
    assert not np.array_equal(RandomMapExplainer(region_classifier, seed=5).explain(images, 1).maps, first.maps)
    # Without targets the prediction is the only cost.
    assert RandomMapExplainer(region_classifier).explain(images).queries == 3


def test_explain_cli_writes_png(tmp_path, capsys):
    code = main([
        "explain", "--methods", "rise", "gradcam", "random", "integrated_gradients", "--rise-masks", "30",
        "--images", "2", "--out", str(tmp_path), "--device", "cpu", "--seed", "3",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    png = tmp_path / "explain_shapes.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split() and line.split()[0] in NAMES}
    assert set(rows) == {"rise", "gradcam", "random", "integrated_gradients"}
    assert float(rows["rise"][0]) == 30.0 and float(rows["gradcam"][0]) == 1.0
    assert float(rows["random"][0]) == 0.0 and float(rows["integrated_gradients"][0]) == 50.0
    assert "mass on mask" in out  # shapes has evidence masks


def test_explain_help_and_main_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["explain", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--methods" in out and "integrated_gradients" in out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "explain" in capsys.readouterr().out


def test_explain_cli_bad_arguments(tmp_path, capsys):
    assert main(["explain", "--methods", "rise", "lime", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown explainer 'lime'" in err and "gradcam" in err
    assert not any(tmp_path.iterdir())  # failed before doing any work
    with pytest.raises(SystemExit):
        main(["explain", "--images", "0"])
    assert main(["explain", "--classifier", "imagenet", "--methods", "random", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("side", [32, 64, 224])
def test_occlusion_defaults_scale_with_the_image(side):
    """Window and stride follow the image (6/2 pixels at 32, 42/14 at 224), so the cost stays at
    197 queries per image instead of 12,101 at 224x224 with fixed 6/2-pixel windows."""
    import torch

    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.explainers import make_explainer

    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2))
    occlusion = make_explainer("occlusion", FrozenClassifier(model, (3, side, side)))
    assert (occlusion.window, occlusion.stride) == (-(-3 * side // 16), -(-side // 16))
    assert occlusion.expected_queries() == 197
