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


# --------------------------------------------------------------------------- issue 24: Quantus keywords, curves
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _normalised(x: np.ndarray) -> np.ndarray:
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in IMAGENET)
    return ((x - mean) / std).astype(np.float32)


def _expects_normalised(clf: FrozenClassifier) -> torch.nn.Module:
    """A module that takes ImageNet-normalised inputs and computes what ``clf`` computes on the
    [0, 1] images they came from (the usual Quantus set-up)."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    inner = clf.module

    class Normalised(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return self.inner(t * std + mean)

    return Normalised()


def test_explain_func_takes_quantus_keywords(clf: FrozenClassifier, x: torch.Tensor) -> None:
    y = np.array([0, 1, 2, 3])
    expected = GradientExplainer(clf).explain(x, y).maps
    # device: what every Quantus metric adds when its __call__ gets device="cpu" (the failure).
    a = explain_func(model=clf.module, inputs=x.numpy(), targets=y, method="gradient", device="cpu")
    np.testing.assert_allclose(a[:, 0], expected, atol=1e-6)
    # method: quantus.evaluate passes its xai_methods key; Captum's names map to ours.
    np.testing.assert_allclose(explain_func(clf.module, x.numpy(), y, method="Saliency")[:, 0], expected, atol=1e-6)
    # Quantus's layout keywords.
    nhwc = explain_func(clf.module, x.numpy().transpose(0, 2, 3, 1), y, method="gradient", channel_first=False)
    assert nhwc.shape == (4, 32, 32, 1)
    np.testing.assert_allclose(nhwc[..., 0], expected, atol=1e-6)
    flat = explain_func(clf.module, x.numpy(), y, method="gradient", reduce_axes=(1,), keepdims=False)
    assert flat.shape == (4, 32, 32)
    with pytest.raises(ValueError, match="channel axis"):
        explain_func(clf.module, x.numpy(), y, method="gradient", reduce_axes=())
    with pytest.raises(TypeError, match="quantus.explain's own back ends"):
        explain_func(clf.module, x.numpy(), y, method="gradient", xai_lib="captum")
    with pytest.raises(ValueError, match="unknown method"):
        explain_func(clf.module, x.numpy(), y, method="LRP")


def test_explain_func_reads_normalised_inputs(clf: FrozenClassifier, x: torch.Tensor) -> None:
    y = np.array([0, 1, 2, 3])
    model = _expects_normalised(clf)
    with pytest.raises(ValueError, match=r"normalize="):
        explain_func(model, _normalised(x.numpy()), y, method="gradient")
    a = explain_func(model, _normalised(x.numpy()), y, method="gradient", normalize=IMAGENET)
    np.testing.assert_allclose(a[:, 0], GradientExplainer(clf).explain(x, y).maps, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(explain_func(model, _normalised(x.numpy()), y, method="gradient", normalize="imagenet"), a)
    with pytest.raises(ValueError, match="FrozenClassifier normalises inside"):
        explain_func(clf, x.numpy(), y, method="gradient", normalize="imagenet")


def test_quantus_metric_with_device_runs_our_explain_func(clf: FrozenClassifier) -> None:
    """The issue's first failure: ``metric(..., device="cpu")`` makes Quantus call
    ``explain_func(..., device="cpu")``."""
    quantus = pytest.importorskip("quantus")
    from saliency_gym.data import ShapesSource

    batch = ShapesSource(split="test", n=4, seed=0).get_batch(np.arange(4))
    s = batch.masks.astype(np.float32)[:, None]
    scores = quantus.PointingGame(disable_warnings=True)(
        model=clf.module, x_batch=batch.images, y_batch=batch.labels, a_batch=None, s_batch=s, device="cpu",
        explain_func=explain_func, explain_func_kwargs={"method": "gradient"},
    )  # fmt: skip
    maps = GradientExplainer(clf).explain(batch.images, batch.labels).maps
    np.testing.assert_array_equal(scores, pointing_game(maps, s[:, 0] > 0, ties="any"))


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_quantus_style_insertion_deletion_equal_ours(mode: str, clf: FrozenClassifier, x: torch.Tensor) -> None:
    """Same AUCs up to float32 round-off (the classifier batches images differently per call)."""
    from saliency_gym.metrics import deletion_curve, insertion_curve

    y = np.array([0, 1, 2, 3])
    a = np.random.default_rng(0).random((4, 1, 32, 32)).astype(np.float32)
    ours = (insertion_curve if mode == "insertion" else deletion_curve)(clf, x, a[:, 0], y, step=64)
    metric = as_quantus_metric(mode, step=64)
    scores = metric(clf.module, x.numpy(), y, a, device="cpu")
    assert isinstance(scores, list) and len(scores) == 4 and all(isinstance(v, float) for v in scores)
    np.testing.assert_allclose(scores, ours.auc, atol=1e-5)
    np.testing.assert_allclose(metric(clf, x, torch.as_tensor(y), torch.as_tensor(a[:, 0])), ours.auc, atol=1e-5)
    curves = as_quantus_metric(mode, step=64, return_curves=True)(clf.module, x.numpy(), y, a)
    np.testing.assert_allclose(np.asarray(curves), ours.curves, atol=1e-5)
    # Normalised x_batch with normalize=: the same numbers.
    normalised = as_quantus_metric(mode, step=64, normalize="imagenet")(_expects_normalised(clf), _normalised(x.numpy()), y, a)
    np.testing.assert_allclose(normalised, ours.auc, atol=1e-5)
    # With explain_func instead of a_batch.
    from_func = metric(clf.module, x.numpy(), y, None, explain_func=explain_func, explain_func_kwargs={"method": "gradient"})
    maps = GradientExplainer(clf).explain(x, y).maps
    np.testing.assert_allclose(from_func, (insertion_curve if mode == "insertion" else deletion_curve)(clf, x, maps, y, step=64).auc, atol=1e-5)
    with pytest.raises(ValueError, match="softmax=False"):
        metric(clf.module, x.numpy(), y, a, softmax=False)
    with pytest.raises(ValueError, match=r"normalize="):
        metric(clf.module, _normalised(x.numpy()), y, a)
    with pytest.raises(ValueError, match="one channel"):
        metric(clf.module, x.numpy(), y, np.repeat(a, 3, axis=1))


def test_deletion_agrees_with_quantus_pixel_flipping() -> None:
    """Quantus's PixelFlipping (``perturb_baseline=0``, ``features_in_step=W`` on a one-channel
    model) is RISE's deletion curve without its first point (the unperturbed image); its AUC is
    ``np.trapz`` with ``dx=1`` over those points, not RISE's normalised area."""
    quantus = pytest.importorskip("quantus")
    from saliency_gym.data import load_dataset
    from saliency_gym.metrics import deletion_curve

    digits = load_classifier("digits", device="cpu")
    x = load_dataset("digits", "test").get_batch(np.arange(6)).images.astype(np.float32)
    y = digits.predict(x, count=False).numpy()
    a = np.random.default_rng(1).random((6, 1, 32, 32)).astype(np.float32)  # distinct values: no ties
    ours = deletion_curve(digits, x, a[:, 0], y, step=32)
    metric = quantus.PixelFlipping(features_in_step=32, perturb_baseline=0.0, disable_warnings=True, display_progressbar=False)
    theirs = np.asarray(metric(model=digits.module, x_batch=x, y_batch=y, a_batch=a, device="cpu"))
    np.testing.assert_allclose(theirs, ours.curves[:, 1:], atol=1e-5)
    np.testing.assert_allclose(as_quantus_metric("deletion", step=32, return_curves=True)(digits.module, x, y, a),
                               ours.curves, atol=1e-6)  # fmt: skip
