"""Gini index (Hurley & Rickard 2009) on hand-checked maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_gym.metrics.sparsity import gini_index


def test_gini_hand_value():
    # |x| sorted = [0, 0, 1, 3], ||x|| = 4, N = 4:
    # sum = 1/4 * (4 - 3 + .5)/4 + 3/4 * (4 - 4 + .5)/4 = .09375 + .09375 -> G = 1 - .375
    maps = np.array([[[0.0, 3.0], [1.0, 0.0]]])
    assert gini_index(maps)[0] == pytest.approx(0.625)


def test_gini_extremes_sign_and_scale():
    n = 16
    constant = np.full((1, 4, 4), 2.5)
    one_hot = np.zeros((1, 4, 4))
    one_hot[0, 2, 1] = 7.0
    assert gini_index(constant)[0] == pytest.approx(0.0, abs=1e-12)
    assert gini_index(one_hot)[0] == pytest.approx(1 - 1 / n)
    x = np.random.default_rng(0).normal(size=(3, 4, 4))
    g = gini_index(x)
    np.testing.assert_allclose(gini_index(-x), g)  # absolute values
    np.testing.assert_allclose(gini_index(10 * x), g)  # scale-invariant
    np.testing.assert_allclose(gini_index(torch.from_numpy(x).float()), g, atol=1e-6)
    assert ((g > 0) & (g < 1)).all()


def test_gini_all_zero_map_is_zero_and_batch_is_independent():
    maps = np.zeros((2, 3, 3))
    maps[1, 0, 0] = 1.0
    out = gini_index(maps)
    assert out[0] == 0.0
    assert out[1] == pytest.approx(1 - 1 / 9)


def test_gini_rejects_bad_maps():
    with pytest.raises(ValueError, match="NaN"):
        gini_index(np.array([[[np.nan, 1.0]]]))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        gini_index(np.zeros((3, 3)))
    with pytest.raises(TypeError, match="real numbers"):
        gini_index(np.zeros((1, 2, 2), dtype=complex))
