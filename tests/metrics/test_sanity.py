"""Cascading model-parameter randomisation (Adebayo et al. 2018) on the shipped shapes classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier
from saliency_gym.baselines.occlusion import OcclusionExplainer
from saliency_gym.data import ShapesSource
from saliency_gym.explainers import Explainer
from saliency_gym.metrics.sanity import SanityResult, cascading_randomization, randomizable_layers
from saliency_gym.zoo import load_classifier_module


class GradientExplainer(Explainer):
    """Vanilla gradient of the target logit, summed over channels (signed)."""

    name = "gradient"

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        x = images.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            self.classifier.logits(x).gather(1, targets.view(-1, 1)).sum().backward()
        assert x.grad is not None
        return x.grad.sum(dim=1)


class ImageExplainer(Explainer):
    """Ignores the model: the 'explanation' is the image's brightness (an edge-detector-like control)."""

    name = "image"

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=1)


@pytest.fixture(scope="module")
def shapes_model() -> tuple[nn.Module, dict]:
    return load_classifier_module("shapes")


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    batch = ShapesSource(split="test", n=4, seed=1).arrays()
    return batch.images, batch.labels


def test_randomizable_layers_are_top_down(shapes_model: tuple[nn.Module, dict]) -> None:
    model, _ = shapes_model
    names = randomizable_layers(model)
    assert names[0] == "classifier" and names[-1] == "features.0"
    assert names == ["classifier", "features.12", "features.11", "features.8", "features.7", "features.5", "features.4", "features.1", "features.0"]


def test_occlusion_maps_decorrelate_and_callers_model_is_untouched(
    shapes_model: tuple[nn.Module, dict], images: tuple[np.ndarray, np.ndarray]
) -> None:
    model, info = shapes_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training, grads = model.training, [p.requires_grad for p in model.parameters()]

    result = cascading_randomization(
        model,
        lambda c: OcclusionExplainer(c, window=8, stride=4),
        images[0],
        input_shape=info["input_shape"],
        seed=0,
        device="cpu",
    )

    assert isinstance(result, SanityResult)
    n_layers = len(randomizable_layers(model))
    assert result.layers == tuple(randomizable_layers(model))
    assert result.spearman_abs.shape == result.spearman_signed.shape == (n_layers, 4)
    assert result.randomized_maps.shape == (n_layers, 4, 32, 32) and result.original_maps.shape == (4, 32, 32)
    assert result.method == "occlusion"
    # The trained model classifies these images correctly, so the default targets are the labels.
    np.testing.assert_array_equal(result.targets, images[1])
    # Occlusion depends on the model: its maps lose most of their rank correlation once the
    # output layer is random and stay far from the original as randomisation cascades down.
    assert np.all(result.mean_abs < 0.8), result.mean_abs
    assert result.mean_abs[-1] < 0.5, result.mean_abs
    # The caller's model: same parameters, same mode, still trainable.
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training == training and [p.requires_grad for p in model.parameters()] == grads


def test_model_independent_explainer_passes_unchanged(
    shapes_model: tuple[nn.Module, dict], images: tuple[np.ndarray, np.ndarray]
) -> None:
    """The control Adebayo et al. warn about: maps that ignore the model never decorrelate."""
    model, info = shapes_model
    result = cascading_randomization(model, ImageExplainer, images[0], images[1], input_shape=info["input_shape"], device="cpu")
    np.testing.assert_allclose(result.spearman_abs, 1.0)
    np.testing.assert_allclose(result.mean_signed, 1.0)


def test_gradient_maps_change_and_seed_is_reproducible(
    shapes_model: tuple[nn.Module, dict], images: tuple[np.ndarray, np.ndarray]
) -> None:
    model, info = shapes_model
    rng_state = torch.get_rng_state()
    kwargs = dict(input_shape=info["input_shape"], layers=["classifier", "features.12"], device="cpu")
    first = cascading_randomization(model, GradientExplainer, images[0], images[1], seed=3, **kwargs)
    again = cascading_randomization(model, GradientExplainer, images[0], images[1], seed=3, **kwargs)
    other = cascading_randomization(model, GradientExplainer, images[0], images[1], seed=4, **kwargs)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG is not consumed
    assert first.layers == ("classifier", "features.12")
    np.testing.assert_array_equal(first.randomized_maps, again.randomized_maps)
    assert not np.allclose(first.randomized_maps, other.randomized_maps)
    np.testing.assert_array_equal(first.original_maps, other.original_maps)
    assert np.all(first.mean_abs < 0.9), first.mean_abs


def test_bad_arguments(shapes_model: tuple[nn.Module, dict], images: tuple[np.ndarray, np.ndarray]) -> None:
    model, info = shapes_model
    shape = info["input_shape"]
    with pytest.raises(ValueError, match=r"layers \['features.2'\] are not randomisable .* choose from \(top first\): \['classifier'"):
        cascading_randomization(model, GradientExplainer, images[0], input_shape=shape, layers=["features.2"])
    with pytest.raises(ValueError, match="at least one module"):
        cascading_randomization(model, GradientExplainer, images[0], input_shape=shape, layers=[])
    with pytest.raises(ValueError, match="must not repeat"):
        cascading_randomization(model, GradientExplainer, images[0], input_shape=shape, layers=["classifier", "classifier"])
    with pytest.raises(TypeError, match="sequence of module names"):
        cascading_randomization(model, GradientExplainer, images[0], input_shape=shape, layers="classifier")
    with pytest.raises(TypeError, match="must return an Explainer, got FrozenClassifier"):
        cascading_randomization(model, lambda c: c, images[0], input_shape=shape, device="cpu")
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        cascading_randomization(lambda x: x, GradientExplainer, images[0], input_shape=shape)

    class NoParameters(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    with pytest.raises(ValueError, match="no module with parameters"):
        cascading_randomization(NoParameters(), GradientExplainer, images[0], input_shape=shape)
    # The model itself is a fine classifier (the refusal above is the sanity check's): its logits
    # are the channel means, so an image of constant channels (0, 0.5, 1) has softmax([0, 0.5, 1]).
    plain = FrozenClassifier(NoParameters(), shape, device="cpu")
    image = torch.stack([torch.full(tuple(shape[1:]), v) for v in (0.0, 0.5, 1.0)])[None]
    expected = torch.softmax(torch.tensor([0.0, 0.5, 1.0]), dim=0)
    torch.testing.assert_close(plain.probs(image)[0].cpu(), expected)
    assert plain.queries == 1
