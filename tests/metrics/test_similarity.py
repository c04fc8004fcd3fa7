"""Attribution similarity metrics: hand-computed cases, scipy agreement, properties, validation."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from saliency_gym.metrics.similarity import (
    SIMILARITY_NAMES,
    dissimilarity,
    diversity_topk,
    kendall,
    lens_precision_at_k,
    lens_recall_at_k,
    neighbourhood_mask,
    similarity,
    spearman,
    topk_div_intersection,
    topk_intersection,
    topk_mask,
)


def one_hot_map(shape: tuple[int, int], *pixels: tuple[int, int]) -> np.ndarray:
    """A (1, H, W) map whose listed pixels hold decreasing large values, the rest zero."""
    m = np.zeros((1, *shape))
    for i, (r, c) in enumerate(pixels):
        m[0, r, c] = 10.0 - i
    return m


small_maps = st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda shape: st.tuples(
        arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)),
        arrays(np.float64, shape, elements=st.integers(-3, 3).map(float)),
    )
)


# --------------------------------------------------------------------------- top-k
def test_topk_intersection_hand_computed() -> None:
    a = np.arange(9.0).reshape(1, 3, 3)  # top-3: raster 8, 7, 6
    b = np.zeros((1, 3, 3))
    b[0, 2, 2], b[0, 1, 2], b[0, 0, 0] = 3, 2, 1  # top-3: raster 8, 5, 0
    assert topk_intersection(a, b, 3) == pytest.approx([1 / 3])
    assert topk_intersection(a, a, 3) == pytest.approx([1.0])
    assert topk_intersection(a, -a, 3) == pytest.approx([0.0])


def test_ties_are_broken_by_raster_index() -> None:
    flat = np.zeros((1, 2, 2))  # all equal: top-2 is raster 0 and 1
    np.testing.assert_array_equal(topk_mask(flat, 2)[0], [[True, True], [False, False]])
    bottom = np.array([[[0.0, 0.0], [1.0, 1.0]]])
    assert topk_intersection(flat, bottom, 2) == pytest.approx([0.0])
    tied_three = np.array([[[1.0, 1.0], [1.0, 0.0]]])  # three tied maxima: the first two win
    assert topk_intersection(flat, tied_three, 2) == pytest.approx([1.0])
    np.testing.assert_array_equal(topk_mask(tied_three, 2)[0], [[True, True], [False, False]])


def test_k_larger_than_the_image_is_clipped() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 1, 3, 3))
    assert topk_mask(a, 100).sum() == 9
    assert topk_intersection(a, b, 100) == pytest.approx([1.0])
    assert lens_recall_at_k(a, b, 100, w=0) == pytest.approx([1.0])
    assert diversity_topk(a, 100, w=0).sum() == 9


def test_torch_and_numpy_inputs_agree() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 4, 5, 5)).astype(np.float32)
    for fn in (lambda x, y: topk_intersection(x, y, 5), lambda x, y: lens_recall_at_k(x, y, 5, 1), spearman, kendall):
        np.testing.assert_allclose(fn(torch.from_numpy(a), torch.from_numpy(b)), fn(a, b))
    assert topk_intersection(torch.from_numpy(a), b, 3).dtype == np.float64


def test_empty_batch() -> None:
    empty = np.zeros((0, 4, 4))
    for name in SIMILARITY_NAMES:
        assert similarity(name, empty, empty, k=3).shape == (0,)


# --------------------------------------------------------------------------- LENS
def test_lens_recall_and_precision_hand_computed() -> None:
    a = one_hot_map((4, 4), (0, 0), (0, 1))
    b = one_hot_map((4, 4), (1, 1), (3, 3))
    # recall: both original top pixels have b's (1, 1) within Chebyshev distance 1.
    assert lens_recall_at_k(a, b, k=2, w=1) == pytest.approx([1.0])
    # precision: b's (1, 1) is covered, (3, 3) is 3 away from (0, 1) and (0, 0).
    assert lens_precision_at_k(a, b, k=2, w=1) == pytest.approx([0.5])
    assert lens_precision_at_k(a, b, k=2, w=2) == pytest.approx([0.5])
    assert lens_precision_at_k(a, b, k=2, w=3) == pytest.approx([1.0])
    assert topk_intersection(a, b, 2) == pytest.approx([0.0])
    np.testing.assert_allclose(lens_precision_at_k(a, b, 2, 1), lens_recall_at_k(b, a, 2, 1))


def test_lens_neighbourhood_does_not_wrap_at_row_ends() -> None:
    # (0, W-1) and (1, 0) are consecutive in raster order but 3 columns apart on the grid.
    a = one_hot_map((3, 4), (0, 3))
    b = one_hot_map((3, 4), (1, 0))
    assert lens_recall_at_k(a, b, k=1, w=1) == pytest.approx([0.0])
    assert lens_precision_at_k(a, b, k=1, w=1) == pytest.approx([0.0])
    diagonal = one_hot_map((3, 4), (1, 2))  # a genuine neighbour of (0, 3)
    assert lens_recall_at_k(a, diagonal, k=1, w=1) == pytest.approx([1.0])
    # Same at the left border: (1, 0) and (0, 3) in the other direction, and columns too.
    column = one_hot_map((3, 4), (2, 3))
    top_left = one_hot_map((3, 4), (0, 0))
    assert lens_recall_at_k(column, top_left, k=1, w=1) == pytest.approx([0.0])


def test_neighbourhood_mask_is_the_clipped_window() -> None:
    mask = np.zeros((1, 4, 5), dtype=bool)
    mask[0, 0, 4] = True
    expected = np.zeros((4, 5), dtype=bool)
    expected[0:2, 3:5] = True
    np.testing.assert_array_equal(neighbourhood_mask(mask, 1)[0], expected)
    expected2 = np.zeros((4, 5), dtype=bool)
    expected2[0:3, 2:5] = True
    np.testing.assert_array_equal(neighbourhood_mask(mask, 2)[0], expected2)
    np.testing.assert_array_equal(neighbourhood_mask(mask, 0), mask)
    assert neighbourhood_mask(mask, 50).all()


@settings(max_examples=60, deadline=None)
@given(small_maps, st.integers(1, 40))
def test_lens_with_w0_is_topk_intersection(pair: tuple[np.ndarray, np.ndarray], k: int) -> None:
    a, b = pair
    expected = topk_intersection(a, b, k)
    np.testing.assert_allclose(lens_recall_at_k(a, b, k, w=0), expected)
    np.testing.assert_allclose(lens_precision_at_k(a, b, k, w=0), expected)
    np.testing.assert_allclose(topk_div_intersection(a, b, k, w=0), expected)


@settings(max_examples=60, deadline=None)
@given(small_maps, st.integers(1, 12), st.integers(0, 3))
def test_lens_matches_brute_force(pair: tuple[np.ndarray, np.ndarray], k: int, w: int) -> None:
    a, b = pair
    ta, tb = topk_mask(a, k), topk_mask(b, k)
    for i in range(a.shape[0]):
        pa, pb = np.argwhere(ta[i]), np.argwhere(tb[i])
        cheb = np.abs(pa[:, None, :] - pb[None, :, :]).max(axis=2)  # (|pa|, |pb|)
        assert lens_recall_at_k(a[i : i + 1], b[i : i + 1], k, w)[0] == pytest.approx((cheb <= w).any(axis=1).mean())
        assert lens_precision_at_k(a[i : i + 1], b[i : i + 1], k, w)[0] == pytest.approx((cheb <= w).any(axis=0).mean())
    # Monotone in w, and never below the plain intersection.
    assert np.all(lens_recall_at_k(a, b, k, w + 1) >= lens_recall_at_k(a, b, k, w))
    assert np.all(lens_recall_at_k(a, b, k, w) >= topk_intersection(a, b, k) - 1e-12)


# --------------------------------------------------------------------------- top-k-div
def test_diversity_topk_hand_computed() -> None:
    a = np.arange(9.0).reshape(1, 3, 3)
    # 8 at (2,2) suppresses rows 1-2 x cols 1-2; then 6 at (2,0); then 2 at (0,2); then 0 at (0,0).
    picks = diversity_topk(a, k=3, w=1)[0]
    np.testing.assert_array_equal(np.flatnonzero(picks), [2, 6, 8])
    # Only four pixels survive suppression: asking for five yields four.
    np.testing.assert_array_equal(np.flatnonzero(diversity_topk(a, k=5, w=1)[0]), [0, 2, 6, 8])
    # A radius larger than the image leaves a single pick.
    assert diversity_topk(a, k=5, w=3).sum() == 1


def test_diversity_topk_does_not_wrap_at_row_ends() -> None:
    a = np.array([[[0.0, 0.0, 9.0], [8.0, 0.0, 0.0]]])  # (0, 2) and (1, 0) are 2 columns apart
    np.testing.assert_array_equal(np.flatnonzero(diversity_topk(a, k=2, w=1)[0]), [2, 3])


def test_topk_div_intersection_hand_computed() -> None:
    a = np.arange(16.0).reshape(1, 4, 4)  # w=1, k=2: 15 at (3,3) then 13 at (3,1)
    b = a.copy()
    b[0, 3, 2] = 20.0  # b's top is now (3,2); it suppresses rows 2-3 x cols 1-3
    b[0, 2, 0] = b[0, 3, 0] = -1.0  # so b's next pick is (1,3) = 7
    np.testing.assert_array_equal(np.flatnonzero(diversity_topk(a, 2, 1)[0]), [13, 15])
    np.testing.assert_array_equal(np.flatnonzero(diversity_topk(b, 2, 1)[0]), [7, 14])
    assert topk_div_intersection(a, b, 2, 1) == pytest.approx([0.0])
    # The plain top-2 sets are both {(3,2), (3,3)}: top-k sees no change at all.
    assert topk_intersection(a, b, 2) == pytest.approx([1.0])
    # LENS on the diverse sets: a's (3,1) and (3,3) both have b's (3,2) next to them.
    assert lens_recall_at_k(a, b, 2, 1, diverse=True) == pytest.approx([1.0])
    # b's (1,3) is 2 rows away from a's picks.
    assert lens_precision_at_k(a, b, 2, 1, diverse=True) == pytest.approx([0.5])


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 4).map(float)),
    st.integers(1, 30),
    st.integers(0, 3),
)
def test_diversity_topk_properties(maps: np.ndarray, k: int, w: int) -> None:
    picks = diversity_topk(maps, k, w)
    for i in range(maps.shape[0]):
        coords = np.argwhere(picks[i])
        assert 1 <= len(coords) <= k
        # Any two picks are at least w + 1 apart in Chebyshev distance.
        for p, q in itertools.combinations(coords, 2):
            assert np.abs(p - q).max() >= w + 1
        # Stopped early only when every pixel is suppressed by a pick.
        if len(coords) < k:
            assert neighbourhood_mask(picks[i : i + 1], w).all()
        # Greedy: the sequential reference algorithm picks the same pixels.
        order = np.argsort(-maps[i].ravel(), kind="stable")
        width = maps.shape[2]
        chosen: list[int] = []
        for idx in order:
            r, c = divmod(int(idx), width)
            if all(max(abs(r - pr), abs(c - pc)) > w for pr, pc in (divmod(j, width) for j in chosen)):
                chosen.append(int(idx))
            if len(chosen) == k:
                break
        np.testing.assert_array_equal(np.flatnonzero(picks[i]), sorted(chosen))
    if w == 0:
        np.testing.assert_array_equal(picks, topk_mask(maps, k))


def test_identical_maps_score_one_even_with_few_diverse_picks() -> None:
    a = np.random.default_rng(2).normal(size=(3, 5, 5))
    for fn in (topk_div_intersection, lens_recall_at_k, lens_precision_at_k):
        np.testing.assert_allclose(fn(a, a, 20, 2) if fn is topk_div_intersection else fn(a, a, 20, 2, diverse=True), 1.0)


# --------------------------------------------------------------------------- rank correlations
def test_rank_correlations_hand_computed() -> None:
    a = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    b = np.array([[[1.0, 3.0, 2.0, 4.0]]])
    assert spearman(a, b) == pytest.approx([0.8])  # 1 - 6 * 2 / (4 * 15)
    assert kendall(a, b) == pytest.approx([4 / 6])  # 5 concordant, 1 discordant
    assert spearman(a, a) == pytest.approx([1.0]) and spearman(a, -a) == pytest.approx([-1.0])
    assert kendall(a, a) == pytest.approx([1.0]) and kendall(a, -a) == pytest.approx([-1.0])
    # Ties: b ties the first two values; tau-b = (n_c - n_d) / sqrt((6 - 0)(6 - 1)) = 5 / sqrt(30).
    tied = np.array([[[1.0, 1.0, 3.0, 4.0]]])
    assert kendall(a, tied) == pytest.approx([5 / np.sqrt(30)])


def test_constant_maps_give_nan_like_scipy() -> None:
    rng = np.random.default_rng(3)
    const = np.full((2, 3, 3), 0.5)
    varied = rng.normal(size=(2, 3, 3))
    assert np.isnan(spearman(const, varied)).all() and np.isnan(spearman(varied, const)).all()
    assert np.isnan(kendall(const, varied)).all() and np.isnan(kendall(const, const)).all()
    mixed = np.stack([const[0], varied[1]])
    result = spearman(mixed, varied)
    assert np.isnan(result[0]) and result[1] == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(5, 32, 32), (4, 7, 9), (6, 1, 1), (3, 1, 2), (3, 5, 5)])
def test_rank_correlations_match_scipy_with_ties(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 6, size=shape).astype(np.float64)
    b = a + rng.integers(-2, 3, size=shape)
    b[0] = rng.normal(size=shape[1:])  # one pair without ties in b
    got_s, got_k = spearman(a, b), kendall(a, b)
    for i in range(shape[0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on constant input before returning NaN
            ref_s = scipy.stats.spearmanr(a[i].ravel(), b[i].ravel())[0] if a[i].size > 1 else np.nan
            ref_k = scipy.stats.kendalltau(a[i].ravel(), b[i].ravel())[0] if a[i].size > 1 else np.nan
        np.testing.assert_allclose(got_s[i], ref_s, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got_k[i], ref_k, atol=1e-12, equal_nan=True)


@settings(max_examples=80, deadline=None)
@given(small_maps)
def test_kendall_matches_brute_force_tau_b(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    got = kendall(a, b)
    for i in range(a.shape[0]):
        x, y = a[i].ravel(), b[i].ravel()
        sx = np.sign(x[:, None] - x[None, :])
        sy = np.sign(y[:, None] - y[None, :])
        upper = np.triu(np.ones((len(x), len(x)), dtype=bool), 1)
        s = (sx * sy)[upper].sum()
        pairs_x, pairs_y = (sx[upper] != 0).sum(), (sy[upper] != 0).sum()
        expected = s / np.sqrt(pairs_x * pairs_y) if pairs_x and pairs_y else np.nan
        np.testing.assert_allclose(got[i], expected, atol=1e-12, equal_nan=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = scipy.stats.spearmanr(x, y)[0] if len(x) > 1 else np.nan
        np.testing.assert_allclose(spearman(a[i : i + 1], b[i : i + 1])[0], ref, atol=1e-12, equal_nan=True)


# --------------------------------------------------------------------------- by name
def test_similarity_and_dissimilarity_by_name() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 6, 6))
    b = a + 0.5 * rng.normal(size=a.shape)
    expected = {
        "topk": topk_intersection(a, b, 5),
        "lens_recall": lens_recall_at_k(a, b, 5, 2),
        "lens_precision": lens_precision_at_k(a, b, 5, 2),
        "topk_div": topk_div_intersection(a, b, 5, 2),
        "lens_recall_div": lens_recall_at_k(a, b, 5, 2, diverse=True),
        "lens_precision_div": lens_precision_at_k(a, b, 5, 2, diverse=True),
        "spearman": spearman(a, b),
        "kendall": kendall(a, b),
    }
    assert set(expected) == set(SIMILARITY_NAMES)
    for name, value in expected.items():
        np.testing.assert_allclose(similarity(name, a, b, k=5, w=2), value)
        np.testing.assert_allclose(dissimilarity(name, a, b, k=5, w=2), 1.0 - value)
    np.testing.assert_allclose(dissimilarity("topk", a, a, k=5), 0.0)
    np.testing.assert_allclose(dissimilarity("spearman", a, -a), 2.0)


def test_dissimilarity_nan_value() -> None:
    const = np.zeros((1, 3, 3))
    varied = np.arange(9.0).reshape(1, 3, 3)
    assert np.isnan(dissimilarity("kendall", const, varied)).all()
    assert dissimilarity("kendall", const, varied, nan_value=1.0) == pytest.approx([1.0])
    with pytest.raises(ValueError, match="nan_value must be a finite number"):
        dissimilarity("kendall", const, varied, nan_value=float("nan"))


# --------------------------------------------------------------------------- validation
def test_bad_inputs_give_clear_errors() -> None:
    a = np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match=r"same shape .*\(2, 4, 4\) and \(2, 4, 5\)"):
        topk_intersection(a, np.zeros((2, 4, 5)), 3)
    with pytest.raises(ValueError, match=r"shape \(N, H, W\), got shape \(4, 4\); for a single map use a\[None\]"):
        spearman(np.zeros((4, 4)), np.zeros((4, 4)))
    nan = a.copy()
    nan[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"b contain NaN or infinite values \(map index 1\)"):
        kendall(a, nan)
    inf = a.copy()
    inf[0, 2, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        lens_recall_at_k(inf, a, 3)
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        topk_intersection(a, a, 0)
    with pytest.raises(TypeError, match="k must be an integer"):
        topk_intersection(a, a, 2.5)
    with pytest.raises(ValueError, match=r"w \(neighbourhood radius in pixels\) must be >= 0, got -1"):
        lens_precision_at_k(a, a, 3, w=-1)
    with pytest.raises(ValueError, match="must be >= 0"):
        diversity_topk(a, 3, w=-2)
    with pytest.raises(TypeError, match="real numbers"):
        spearman(a.astype(bool), a)
    with pytest.raises(TypeError, match="numpy array or torch tensor, got list"):
        spearman([[[1.0]]], a)
    with pytest.raises(ValueError, match=r"name='ssim' is not supported; choose one of \['topk', 'lens_recall'"):
        dissimilarity("ssim", a, a, k=3)
    with pytest.raises(ValueError, match="'lens_recall' needs k"):
        similarity("lens_recall", a, a)
    with pytest.raises(TypeError, match="mask must be boolean"):
        neighbourhood_mask(a, 1)
