"""Insertion / deletion (RISE) curves: hand-computed values, batched == loop, patch level, checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from saliency_gym import FrozenClassifier
from saliency_gym.grid import PatchGrid
from saliency_gym.metrics.curves_plot import plot_insertion_deletion_curves
from saliency_gym.metrics.insertion_deletion import (
    CurveResult,
    auc,
    cell_order_from_maps,
    deletion_curve,
    insertion_curve,
    insertion_deletion_loop,
    patch_deletion_curve,
    patch_insertion_curve,
    pixel_order,
)
from saliency_gym.substrates import make_substrate

WEIGHTS = torch.tensor([0.4, 0.3, 0.2, 0.1])


def _weighted(x: torch.Tensor) -> torch.Tensor:
    """p(class 1) = weighted sum of the four pixels of a 1x2x2 image (weights .4 .3 .2 .1)."""
    s = (x.reshape(x.shape[0], -1) * WEIGHTS.to(x.device)).sum(dim=1)
    return torch.stack([1 - s, s], dim=1)


@pytest.fixture()
def weighted() -> FrozenClassifier:
    return FrozenClassifier(_weighted, (1, 2, 2), outputs="probs", num_classes=2, device="cpu", name="weighted")


ONES = np.ones((1, 1, 2, 2), dtype=np.float32)
GOOD_MAP = np.array([[[4.0, 3.0], [2.0, 1.0]]])  # same order as the weights
BAD_MAP = GOOD_MAP[:, ::-1, ::-1].copy()  # reverse order


# ------------------------------------------------------------------------------------------ auc
def test_auc_hand_values():
    assert auc(np.array([0.0, 1.0])) == pytest.approx(0.5)
    assert auc(np.array([[1.0, 1.0, 1.0], [1.0, 0.6, 0.3]])) == pytest.approx([1.0, (1.9 - 0.5 - 0.15) / 2])
    # RISE's formula on an uneven curve
    c = np.array([0.2, 0.9, 0.4, 0.7])
    assert auc(c) == pytest.approx((c.sum() - c[0] / 2 - c[-1] / 2) / 3)
    assert auc(c) == pytest.approx(np.trapezoid(c, dx=1 / 3))


def test_auc_partial_curve_is_area_of_visited_part():
    c = np.array([0.0, 0.4, 0.7, 0.9])
    # 3 of 4 steps: trapezoids (0+.4)/2 + (.4+.7)/2 + (.7+.9)/2 = 1.55, over 4 steps
    assert auc(c, total_steps=4) == pytest.approx(1.55 / 4)
    # the per-step increments an episode would collect sum to it
    increments = (c[:-1] + c[1:]) / (2 * 4)
    assert increments.sum() == pytest.approx(auc(c, total_steps=4))
    assert auc(np.array([0.7]), total_steps=5) == 0.0


def test_auc_rejects_bad_inputs():
    with pytest.raises(ValueError, match="total_steps"):
        auc(np.array([0.0, 1.0, 0.0]), total_steps=1)
    with pytest.raises(ValueError, match="one point"):
        auc(np.array([0.5]))
    with pytest.raises(ValueError, match="NaN"):
        auc(np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="scalar"):
        auc(np.float64(1.0))


# ------------------------------------------------------------------------------- hand-computed
def test_deletion_hand_computed(weighted):
    good = deletion_curve(weighted, ONES, GOOD_MAP, [1], step=1)
    np.testing.assert_allclose(good.curves, [[1.0, 0.6, 0.3, 0.1, 0.0]], atol=1e-6)
    assert good.auc == pytest.approx([(2.0 - 0.5) / 4], abs=1e-6)
    bad = deletion_curve(weighted, ONES, BAD_MAP, [1], step=1)
    np.testing.assert_allclose(bad.curves, [[1.0, 0.9, 0.7, 0.4, 0.0]], atol=1e-6)
    assert bad.auc == pytest.approx([(3.0 - 0.5) / 4], abs=1e-6)
    assert good.mode == "deletion" and good.substrate == "zeros" and good.total_steps == 4
    np.testing.assert_allclose(good.fractions, [0, 0.25, 0.5, 0.75, 1])


def test_insertion_hand_computed_with_constant_substrate(weighted):
    res = insertion_curve(weighted, ONES, GOOD_MAP, [1], step=1, substrate=0.0)
    np.testing.assert_allclose(res.curves, [[0.0, 0.4, 0.7, 0.9, 1.0]], atol=1e-6)
    assert res.auc == pytest.approx([(3.0 - 0.5) / 4], abs=1e-6)
    # substrate 0.5: pixels move from .5 to 1, each adds w/2
    half = insertion_curve(weighted, ONES, GOOD_MAP, [1], step=1, substrate=0.5)
    np.testing.assert_allclose(half.curves, [[0.5, 0.7, 0.85, 0.95, 1.0]], atol=1e-6)


def test_insertion_default_substrate_is_rise_blur(weighted, rng):
    images = rng.random((2, 1, 2, 2)).astype(np.float32)
    res = insertion_curve(weighted, images, rng.random((2, 2, 2)), [1, 1], step=4)
    blurred = make_substrate("blur")(torch.from_numpy(images))
    expected_start = _weighted(blurred)[:, 1].numpy()
    np.testing.assert_allclose(res.curves[:, 0], expected_start, atol=1e-6)
    np.testing.assert_allclose(res.curves[:, -1], _weighted(torch.from_numpy(images))[:, 1].numpy(), atol=1e-6)
    assert res.substrate == "blur" and res.curves.shape == (2, 2)


def test_ties_are_broken_by_raster_index(weighted):
    # pixels 1 and 2 tie at the top, 0 and 3 at the bottom -> order 1, 2, 0, 3
    tied = np.array([[[0.0, 5.0], [5.0, 0.0]]])
    np.testing.assert_array_equal(pixel_order(tied), [[1, 2, 0, 3]])
    res = deletion_curve(weighted, ONES, tied, [1], step=1)
    np.testing.assert_allclose(res.curves, [[1.0, 0.7, 0.5, 0.1, 0.0]], atol=1e-6)
    # an all-equal map is read row by row from the top-left: the same as the good map here
    flat = deletion_curve(weighted, ONES, np.zeros((1, 2, 2)), [1], step=1)
    np.testing.assert_allclose(flat.curves, [[1.0, 0.6, 0.3, 0.1, 0.0]], atol=1e-6)


def test_step_not_dividing_the_image(weighted):
    res = deletion_curve(weighted, ONES, GOOD_MAP, [1], step=3)  # ceil(4/3) = 2 steps
    np.testing.assert_allclose(res.curves, [[1.0, 0.1, 0.0]], atol=1e-6)
    assert res.auc == pytest.approx([(1.1 - 0.5) / 2], abs=1e-6)
    np.testing.assert_allclose(res.fractions, [0.0, 0.75, 1.0])
    big = deletion_curve(weighted, ONES, GOOD_MAP, [1], step=100)  # one step changes everything
    np.testing.assert_allclose(big.curves, [[1.0, 0.0]], atol=1e-6)


def test_default_step_is_one_row(region_classifier, rng):
    images = rng.random((1, 1, 8, 8)).astype(np.float32)
    res = deletion_curve(region_classifier, images, rng.random((1, 8, 8)), [1])
    assert res.curves.shape == (1, 9)


def test_foils_score_the_contrast(weighted):
    res = deletion_curve(weighted, ONES, GOOD_MAP, [1], step=1, foils=[0])
    # p1 - p0 = 2 * p1 - 1
    np.testing.assert_allclose(res.curves, [[1.0, 0.2, -0.4, -0.8, -1.0]], atol=1e-6)
    assert res.auc == pytest.approx([2 * 0.375 - 1], abs=1e-6)
    np.testing.assert_array_equal(res.foils, [0])


def test_region_classifier_deletion_known_saliency(region_classifier):
    # The model only looks at the top-left 2x2 block: a map ranking it first deletes it in step 1.
    images = np.ones((1, 1, 8, 8), dtype=np.float32)
    saliency = np.zeros((1, 8, 8))
    saliency[0, :2, :2] = 1.0
    res = deletion_curve(region_classifier, images, saliency, [1], step=4)
    hi, lo = 1 / (1 + math.exp(-5)), 1 / (1 + math.exp(5))
    expected = np.array([hi] + [lo] * 16)
    np.testing.assert_allclose(res.curves[0], expected, atol=1e-6)
    assert res.auc[0] == pytest.approx((expected.sum() - hi / 2 - lo / 2) / 16, abs=1e-6)
    # the reversed map keeps the evidence until the last step
    late = deletion_curve(region_classifier, images, -saliency, [1], step=4)
    assert late.auc[0] > 0.9 > 0.1 > res.auc[0]


# -------------------------------------------------------------------------------- batched == loop
@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_batched_equals_loop_on_shapes_classifier(shapes_classifier, shapes_small, rng, mode):
    batch = shapes_small.get_batch(range(3))
    maps = rng.random((3, 32, 32))
    fn = insertion_curve if mode == "insertion" else deletion_curve
    fast = fn(shapes_classifier, batch.images, maps, batch.labels, step=96, max_batch=7)
    slow = insertion_deletion_loop(shapes_classifier, batch.images, maps, batch.labels, mode=mode, step=96)
    assert fast.curves.shape == slow.curves.shape == (3, 12)  # ceil(1024 / 96) + 1
    np.testing.assert_allclose(fast.curves, slow.curves, atol=1e-5)
    np.testing.assert_allclose(fast.auc, slow.auc, atol=1e-5)
    assert fast.queries == slow.queries == 3 * 12
    assert fast.substrate == slow.substrate == ("blur" if mode == "insertion" else "zeros")


def test_batched_equals_loop_with_seeded_noise_and_foils(region_classifier, rng):
    images = rng.random((4, 1, 8, 8)).astype(np.float32)
    maps = rng.random((4, 8, 8))
    kwargs = dict(step=5, substrate="noise", foils=[0, 0, 0, 0])
    fast = insertion_curve(region_classifier, images, maps, [1, 1, 1, 1], generator=torch.Generator().manual_seed(3), **kwargs)
    slow = insertion_deletion_loop(
        region_classifier, images, maps, [1, 1, 1, 1], mode="insertion", generator=torch.Generator().manual_seed(3), **kwargs
    )
    np.testing.assert_allclose(fast.curves, slow.curves, atol=1e-6)
    again = insertion_curve(region_classifier, images, maps, [1, 1, 1, 1], generator=torch.Generator().manual_seed(3), **kwargs)
    np.testing.assert_array_equal(fast.curves, again.curves)
    other = insertion_curve(region_classifier, images, maps, [1, 1, 1, 1], generator=torch.Generator().manual_seed(4), **kwargs)
    assert not np.array_equal(fast.curves[:, 0], other.curves[:, 0])


def test_max_batch_bounds_each_classifier_call(region_classifier, rng, monkeypatch):
    images = rng.random((3, 1, 8, 8)).astype(np.float32)
    maps = rng.random((3, 8, 8))
    assert region_classifier.num_classes == 2  # resolved lazily by one uncounted call; do it first
    sizes: list[int] = []
    original = region_classifier.probs

    def spy(x, **kw):
        sizes.append(int(x.shape[0]))
        return original(x, **kw)

    monkeypatch.setattr(region_classifier, "probs", spy)
    res = deletion_curve(region_classifier, images, maps, [1, 0, 1], step=8, max_batch=10)
    points = 3 * 9
    assert sizes == [10, 10, 7] and sum(sizes) == points
    reference = deletion_curve(region_classifier, images, maps, [1, 0, 1], step=8)
    np.testing.assert_allclose(res.curves, reference.curves, atol=1e-6)


# ------------------------------------------------------------------------------- query counting
def test_query_counting(region_classifier, rng):
    images = rng.random((2, 1, 8, 8)).astype(np.float32)
    maps = rng.random((2, 8, 8))
    before = region_classifier.queries
    res = insertion_curve(region_classifier, images, maps, [1, 1], step=16)
    assert res.queries == 2 * 5 == region_classifier.queries - before
    predicted = insertion_curve(region_classifier, images, maps, step=16)  # + one prediction per image
    assert predicted.queries == 2 * 5 + 2
    expected_targets = region_classifier.predict(images).numpy()
    np.testing.assert_array_equal(predicted.targets, expected_targets)


def test_empty_batch(region_classifier):
    res = deletion_curve(region_classifier, np.zeros((0, 1, 8, 8), np.float32), np.zeros((0, 8, 8)), step=8)
    assert res.curves.shape == (0, 9) and res.auc.shape == (0,) and res.queries == 0


# ------------------------------------------------------------------------------------ patches
def test_patch_full_order_equals_pixel_auc_when_cells_are_pixels(region_classifier, rng):
    images = rng.random((3, 1, 8, 8)).astype(np.float32)
    maps = rng.random((3, 8, 8))
    maps[0, 2:4] = 0.5  # ties: cell order and pixel order must break them the same way
    grid = PatchGrid(8, 8, 8)
    order = cell_order_from_maps(maps, grid)
    np.testing.assert_array_equal(order, pixel_order(maps))
    for pixel_fn, patch_fn in ((insertion_curve, patch_insertion_curve), (deletion_curve, patch_deletion_curve)):
        pix = pixel_fn(region_classifier, images, maps, [1, 1, 0], step=1)
        pat = patch_fn(region_classifier, images, order, grid, [1, 1, 0])
        np.testing.assert_allclose(pat.curves, pix.curves, atol=1e-6)
        np.testing.assert_allclose(pat.auc, pix.auc, atol=1e-7)
        assert pat.total_steps == 64 and pat.queries == 3 * 65


def test_patch_hand_computed_and_partial_order():
    # 1x4x4 image, 2x2 grid: each cell's four pixels carry the cell's weight.
    def model(x):
        cells = torch.nn.functional.avg_pool2d(x, 2).reshape(x.shape[0], -1)
        s = (cells * WEIGHTS).sum(dim=1)
        return torch.stack([1 - s, s], dim=1)

    clf = FrozenClassifier(model, (1, 4, 4), outputs="probs", num_classes=2, device="cpu")
    grid = PatchGrid(4, 4, 2)
    images = np.ones((1, 1, 4, 4), np.float32)
    full = patch_insertion_curve(clf, images, [[0, 1, 2, 3]], grid, [1], substrate="zeros")
    np.testing.assert_allclose(full.curves, [[0.0, 0.4, 0.7, 0.9, 1.0]], atol=1e-6)
    assert full.auc[0] == pytest.approx(2.5 / 4, abs=1e-6)
    partial = patch_insertion_curve(clf, images, [[0, 1, 2]], grid, [1], substrate="zeros")
    np.testing.assert_allclose(partial.curves, [[0.0, 0.4, 0.7, 0.9]], atol=1e-6)
    assert partial.auc[0] == pytest.approx(1.55 / 4, abs=1e-6)  # normalised by all 4 cells
    np.testing.assert_allclose(partial.fractions, [0, 0.25, 0.5, 0.75])
    deletion = patch_deletion_curve(clf, images, [[3, 2]], grid, [1])
    np.testing.assert_allclose(deletion.curves, [[1.0, 0.9, 0.7]], atol=1e-6)
    assert deletion.auc[0] == pytest.approx((1.0 + 0.9 + 0.9 + 0.7) / 2 / 4, abs=1e-6)
    none = patch_deletion_curve(clf, images, np.zeros((1, 0), np.int64), grid, [1])
    assert none.curves.shape == (1, 1) and none.auc[0] == 0.0 and none.queries == 1


def test_cell_order_from_maps_ranks_cell_means():
    grid = PatchGrid(4, 4, 2)
    maps = np.zeros((1, 4, 4))
    maps[0, 2:, 2:] = 1.0  # cell 3 brightest
    maps[0, 0, 2] = 2.0  # cell 1 mean 0.5
    np.testing.assert_array_equal(cell_order_from_maps(maps, grid), [[3, 1, 0, 2]])  # 0 and 2 tie: id order
    np.testing.assert_array_equal(cell_order_from_maps(maps, grid, k=2), [[3, 1]])
    with pytest.raises(ValueError, match="k must be <= 4"):
        cell_order_from_maps(maps, grid, k=5)


# ------------------------------------------------------------------------------- bad inputs
def test_bad_inputs_raise_clear_errors_without_spending_queries(region_classifier, rng):
    images = rng.random((2, 1, 8, 8)).astype(np.float32)
    maps = rng.random((2, 8, 8))
    before = region_classifier.queries
    with pytest.raises(ValueError, match="one map per image"):
        insertion_curve(region_classifier, images, maps[:1])
    with pytest.raises(ValueError, match="spatial size"):
        insertion_curve(region_classifier, images, rng.random((2, 4, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, H, W\)"):
        insertion_curve(region_classifier, images, maps[:, None])
    nan_maps = maps.copy()
    nan_maps[1, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        deletion_curve(region_classifier, images, nan_maps)
    with pytest.raises(ValueError, match="step must be >= 1"):
        deletion_curve(region_classifier, images, maps, step=0)
    with pytest.raises(TypeError, match="step must be an integer"):
        deletion_curve(region_classifier, images, maps, step=1.5)
    with pytest.raises(ValueError, match="max_batch"):
        deletion_curve(region_classifier, images, maps, max_batch=0)
    with pytest.raises(TypeError, match="FrozenClassifier"):
        deletion_curve(lambda x: x, images, maps)
    with pytest.raises(ValueError, match="per-image shape"):
        deletion_curve(region_classifier, rng.random((2, 3, 8, 8)).astype(np.float32), maps)
    with pytest.raises(ValueError, match="unknown substrate"):
        deletion_curve(region_classifier, images, maps, substrate="fog")
    with pytest.raises(ValueError, match="mode"):
        insertion_deletion_loop(region_classifier, images, maps, mode="both")
    with pytest.raises(TypeError, match="generator"):
        deletion_curve(region_classifier, images, maps, generator=0)
    assert region_classifier.queries == before
    with pytest.raises(ValueError, match="targets must be class ids"):
        deletion_curve(region_classifier, images, maps, [0, 2])
    with pytest.raises(ValueError, match="foils must differ"):
        deletion_curve(region_classifier, images, maps, [1, 0], foils=[1, 1])


def test_patch_bad_inputs(region_classifier, rng):
    images = rng.random((2, 1, 8, 8)).astype(np.float32)
    grid = PatchGrid(8, 8, 2)
    with pytest.raises(ValueError, match="distinct"):
        patch_insertion_curve(region_classifier, images, [[0, 1, 1], [0, 1, 2]], grid)
    with pytest.raises(ValueError, match="only 4"):
        patch_insertion_curve(region_classifier, images, np.zeros((2, 5), np.int64), grid)
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        patch_insertion_curve(region_classifier, images, [[0, 4], [0, 1]], grid)
    with pytest.raises(ValueError, match="shape"):
        patch_insertion_curve(region_classifier, images, [[0, 1]], grid)
    with pytest.raises(TypeError, match="integer cell ids"):
        patch_insertion_curve(region_classifier, images, [[0.0, 1.0], [0.0, 1.0]], grid)
    with pytest.raises(ValueError, match="grid covers"):
        patch_insertion_curve(region_classifier, images, [[0], [1]], PatchGrid(4, 4, 2))
    with pytest.raises(TypeError, match="PatchGrid"):
        patch_deletion_curve(region_classifier, images, [[0], [1]], (2, 2))


# ------------------------------------------------------------------------------------- plot
def test_plot_writes_png(region_classifier, rng, tmp_path):
    images = rng.random((3, 1, 8, 8)).astype(np.float32)
    maps = rng.random((3, 8, 8))
    ins = insertion_curve(region_classifier, images, maps, [1, 1, 1], step=8)
    dele = deletion_curve(region_classifier, images, maps, [1, 1, 1], step=8)
    out = plot_insertion_deletion_curves(
        {"random": (ins, dele), "raw": (ins.curves, None), "del only": dele}, tmp_path / "sub" / "curves.png", band="sem"
    )
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(TypeError, match="pair"):
        plot_insertion_deletion_curves({"raw": ins.curves}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="slot"):
        plot_insertion_deletion_curves({"swapped": (dele, ins)}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="band"):
        plot_insertion_deletion_curves({"random": ins}, tmp_path / "x.png", band="iqr")
    assert isinstance(ins, CurveResult) and len(ins) == 3 and ins.mean_auc == pytest.approx(ins.auc.mean())
