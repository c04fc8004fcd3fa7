"""Metrics take what explainers take (issue 24): a raw ``nn.Module`` or a ``FrozenClassifier``, and
images outside [0, 1] are a ``ValueError`` that names ``normalize=``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_gym import FrozenClassifier
from saliency_gym.baselines.gradient_methods import GradientExplainer
from saliency_gym.grid import PatchGrid
from saliency_gym.metrics import (
    counterfactual_scores,
    deletion_curve,
    insertion_curve,
    insertion_deletion_loop,
    patch_insertion_curve,
)

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("curve", [insertion_curve, deletion_curve])
def test_raw_module_gives_the_frozen_classifiers_curves(curve, region_classifier, rng):
    images = rng.random((3, 1, 8, 8)).astype(np.float32)
    maps = rng.random((3, 8, 8))
    wrapped = curve(region_classifier, images, maps, [1, 0, 1])
    raw = curve(region_classifier.module, images, maps, [1, 0, 1])
    np.testing.assert_array_equal(raw.curves, wrapped.curves)
    assert raw.queries == wrapped.queries == 3 * 9  # 8 steps of one row + the start


def test_raw_module_everywhere_a_classifier_is_queried(region_classifier, rng):
    images = rng.random((2, 1, 8, 8)).astype(np.float32)
    maps = rng.random((2, 8, 8))
    loop = insertion_deletion_loop(region_classifier.module, images, maps, [1, 1], mode="deletion")
    np.testing.assert_allclose(loop.curves, deletion_curve(region_classifier, images, maps, [1, 1]).curves)
    grid = PatchGrid(8, 8, 2)
    orders = np.tile(np.arange(4), (2, 1))
    np.testing.assert_array_equal(
        patch_insertion_curve(region_classifier.module, images, orders, grid, [1, 1]).curves,
        patch_insertion_curve(region_classifier, images, orders, grid, [1, 1]).curves,
    )
    x = torch.as_tensor(images)
    scores = counterfactual_scores(region_classifier.module, x, x, torch.tensor([0, 1]))
    assert scores == counterfactual_scores(region_classifier, x, x, torch.tensor([0, 1]))


def test_normalised_images_name_normalize(shapes_classifier, shapes_small):
    """ImageNet-normalised images (values in about [-2.1, 2.6]) are the usual mistake: the error
    says how to give the model its normalisation, for metrics and explainers alike."""
    x = shapes_small.get_batch(np.arange(2)).images
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, 3, 1, 1) for v in IMAGENET)
    normalised = (x - mean) / std
    maps = np.ones((2, 32, 32))
    for call in (
        lambda: insertion_curve(shapes_classifier, normalised, maps, 0),
        lambda: deletion_curve(shapes_classifier.module, normalised, maps, 0),
        lambda: GradientExplainer(shapes_classifier).explain(normalised, 0),
        lambda: GradientExplainer(shapes_classifier).attribute(torch.as_tensor(normalised), target=0),
    ):
        with pytest.raises(ValueError, match=r"values in \[0, 1\].*normalize=\(mean, std\)"):
            call()
    # Shape errors stay shape errors (no normalisation hint), also for a raw module.
    with pytest.raises(ValueError, match="per-image shape"):
        insertion_curve(shapes_classifier, x[:, :1], maps, 0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        insertion_curve(shapes_classifier.module, x[0], maps, 0)


def test_the_documented_fix_works(shapes_classifier, shapes_small):
    """What the hint says: [0, 1] images and FrozenClassifier(..., normalize=) give the model the
    same inputs as the normalised batch did (here a model that undoes the normalisation)."""
    x = shapes_small.get_batch(np.arange(2)).images
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    inner = shapes_classifier.module
    expects_normalised = torch.nn.Sequential()
    expects_normalised.forward = lambda t: inner(t * std + mean)  # type: ignore[method-assign]
    clf = FrozenClassifier(expects_normalised, (3, 32, 32), normalize=IMAGENET, device="cpu")
    maps = np.random.default_rng(0).random((2, 32, 32))
    np.testing.assert_allclose(
        insertion_curve(clf, x, maps, [0, 1]).curves, insertion_curve(shapes_classifier, x, maps, [0, 1]).curves, atol=1e-5
    )


def test_not_a_model_is_a_type_error(rng):
    with pytest.raises(TypeError, match="FrozenClassifier or an nn.Module"):
        insertion_curve(lambda t: t, rng.random((1, 1, 8, 8)).astype(np.float32), rng.random((1, 8, 8)))
