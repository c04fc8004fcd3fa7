"""Insertion and deletion curves at the environments' patch level.

The ``SaliencyReveal`` / ``SaliencyMask`` environments reveal (or mask) the cells of a
:class:`PatchGrid` one at a time. :func:`patch_insertion_curve` and :func:`patch_deletion_curve`
score a given cell order (``0, 1, ..., K`` cells changed) with the batched engine of
:mod:`saliency_gym.metrics.curves` and normalise the area by the grid's total number of cells.

How this AUC relates to an episode's return depends on the environment's ``reward_mode``:

* ``reward_mode="auc_trapezoid"``: each reward is one trapezoid slice, so the return of an
  insertion (reveal) episode equals the AUC reported here exactly, for any budget (a deletion
  (mask) episode collects ``k / num_cells - AUC`` after ``k`` cells, ``1 - AUC`` after all of them).
* ``reward_mode="auc"`` (the default): each reward is the score gained weighted by the share of the
  curve it still lifts; over the full budget the return equals the AUC only up to an endpoint term
  fixed by the image and the substrate (the same for every cell order), so it ranks orders as the
  AUC does but is not equal to it.

:func:`cell_order_from_maps` turns pixel maps into cell orders (:meth:`PatchGrid.cell_order`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.grid import PatchGrid
from saliency_gym.metrics.curves import (
    CurveResult,
    _batched_curves,
    _images,
    _ranks_from_order,
    _resolve_max_batch,
    _setup,
)
from saliency_gym.types import ImageBatch, MapBatch, TargetsLike

__all__ = ["cell_order_from_maps", "patch_deletion_curve", "patch_insertion_curve"]


def _check_grid(grid: Any) -> PatchGrid:
    if not isinstance(grid, PatchGrid):
        raise TypeError(f"grid must be a PatchGrid, got {type(grid).__name__}")
    return grid


def cell_order_from_maps(maps: MapBatch | torch.Tensor, grid: PatchGrid, k: int | None = None) -> np.ndarray:
    """Rank the cells of ``grid`` by mean saliency, most salient first: ``int64 (N, k)``.

    The cell score is :meth:`PatchGrid.cell_scores` of the pixel map (its mean over each cell);
    ties keep cell id order (row-major). ``k`` (default: all cells) truncates the order, e.g. to an
    episode's budget. Same as ``grid.cell_order(maps, k)``.
    """
    return _check_grid(grid).cell_order(maps, k)


def _as_cell_orders(cell_orders: Any, n: int, num_cells: int) -> np.ndarray:
    if isinstance(cell_orders, torch.Tensor):
        cell_orders = cell_orders.detach().cpu().numpy()
    if not isinstance(cell_orders, np.ndarray):
        cell_orders = np.asarray(cell_orders)
    if cell_orders.size and not np.issubdtype(cell_orders.dtype, np.integer):
        raise TypeError(f"cell_orders must hold integer cell ids, got dtype {cell_orders.dtype}")
    if cell_orders.ndim != 2 or cell_orders.shape[0] != n:
        raise ValueError(f"cell_orders must have shape (N, K) with N = {n} images, got shape {cell_orders.shape}")
    k = cell_orders.shape[1]
    if k > num_cells:
        raise ValueError(f"cell_orders has K = {k} cells per image but the grid has only {num_cells}")
    orders = cell_orders.astype(np.int64)
    if orders.size and (orders.min() < 0 or orders.max() >= num_cells):
        raise ValueError(
            f"cell ids must lie in [0, {num_cells - 1}], got range [{orders.min()}, {orders.max()}]"
        )
    if k > 1:
        repeated = (np.diff(np.sort(orders, axis=1), axis=1) == 0).any(axis=1)
        if repeated.any():
            raise ValueError(
                f"each row of cell_orders must list distinct cells; rows {np.flatnonzero(repeated)[:5].tolist()} repeat a cell"
            )
    return orders


def _patch_curve(
    mode: str,
    classifier: Any,
    images: ImageBatch,
    cell_orders: Any,
    grid: Any,
    targets: TargetsLike,
    substrate: Any,
    foils: TargetsLike,
    max_batch: int | None,
    generator: torch.Generator | None,
) -> CurveResult:
    grid = _check_grid(grid)
    clf, x, queries_before = _images(classifier, images)
    chunk = _resolve_max_batch(max_batch, clf)
    n, _, h, w = x.shape
    if (grid.height, grid.width) != (h, w):
        raise ValueError(f"grid covers {grid.height}x{grid.width} pixels but the images are {h}x{w}")
    orders = _as_cell_orders(cell_orders, n, grid.num_cells)
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    k = orders.shape[1]
    cell_ranks = _ranks_from_order(orders, grid.num_cells, grid.num_cells)
    pixel_ranks = cell_ranks[:, grid.cell_index.reshape(-1)]
    curves = _batched_curves(s, pixel_ranks, np.arange(k + 1), chunk)
    return s.result(mode, curves, np.arange(k + 1) / grid.num_cells, grid.num_cells)


def patch_insertion_curve(
    classifier: FrozenClassifier | nn.Module, images: ImageBatch, cell_orders: Any, grid: PatchGrid,
    targets: TargetsLike = None, *, substrate: Any = "blur", foils: TargetsLike = None,
    max_batch: int | None = None, generator: torch.Generator | None = None,
) -> CurveResult:
    """Insertion at cell level: start from the substrate and reveal the cells of ``cell_orders``
    one at a time, in order (the ``SaliencyReveal`` environments' dynamics).

    Args:
        classifier: the model to query: a :class:`FrozenClassifier`, or an ``nn.Module`` (wrapped as
            ``FrozenClassifier(module, images.shape[1:])``, as explainers wrap one; it is then put in
            eval mode with frozen parameters, on CUDA when available).
        images: ``(N, C, H, W)`` floats in [0, 1] of the classifier's input shape (normalised
            images are a ``ValueError``: give the model its normalisation with
            ``FrozenClassifier(..., normalize=(mean, std))``).
        cell_orders: ``(N, K)`` integer cell ids of ``grid`` (row-major numbering), distinct within
            a row, ``0 <= K <= grid.num_cells``; :func:`cell_order_from_maps` makes one from maps.
        grid: the :class:`PatchGrid` the cells belong to (its size must match the images).
        targets: the explained class per image; ``None`` uses the predicted class (``N`` queries).
        substrate: what absent pixels are, anything :func:`make_substrate` accepts, drawn once for
            the batch as ``substrate(images, targets, generator)``.
        foils: optional contrasted class per image; the score becomes ``p(target) - p(foil)``.
        max_batch: (image, step) pairs per classifier call; ``None``: the classifier's batch size,
            capped at 64 on a CPU and 1024 otherwise.
        generator: seeds stochastic substrates (``"noise"``).

    Returns:
        :class:`CurveResult` with ``curves (N, K + 1)`` (the score with ``0, 1, ..., K`` cells
        changed), ``fractions = k / grid.num_cells`` and ``auc = auc(curves, grid.num_cells)``: a
        full order (``K = num_cells``) gives the usual trapezoid AUC; a partial order gives the
        area under its visited part only (normalised by the total number of cells, so it never
        exceeds what a full order could reach, and it equals the return of a ``K``-step reveal
        episode with ``reward_mode="auc_trapezoid"``; see the module docstring for the default
        ``"auc"`` reward). Cells count equally on the x-axis even when the grid's cells differ in
        size by a pixel.
    """
    return _patch_curve("insertion", classifier, images, cell_orders, grid, targets, substrate, foils, max_batch, generator)


def patch_deletion_curve(
    classifier: FrozenClassifier | nn.Module, images: ImageBatch, cell_orders: Any, grid: PatchGrid,
    targets: TargetsLike = None, *, substrate: Any = "zeros", foils: TargetsLike = None,
    max_batch: int | None = None, generator: torch.Generator | None = None,
) -> CurveResult:
    """Deletion at cell level: start from the image and replace the cells of ``cell_orders`` by
    the substrate one at a time, in order (the ``SaliencyMask`` environments' dynamics).

    Arguments and result as in :func:`patch_insertion_curve`, except that ``substrate`` (default
    ``"zeros"``) is what the masked cells become; a lower AUC is better.
    """
    return _patch_curve("deletion", classifier, images, cell_orders, grid, targets, substrate, foils, max_batch, generator)
