"""Captum-backed explainers: same numbers as Captum called directly, exact query counts, limits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import (
    DeepLift,
    GradientShap,
    InputXGradient,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Saliency,
)
from torch import nn

from saliency_gym import FrozenClassifier
from saliency_gym.baselines import (
    DeepLiftExplainer,
    GradCAMExplainer,
    GradientExplainer,
    GradientShapExplainer,
    InputXGradientExplainer,
    IntegratedGradientsExplainer,
    SmoothGradExplainer,
)
from saliency_gym.baselines.captum_base import reduce_channels
from saliency_gym.substrates import BlurSubstrate


@pytest.fixture(scope="module")
def batch(shapes_small):
    data = shapes_small.get_batch(range(3))
    return torch.as_tensor(data.images), torch.as_tensor(data.labels)


def run(explainer, images, targets):
    """Explain and check the query count the explainer declares against what was counted."""
    classifier = explainer.classifier
    classifier.reset_queries()
    explanation = explainer.explain(images, targets)
    assert explanation.queries == classifier.queries == explainer.expected_queries() * len(images)
    assert explanation.maps.shape == (len(images), *images.shape[2:])
    return torch.as_tensor(explanation.maps)


def test_gradient_matches_captum(shapes_classifier, batch):
    images, targets = batch
    model = shapes_classifier.module
    expected = Saliency(model).attribute(images.clone().requires_grad_(), target=targets, abs=True)
    torch.testing.assert_close(run(GradientExplainer(shapes_classifier), images, targets), expected.amax(dim=1))
    signed = Saliency(model).attribute(images.clone().requires_grad_(), target=targets, abs=False)
    torch.testing.assert_close(run(GradientExplainer(shapes_classifier, abs=False), images, targets), signed.sum(dim=1))
    assert (signed < 0).any()  # the signed option really is signed


def test_input_x_gradient_matches_captum(shapes_classifier, batch):
    images, targets = batch
    expected = InputXGradient(shapes_classifier.module).attribute(images.clone().requires_grad_(), target=targets)
    torch.testing.assert_close(run(InputXGradientExplainer(shapes_classifier), images, targets), expected.sum(dim=1))


@pytest.mark.parametrize("baseline", ["zeros", "blur"])
def test_integrated_gradients_matches_captum(shapes_classifier, batch, baseline):
    images, targets = batch
    reference = torch.zeros_like(images) if baseline == "zeros" else BlurSubstrate()(images)
    expected = IntegratedGradients(shapes_classifier.module).attribute(
        images.clone().requires_grad_(), baselines=reference, target=targets, n_steps=16
    )
    explainer = IntegratedGradientsExplainer(shapes_classifier, baseline=baseline, n_steps=16)
    maps = run(explainer, images, targets)
    torch.testing.assert_close(maps, expected.sum(dim=1))


def test_integrated_gradients_completeness(shapes_classifier, batch):
    """The channel sum keeps completeness: the map adds up to logit(x) - logit(0) (enough steps)."""
    images, targets = batch
    maps = run(IntegratedGradientsExplainer(shapes_classifier, n_steps=256), images, targets)
    logits = shapes_classifier.logits(images, count=False) - shapes_classifier.logits(torch.zeros_like(images), count=False)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), logits.gather(1, targets[:, None])[:, 0], rtol=0.02, atol=0.1)


def test_integrated_gradients_callable_and_image_baselines(shapes_classifier, batch):
    images, targets = batch
    seen = {}

    def half_grey(x, t):
        seen["targets"] = t
        return torch.full_like(x, 0.5)

    by_callable = run(IntegratedGradientsExplainer(shapes_classifier, baseline=half_grey, n_steps=8), images, targets)
    assert torch.equal(seen["targets"].cpu(), targets)  # substrates see the explained targets
    by_image = run(IntegratedGradientsExplainer(shapes_classifier, baseline=np.full((3, 32, 32), 0.5, np.float32), n_steps=8), images, targets)
    by_number = run(IntegratedGradientsExplainer(shapes_classifier, baseline=0.5, n_steps=8), images, targets)
    torch.testing.assert_close(by_callable, by_image)
    torch.testing.assert_close(by_callable, by_number)


def test_smoothgrad_matches_captum_and_is_seeded(shapes_classifier, batch):
    images, targets = batch
    torch.manual_seed(7)
    np.random.seed(7)
    expected = NoiseTunnel(Saliency(shapes_classifier.module)).attribute(
        images.clone().requires_grad_(), nt_type="smoothgrad", nt_samples=8, stdevs=0.15, target=targets, abs=True
    )
    state = torch.get_rng_state()
    explainer = SmoothGradExplainer(shapes_classifier, nt_samples=8, stdevs=0.15, seed=7)
    maps = run(explainer, images, targets)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    torch.testing.assert_close(maps, expected.amax(dim=1))
    torch.testing.assert_close(run(explainer, images, targets), maps)  # same seed, same noise
    other = run(SmoothGradExplainer(shapes_classifier, nt_samples=8, stdevs=0.15, seed=8), images, targets)
    assert not torch.allclose(other, maps)
    assert shapes_classifier.check_range  # switched back on after the noisy call


def test_gradient_shap_matches_captum_shared_baseline(shapes_classifier, batch):
    images, targets = batch
    torch.manual_seed(3)
    np.random.seed(3)
    expected = GradientShap(shapes_classifier.module).attribute(
        images.clone().requires_grad_(), baselines=torch.zeros_like(images[:1]), n_samples=10, stdevs=0.1, target=targets
    )
    maps = run(GradientShapExplainer(shapes_classifier, n_samples=10, stdevs=0.1, seed=3), images, targets)
    torch.testing.assert_close(maps, expected.sum(dim=1))


def test_gradient_shap_per_image_baselines(shapes_classifier, batch):
    """Image-dependent baselines (blur) are not mixed across the batch: one Captum call per image."""
    images, targets = batch
    blurred = BlurSubstrate()(images)
    torch.manual_seed(4)
    np.random.seed(4)
    shap = GradientShap(shapes_classifier.module)
    expected = torch.cat([
        shap.attribute(images[i : i + 1].clone().requires_grad_(), baselines=blurred[i : i + 1], n_samples=6,
                       stdevs=0.05, target=targets[i : i + 1])
        for i in range(len(images))
    ])  # fmt: skip
    maps = run(GradientShapExplainer(shapes_classifier, baseline="blur", n_samples=6, stdevs=0.05, seed=4), images, targets)
    torch.testing.assert_close(maps, expected.sum(dim=1))
    # The first image's map does not depend on which images share its batch.
    alone = run(GradientShapExplainer(shapes_classifier, baseline="blur", n_samples=6, stdevs=0.05, seed=4), images[:1], targets[:1])
    torch.testing.assert_close(alone[0], maps[0])


def test_deeplift_matches_captum(shapes_classifier, batch):
    images, targets = batch
    with pytest.warns(UserWarning, match="hooks"):
        expected = DeepLift(shapes_classifier.module).attribute(
            images.clone().requires_grad_(), baselines=torch.zeros_like(images), target=targets
        )
    maps = run(DeepLiftExplainer(shapes_classifier), images, targets)
    torch.testing.assert_close(maps, expected.sum(dim=1))
    # No cross-talk between the images of a batch.
    torch.testing.assert_close(run(DeepLiftExplainer(shapes_classifier), images[1:2], targets[1:2])[0], maps[1])


def test_deeplift_summation_to_delta_without_maxpool():
    """On a ReLU/average-pool network the channel-summed map adds up to logit(x) - logit(b).

    (With MaxPool2d, Captum 0.9's max-pool multipliers break summation-to-delta; see the module docs.)
    """
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4),
    )  # fmt: skip
    classifier = FrozenClassifier(model, (3, 12, 12), device="cpu")
    images, targets = torch.rand(3, 3, 12, 12), torch.tensor([0, 1, 3])
    maps = run(DeepLiftExplainer(classifier, baseline=0.25), images, targets)
    delta = classifier.logits(images, count=False) - classifier.logits(torch.full_like(images, 0.25), count=False)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), delta.gather(1, targets[:, None])[:, 0], rtol=1e-4, atol=1e-5)


def test_gradcam_matches_captum(shapes_classifier, batch):
    images, targets = batch
    model = shapes_classifier.module
    coarse = LayerGradCam(model, model.target_layer).attribute(
        images.clone().requires_grad_(), target=targets, relu_attributions=True
    )
    expected = LayerAttribution.interpolate(coarse, (32, 32), interpolate_mode="bilinear")[:, 0]
    maps = run(GradCAMExplainer(shapes_classifier), images, targets)
    torch.testing.assert_close(maps, expected)
    assert (maps >= 0).all() and coarse.shape[-1] < 32  # relu'd, and genuinely upsampled
    by_name = run(GradCAMExplainer(shapes_classifier, layer="features.12"), images, targets)
    by_module = run(GradCAMExplainer(shapes_classifier, layer=model.features[12]), images, targets)
    torch.testing.assert_close(by_name, by_module)


def test_gradcam_layer_errors(shapes_classifier, region_classifier):
    with pytest.raises(ValueError, match="target_layer"):
        GradCAMExplainer(region_classifier)
    with pytest.raises(ValueError, match="no submodule"):
        GradCAMExplainer(shapes_classifier, layer="features.99")
    with pytest.raises(ValueError, match="submodule of classifier.module"):
        GradCAMExplainer(shapes_classifier, layer=nn.Conv2d(3, 3, 1))
    with pytest.raises(TypeError):
        GradCAMExplainer(shapes_classifier, layer=3)
    with pytest.raises(ValueError, match="convolutional"):
        GradCAMExplainer(shapes_classifier, layer="classifier").explain(torch.rand(1, 3, 32, 32), 0)


def test_plain_callable_classifier_limits():
    classifier = FrozenClassifier(lambda x: x.flatten(1)[:, :2] * 3, (1, 4, 4), device="cpu")
    with pytest.raises(TypeError, match="plain callable"):
        DeepLiftExplainer(classifier)
    with pytest.raises(TypeError, match="plain callable"):
        GradCAMExplainer(classifier)
    # Methods that only need a differentiable forward function work on any callable.
    maps = run(IntegratedGradientsExplainer(classifier, n_steps=5), torch.rand(2, 1, 4, 4), 1)
    assert maps[:, 0, 1].abs().min() > 0 and maps[:, 1:, :].abs().max() == 0


def test_normalizing_classifier_counts_and_matches(region_classifier):
    """The wrapper's own normalisation is part of the attributed function."""
    model = region_classifier.module
    classifier = FrozenClassifier(model, (1, 8, 8), device="cpu", normalize=([0.5], [0.25]))
    images = torch.rand(2, 1, 8, 8)
    maps = run(IntegratedGradientsExplainer(classifier, n_steps=10), images, 1)
    expected = IntegratedGradients(lambda x: model((x - 0.5) / 0.25)).attribute(
        images.clone().requires_grad_(), baselines=torch.zeros_like(images), target=1, n_steps=10
    )
    torch.testing.assert_close(maps, expected.sum(dim=1))
    assert maps[:, 2:, :].abs().max() == 0 and maps[:, :, 2:].abs().max() == 0  # only the region matters


@pytest.mark.parametrize(
    ("cls", "options", "error"),
    [
        (IntegratedGradientsExplainer, {"n_steps": 0}, ValueError),
        (IntegratedGradientsExplainer, {"method": "simpson"}, ValueError),
        (IntegratedGradientsExplainer, {"baseline": "sepia"}, ValueError),
        (IntegratedGradientsExplainer, {"baseline": object()}, TypeError),
        (SmoothGradExplainer, {"nt_samples": 0}, ValueError),
        (SmoothGradExplainer, {"stdevs": -0.1}, ValueError),
        (GradientShapExplainer, {"n_samples": 0}, ValueError),
        (GradientExplainer, {"channel_reduction": "median"}, ValueError),
        (DeepLiftExplainer, {"eps": 0.0}, ValueError),
    ],
)
def test_bad_options(shapes_classifier, cls, options, error):
    with pytest.raises(error):
        cls(shapes_classifier, **options)


def test_reduce_channels():
    a = torch.tensor([[[[1.0]], [[-3.0]], [[2.0]]]])  # (1, 3, 1, 1)
    assert reduce_channels(a, "sum").item() == 0.0
    assert reduce_channels(a, "mean").item() == 0.0
    assert reduce_channels(a, "max_abs").item() == 3.0
    assert reduce_channels(a, "abs_sum").item() == 6.0
    with pytest.raises(ValueError):
        reduce_channels(a[0], "sum")


def test_explain_validates_inputs(shapes_classifier):
    explainer = GradientExplainer(shapes_classifier)
    with pytest.raises(ValueError, match="per-image shape"):
        explainer.explain(torch.rand(1, 1, 32, 32), 0)
    with pytest.raises(ValueError, match="targets"):
        explainer.explain(torch.rand(2, 3, 32, 32), [0, 9])
    with pytest.raises(TypeError, match="floating"):
        explainer.explain(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), 0)
