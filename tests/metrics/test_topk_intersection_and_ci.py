"""Hand-computed cases: Quantus-style top-k intersection with a mask, and the bench's t interval."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.metrics import top_k_intersection_with_mask, top_k_iou


def test_top_k_intersection_with_mask_hand_computed():
    maps = np.array([[[4.0, 3.0], [2.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    masks = np.array([[[True, False], [False, True]], [[False, True], [False, False]]])
    # Image 0: top-2 = pixels 0 (4.0) and 1 (3.0); mask = {0, 3}: 1 of 2 inside.
    # Image 1: flat map, ties by raster index: top-2 = pixels 0, 1; mask = {1}: 1 of 2 inside.
    assert top_k_intersection_with_mask(maps, masks, k=2) == pytest.approx([0.5, 0.5])
    # k = the mask's area (default): image 0 -> top-2, 1/2; image 1 -> top-1 = pixel 0, 0/1.
    assert top_k_intersection_with_mask(maps, masks) == pytest.approx([0.5, 0.0])
    # IoU on the same regions: image 0 -> 1 / 3.
    assert top_k_iou(maps, masks, k=2)[0] == pytest.approx(1 / 3)


def test_top_k_intersection_with_empty_mask_is_nan():
    out = top_k_intersection_with_mask(np.ones((1, 2, 2)), np.zeros((1, 2, 2), bool), k=1)
    assert np.isnan(out[0])


def test_bench_confidence_interval_is_students_t():
    mean, half = mean_ci(np.array([1.0, 2.0, 3.0]))
    # sd = 1, sem = 1/sqrt(3), t(0.975, 2) = 4.302653
    assert mean == 2.0 and half == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert mean_ci(np.array([5.0])) == (5.0, 0.0)
    assert np.isnan(mean_ci(np.array([np.nan]))[0])
