"""Insertion and deletion curves (Petsiuk, Das & Saenko, "RISE", BMVC 2018), batched.

Definition (RISE's ``CausalMetric``, ``evaluation.py`` of the authors' repository):

* Pixels are ordered by saliency, most salient first. ``step`` pixels change per iteration, so
  there are ``n_steps = ceil(H * W / step)`` iterations and the curve has ``n_steps + 1`` points:
  the score before any change, then after each iteration (the last one changes only the
  ``H * W - (n_steps - 1) * step`` remaining pixels when ``step`` does not divide ``H * W``).
* **Deletion** starts from the image and replaces pixels by the substrate (RISE: zeros);
  **insertion** starts from the substrate (RISE: a Gaussian blur of the image, kernel 11, sigma 5)
  and reveals image pixels. A changed pixel takes its value in all channels.
* The score is the classifier's probability of the explained class (RISE: the predicted class;
  here ``targets``, defaulting to the predicted class). With ``foils`` the score is
  ``p(target) - p(foil)``, the contrast a one-vs-one explanation is about.
* The area under the curve is the trapezoid rule with the ``n_steps + 1`` points equally spaced on
  [0, 1]: ``AUC = (sum(c) - c[0] / 2 - c[-1] / 2) / (len(c) - 1)`` (RISE's ``auc``), so a curve of
  probabilities has an AUC in [0, 1]. When ``step`` does not divide ``H * W`` the points are still
  equally spaced for the AUC (as in RISE) although the last step changes fewer pixels;
  :attr:`CurveResult.fractions` gives the true fraction of pixels changed, for plots.

Ties (a choice RISE leaves to ``np.argsort``'s unstable quicksort): pixels of equal saliency are
ordered by raster index (row-major, the top-left pixel first), a stable and reproducible order; an
all-equal map therefore changes pixels row by row from the top.

**Batched evaluation.** Every masked image of every step of every input is independent, so the
evaluator builds them in chunks of ``max_batch`` (image, step) pairs and sends each chunk to the
classifier in one :meth:`FrozenClassifier.probs` call (``N * (n_steps + 1)`` queries in all, plus
``N`` when the targets are the predicted classes). :func:`insertion_deletion_loop` is the plain
per-image, per-step loop of the same definition, written as RISE writes it; the tests and
``benchmarks/bench_insertion_deletion.py`` check that both give the same values.

**Patch level.** The environments reveal (or mask) the cells of a :class:`PatchGrid` one at a
time. :func:`patch_insertion_curve` and :func:`patch_deletion_curve` score a given cell order
(``0, 1, ..., K`` cells changed) and normalise the area by the grid's total number of cells, so
an episode's return (the sum of the per-step trapezoid increments) equals the AUC reported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.grid import PatchGrid
from saliency_gym.metrics._checks import as_map_batch, check_classifier
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.validation import as_image_batch, as_label_array, check_choice, check_int

MODES = ("insertion", "deletion")
#: Default substrates, RISE's choices: insertion starts from a blur, deletion ends in black.
DEFAULT_SUBSTRATES = {"insertion": "blur", "deletion": "zeros"}
#: Default (image, step) pairs per classifier call when ``max_batch=None``, by device type. On a
#: CPU small batches stay in cache: the shipped shapes CNN evaluates ~2-3x more images per second
#: in batches of 64 than of 512 or 1024 (two cores); accelerators want large batches.
DEFAULT_MAX_BATCH = {"cpu": 64}
DEFAULT_MAX_BATCH_ACCELERATOR = 1024

__all__ = [
    "CurveResult",
    "auc",
    "cell_order_from_maps",
    "deletion_curve",
    "insertion_curve",
    "insertion_deletion_loop",
    "patch_deletion_curve",
    "patch_insertion_curve",
    "pixel_order",
]


@dataclass(frozen=True)
class CurveResult:
    """Insertion or deletion curves for a batch of images and their areas."""

    mode: str
    """``"insertion"`` or ``"deletion"``."""
    curves: np.ndarray
    """``float64 (N, S + 1)``: the score after ``0, 1, ..., S`` steps."""
    auc: np.ndarray
    """``float64 (N,)``: the normalised trapezoid area of each curve (see :func:`auc`)."""
    fractions: np.ndarray
    """``float64 (S + 1,)``: the x-axis, the fraction of pixels (pixel level) or of cells (patch
    level) changed after each step."""
    targets: np.ndarray
    """``int64 (N,)``: the explained classes."""
    foils: np.ndarray | None
    """``int64 (N,)``: the contrasted classes (score ``p(target) - p(foil)``), or ``None``."""
    queries: int
    """Classifier images evaluated for this result (predicting default targets included)."""
    substrate: str
    """Name of the substrate the removed pixels took."""
    total_steps: int
    """The AUC's normaliser: ``S`` at pixel level, the grid's number of cells at patch level."""

    @property
    def mean_auc(self) -> float:
        """The AUC averaged over images (NaN for an empty batch)."""
        return float(self.auc.mean()) if len(self.auc) else float("nan")

    def __len__(self) -> int:
        return int(self.curves.shape[0])


# ---------------------------------------------------------------------------------------- AUC
def auc(curves: np.ndarray, total_steps: int | None = None) -> np.ndarray:
    """Normalised trapezoid area under curves of ``K + 1`` equally spaced points.

    The point ``k`` sits at ``x = k / total_steps``; the area over ``[0, K / total_steps]`` is::

        (sum(c) - c[0] / 2 - c[-1] / 2) / total_steps

    With ``total_steps=None`` (``= K``) this is RISE's ``auc`` over the whole of [0, 1]. A larger
    ``total_steps`` scores a *partial* curve (a cell order that stops after ``K`` of
    ``total_steps`` cells): the area under the visited part only, the rest counting as zero. That
    is exactly the sum of the per-step rewards ``(c[k-1] + c[k]) / (2 * total_steps)`` an episode
    of ``K`` steps collects, and it stays comparable across budgets (a full order gives the usual
    AUC).

    Args:
        curves: ``(..., K + 1)`` array (or tensor) of finite scores, ``K >= 0``.
        total_steps: the number of steps a full curve has; ``None`` means ``K``. Must be ``>= K``.

    Returns:
        ``float64`` array of shape ``curves.shape[:-1]`` (0-d for a single curve).
    """
    if isinstance(curves, torch.Tensor):
        curves = curves.detach().cpu().numpy()
    c = np.asarray(curves)
    if c.ndim == 0:
        raise ValueError("curves must have at least one axis (the steps), got a scalar")
    if not (np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)):
        raise TypeError(f"curves must hold real numbers, got dtype {c.dtype}")
    c = c.astype(np.float64, copy=False)
    steps = c.shape[-1] - 1
    if steps < 0:
        raise ValueError("curves must have at least one point along the last axis")
    if total_steps is None:
        if steps == 0:
            raise ValueError("a curve of one point has no area; pass total_steps to normalise it")
        total_steps = steps
    total_steps = check_int("total_steps", total_steps, minimum=max(steps, 1))
    if not np.isfinite(c).all():
        raise ValueError("curves contain NaN or infinite values")
    return (c.sum(axis=-1) - c[..., 0] / 2 - c[..., -1] / 2) / total_steps


# ---------------------------------------------------------------------------------------- orders
def pixel_order(maps: Any) -> np.ndarray:
    """Raster indices of the pixels of each map, most salient first: ``int64 (N, H * W)``.

    Ties keep raster order (row-major: a stable sort on the negated map).
    """
    m = as_map_batch(maps)
    return np.argsort(-m.reshape(m.shape[0], -1), axis=1, kind="stable")


def _ranks_from_order(order: np.ndarray, size: int, missing: int) -> np.ndarray:
    """Invert ``order (N, K)`` of ids in ``[0, size)``: ``ranks[i, order[i, k]] = k``, else ``missing``."""
    ranks = np.full((order.shape[0], size), missing, dtype=np.int64)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(order.shape[1]), order.shape), axis=1)
    return ranks


def cell_order_from_maps(maps: Any, grid: PatchGrid, k: int | None = None) -> np.ndarray:
    """Rank the cells of ``grid`` by mean saliency, most salient first: ``int64 (N, k)``.

    The cell score is :meth:`PatchGrid.cell_means` of the pixel map; ties keep cell id order
    (row-major). ``k`` (default: all cells) truncates the order, e.g. to an episode's budget.
    """
    if not isinstance(grid, PatchGrid):
        raise TypeError(f"grid must be a PatchGrid, got {type(grid).__name__}")
    m = as_map_batch(maps, shape=(grid.height, grid.width))
    k = grid.num_cells if k is None else check_int("k", k, minimum=1, maximum=grid.num_cells)
    means = grid.cell_means(m)
    return np.argsort(-means, axis=1, kind="stable")[:, :k].astype(np.int64)


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


# ---------------------------------------------------------------------------------------- set-up
@dataclass
class _Setup:
    classifier: FrozenClassifier
    images: torch.Tensor
    start: torch.Tensor
    finish: torch.Tensor
    targets: np.ndarray
    foils: np.ndarray | None
    substrate: Substrate
    queries_before: int


def _images(classifier: Any, images: Any) -> tuple[FrozenClassifier, torch.Tensor, int]:
    """Validate the classifier and images; also return the query count before any work."""
    classifier = check_classifier(classifier)
    x = as_image_batch(images, expected_shape=classifier.input_shape, device=classifier.device)
    return classifier, x, classifier.queries


def _setup(
    mode: str,
    classifier: FrozenClassifier,
    x: torch.Tensor,
    queries_before: int,
    targets: Any,
    foils: Any,
    substrate: Any,
    generator: torch.Generator | None,
) -> _Setup:
    """Validate the remaining shared inputs, fix the targets and draw the substrate once for the
    batch. Called after the cheap checks, so a malformed argument costs no queries (only a foil
    equal to a *predicted* target is found after the prediction's queries)."""
    check_choice("mode", mode, MODES)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    n = x.shape[0]
    sub = make_substrate(DEFAULT_SUBSTRATES[mode] if substrate is None else substrate)
    if targets is None:
        target_ids = classifier.predict(x).cpu().numpy().astype(np.int64) if n else np.zeros(0, np.int64)
    else:
        target_ids = as_label_array(targets, n=n, num_classes=classifier.num_classes, name="targets")
    foil_ids = None
    if foils is not None:
        foil_ids = as_label_array(foils, n=n, num_classes=classifier.num_classes, name="foils")
        same = np.flatnonzero(foil_ids == target_ids)
        if same.size:
            raise ValueError(
                f"foils must differ from targets (score p(target) - p(foil)); images {same[:5].tolist()} have foil == target"
            )
    t = torch.as_tensor(target_ids, device=x.device)
    base = sub(x, t, generator) if n else x.clone()
    if tuple(base.shape) != tuple(x.shape):
        raise ValueError(f"substrate {sub.name!r} returned shape {tuple(base.shape)}, expected {tuple(x.shape)}")
    base = base.to(device=x.device, dtype=x.dtype)
    start, finish = (base, x) if mode == "insertion" else (x, base)
    return _Setup(classifier, x, start, finish, target_ids, foil_ids, sub, queries_before)


def _scores(probs: torch.Tensor, targets: torch.Tensor, foils: torch.Tensor | None) -> torch.Tensor:
    """``p(target)`` (minus ``p(foil)``) per row, in float64 so both evaluation paths agree."""
    p = probs.double()
    rows = torch.arange(p.shape[0], device=p.device)
    score = p[rows, targets]
    if foils is not None:
        score = score - p[rows, foils]
    return score


def _batched_curves(s: _Setup, ranks: np.ndarray, thresholds: np.ndarray, max_batch: int) -> np.ndarray:
    """Score every (image, step) pair; pixel ``p`` of image ``i`` at step ``j`` comes from
    ``finish`` when ``ranks[i, p] < thresholds[j]`` and from ``start`` otherwise."""
    n, c, h, w = s.images.shape
    points = len(thresholds)
    total = n * points
    out = np.empty(total, dtype=np.float64)
    if total == 0:
        return out.reshape(n, points)
    device = s.images.device
    ranks_t = torch.as_tensor(ranks, device=device)
    thr_t = torch.as_tensor(thresholds, dtype=torch.int64, device=device)
    targets_t = torch.as_tensor(s.targets, device=device)
    foils_t = None if s.foils is None else torch.as_tensor(s.foils, device=device)
    for lo in range(0, total, max_batch):
        hi = min(lo + max_batch, total)
        rows = torch.arange(lo, hi, device=device)
        img, step = rows // points, rows % points
        changed = (ranks_t[img] < thr_t[step, None]).view(-1, 1, h, w)
        batch = torch.where(changed, s.finish[img], s.start[img])
        probs = s.classifier.probs(batch)
        score = _scores(probs, targets_t[img], None if foils_t is None else foils_t[img])
        out[lo:hi] = score.cpu().numpy()
    return out.reshape(n, points)


def _resolve_max_batch(max_batch: int | None, device: torch.device) -> int:
    if max_batch is None:
        return DEFAULT_MAX_BATCH.get(device.type, DEFAULT_MAX_BATCH_ACCELERATOR)
    return check_int("max_batch", max_batch, minimum=1)


def _check_step(step: int | None, width: int) -> int:
    """``None`` means one image row's worth of pixels (``W``), RISE's choice for square images."""
    return width if step is None else check_int("step", step, minimum=1)


def _pixel_curve(
    mode: str,
    classifier: Any,
    images: Any,
    maps: Any,
    targets: Any,
    step: int | None,
    substrate: Any,
    foils: Any,
    max_batch: int | None,
    generator: torch.Generator | None,
) -> CurveResult:
    clf, x, queries_before = _images(classifier, images)
    max_batch = _resolve_max_batch(max_batch, clf.device)
    n, _, h, w = x.shape
    hw = h * w
    step = _check_step(step, w)
    m = as_map_batch(maps, n=n, shape=(h, w))
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    n_steps = math.ceil(hw / step)
    changed = np.minimum(np.arange(n_steps + 1) * step, hw)
    order = np.argsort(-m.reshape(n, hw), axis=1, kind="stable")
    ranks = _ranks_from_order(order, hw, hw)
    curves = _batched_curves(s, ranks, changed, max_batch)
    return CurveResult(
        mode=mode,
        curves=curves,
        auc=auc(curves) if n else np.zeros(0),
        fractions=changed / hw,
        targets=s.targets,
        foils=s.foils,
        queries=s.classifier.queries - s.queries_before,
        substrate=s.substrate.name,
        total_steps=n_steps,
    )


_COMMON_ARGS = """
    Args:
        classifier: the frozen model to query.
        images: ``(N, C, H, W)`` floats in [0, 1] of the classifier's input shape.
        maps: ``(N, H, W)`` finite saliency maps (larger = more important).
        targets: the explained class per image (or one int for all); ``None`` uses the predicted
            class, which costs ``N`` counted queries.
        step: pixels changed per iteration (RISE's ``step``); ``None`` means ``W``, one image row's
            worth (RISE used ``step=224`` for 224x224 images).
        substrate: what removed pixels become, anything :func:`make_substrate` accepts. It is drawn
            once for the whole batch as ``substrate(images, targets, generator)``.
        foils: optional contrasted class per image; the score becomes ``p(target) - p(foil)``.
            Foils must differ from targets.
        max_batch: (image, step) pairs per classifier call; bounds memory at about
            ``3 * max_batch`` images. ``None``: 64 on a CPU (fastest there), 1024 on accelerators.
        generator: seeds stochastic substrates (``"noise"``).

    Returns:
        :class:`CurveResult` with ``curves (N, ceil(H*W/step) + 1)`` and their AUCs.
"""


def insertion_curve(
    classifier: FrozenClassifier,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    step: int | None = None,
    substrate: Any = "blur",
    foils: Any = None,
    max_batch: int | None = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """RISE's insertion curve: start from the substrate (a blur), reveal the most salient pixels first.

    A good map makes the score rise early, so a higher AUC is better.
    """
    return _pixel_curve("insertion", classifier, images, maps, targets, step, substrate, foils, max_batch, generator)


def deletion_curve(
    classifier: FrozenClassifier,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    step: int | None = None,
    substrate: Any = "zeros",
    foils: Any = None,
    max_batch: int | None = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """RISE's deletion curve: start from the image, replace the most salient pixels by the
    substrate (zeros) first.

    A good map makes the score drop early, so a lower AUC is better.
    """
    return _pixel_curve("deletion", classifier, images, maps, targets, step, substrate, foils, max_batch, generator)


insertion_curve.__doc__ = (insertion_curve.__doc__ or "") + _COMMON_ARGS
deletion_curve.__doc__ = (deletion_curve.__doc__ or "") + _COMMON_ARGS


def insertion_deletion_loop(
    classifier: FrozenClassifier,
    images: Any,
    maps: Any,
    targets: Any = None,
    *,
    mode: str,
    step: int | None = None,
    substrate: Any = None,
    foils: Any = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """Reference implementation: one image, one step, one classifier call at a time.

    This is RISE's ``CausalMetric.single_run`` loop (score the current image, then copy the next
    ``step`` pixels of the order from the finish image into it) applied to each image in turn,
    with the same ordering, tie rule, substrate draw and score as :func:`insertion_curve` /
    :func:`deletion_curve`. It exists to check the batched evaluator and to measure its speed-up;
    use the batched functions otherwise. ``substrate=None`` takes the mode's default (blur for
    insertion, zeros for deletion). Other arguments as in :func:`insertion_curve`.
    """
    clf, x, queries_before = _images(classifier, images)
    n, c, h, w = x.shape
    hw = h * w
    step = _check_step(step, w)
    m = as_map_batch(maps, n=n, shape=(h, w))
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    n_steps = math.ceil(hw / step)
    curves = np.empty((n, n_steps + 1), dtype=np.float64)
    device = s.images.device
    for i in range(n):
        order = torch.as_tensor(np.argsort(-m[i].reshape(-1), kind="stable"), device=device)
        current = s.start[i].reshape(c, hw).clone()
        finish = s.finish[i].reshape(c, hw)
        target = torch.as_tensor([int(s.targets[i])], device=device)
        foil = None if s.foils is None else torch.as_tensor([int(s.foils[i])], device=device)
        for j in range(n_steps + 1):
            probs = s.classifier.probs(current.view(1, c, h, w))
            curves[i, j] = _scores(probs, target, foil).item()
            if j < n_steps:
                coords = order[step * j : step * (j + 1)]
                current[:, coords] = finish[:, coords]
    return CurveResult(
        mode=mode,
        curves=curves,
        auc=auc(curves) if n else np.zeros(0),
        fractions=np.minimum(np.arange(n_steps + 1) * step, hw) / hw,
        targets=s.targets,
        foils=s.foils,
        queries=s.classifier.queries - s.queries_before,
        substrate=s.substrate.name,
        total_steps=n_steps,
    )


# ---------------------------------------------------------------------------------------- patches
def _patch_curve(
    mode: str,
    classifier: Any,
    images: Any,
    cell_orders: Any,
    grid: Any,
    targets: Any,
    substrate: Any,
    foils: Any,
    max_batch: int | None,
    generator: torch.Generator | None,
) -> CurveResult:
    if not isinstance(grid, PatchGrid):
        raise TypeError(f"grid must be a PatchGrid, got {type(grid).__name__}")
    clf, x, queries_before = _images(classifier, images)
    max_batch = _resolve_max_batch(max_batch, clf.device)
    n, _, h, w = x.shape
    if (grid.height, grid.width) != (h, w):
        raise ValueError(f"grid covers {grid.height}x{grid.width} pixels but the images are {h}x{w}")
    orders = _as_cell_orders(cell_orders, n, grid.num_cells)
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    k = orders.shape[1]
    cell_ranks = _ranks_from_order(orders, grid.num_cells, grid.num_cells)
    pixel_ranks = cell_ranks[:, grid.cell_index.reshape(-1)]
    curves = _batched_curves(s, pixel_ranks, np.arange(k + 1), max_batch)
    return CurveResult(
        mode=mode,
        curves=curves,
        auc=auc(curves, total_steps=grid.num_cells) if n else np.zeros(0),
        fractions=np.arange(k + 1) / grid.num_cells,
        targets=s.targets,
        foils=s.foils,
        queries=s.classifier.queries - s.queries_before,
        substrate=s.substrate.name,
        total_steps=grid.num_cells,
    )


_PATCH_ARGS = """
    Args:
        classifier: the frozen model to query.
        images: ``(N, C, H, W)`` floats in [0, 1] of the classifier's input shape.
        cell_orders: ``(N, K)`` integer cell ids of ``grid`` (row-major numbering), distinct within
            a row, ``0 <= K <= grid.num_cells``; :func:`cell_order_from_maps` makes one from maps.
        grid: the :class:`PatchGrid` the cells belong to (its size must match the images).
        targets: the explained class per image; ``None`` uses the predicted class (``N`` queries).
        substrate: what absent pixels are, anything :func:`make_substrate` accepts, drawn once for
            the batch as ``substrate(images, targets, generator)``.
        foils: optional contrasted class per image; the score becomes ``p(target) - p(foil)``.
        max_batch: (image, step) pairs per classifier call; ``None``: 64 on a CPU, 1024 otherwise.
        generator: seeds stochastic substrates (``"noise"``).

    Returns:
        :class:`CurveResult` with ``curves (N, K + 1)`` (the score with ``0, 1, ..., K`` cells
        changed), ``fractions = k / grid.num_cells`` and ``auc = auc(curves, grid.num_cells)``: a
        full order (``K = num_cells``) gives the usual trapezoid AUC; a partial order gives the
        area under its visited part only (normalised by the total number of cells, so it equals
        the return of a ``K``-step episode and never exceeds what a full order could reach).
        Cells count equally on the x-axis even when the grid's cells differ in size by a pixel.
"""


def patch_insertion_curve(
    classifier: FrozenClassifier,
    images: Any,
    cell_orders: Any,
    grid: PatchGrid,
    targets: Any = None,
    *,
    substrate: Any = "blur",
    foils: Any = None,
    max_batch: int | None = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """Insertion at cell level: start from the substrate and reveal the cells of ``cell_orders``
    one at a time, in order (the ``SaliencyReveal`` environments' dynamics)."""
    return _patch_curve("insertion", classifier, images, cell_orders, grid, targets, substrate, foils, max_batch, generator)


def patch_deletion_curve(
    classifier: FrozenClassifier,
    images: Any,
    cell_orders: Any,
    grid: PatchGrid,
    targets: Any = None,
    *,
    substrate: Any = "zeros",
    foils: Any = None,
    max_batch: int | None = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """Deletion at cell level: start from the image and replace the cells of ``cell_orders`` by
    the substrate one at a time, in order (the ``SaliencyMask`` environments' dynamics)."""
    return _patch_curve("deletion", classifier, images, cell_orders, grid, targets, substrate, foils, max_batch, generator)


patch_insertion_curve.__doc__ = (patch_insertion_curve.__doc__ or "") + _PATCH_ARGS
patch_deletion_curve.__doc__ = (patch_deletion_curve.__doc__ or "") + _PATCH_ARGS
