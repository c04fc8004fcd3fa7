"""The machinery shared by every insertion and deletion curve: results, area, orders and the
batched engine.

- :class:`CurveResult`: curves of a batch of images, their areas and what they cost.
- :func:`auc`: RISE's normalised trapezoid area (also for partial curves, as episodes collect it).
- :func:`pixel_order`: pixels by decreasing saliency, ties by raster index.
- The batched engine (private): validate the classifier, images, targets and foils, draw the
  substrate once for the batch, and score every (image, step) pair in chunks of ``max_batch``
  classifier images (by default the classifier's own batch size, capped per device type). Pixel curves (:mod:`~saliency_gym.metrics.insertion_deletion`), patch curves
  (:mod:`~saliency_gym.metrics.patch_curves`) and the reference loop
  (:mod:`~saliency_gym.metrics.reference`) are thin layers over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics._checks import as_map_batch, classifier_and_images
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.types import ImageBatch, MapBatch, TargetsLike
from saliency_gym.validation import as_label_array, check_choice, check_int

MODES = ("insertion", "deletion")
#: Default substrates, RISE's choices: insertion starts from a blur, deletion ends in black.
DEFAULT_SUBSTRATES = {"insertion": "blur", "deletion": "zeros"}
#: Caps of the (image, step) pairs per classifier call when ``max_batch=None``, by device type:
#: ``max_batch`` is then ``min(classifier.batch_size, cap)``, so chunks follow the classifier's
#: memory-derived batch size and never exceed it. On a CPU small batches stay in cache: the shipped
#: shapes CNN evaluates ~2-3x more images per second in batches of 64 than of 512 or 1024 (two
#: cores); accelerators want large batches.
DEFAULT_MAX_BATCH = {"cpu": 64}
DEFAULT_MAX_BATCH_ACCELERATOR = 1024

__all__ = ["CurveResult", "auc", "pixel_order"]


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
def auc(curves: np.ndarray | torch.Tensor, total_steps: int | None = None) -> np.ndarray:
    """Normalised trapezoid area under curves of ``K + 1`` equally spaced points.

    The point ``k`` sits at ``x = k / total_steps``; the area over ``[0, K / total_steps]`` is::

        (sum(c) - c[0] / 2 - c[-1] / 2) / total_steps

    With ``total_steps=None`` (``= K``) this is RISE's ``auc`` over the whole of [0, 1]. A larger
    ``total_steps`` scores a *partial* curve (a cell order that stops after ``K`` of
    ``total_steps`` cells): the area under the visited part only, the rest counting as zero. That
    is exactly the sum of the per-step rewards ``(c[k-1] + c[k]) / (2 * total_steps)`` that a
    reveal episode of ``K`` steps collects with ``reward_mode="auc_trapezoid"`` (the default
    ``"auc"`` reward matches it only up to a fixed endpoint term, see
    :mod:`~saliency_gym.metrics.patch_curves`), and it stays comparable across budgets (a full
    order gives the usual AUC).

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
    result: np.ndarray = (c.sum(axis=-1) - c[..., 0] / 2 - c[..., -1] / 2) / total_steps
    return result


# ---------------------------------------------------------------------------------------- orders
def pixel_order(maps: MapBatch | torch.Tensor) -> np.ndarray:
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

    def result(self, mode: str, curves: np.ndarray, fractions: np.ndarray, total_steps: int) -> CurveResult:
        """Package ``curves`` with their AUCs (normalised by ``total_steps``) and the queries spent."""
        return CurveResult(
            mode=mode,
            curves=curves,
            auc=auc(curves, total_steps=total_steps) if len(curves) else np.zeros(0),
            fractions=fractions,
            targets=self.targets,
            foils=self.foils,
            queries=self.classifier.queries - self.queries_before,
            substrate=self.substrate.name,
            total_steps=total_steps,
        )


def _images(classifier: Any, images: ImageBatch) -> tuple[FrozenClassifier, torch.Tensor, int]:
    """Validate the classifier (a :class:`FrozenClassifier` or a raw ``nn.Module``, wrapped for the
    images' shape) and the images (in [0, 1]); also return the query count before any work."""
    classifier, x = classifier_and_images(classifier, images)
    return classifier, x, classifier.queries


def _pixel_setup(
    classifier: Any, images: ImageBatch, maps: MapBatch | torch.Tensor, step: int | None
) -> tuple[FrozenClassifier, torch.Tensor, int, np.ndarray, int]:
    """Validate the inputs of a pixel-level curve: ``(classifier, x, queries_before, maps, step)``.
    ``step=None`` means one image row's worth of pixels (``W``), RISE's choice for square images."""
    clf, x, queries_before = _images(classifier, images)
    n, _, h, w = x.shape
    step = w if step is None else check_int("step", step, minimum=1)
    m = as_map_batch(maps, n=n, shape=(h, w))
    return clf, x, queries_before, m, step


def _setup(
    mode: str,
    classifier: FrozenClassifier,
    x: torch.Tensor,
    queries_before: int,
    targets: TargetsLike,
    foils: TargetsLike,
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


# ---------------------------------------------------------------------------------------- engine
def _scores(probs: torch.Tensor, targets: torch.Tensor, foils: torch.Tensor | None) -> torch.Tensor:
    """``p(target)`` (minus ``p(foil)``) per row, in float64 so both evaluation paths agree."""
    p = probs.double()
    rows = torch.arange(p.shape[0], device=p.device)
    score = p[rows, targets]
    if foils is not None:
        score = score - p[rows, foils]
    return score


def _resolve_max_batch(max_batch: int | None, classifier: FrozenClassifier) -> int:
    """``max_batch``, or for ``None`` the classifier's batch size capped by :data:`DEFAULT_MAX_BATCH`."""
    if max_batch is None:
        cap = DEFAULT_MAX_BATCH.get(classifier.device.type, DEFAULT_MAX_BATCH_ACCELERATOR)
        return min(classifier.batch_size, cap)
    return check_int("max_batch", max_batch, minimum=1)


def _batched_curves(s: _Setup, ranks: np.ndarray, thresholds: np.ndarray, max_batch: int) -> np.ndarray:
    """Score every (image, step) pair; pixel ``p`` of image ``i`` at step ``j`` comes from
    ``finish`` when ``ranks[i, p] < thresholds[j]`` and from ``start`` otherwise; ``max_batch``
    pairs go to the classifier per call."""
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
