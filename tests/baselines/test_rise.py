"""RISE: mask generation follows the reference, maps localise, cost and determinism are exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier
from saliency_gym.baselines import RISEExplainer, generate_rise_masks


class ConstantModel(nn.Module):
    """Always gives class 1 probability one (up to softmax round-off)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 2, device=x.device)
        logits[:, 1] = 50.0
        return logits


class RecordingModel(nn.Module):
    """A tiny linear classifier that records the smallest pixel value it was shown."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 3)
        self.smallest = math.inf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.smallest = min(self.smallest, float(x.min()))
        return self.linear(x.flatten(1))


def test_masks_match_reference_upsample_and_crop():
    """Each mask is the reference's ``resize(grid, (s+1)*cell, order=1, mode="reflect")`` cropped
    at the drawn shift; skimage's resize is ``scipy.ndimage.zoom(..., mode="mirror", grid_mode=True)``."""
    ndimage = pytest.importorskip("scipy.ndimage")
    n, s, p, h, w = 6, 5, 0.5, 13, 22  # non-square, sizes not divisible by s
    masks = generate_rise_masks(n, s, p, h, w, generator=torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)  # replay the draws in the documented order
    grid = (torch.rand(n, s, s, generator=generator) < p).double().numpy()
    cell_h, cell_w = math.ceil(h / s), math.ceil(w / s)
    shift_h = torch.randint(0, cell_h, (n,), generator=generator)
    shift_w = torch.randint(0, cell_w, (n,), generator=generator)
    up = ((s + 1) * cell_h, (s + 1) * cell_w)
    for i in range(n):
        canvas = ndimage.zoom(grid[i], (up[0] / s, up[1] / s), order=1, mode="mirror", grid_mode=True)
        assert canvas.shape == up
        expected = canvas[shift_h[i] : shift_h[i] + h, shift_w[i] : shift_w[i] + w]
        np.testing.assert_allclose(masks[i].numpy(), expected, atol=1e-6)


def test_mask_statistics():
    masks = generate_rise_masks(3000, 6, 0.3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (3000, 24, 24) and masks.dtype == torch.float32
    assert masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean().item() - 0.3) < 0.02  # each pixel is kept with probability p on average
    assert ((masks > 0) & (masks < 1)).any()  # smooth, not binary


def test_map_concentrates_on_the_region_the_classifier_reads(region_classifier):
    explainer = RISEExplainer(region_classifier, n_masks=2000, grid_size=4, p=0.5, seed=0)
    images = torch.ones(2, 1, 8, 8)
    maps = explainer.explain(images, targets=1).maps
    region = np.zeros((8, 8), bool)
    region[:2, :2] = True
    for m in maps:
        assert region.reshape(-1)[m.argmax()]
        assert m[region].mean() > m[~region].mean() + 0.1
        # Pixels far from the region (beyond a mask cell's reach) carry only the average score.
        assert m[region].mean() > m[5:, 5:].mean() + 0.2


def test_unbiased_for_a_constant_classifier():
    """With f = 1 the map is sum(M_i) / (N p), whose expectation is 1 at every pixel."""
    classifier = FrozenClassifier(ConstantModel(), (1, 10, 14), device="cpu")
    maps = RISEExplainer(classifier, n_masks=3000, grid_size=3, p=0.4).explain(torch.rand(1, 1, 10, 14), 1).maps
    assert abs(maps.mean() - 1.0) < 0.03
    assert maps.min() > 0.8 and maps.max() < 1.2


def test_queries_exact_and_batching_invariant(region_classifier):
    images = torch.rand(3, 1, 8, 8)
    reference = None
    for batch_size in (37, 50, 1000):  # chunks split images, align with them, or span all three
        region_classifier.reset_queries()
        explanation = RISEExplainer(region_classifier, n_masks=50, grid_size=3, seed=1, batch_size=batch_size).explain(images, 1)
        assert explanation.queries == 150 and region_classifier.queries == 150
        assert explanation.queries_per_image == 50
        if reference is None:
            reference = explanation.maps
        else:
            np.testing.assert_allclose(explanation.maps, reference, rtol=1e-5, atol=1e-6)


def test_deterministic_by_seed(region_classifier):
    images = torch.rand(2, 1, 8, 8)
    a = RISEExplainer(region_classifier, n_masks=40, seed=5).explain(images, 1).maps
    b = RISEExplainer(region_classifier, n_masks=40, seed=5).explain(images, 1).maps
    c = RISEExplainer(region_classifier, n_masks=40, seed=6).explain(images, 1).maps
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    explainer = RISEExplainer(region_classifier, n_masks=40, seed=5)
    np.testing.assert_array_equal(explainer.explain(images, 1).maps, explainer.explain(images, 1).maps)


def test_masks_cached_and_regenerated_on_shape_change(region_classifier):
    explainer = RISEExplainer(region_classifier, n_masks=20, grid_size=3, seed=2)
    first = explainer.masks
    assert first.shape == (20, 8, 8) and explainer.masks is first  # cached
    other = explainer._masks_for(6, 10)
    assert other.shape == (20, 6, 10)
    again = explainer.masks
    assert again is not first and torch.equal(again, first)  # regenerated from the same seed


def test_non_square_images_and_shipped_model_shape():
    torch.manual_seed(0)
    model = RecordingModel(3 * 12 * 20)
    classifier = FrozenClassifier(model, (3, 12, 20), device="cpu")
    explanation = RISEExplainer(classifier, n_masks=30, grid_size=5).explain(torch.rand(2, 3, 12, 20), [0, 2])
    assert explanation.maps.shape == (2, 12, 20)
    assert np.isfinite(explanation.maps).all()
    assert explanation.queries == 60


def test_substrate_fills_masked_out_pixels():
    model = RecordingModel(1 * 6 * 6)
    classifier = FrozenClassifier(model, (1, 6, 6), device="cpu")
    images = torch.ones(1, 1, 6, 6)
    RISEExplainer(classifier, n_masks=30, grid_size=2, substrate=0.5).explain(images, 0)
    assert model.smallest >= 0.5 - 1e-6  # b + M (x - b) with b = 0.5, x = 1 never drops below b
    model.smallest = math.inf
    RISEExplainer(classifier, n_masks=30, grid_size=2).explain(images, 0)
    assert model.smallest < 0.01  # default: x * M, fully masked cells are black


def test_on_shipped_classifier(shapes_classifier, shapes_small):
    batch = shapes_small.get_batch(range(2))
    explanation = RISEExplainer(shapes_classifier, n_masks=64, grid_size=4).explain(batch.images, batch.labels)
    assert explanation.maps.shape == (2, 32, 32)
    assert explanation.queries == 128
    assert (explanation.maps >= 0).all()  # probabilities times masks


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"n_masks": 0}, ValueError),
        ({"n_masks": -5}, ValueError),
        ({"n_masks": 1.5}, TypeError),
        ({"p": 0.0}, ValueError),
        ({"p": 1.2}, ValueError),
        ({"p": -0.1}, ValueError),
        ({"grid_size": 0}, ValueError),
        ({"batch_size": 0}, ValueError),
        ({"seed": -1}, ValueError),
        ({"substrate": "sepia"}, ValueError),
    ],
)
def test_bad_options(region_classifier, options, error):
    with pytest.raises(error):
        RISEExplainer(region_classifier, **options)


def test_bad_inputs(region_classifier):
    explainer = RISEExplainer(region_classifier, n_masks=10, p=1.0)  # p = 1 is allowed
    with pytest.raises(ValueError, match="per-image shape"):
        explainer.explain(torch.rand(2, 1, 8, 9), 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        explainer.explain(torch.rand(2, 1, 8, 8) + 2, 1)
    with pytest.raises(ValueError, match="targets"):
        explainer.explain(torch.rand(2, 1, 8, 8), [0, 5])
    with pytest.raises(TypeError, match="FrozenClassifier"):
        RISEExplainer(nn.Linear(4, 2))
