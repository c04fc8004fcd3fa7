"""Differentiable (soft) insertion and deletion, ID-ExpO's regularisers, and their hard limits.

Yoshikawa & Iwata, "Explanation-Based Training with Differentiable Insertion/Deletion Metric-Aware
Regularizers" (ID-ExpO, AISTATS 2024) make RISE's insertion and deletion metrics (see
:mod:`saliency_gym.metrics.insertion_deletion`) differentiable in both the explanation and the
model, so they can be added to a training loss.

**Soft masks.** For an explanation ``e`` over ``D`` features (pixels of an ``H x W`` map, or the
``F`` columns of a table), order the features as the hard metric does: by decreasing ``e``, ties
by index (row-major for maps), i.e. a stable sort of ``-e``; ``r_i`` is feature ``i``'s position
in that order (``0`` = first) and ``e_(0) >= ... >= e_(D-1)`` the sorted values. With
``step = D // n_steps`` features per step, step ``j`` (``j = 1 .. m``) inserts (or deletes) the
``c_j = j * step`` first features; its threshold lies halfway between the last feature in and the
first feature out, ``t_j = (e_(c_j - 1) + e_(c_j)) / 2``, and the soft mask is::

    alpha_ij = sigmoid((tau / s) * (e_i - t_j) + kappa * tau^2 * (c_j - 1/2 - r_i))

where ``tau`` is the temperature and ``s = (max e - min e) / (D - 1)`` the mean gap between
consecutive sorted values, zero gaps included (so ``tau`` is free of the explanation's units, and
``s`` is continuous in ``e``: breaking a tie by a tiny amount moves it by as little).

**Ties.** The second term is the hard metric's tie rule made soft: it is the soft mask of the
tie-broken map ``e - kappa * tau * s * r``, whose decreasing order is exactly the hard order for any
``kappa > 0`` (the term decreases with ``r``, so it never reorders distinct values) and which has no
ties. Both terms are positive exactly when ``r_i < c_j``, so as ``tau -> inf`` every ``alpha_ij``
tends to the hard metric's 0/1 mask ``[r_i < c_j]``, ties at a step boundary included (a
Grad-CAM map has hundreds of tied zeros). The ``tau^2`` makes the tie-break negligible at the
training temperature (``kappa = tie_break = 1e-3``: at ``tau = 1`` it moves a logit by at most
``1e-3 * D``, and only features tied with a threshold are not dominated by the first term) and
decisive well before the hard limit (``1e-3 * tau^2`` per position: 10 at ``tau = 100``). The ranks
are constants (no gradient); ``tie_break=0`` gives the symmetric rule (tied features at a boundary
get ``alpha = 1/2`` at every temperature, so maps with such ties do not converge).

``t_j`` and ``s`` are piecewise-linear in the values and are differentiated by default;
``detach_thresholds=True`` treats them as constants, as the authors' code does
(``batch_continuous_insertion_deletion_for_image`` computes them under ``no_grad``, so gradients
reach ``e`` only through ``e - t_j``). The authors' code uses the mean of the non-zero gaps, over
the whole batch; here ``s`` is per input and counts zero gaps too (the mean of non-zero gaps jumps
when a tie breaks). A step that covers all ``D`` features has ``alpha = 1`` exactly (that input
does not depend on the explanation). ``m = ceil(fraction * n_steps)``: ``fraction`` of the
``n_steps`` steps are used (the paper's ``K``, e.g. 0.5 to cover the top half only).

**Soft inputs.** With a baseline ``b`` (the substrate: zeros by default),
``x_ins,j = alpha_j * x + (1 - alpha_j) * b`` and ``x_del,j = alpha_j * b' + (1 - alpha_j) * x``
(for images the mask is shared by the channels), ``b' = b`` unless a separate
``deletion_baseline`` is given.

**Losses** (per input, lower is better for both, so both are minimised):

* soft insertion: ``-mean_j log p_y(x_ins,j)``, high insertion probabilities early;
* soft deletion, the paper's ratio form: ``mean_j log(p_y(x_del,j) / p_y(x))``, low deletion
  probabilities relative to the unperturbed input's (``deletion_form="ratio"``); the authors' code
  also has ``"direct"``, ``-mean_j log(1 - p_y(x_del,j))``, offered here too.

**Limit.** The soft curves ``p_y(x_ins,j)`` and ``p_y(x_del,j)`` converge, as ``tau`` grows, to the
points ``1 .. m`` of the hard curves of :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve`
/ :func:`~saliency_gym.metrics.insertion_deletion.deletion_curve` with the same ``step`` and a
constant substrate, and the soft losses to the same formulas evaluated on those hard points
(:func:`hard_insertion_deletion` computes them with the hard evaluators), on maps with ties as on
maps without: both metrics use the one order above (:func:`saliency_gym.metrics.curves.pixel_order`
for images; the hard metric casts maps to float64, which keeps every tie and every order of the
explanation's own dtype).

**Tables.** The same functions take ``(N, F)`` features with ``(N, F)`` attributions; the hard
counterparts for tables, :func:`feature_insertion_curve` and :func:`feature_deletion_curve`,
replace features by a baseline value (0 = the training mean for standardised features) with the
ordering, step, score and AUC of the image metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics.curves import CurveResult, _ranks_from_order, _scores, auc
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.types import TargetsLike
from saliency_gym.validation import as_label_array, check_choice, check_float, check_int

DELETION_FORMS = ("ratio", "direct")
#: ``kappa`` of the tie rule in the soft masks' logits (see the module docstring).
DEFAULT_TIE_BREAK = 1e-3
#: Floor on probabilities inside logarithms (``log(1 - p)`` of the direct deletion form).
_EPS = 1e-12

__all__ = [
    "DEFAULT_TIE_BREAK",
    "DELETION_FORMS",
    "SoftInsertionDeletion",
    "feature_deletion_curve",
    "feature_insertion_curve",
    "hard_insertion_deletion",
    "hard_order",
    "soft_insertion_deletion",
    "soft_masks",
    "soft_steps",
]


# ---------------------------------------------------------------------------------------- masks
def soft_steps(num_features: int, n_steps: int, fraction: float = 1.0) -> tuple[int, np.ndarray]:
    """Features per step and the feature counts ``c_j`` of the ``m`` soft steps.

    Returns ``(step, counts)`` with ``step = num_features // n_steps`` and
    ``counts = [step, 2 * step, ..., m * step]``, ``m = ceil(fraction * n_steps)``. The hard metric
    with this ``step`` has the same counts at its points ``1 .. m``.
    """
    num_features = check_int("num_features", num_features, minimum=1)
    n_steps = check_int("n_steps", n_steps, minimum=1, maximum=num_features)
    fraction = check_float("fraction", fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    step = num_features // n_steps
    m = max(1, math.ceil(fraction * n_steps - 1e-9))
    return step, step * np.arange(1, m + 1, dtype=np.int64)


def hard_order(explanations: torch.Tensor) -> torch.Tensor:
    """The hard metric's feature order: ``(N, D)`` indices by decreasing value, ties by index.

    A stable sort of the negated, flattened explanations (no gradient), the order of
    :func:`saliency_gym.metrics.curves.pixel_order` and of the table curves.
    """
    flat = explanations.detach().reshape(explanations.shape[0], -1)
    return torch.sort(-flat, dim=1, stable=True).indices


def soft_masks(
    explanations: torch.Tensor,
    counts: np.ndarray,
    temperature: float,
    *,
    detach_thresholds: bool = False,
    tie_break: float = DEFAULT_TIE_BREAK,
) -> torch.Tensor:
    """ID-ExpO's soft masks (see the module docstring): ``(N, m, *map_shape)``.

    ``alpha_ij = sigmoid((tau / s) (e_i - t_j) + tie_break * tau^2 * (c_j - 1/2 - r_i))`` with
    ``r`` the hard metric's order (:func:`hard_order`), ``t_j`` the midpoint between the values
    in positions ``c_j - 1`` and ``c_j`` of that order and ``s = (max e - min e) / (D - 1)``.

    Args:
        explanations: ``(N, *map_shape)`` real tensor (a map per input), differentiable.
        counts: ``(m,)`` feature counts ``c_j`` in ``[1, D]`` (from :func:`soft_steps`).
        temperature: ``tau > 0``; larger is closer to the hard 0/1 masks.
        detach_thresholds: compute ``t_j`` and ``s`` without gradient, as the authors' code does
            (gradients then reach ``e`` only through ``e - t_j``). ``False`` (default) keeps them
            in the graph: ``t_j`` and ``s`` are piecewise-linear functions of the values, so
            the masks are exactly differentiable wherever the order has no ties.
        tie_break: ``kappa >= 0``, weight of the hard tie rule (index order) in the logits; ``0``
            leaves tied features at a step boundary at ``alpha = 1/2``.

    A count equal to ``D`` gives ``alpha = 1`` exactly. A constant map has ``s = 0``; ``s = 1``
    is used (the first term is then zero and the masks follow index order).
    """
    temperature = check_float("temperature", temperature, minimum=0.0, exclusive_minimum=True)
    tie_break = check_float("tie_break", tie_break, minimum=0.0)
    n = explanations.shape[0]
    flat = explanations.reshape(n, -1)
    d = flat.shape[1]
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 1 or counts.size == 0 or counts.min() < 1 or counts.max() > d:
        raise ValueError(f"counts must be a non-empty 1-D array of feature counts in [1, {d}], got {counts}")
    source = flat.detach() if detach_thresholds else flat
    order = hard_order(flat)
    ordered = source.gather(1, order)  # values in the hard order (non-increasing)
    # mean gap over all D - 1 consecutive pairs, zero gaps included: continuous in e
    spread = (ordered[:, 0] - ordered[:, -1]) / max(d - 1, 1)
    scale = torch.where(spread > 0, spread, torch.ones_like(spread))
    inner = torch.as_tensor(np.minimum(counts, d - 1), device=flat.device)
    thresholds = (ordered[:, inner - 1] + ordered[:, inner]) / 2  # (N, m)
    logits = (temperature / scale)[:, None, None] * (flat[:, None, :] - thresholds[:, :, None])
    if tie_break > 0:
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(d, device=flat.device).expand(n, d))
        margin = torch.as_tensor(counts, device=flat.device, dtype=flat.dtype)[None, :, None] - 0.5 - ranks[:, None, :].to(flat.dtype)
        logits = logits + (tie_break * temperature**2) * margin
    full = torch.as_tensor(counts == d, device=flat.device)
    alphas = torch.where(full[None, :, None], torch.ones_like(logits), torch.sigmoid(logits))
    return alphas.reshape(n, len(counts), *explanations.shape[1:])


# ---------------------------------------------------------------------------------------- soft metric
@dataclass(frozen=True)
class SoftInsertionDeletion:
    """Soft insertion/deletion losses of a batch (tensors keep their autograd graph)."""

    insertion: torch.Tensor
    """``(N,)`` soft insertion loss ``-mean_j log p_y(x_ins,j)`` (lower = better explanation)."""
    deletion: torch.Tensor
    """``(N,)`` soft deletion loss (ratio form: ``mean_j log(p_y(x_del,j) / p_y(x))``)."""
    insertion_probs: torch.Tensor
    """``(N, m)`` ``p_y(x_ins,j)``: the soft insertion curve's points ``1 .. m``."""
    deletion_probs: torch.Tensor
    """``(N, m)`` ``p_y(x_del,j)``: the soft deletion curve's points ``1 .. m``."""
    step: int
    """Features per step (the hard metric's ``step`` with the same points)."""
    counts: np.ndarray
    """``(m,)`` features inserted/deleted at each step."""
    deletion_form: str

    @property
    def total(self) -> torch.Tensor:
        """Scalar ``mean(insertion) + mean(deletion)``, the ID-ExpO regulariser."""
        return self.insertion.mean() + self.deletion.mean()


def _forward_fn(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(model, FrozenClassifier):
        return model.logits
    if not callable(model):
        raise TypeError(f"model must be an nn.Module, a callable returning logits or a FrozenClassifier, got {type(model).__name__}")
    return model


def _check_pair(inputs: Any, explanations: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
    for name, value in (("inputs", inputs), ("explanations", explanations)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor, got {type(value).__name__}")
        if not torch.is_floating_point(value):
            raise TypeError(f"{name} must have a floating dtype, got {value.dtype}")
    if explanations.ndim < 2:
        raise ValueError(f"explanations must have shape (N, H, W) or (N, F), got {tuple(explanations.shape)}")
    map_shape = tuple(explanations.shape[1:])
    extra = inputs.ndim - 1 - len(map_shape)
    if extra < 0 or inputs.shape[0] != explanations.shape[0] or tuple(inputs.shape[inputs.ndim - len(map_shape) :]) != map_shape:
        raise ValueError(
            "explanations must give one map per input over the input's trailing dimensions "
            f"(images (N, C, H, W) with maps (N, H, W); tables (N, F) with (N, F)); got inputs "
            f"{tuple(inputs.shape)} and explanations {tuple(explanations.shape)}"
        )
    if not torch.isfinite(explanations.detach()).all():
        raise ValueError("explanations contain NaN or infinite values")
    return inputs, explanations, extra


def _baseline(baseline: Any, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The baseline ``b`` as a tensor broadcastable to ``inputs`` (no gradient)."""
    if isinstance(baseline, bool):
        raise TypeError("baseline must be a number, a tensor, a substrate or a substrate name, got a bool")
    if isinstance(baseline, (int, float)):
        return torch.full((1,) * inputs.ndim, float(baseline), dtype=inputs.dtype, device=inputs.device)
    if isinstance(baseline, (np.ndarray, torch.Tensor)):
        b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)
        try:
            torch.broadcast_shapes(b.shape, inputs.shape)
        except RuntimeError:
            raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to inputs {tuple(inputs.shape)}") from None
        return b.detach()
    if isinstance(baseline, (str, Substrate)) or callable(baseline):
        if inputs.ndim != 4:
            raise ValueError("substrate baselines need images (N, C, H, W); pass a number or a tensor for tables")
        sub = make_substrate(baseline)
        with torch.no_grad():
            out = sub(inputs.detach(), targets)
        return out.to(inputs.dtype).detach()
    raise TypeError(f"baseline must be a number, a tensor, a substrate or a substrate name, got {type(baseline).__name__}")


def soft_insertion_deletion(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor] | FrozenClassifier,
    inputs: torch.Tensor,
    explanations: torch.Tensor,
    targets: Any,
    *,
    temperature: float = 1.0,
    n_steps: int = 16,
    fraction: float = 1.0,
    baseline: Any = 0.0,
    deletion_form: str = "ratio",
    detach_thresholds: bool = False,
    tie_break: float = DEFAULT_TIE_BREAK,
    deletion_baseline: Any = None,
) -> SoftInsertionDeletion:
    """ID-ExpO's differentiable insertion and deletion, batched over inputs and steps.

    All ``2 * N * m`` soft inputs go through ``model`` in one call (and the ``N`` unperturbed
    inputs in another: the ratio form's ``p_y(x)``, and the number of classes), so the result is differentiable in the model's parameters, the inputs and
    the explanations.

    Args:
        model: a trainable ``nn.Module`` or callable returning ``(N, K)`` logits, or a
            :class:`FrozenClassifier` (its counted :meth:`~FrozenClassifier.logits` are used).
        inputs: images ``(N, C, H, W)`` or table rows ``(N, F)``.
        explanations: maps ``(N, H, W)`` for images, attributions ``(N, F)`` for tables; larger
            means more important. May carry a graph (a differentiable explainer's output).
        targets: the explained class per input (``(N,)`` ints or one int).
        temperature: ``tau > 0`` of the sigmoid masks (the paper uses 1; large values approach
            the hard metric).
        n_steps: ``D // n_steps`` features are added per step (``1 <= n_steps <= D``).
        fraction: share of the ``n_steps`` steps that are used, in ``(0, 1]`` (the paper's ``K``).
        baseline: what absent features become: a number, a tensor broadcastable to ``inputs``,
            or for images a substrate / substrate name (``"zeros"``, ``"blur"``, ...).
        deletion_form: ``"ratio"`` (the paper's) or ``"direct"`` (see the module docstring).
        detach_thresholds: treat ``t_j`` and ``s`` as constants, as the authors' code does (see
            :func:`soft_masks`); by default they are differentiated too.
        tie_break: weight ``kappa >= 0`` of the hard metric's tie rule (index order) in the soft
            masks (see the module docstring); ``0`` leaves boundary ties at ``1/2``.
        deletion_baseline: what deleted features become, if not ``baseline`` (same forms): e.g.
            RISE's pairing, insertion from ``"blur"`` and deletion to ``0.0``.

    Returns:
        :class:`SoftInsertionDeletion`.
    """
    forward = _forward_fn(model)
    inputs, explanations, extra = _check_pair(inputs, explanations)
    check_choice("deletion_form", deletion_form, DELETION_FORMS)
    n = inputs.shape[0]
    if n == 0:
        raise ValueError("inputs must hold at least one input")
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu()
    d = int(np.prod(explanations.shape[1:]))
    step, counts = soft_steps(d, n_steps, fraction)
    m = len(counts)
    alphas = soft_masks(explanations, counts, temperature, detach_thresholds=detach_thresholds, tie_break=tie_break).to(inputs.dtype)
    for _ in range(extra):  # share the mask over channels: (N, m, 1, H, W)
        alphas = alphas.unsqueeze(2)
    x = inputs.unsqueeze(1)
    # validate targets once we know the number of classes (from the unperturbed forward pass)
    logits0 = forward(inputs)
    if not isinstance(logits0, torch.Tensor) or logits0.ndim != 2 or logits0.shape[0] != n:
        raise ValueError(f"model must return (N, K) logits, got {getattr(logits0, 'shape', type(logits0).__name__)}")
    y = torch.as_tensor(as_label_array(targets, n=n, num_classes=logits0.shape[1], name="targets"), device=inputs.device)
    b = _baseline(baseline, inputs, y).expand_as(inputs).unsqueeze(1)
    b_del = b if deletion_baseline is None else _baseline(deletion_baseline, inputs, y).expand_as(inputs).unsqueeze(1)
    x_ins = b + alphas * (x - b)
    x_del = x + alphas * (b_del - x)
    both = torch.cat([x_ins.reshape(n * m, *inputs.shape[1:]), x_del.reshape(n * m, *inputs.shape[1:])])
    log_p = torch.log_softmax(forward(both), dim=1)
    rows = torch.arange(2 * n * m, device=inputs.device)
    log_py = log_p[rows, y.repeat_interleave(m).repeat(2)].reshape(2, n, m)
    ins_log, del_log = log_py[0], log_py[1]
    insertion = -ins_log.mean(dim=1)
    if deletion_form == "ratio":
        log_p0 = torch.log_softmax(logits0, dim=1)[torch.arange(n, device=inputs.device), y]
        deletion = (del_log - log_p0[:, None]).mean(dim=1)
    else:
        deletion = -torch.log((1 - del_log.exp()).clamp_min(_EPS)).mean(dim=1)
    return SoftInsertionDeletion(
        insertion=insertion,
        deletion=deletion,
        insertion_probs=ins_log.exp(),
        deletion_probs=del_log.exp(),
        step=step,
        counts=counts,
        deletion_form=deletion_form,
    )


# ---------------------------------------------------------------------------------------- tables (hard)
def _feature_model(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    if isinstance(model, FrozenClassifier):
        raise TypeError("feature curves take a tabular model (nn.Module or callable on (N, F) rows), not an image FrozenClassifier")
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable returning logits, got {type(model).__name__}")
    return model


def _feature_curve(
    mode: str,
    model: Any,
    features: Any,
    attributions: Any,
    targets: Any,
    step: int,
    baseline: Any,
    max_batch: int,
) -> CurveResult:
    forward = _feature_model(model)
    x = torch.as_tensor(features)
    if not torch.is_floating_point(x) or x.ndim != 2:
        raise ValueError(f"features must be a floating (N, F) array, got dtype {x.dtype} and shape {tuple(x.shape)}")
    a = attributions.detach().cpu().numpy() if isinstance(attributions, torch.Tensor) else np.asarray(attributions)
    if a.shape != tuple(x.shape):
        raise ValueError(f"attributions must have the features' shape {tuple(x.shape)}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("attributions contain NaN or infinite values")
    n, f = x.shape
    step = check_int("step", step, minimum=1, maximum=max(f, 1))
    max_batch = check_int("max_batch", max_batch, minimum=1)
    x = x.float()
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, np.ndarray, torch.Tensor)):
        raise TypeError(f"baseline must be a number or an (F,) / (N, F) array, got {type(baseline).__name__}")
    b = torch.as_tensor(baseline, dtype=x.dtype).expand_as(x) if not isinstance(baseline, (int, float)) else torch.full_like(x, float(baseline))
    with torch.inference_mode():
        logits = forward(x) if n else torch.zeros(0, 2)
    num_classes = int(logits.shape[1])
    if targets is None:
        target_ids = logits.argmax(1).numpy().astype(np.int64)
    else:
        target_ids = as_label_array(targets, n=n, num_classes=num_classes, name="targets")
    start, finish = (b, x) if mode == "insertion" else (x, b)
    n_steps = math.ceil(f / step)
    changed = np.minimum(np.arange(n_steps + 1) * step, f)
    order = np.argsort(-a.reshape(n, f), axis=1, kind="stable")
    ranks = torch.as_tensor(_ranks_from_order(order, f, f))
    points = n_steps + 1
    total = n * points
    out = np.empty(total, dtype=np.float64)
    thr = torch.as_tensor(changed)
    y = torch.as_tensor(target_ids)
    for lo in range(0, total, max_batch):
        hi = min(lo + max_batch, total)
        rows = torch.arange(lo, hi)
        img, k = rows // points, rows % points
        mask = ranks[img] < thr[k, None]
        batch = torch.where(mask, finish[img], start[img])
        with torch.inference_mode():
            probs = torch.softmax(forward(batch).float(), dim=1)
        out[lo:hi] = _scores(probs, y[img], None).numpy()
    curves = out.reshape(n, points)
    return CurveResult(
        mode=mode,
        curves=curves,
        auc=auc(curves) if n else np.zeros(0),
        fractions=changed / f,
        targets=target_ids,
        foils=None,
        queries=n + total,
        substrate=f"constant({float(baseline):g})" if isinstance(baseline, (int, float)) else "array",
        total_steps=n_steps,
    )


def feature_insertion_curve(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor], features: Any, attributions: Any,
    targets: TargetsLike = None, *, step: int = 1, baseline: Any = 0.0, max_batch: int = 4096,
) -> CurveResult:
    """Insertion for tables: start from the baseline row and put back the most important features
    first (``step`` per iteration); the score is ``p(target)``. Same ordering (stable, ties by
    column index), curve and AUC as :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve`.

    Args:
        model: tabular model (``nn.Module`` or callable) mapping ``(N, F)`` rows to logits.
        features: ``(N, F)`` floats.
        attributions: ``(N, F)`` finite attributions (larger = more important).
        targets: the explained classes (``None``: the predicted ones).
        step: features changed per iteration.
        baseline: the value absent features take: a number (0 is the training mean for
            standardised features) or an ``(F,)`` / ``(N, F)`` array.
        max_batch: (row, step) pairs per forward pass.
    """
    return _feature_curve("insertion", model, features, attributions, targets, step, baseline, max_batch)


def feature_deletion_curve(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor], features: Any, attributions: Any,
    targets: TargetsLike = None, *, step: int = 1, baseline: Any = 0.0, max_batch: int = 4096,
) -> CurveResult:
    """Deletion for tables: replace the most important features by the baseline first. Arguments
    as in :func:`feature_insertion_curve`; a lower AUC is better."""
    return _feature_curve("deletion", model, features, attributions, targets, step, baseline, max_batch)


# ---------------------------------------------------------------------------------------- hard limit
def hard_insertion_deletion(
    model: nn.Module | FrozenClassifier,
    inputs: torch.Tensor,
    explanations: Any,
    targets: Any,
    *,
    n_steps: int = 16,
    fraction: float = 1.0,
    baseline: Any = 0.0,
    deletion_form: str = "ratio",
    input_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """The ``tau -> inf`` limit of :func:`soft_insertion_deletion`, from the hard evaluators.

    Images go through :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve` and
    :func:`~saliency_gym.metrics.insertion_deletion.deletion_curve` (``model`` is a
    :class:`FrozenClassifier`, or an ``nn.Module`` that is wrapped in one on a frozen copy), tables
    through :func:`feature_insertion_curve` / :func:`feature_deletion_curve`, all with the soft
    metric's ``step`` and a constant ``baseline``. Their points ``1 .. m`` and the soft losses'
    formulas evaluated on them are returned.

    Returns:
        ``{"insertion": (N,), "deletion": (N,), "insertion_probs": (N, m), "deletion_probs": (N, m),
        "insertion_result": CurveResult, "deletion_result": CurveResult, "step": int}`` (NumPy).
    """
    check_choice("deletion_form", deletion_form, DELETION_FORMS)
    x = torch.as_tensor(inputs).detach()
    e = explanations.detach().cpu().numpy() if isinstance(explanations, torch.Tensor) else np.asarray(explanations)
    d = int(np.prod(e.shape[1:]))
    step, counts = soft_steps(d, n_steps, fraction)
    m = len(counts)
    if x.ndim == 4:
        if not isinstance(baseline, (int, float)) or isinstance(baseline, bool):
            raise TypeError("the hard image counterpart needs a constant baseline (a number in [0, 1])")
        if isinstance(model, FrozenClassifier):
            classifier = model
        else:
            import copy

            classifier = FrozenClassifier(copy.deepcopy(model), input_shape or tuple(x.shape[1:]), device=x.device)
        ins = insertion_curve(classifier, x, e, targets, step=step, substrate=float(baseline))
        dele = deletion_curve(classifier, x, e, targets, step=step, substrate=float(baseline))
    elif x.ndim == 2:
        ins = feature_insertion_curve(model, x, e, targets, step=step, baseline=baseline)
        dele = feature_deletion_curve(model, x, e, targets, step=step, baseline=baseline)
    else:
        raise ValueError(f"inputs must be images (N, C, H, W) or table rows (N, F), got shape {tuple(x.shape)}")
    ins_p, del_p = ins.curves[:, 1 : m + 1], dele.curves[:, 1 : m + 1]
    p0 = dele.curves[:, 0]
    if deletion_form == "ratio":
        deletion = (np.log(np.maximum(del_p, _EPS)) - np.log(np.maximum(p0, _EPS))[:, None]).mean(axis=1)
    else:
        deletion = -np.log(np.maximum(1 - del_p, _EPS)).mean(axis=1)
    return {
        "insertion": -np.log(np.maximum(ins_p, _EPS)).mean(axis=1),
        "deletion": deletion,
        "insertion_probs": ins_p,
        "deletion_probs": del_p,
        "insertion_result": ins,
        "deletion_result": dele,
        "step": step,
    }
