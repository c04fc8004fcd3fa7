"""Pointing game, energy-based pointing game and top-k IoU on tiny hand-checked maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_gym.metrics.localization import energy_pointing_game, pointing_game, top_k_iou


def _mask(shape, *pixels):
    m = np.zeros(shape, dtype=bool)
    for p in pixels:
        m[p] = True
    return m


# ------------------------------------------------------------------------------ pointing game
def test_pointing_game_tolerance_in_pixels():
    maps = np.zeros((1, 5, 5))
    maps[0, 0, 0] = 1.0
    masks = _mask((1, 5, 5), (0, 0, 2))  # two pixels to the right of the maximum
    assert pointing_game(maps, masks)[0] == 0.0
    assert pointing_game(maps, masks, tolerance=1.9)[0] == 0.0
    assert pointing_game(maps, masks, tolerance=2.0)[0] == 1.0
    diagonal = _mask((1, 5, 5), (0, 3, 4))  # distance 5 (3-4-5 triangle)
    assert pointing_game(maps, diagonal, tolerance=4.99)[0] == 0.0
    assert pointing_game(maps, diagonal, tolerance=5)[0] == 1.0
    inside = _mask((1, 5, 5), (0, 0, 0))
    assert pointing_game(maps, inside)[0] == 1.0


def test_pointing_game_ties():
    flat = np.ones((1, 3, 3))
    corner = _mask((1, 3, 3), (0, 0, 0))
    centre = _mask((1, 3, 3), (0, 1, 1))
    assert pointing_game(flat, corner, ties="all")[0] == 0.0  # a flat map does not point
    assert pointing_game(flat, corner, ties="any")[0] == 1.0
    assert pointing_game(flat, corner, ties="first")[0] == 1.0  # first max = top-left
    assert pointing_game(flat, centre, ties="first")[0] == 0.0
    # every max within tolerance: all counts a hit
    assert pointing_game(flat, centre, tolerance=1.5, ties="all")[0] == 1.0
    two = np.zeros((1, 3, 3))
    two[0, 0, 0] = two[0, 2, 2] = 1.0
    assert pointing_game(two, corner, ties="all")[0] == 0.0
    assert pointing_game(two, corner, ties="any")[0] == 1.0


def test_pointing_game_batch_empty_mask_is_nan_and_torch_inputs():
    maps = torch.zeros(3, 4, 4)
    maps[:, 1, 1] = 1.0
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, 1, 1] = True
    masks[1, 3, 3] = True
    out = pointing_game(maps, masks)
    assert out[0] == 1.0 and out[1] == 0.0 and np.isnan(out[2])
    assert out.dtype == np.float64 and out.shape == (3,)


# ---------------------------------------------------------------------- energy pointing game
def test_energy_pointing_game_hand_values():
    maps = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    top_row = _mask((1, 2, 2), (0, 0, 0), (0, 0, 1))
    assert energy_pointing_game(maps, top_row, normalize="relu")[0] == pytest.approx(3 / 10)
    # Score-CAM: ReLU then min-max -> [[0, 1], [2, 3]] / 3
    assert energy_pointing_game(maps, top_row)[0] == pytest.approx(1 / 6)
    signed = np.array([[[-2.0, 1.0], [1.0, 0.0]]])
    assert energy_pointing_game(signed, top_row, normalize="relu")[0] == pytest.approx(1 / 2)
    assert energy_pointing_game(signed, top_row, normalize="scorecam")[0] == pytest.approx(1 / 2)  # min of ReLU is 0
    assert energy_pointing_game(signed, top_row, normalize="abs")[0] == pytest.approx(3 / 4)


def test_energy_pointing_game_undefined_cases_are_nan():
    masks = _mask((3, 2, 2), (0, 0, 0), (1, 0, 0))
    maps = np.stack([np.full((2, 2), 5.0), -np.ones((2, 2)), np.arange(4.0).reshape(2, 2)])
    out = energy_pointing_game(maps, masks)
    assert np.isnan(out[0])  # constant map: no energy after min-max
    assert np.isnan(out[1])  # all negative: no energy after ReLU
    assert np.isnan(out[2])  # empty mask
    assert energy_pointing_game(maps[:1], masks[:1], normalize="relu")[0] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="normalize"):
        energy_pointing_game(maps, masks, normalize="softmax")


# ----------------------------------------------------------------------------------- top-k IoU
def test_top_k_iou_hand_values():
    maps = np.array([[[4.0, 3.0], [2.0, 1.0]]])
    left = _mask((1, 2, 2), (0, 0, 0), (0, 1, 0))
    assert top_k_iou(maps, left)[0] == pytest.approx(1 / 3)  # k = 2: {0, 1} vs {0, 2}
    assert top_k_iou(maps, left, k=1)[0] == pytest.approx(1 / 2)
    assert top_k_iou(maps, left, k=4)[0] == pytest.approx(2 / 4)
    assert top_k_iou(-maps, left, k=2)[0] == pytest.approx(1 / 3)  # {3, 2} vs {0, 2}
    perfect = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    assert top_k_iou(perfect, left)[0] == 1.0


def test_top_k_iou_ties_per_image_k_and_empty_masks():
    flat = np.zeros((2, 2, 2))
    masks = _mask((2, 2, 2), (0, 0, 0), (0, 0, 1), (1, 1, 1))
    out = top_k_iou(flat, masks)  # ties in raster order: top-2 = top row, top-1 = pixel 0
    assert out[0] == 1.0 and out[1] == 0.0
    per_image = top_k_iou(flat, masks, k=np.array([1, 4]))
    assert per_image[0] == pytest.approx(1 / 2) and per_image[1] == pytest.approx(1 / 4)
    empty = top_k_iou(flat, np.zeros((2, 2, 2), bool), k=2)
    assert np.isnan(empty).all()


def test_top_k_iou_rejects_bad_k_and_inputs():
    maps, masks = np.zeros((1, 2, 2)), _mask((1, 2, 2), (0, 0, 0))
    with pytest.raises(ValueError, match="k must be <= 4"):
        top_k_iou(maps, masks, k=5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_iou(maps, masks, k=0)
    with pytest.raises(ValueError, match="one per image"):
        top_k_iou(maps, masks, k=np.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[1, H\*W = 4\]"):
        top_k_iou(maps, masks, k=np.array([0]))


def test_shared_validation():
    maps = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match="one mask per map"):
        pointing_game(maps, np.zeros((1, 3, 3), bool))
    with pytest.raises(ValueError, match="size"):
        energy_pointing_game(maps, np.zeros((2, 4, 4), bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        top_k_iou(maps, np.full((2, 3, 3), 0.5))
    bad = maps.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        pointing_game(bad, np.ones((2, 3, 3), bool))
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        pointing_game(maps, np.ones((2, 3, 3), bool), tolerance=-1)
    with pytest.raises(ValueError, match="ties"):
        pointing_game(maps, np.ones((2, 3, 3), bool), ties="random")
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        pointing_game([[[0.0]]], np.ones((1, 1, 1), bool))
    # 0/1 integer masks are accepted
    assert pointing_game(np.eye(3)[None], np.eye(3, dtype=int)[None])[0] == 1.0
