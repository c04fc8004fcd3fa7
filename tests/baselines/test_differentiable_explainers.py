"""Differentiable explainers: same maps as the Captum-backed explainers, gradients reach the parameters."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum.attr import InputXGradient, Saliency

from saliency_gym import FrozenClassifier
from saliency_gym.baselines import GradCAMExplainer, GradientExplainer, InputXGradientExplainer
from saliency_gym.baselines.differentiable_explainers import (
    DifferentiableGradCAM,
    DifferentiableGradient,
    DifferentiableInputXGradient,
    make_differentiable_explainer,
)
from saliency_gym.models import SmallCNN, TabularMLP
from saliency_gym.zoo import load_classifier_module


@pytest.fixture(scope="module")
def trainable():
    model, _ = load_classifier_module("shapes")
    return model.eval()


@pytest.fixture(scope="module")
def batch(shapes_small):
    data = shapes_small.get_batch(range(4))
    return torch.as_tensor(data.images), torch.as_tensor(data.labels)


@pytest.mark.parametrize(
    ("ours", "theirs", "options"),
    [
        (DifferentiableGradCAM, GradCAMExplainer, {}),
        (DifferentiableGradCAM, GradCAMExplainer, {"relu": False}),
        (DifferentiableGradient, GradientExplainer, {}),
        (DifferentiableGradient, GradientExplainer, {"abs": False}),
        (DifferentiableInputXGradient, InputXGradientExplainer, {}),
    ],
)
def test_matches_captum_explainers_on_a_frozen_copy(trainable, batch, ours, theirs, options):
    images, labels = batch
    frozen = FrozenClassifier(copy.deepcopy(trainable), (3, 32, 32), device="cpu")
    reference = theirs(frozen, **options).explain(images, labels).maps
    maps = ours(trainable, **options)(images, labels)
    assert maps.shape == reference.shape and maps.requires_grad
    np.testing.assert_allclose(maps.detach().numpy(), reference, rtol=1e-5, atol=1e-6 * max(1.0, float(np.abs(reference).max())))
    assert np.abs(reference).max() > 0


@pytest.mark.parametrize("cls", [DifferentiableGradCAM, DifferentiableGradient, DifferentiableInputXGradient])
def test_gradients_reach_the_parameters(cls):
    torch.manual_seed(0)
    model = SmallCNN(1, 3, width=4, activation="softplus").eval()
    x = torch.rand(2, 1, 8, 8)
    maps = cls(model)(x, [0, 2])
    model.zero_grad()
    maps.pow(2).sum().backward()
    grads = [p.grad for p in model.features.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert not cls(model, create_graph=False)(x, [0, 2]).requires_grad


def test_tabular_maps_match_captum_saliency():
    torch.manual_seed(0)
    model = TabularMLP(6, 3).eval()
    x = torch.randn(5, 6)
    y = torch.tensor([0, 1, 2, 0, 1])
    ours = DifferentiableGradient(model)(x, y)
    reference = Saliency(model).attribute(x.clone().requires_grad_(True), target=y, abs=True)
    np.testing.assert_allclose(ours.detach().numpy(), reference.numpy(), rtol=1e-5, atol=1e-7)
    ixg = DifferentiableInputXGradient(model)(x, y)
    ixg_reference = InputXGradient(model).attribute(x.clone().requires_grad_(True), target=y)
    np.testing.assert_allclose(ixg.detach().numpy(), ixg_reference.detach().numpy(), rtol=1e-5, atol=1e-7)
    assert ours.shape == (5, 6)


def test_model_is_not_modified(trainable, batch):
    before = {k: v.clone() for k, v in trainable.state_dict().items()}
    DifferentiableGradCAM(trainable)(*batch)
    assert all(torch.equal(before[k], v) for k, v in trainable.state_dict().items())
    assert all(p.grad is None for p in trainable.parameters())


def test_bad_arguments(trainable, batch):
    images, labels = batch
    with pytest.raises(TypeError, match="nn.Module"):
        DifferentiableGradient(lambda x: x)
    with pytest.raises(ValueError, match="no submodule"):
        DifferentiableGradCAM(trainable, layer="features.99")
    with pytest.raises(ValueError, match="target_layer"):
        DifferentiableGradCAM(TabularMLP(4, 2))
    with pytest.raises(ValueError, match="images"):
        DifferentiableGradCAM(trainable)(torch.rand(2, 5), [0, 1])
    with pytest.raises(ValueError, match="targets"):
        DifferentiableGradient(trainable)(images, [9] * len(images))
    with pytest.raises(ValueError, match="shape"):
        DifferentiableGradient(trainable)(images[0], labels[:1])
    with pytest.raises(ValueError, match="explainer"):
        make_differentiable_explainer("rise", trainable)
    with pytest.raises(ValueError, match="channel_reduction"):
        make_differentiable_explainer("gradient", trainable, channel_reduction="median")
    assert isinstance(make_differentiable_explainer("gradcam", trainable, layer="features.12"), DifferentiableGradCAM)
