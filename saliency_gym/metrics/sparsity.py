"""Sparsity of saliency maps: the Gini index.

Chalasani et al. ("Concise explanations of neural networks using adversarial training", ICML 2020)
measure how concentrated an attribution is with the Gini index as Hurley & Rickard ("Comparing
measures of sparsity", IEEE Trans. Inf. Theory 2009) define it. For the absolute values of a map's
``N = H * W`` entries sorted ascending, ``x_(1) <= ... <= x_(N)``::

    G = 1 - 2 * sum_k (x_(k) / ||x||_1) * ((N - k + 1/2) / N),   k = 1..N

``G = 0`` for a constant map (evidence spread everywhere) and ``G = 1 - 1/N`` for a map with a
single non-zero pixel (the maximum). The index is scale-invariant and ignores the sign of the
attribution.

**All-zero maps.** The formula is 0/0 there. We return 0.0: an all-zero map is a constant map and
singles out nothing, so it is as un-sparse as any constant map (Quantus' ``Sparseness`` reaches
the same value by adding a tiny epsilon).
"""

from __future__ import annotations

import numpy as np
import torch

from saliency_gym.metrics._checks import as_map_batch
from saliency_gym.types import MapBatch

__all__ = ["gini_index"]


def gini_index(maps: MapBatch | torch.Tensor) -> np.ndarray:
    """Gini index of each map's absolute values (Hurley & Rickard 2009): ``float64 (N,)`` in [0, 1).

    Args:
        maps: ``(N, H, W)`` finite saliency maps (NumPy or torch).

    Returns:
        One index per map; higher is sparser. All-zero maps give 0.0 (see the module docstring);
        an empty batch ``(0, H, W)`` gives an empty array.
    """
    m = as_map_batch(maps)
    n = m.shape[0]
    if n == 0:  # an empty batch has no indices (as the other per-map metrics)
        return np.zeros(0, dtype=np.float64)
    x = np.sort(np.abs(m.reshape(n, -1)), axis=1)
    size = x.shape[1]
    norm = x.sum(axis=1)
    k = np.arange(1, size + 1, dtype=np.float64)
    weights = (size - k + 0.5) / size
    safe = np.where(norm > 0, norm, 1.0)
    gini = 1.0 - 2.0 * ((x / safe[:, None]) * weights).sum(axis=1)
    return np.where(norm > 0, gini, 0.0)
