"""Quantus adapter: our explainers as a Quantus ``explain_func``, our metrics Quantus-style.

Quantus (Hedström et al., JMLR 2023) evaluates explanations with metric objects called as
``metric(model=..., x_batch=..., y_batch=..., a_batch=..., s_batch=..., explain_func=...,
explain_func_kwargs=...)``. This module plugs saliency-gym into both ends:

* :func:`explain_func` has Quantus's ``explain_func(model, inputs, targets, **kwargs)``
  signature and builds any registered explainer by name (:func:`make_explainer`), so
  ``quantus.PointingGame()(..., explain_func=explain_func, explain_func_kwargs={"method": "rise"})``
  evaluates our methods.
* :func:`as_quantus_metric` returns our metrics as callables with Quantus's argument names,
  ``metric(model, x_batch, y_batch, a_batch, s_batch) -> list[float]``.

Nothing here imports Quantus; it works without it installed.

**Where Quantus's metrics differ from ours** (on ``(N, 1, H, W)`` attributions and masks; checked
in ``tests/test_interop.py``):

* ``PointingGame`` = :func:`pointing_game` with ``ties="any"`` (Quantus hits if *any* maximal
  pixel is in the mask; ours defaults to ``"all"``). On an **empty mask** Quantus scores a hit:
  it assigns NaN into a boolean array, which becomes ``True`` (1.0); ours returns NaN.
* ``AttributionLocalisation`` (default ``abs=True``) = :func:`energy_pointing_game` with
  ``normalize="abs"``; with ``abs=False, positive_attributions=True`` it equals
  ``normalize="relu"``. Quantus adds ``1e-9`` to the denominator (so an all-zero map scores 0.0
  there, NaN here); its normalisation (division by the maximum) does not change the ratio.
  Ours' default ``"scorecam"`` (ReLU, then minus the minimum) has no Quantus counterpart.
* ``Sparseness`` (``abs=True``) = :func:`gini_index`, up to the ``1e-7`` Quantus adds to every
  entry before sorting (differences of order 1e-7; an all-zero map scores 0.0 in both).
* ``TopKIntersection(k=k)`` = :func:`top_k_intersection_with_mask` with ``k=k``. Quantus breaks
  ties in the ranking with an unstable sort, ours by raster index, so flat maps can differ; an
  empty mask is NaN in both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier

__all__ = ["QUANTUS_METRICS", "as_quantus_metric", "explain_func"]


def _module_device(model: nn.Module) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def explain_func(
    model: nn.Module | FrozenClassifier,
    inputs: Any,
    targets: Any,
    method: str = "gradcam",
    **options: Any,
) -> np.ndarray:
    """Explain ``inputs`` with saliency-gym's ``method``, with Quantus's ``explain_func`` signature.

    Args:
        model: the ``nn.Module`` Quantus passes (or a :class:`FrozenClassifier`). A module is
            wrapped as ``FrozenClassifier(model, inputs.shape[1:])`` on the device of its
            parameters, which puts it in eval mode with frozen parameters (as Quantus does).
        inputs: ``(N, C, H, W)`` images (NumPy or torch) in [0, 1], as our explainers require.
        targets: class ids, one per image (or one int, or ``None`` for the predicted class).
        method: a registered explainer name (:func:`saliency_gym.explainers.available_explainers`:
            ``"gradcam"``, ``"gradient"``, ``"rise"``, ...).
        **options: the explainer's options (e.g. ``n_masks=2000`` for RISE). Quantus-only keywords
            it may pass along (``device``, ``reduce_axes``, ``keepdims``, ...) are not accepted:
            an unknown option raises ``TypeError`` listing the accepted ones.

    Returns:
        ``float32 (N, 1, H, W)`` maps, the single-channel layout Quantus's own ``explain`` returns
        for PyTorch models.
    """
    from saliency_gym.explainers import make_explainer

    x = inputs.detach().cpu().numpy() if isinstance(inputs, torch.Tensor) else np.asarray(inputs)
    if x.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W), got shape {x.shape}")
    if isinstance(model, FrozenClassifier):
        classifier = model
    elif isinstance(model, nn.Module):
        classifier = FrozenClassifier(model, x.shape[1:], device=_module_device(model), name=type(model).__name__)
    else:
        raise TypeError(f"model must be an nn.Module or a FrozenClassifier, got {type(model).__name__}")
    if targets is not None and not isinstance(targets, (int, np.integer)):
        targets = np.asarray(targets.detach().cpu().numpy() if isinstance(targets, torch.Tensor) else targets).reshape(-1)
    explainer = make_explainer(method, classifier, **options)
    maps = explainer.explain(x.astype(np.float32, copy=False), targets).maps
    return maps[:, None].astype(np.float32)


def _as_maps(a: Any, name: str) -> np.ndarray:
    """``(N, H, W)`` from ``(N, H, W)`` or single-channel ``(N, 1, H, W)`` arrays or tensors."""
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(f"{name} must have one channel, (N, 1, H, W) or (N, H, W), got shape {arr.shape}")
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (N, H, W) or (N, 1, H, W), got shape {arr.shape}")
    return arr


def _metric_functions() -> dict[str, tuple[Callable[..., np.ndarray], bool]]:
    """name -> (our metric function, whether it needs masks)."""
    from saliency_gym.metrics import (
        energy_pointing_game,
        gini_index,
        pointing_game,
        top_k_intersection_with_mask,
    )

    return {
        "pointing_game": (pointing_game, True),
        "energy_pointing_game": (energy_pointing_game, True),
        "gini_index": (gini_index, False),
        "top_k_intersection_with_mask": (top_k_intersection_with_mask, True),
    }


#: Quantus's metric class names and the saliency-gym metric each corresponds to (see the module
#: docstring for the options that make the definitions equal).
QUANTUS_METRICS = {
    "PointingGame": "pointing_game",
    "AttributionLocalisation": "energy_pointing_game",
    "Sparseness": "gini_index",
    "TopKIntersection": "top_k_intersection_with_mask",
}


def as_quantus_metric(name: str, **options: Any) -> Callable[..., list[float]]:
    """One of our metrics as a Quantus-style callable.

    Args:
        name: ``"pointing_game"``, ``"energy_pointing_game"``, ``"gini_index"`` or
            ``"top_k_intersection_with_mask"`` (or the Quantus name of the same metric:
            ``"PointingGame"``, ``"AttributionLocalisation"``, ``"Sparseness"``,
            ``"TopKIntersection"``; *our* definition and defaults are used either way).
        **options: keyword arguments of our metric function (``ties=``, ``tolerance=``,
            ``normalize=``, ``k=``).

    Returns:
        ``metric(model, x_batch, y_batch, a_batch, s_batch=None, explain_func=None,
        explain_func_kwargs=None) -> list[float]``: one score per image (NaN where ours is
        undefined, e.g. an empty mask). ``a_batch`` and ``s_batch`` are ``(N, H, W)`` or
        ``(N, 1, H, W)``; with ``a_batch=None`` the maps come from ``explain_func(model=model,
        inputs=x_batch, targets=y_batch, **explain_func_kwargs)`` (e.g. :func:`explain_func`).
    """
    functions = _metric_functions()
    key = QUANTUS_METRICS.get(name, name)
    if key not in functions:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(functions)} or {sorted(QUANTUS_METRICS)}")
    function, needs_masks = functions[key]

    def metric(
        model: Any = None,
        x_batch: Any = None,
        y_batch: Any = None,
        a_batch: Any = None,
        s_batch: Any = None,
        explain_func: Callable[..., Any] | None = None,
        explain_func_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        if a_batch is None:
            if explain_func is None:
                raise ValueError(f"{key}: give a_batch, or explain_func (and model, x_batch, y_batch) to compute it")
            a_batch = explain_func(model=model, inputs=x_batch, targets=y_batch, **(explain_func_kwargs or {}))
        maps = _as_maps(a_batch, "a_batch")
        if needs_masks:
            if s_batch is None:
                raise ValueError(f"{key} needs ground-truth masks: pass s_batch")
            scores = function(maps, _as_maps(s_batch, "s_batch").astype(bool), **options)
        else:
            scores = function(maps, **options)
        return [float(s) for s in scores]

    metric.__name__ = metric.__qualname__ = key
    metric.__doc__ = f"saliency-gym's {key} with Quantus's argument names (see as_quantus_metric)."
    return metric
