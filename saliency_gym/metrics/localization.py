"""Localisation metrics: does a saliency map point at the ground-truth evidence?

All three take ``maps (N, H, W)`` and boolean ``masks (N, H, W)`` (the evidence pixels, e.g. the
shapes data's pixel-exact masks) and return one ``float64`` value per image:

* :func:`pointing_game` (Zhang et al., "Top-down neural attention by excitation backprop", ECCV
  2016): a hit (1.0) if the map's maximum lies within ``tolerance`` pixels of the mask, else 0.0
  (they used 15 pixels on 224x224 images). The mean over images is the pointing accuracy.
* :func:`energy_pointing_game` (Wang et al., "Score-CAM", CVPR-W 2020): the share of the map's
  energy inside the mask, ``sum(L * mask) / sum(L)``, on a non-negative map.
* :func:`top_k_iou`: the intersection over union of the ``k`` most salient pixels with the mask
  (``k`` defaults to the mask's area, so a perfect map scores 1).

**Empty masks.** An image whose mask has no pixel has no evidence to point at; every metric
returns NaN for it (use ``np.nanmean`` to average over the others, or filter first). A map with
no positive energy makes the energy-based game NaN too (0/0), as does ``k = 0``. NaN is never
produced for any other reason, so it cannot hide a bug.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saliency_gym.metrics._checks import as_map_batch, as_mask_batch
from saliency_gym.types import MapBatch
from saliency_gym.validation import check_choice, check_float, check_int

__all__ = ["energy_pointing_game", "pointing_game", "top_k_iou"]

POINTING_TIES = ("all", "any", "first")
ENERGY_NORMALIZATIONS = ("scorecam", "relu", "abs")


def _maps_and_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    m = as_map_batch(maps)
    g = as_mask_batch(masks, n=m.shape[0], shape=(m.shape[1], m.shape[2]))
    return m, g


def pointing_game(maps: MapBatch | torch.Tensor, masks: Any, *, tolerance: float = 0.0, ties: str = "all") -> np.ndarray:
    """Pointing game: 1.0 if the maximum of the map lies within ``tolerance`` pixels of the mask.

    Distances are Euclidean between pixel centres, in pixels; ``tolerance=0`` requires the maximum
    to be inside the mask. This equals Zhang et al.'s rule of dilating the mask by a disk of radius
    ``tolerance`` (TorchRay's implementation) and testing the maximum against it.

    Args:
        maps: ``(N, H, W)`` finite saliency maps.
        masks: ``(N, H, W)`` boolean ground-truth masks.
        tolerance: the allowed distance in pixels, ``>= 0``.
        ties: what to do when the maximum is reached at several pixels (e.g. a constant map, or
            an occlusion map's plateau):

            * ``"all"`` (default): a hit only if *every* maximal pixel is within tolerance. A map
              cannot score by being flat: a constant map hits only if the whole image is within
              tolerance of the mask.
            * ``"any"``: a hit if at least one maximal pixel is within tolerance (lenient).
            * ``"first"``: use the first maximal pixel in raster order (``np.argmax``, as most
              implementations, including TorchRay, do).

    Returns:
        ``float64 (N,)``: 1.0 hit, 0.0 miss, NaN where the mask is empty.
    """
    from scipy.ndimage import distance_transform_edt  # scipy.ndimage takes ~0.5 s to import

    tolerance = check_float("tolerance", tolerance, minimum=0.0)
    check_choice("ties", ties, POINTING_TIES)
    m, g = _maps_and_masks(maps, masks)
    out = np.full(m.shape[0], np.nan)
    for i in range(m.shape[0]):
        if not g[i].any():
            continue
        # Distance from every pixel to the nearest mask pixel (0 inside the mask).
        distance = distance_transform_edt(~g[i])
        near = distance <= tolerance
        if ties == "first":
            hit = near.reshape(-1)[int(np.argmax(m[i]))]
        else:
            at_max = m[i] == m[i].max()
            hit = near[at_max].all() if ties == "all" else near[at_max].any()
        out[i] = float(hit)
    return out


def energy_pointing_game(maps: MapBatch | torch.Tensor, masks: Any, *, normalize: str = "scorecam") -> np.ndarray:
    """Energy-based pointing game (Score-CAM, Sec. 5.2): the proportion of energy in the mask.

    ``proportion = sum(L[mask]) / (sum(L[mask]) + sum(L[~mask]))`` on a non-negative map ``L``.
    Score-CAM evaluates its own maps, which are ReLU-ed (Eq. 2) and min-max normalised to [0, 1]
    in the authors' code; ``normalize`` makes any map non-negative the same way:

    * ``"scorecam"`` (default): ``L = ReLU(map)``, then ``(L - min L) / (max L - min L)``. The
      ratio is scale-free, so this is ReLU then subtracting the minimum (which is 0 whenever some
      pixel is <= 0); a constant map has no energy (NaN).
    * ``"relu"``: ``L = ReLU(map)``, negative evidence ignored.
    * ``"abs"``: ``L = |map|``, both signs count as energy (for signed attributions).

    Returns:
        ``float64 (N,)`` in [0, 1]; NaN where the mask is empty or ``L`` sums to 0.
    """
    check_choice("normalize", normalize, ENERGY_NORMALIZATIONS)
    m, g = _maps_and_masks(maps, masks)
    n = m.shape[0]
    energy = np.abs(m) if normalize == "abs" else np.maximum(m, 0.0)
    if normalize == "scorecam" and n:
        energy = energy - energy.reshape(n, -1).min(axis=1)[:, None, None]
    flat, inside = energy.reshape(n, -1), g.reshape(n, -1)
    total = flat.sum(axis=1)
    within = (flat * inside).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, within / np.where(total > 0, total, 1.0), np.nan)
    out[~inside.any(axis=1)] = np.nan
    return out


def _top_k_region(maps: Any, masks: Any, k: int | Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(top, inside, ks, area)``: the boolean ``(N, H*W)`` top-k regions (ties by raster index),
    the flattened masks, the ``k`` per image and the mask areas."""
    m, g = _maps_and_masks(maps, masks)
    n, h, w = m.shape
    hw = h * w
    area = g.reshape(n, -1).sum(axis=1)
    if k is None:
        ks = area.astype(np.int64)
    elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        ks = np.full(n, check_int("k", k, minimum=1, maximum=hw), dtype=np.int64)
    else:
        ks = np.asarray(k.detach().cpu().numpy() if hasattr(k, "detach") else k)
        if ks.ndim != 1 or ks.shape[0] != n or (ks.size and not np.issubdtype(ks.dtype, np.integer)):
            raise ValueError(f"k must be None, an int, or {n} integers (one per image), got {ks.shape} {ks.dtype}")
        if ks.size and (ks.min() < 1 or ks.max() > hw):
            raise ValueError(f"k must lie in [1, H*W = {hw}], got range [{ks.min()}, {ks.max()}]")
        ks = ks.astype(np.int64)
    order = np.argsort(-m.reshape(n, -1), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(hw), order.shape), axis=1)
    return ranks < ks[:, None], g.reshape(n, -1), ks, area


def top_k_iou(maps: MapBatch | torch.Tensor, masks: Any, k: int | Any = None) -> np.ndarray:
    """IoU of the ``k`` most salient pixels with the mask.

    The top-k region is the first ``k`` pixels of the map sorted by decreasing saliency, ties
    broken by raster index (the same order :func:`insertion_curve` uses), so it has exactly ``k``
    pixels even on flat maps.

    Args:
        maps: ``(N, H, W)`` finite saliency maps.
        masks: ``(N, H, W)`` boolean ground-truth masks.
        k: pixels in the top region: ``None`` (default) uses each mask's own area (so 1.0 means
            the map ranks exactly the evidence first); an int for all images, or one per image.
            ``1 <= k <= H * W``.

    Returns:
        ``float64 (N,)`` in [0, 1]; NaN where the mask is empty.
    """
    top, inside, _, area = _top_k_region(maps, masks, k)
    intersection = (top & inside).sum(axis=1)
    union = (top | inside).sum(axis=1)
    out = intersection / np.maximum(union, 1)
    return np.where(area > 0, out, np.nan)


def top_k_intersection_with_mask(maps: MapBatch | torch.Tensor, masks: Any, k: int | Any = None) -> np.ndarray:
    """Share of the ``k`` most salient pixels that lie in the mask: ``|top-k ∩ mask| / k``.

    The localisation metric Quantus calls ``TopKIntersection`` (Theiner et al. 2021), on the same
    top-k region as :func:`top_k_iou` (ties broken by raster index, exactly ``k`` pixels). Not to
    be confused with :func:`saliency_gym.metrics.similarity.topk_intersection`, which compares the
    top-k sets of two maps.

    Args:
        maps: ``(N, H, W)`` finite saliency maps.
        masks: ``(N, H, W)`` boolean ground-truth masks.
        k: pixels in the top region: ``None`` uses each mask's own area; an int for all images,
            or one per image; ``1 <= k <= H * W``.

    Returns:
        ``float64 (N,)`` in [0, 1]; NaN where the mask is empty.
    """
    top, inside, ks, area = _top_k_region(maps, masks, k)
    out = (top & inside).sum(axis=1) / np.maximum(ks, 1)
    return np.where(area > 0, out, np.nan)
