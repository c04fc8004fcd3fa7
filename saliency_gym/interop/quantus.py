"""Quantus adapter: our explainers as a Quantus ``explain_func``, our metrics Quantus-style.

Quantus (Hedström et al., JMLR 2023) evaluates explanations with metric objects called as
``metric(model=..., x_batch=..., y_batch=..., a_batch=..., s_batch=..., explain_func=...,
explain_func_kwargs=...)``. This module plugs saliency-gym into both ends:

* :func:`explain_func` has Quantus's ``explain_func(model, inputs, targets, **kwargs)``
  signature and builds any registered explainer by name (:func:`make_explainer`), so
  ``quantus.PointingGame()(..., explain_func=explain_func, explain_func_kwargs={"method": "rise"})``
  evaluates our methods. It takes the keywords Quantus itself adds (``device=`` from a metric's
  ``__call__``, ``method=`` from ``quantus.evaluate``, whose Captum names such as ``"Saliency"``
  map to ours), Quantus's layout keywords (``channel_first``, ``reduce_axes``, ``keepdims``) and
  ``normalize=`` for a model that takes normalised inputs.
* :func:`as_quantus_metric` returns our metrics as callables with Quantus's argument names,
  ``metric(model, x_batch, y_batch, a_batch, s_batch, ..., device=...) -> list``: the localisation
  and sparsity metrics, and RISE's **insertion** and **deletion** (one AUC per image; the model is
  an ``nn.Module`` or a :class:`FrozenClassifier`).

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
* ``PixelFlipping(features_in_step=W, perturb_baseline=0.0)`` on a **one-channel** model = our
  ``deletion`` curve (``step=W``, substrate zeros) without its first point (the unperturbed
  image), probabilities of ``y_batch`` in both. Quantus ranks each channel of a broadcast map as a
  separate feature and requires ``features_in_step`` to divide ``H * W``, so on three channels
  its steps do not fall on whole pixels. Its AUC (``return_auc_per_sample``) is ``np.trapz`` with
  ``dx=1`` over those points, not RISE's normalised area in [0, 1]. Quantus has no insertion
  metric; ours starts from a blur, as RISE's does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier

__all__ = ["QUANTUS_METHODS", "QUANTUS_METRICS", "as_quantus_metric", "explain_func"]

#: Quantus's (Captum's) method names and the saliency-gym explainer each runs, so that
#: ``quantus.evaluate(xai_methods={"Saliency": explain_func, ...})``, which passes its dictionary
#: key as ``method``, runs ours. Our implementation and defaults are used (e.g. ``gradient`` is the
#: absolute gradient summed over channels); other names are looked up as registered explainers.
QUANTUS_METHODS = {
    "Gradient": "gradient",
    "Saliency": "gradient",
    "GradCAM": "gradcam",
    "LayerGradCam": "gradcam",
    "IntegratedGradients": "integrated_gradients",
    "InputXGradient": "input_x_gradient",
    "GradientShap": "gradient_shap",
    "DeepLift": "deeplift",
    "Occlusion": "occlusion",
    "SmoothGrad": "smoothgrad",
    "NoiseTunnel": "smoothgrad",
    "RISE": "rise",
}

#: Keywords of ``quantus.explain`` that configure Quantus's own back ends (Captum, Zennit,
#: tf-explain): they have no meaning for our explainers, so :func:`explain_func` rejects them with
#: a ``TypeError`` that says so (unless the chosen explainer has an option of that name).
QUANTUS_BACKEND_KEYWORDS = frozenset({
    "xai_lib", "xai_lib_kwargs", "attributor", "attributor_kwargs", "canonizer", "canonizer_kwargs",
    "composite", "composite_kwargs", "softmax", "gc_layer", "interpolate", "interpolate_mode",
    "num_samples", "noise", "constant_value", "return_shape", "pos_only", "neg_only",
})  # fmt: skip


def _module_device(model: nn.Module) -> torch.device:
    """The device of the module's first parameter or buffer (CPU for a module without any)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _torch_device(device: Any) -> torch.device | None:
    """Quantus's ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, its documented ``"gpu"``, a
    ``torch.device`` or ``None``) as a ``torch.device``."""
    if device is None:
        return None
    if isinstance(device, str) and device.strip().lower() == "gpu":
        return torch.device("cuda")
    return torch.device(device)


def _numpy(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _channels_first(arr: np.ndarray, channel_first: bool | None) -> np.ndarray:
    """``(N, C, H, W)`` from Quantus's ``channel_first=False`` layout ``(N, H, W, C)``; 4-D arrays
    are taken as channel-first otherwise (Quantus's metrics hand ``explain_func`` channel-first
    batches)."""
    return arr.transpose(0, 3, 1, 2) if channel_first is False and arr.ndim == 4 else arr


def _classifier_and_unit_images(
    model: nn.Module | FrozenClassifier, inputs: Any, *, device: Any = None, normalize: Any = None,
    channel_first: bool | None = None,
) -> tuple[FrozenClassifier, np.ndarray]:
    """The classifier to query and the ``float32 (N, C, H, W)`` images in [0, 1] it takes.

    A raw module is wrapped by :func:`saliency_gym.explainers.base.as_classifier` (as explainers
    and metrics wrap one) on ``device`` (default: where its parameters are). With ``normalize``
    (``"imagenet"``, ``(mean, std)``, ... as :func:`saliency_gym.models.model_files.parse_normalize`
    reads it) the inputs are taken as normalised for the module, the usual Quantus set-up: they
    are mapped back to [0, 1] and the module is wrapped with that normalisation, so the classifier
    computes exactly what the module computes on ``inputs``.
    """
    from saliency_gym.explainers.base import as_classifier
    from saliency_gym.models.model_files import parse_normalize

    x = _channels_first(_numpy(inputs), channel_first)
    if x.ndim != 4:
        raise ValueError(f"inputs must be (N, C, H, W), got shape {x.shape}")
    x = x.astype(np.float32, copy=False)
    norm = parse_normalize(normalize, channels=x.shape[1])
    if isinstance(model, FrozenClassifier):
        if norm is not None:
            raise ValueError(
                "normalize= is for a raw nn.Module that takes normalised inputs; a FrozenClassifier "
                "normalises inside (FrozenClassifier(..., normalize=(mean, std))), so pass it [0, 1] images"
            )
        return model, x
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a FrozenClassifier, got {type(model).__name__}")
    target_device = _torch_device(device) or _module_device(model)
    if norm is None:
        return as_classifier(model, x.shape[1:], device=target_device), x
    mean, std = (np.asarray(v, dtype=np.float32).reshape(1, -1, 1, 1) for v in norm)
    classifier = FrozenClassifier(model, x.shape[1:], device=target_device, normalize=norm, name=type(model).__name__)
    return classifier, (x * std + mean).astype(np.float32)


def _resolve_method(method: str) -> str:
    """Our explainer name for ``method``: a registered name, or a Quantus/Captum name."""
    from saliency_gym.explainers import available_explainers

    if method in QUANTUS_METHODS:
        return QUANTUS_METHODS[method]
    names = available_explainers()
    if method in names:
        return method
    raise ValueError(
        f"unknown method {method!r}: give a saliency-gym explainer ({', '.join(names)}) or a Quantus/Captum "
        f"name ({', '.join(sorted(QUANTUS_METHODS))})"
    )


def explain_func(
    model: nn.Module | FrozenClassifier,
    inputs: Any,
    targets: Any,
    method: str = "gradcam",
    *,
    device: Any = None,
    normalize: Any = None,
    channel_first: bool | None = None,
    reduce_axes: Sequence[int] | None = None,
    keepdims: bool = True,
    **options: Any,
) -> np.ndarray:
    """Explain ``inputs`` with saliency-gym's ``method``, with Quantus's ``explain_func`` signature.

    Quantus calls ``explain_func(model=..., inputs=..., targets=..., **explain_func_kwargs)``;
    its metrics add ``device=`` to ``explain_func_kwargs`` when their ``__call__`` got one, and
    ``quantus.evaluate`` adds ``method=`` (the key of its ``xai_methods`` dictionary). All of
    Quantus's ``explain`` keywords that mean something for our maps are honoured; those that only
    configure Quantus's own back ends (:data:`QUANTUS_BACKEND_KEYWORDS`) are a ``TypeError``.

    Args:
        model: the ``nn.Module`` Quantus passes (or a :class:`FrozenClassifier`). A module is
            wrapped as ``FrozenClassifier(model, inputs.shape[1:])`` (the explainers' own
            wrapping), which puts it in eval mode with frozen parameters, as Quantus does.
        inputs: ``(N, C, H, W)`` images (NumPy or torch), in [0, 1] unless ``normalize`` is given.
        targets: class ids, one per image (or one int, or ``None`` for the predicted class).
        method: a registered explainer name (:func:`saliency_gym.explainers.available_explainers`:
            ``"gradcam"``, ``"gradient"``, ``"rise"``, ...) or a Quantus/Captum name
            (:data:`QUANTUS_METHODS`: ``"Saliency"``, ``"IntegratedGradients"``, ...).
        device: Quantus's ``device`` (``"cpu"``, ``"cuda"``, ``"gpu"``, a ``torch.device``):
            where a raw module is run (default: the device of its parameters). A
            :class:`FrozenClassifier` owns its device, so it is ignored there.
        normalize: for a raw module that takes normalised inputs (ImageNet-normalised
            ``x_batch``, as in most Quantus set-ups): ``"imagenet"``, ``"m11"`` or
            ``(mean, std)``. The inputs are mapped back to [0, 1] and the module is wrapped with
            ``FrozenClassifier(..., normalize=...)``, so the model sees exactly ``inputs``.
            Without it, inputs outside [0, 1] are a ``ValueError`` that names this option.
        channel_first: Quantus's layout flag; ``False`` means ``(N, H, W, C)`` inputs (the maps
            then come back as ``(N, H, W, 1)``).
        reduce_axes: Quantus's axes summed over (the channel axis). Our maps are already one
            channel, so only the channel axis (``1`` or ``-1`` for its layout, or ``None``) is
            accepted.
        keepdims: keep the channel axis of size one (Quantus's default, ``True``) or drop it.
        **options: the explainer's options (e.g. ``n_masks=2000`` for RISE). An unknown option
            raises ``TypeError`` listing the accepted ones.

    Returns:
        ``float32`` maps: ``(N, 1, H, W)`` (the single-channel layout Quantus's own ``explain``
        returns for PyTorch models), ``(N, H, W, 1)`` with ``channel_first=False``, ``(N, H, W)``
        with ``keepdims=False``.
    """
    from saliency_gym.explainers import explainer_options, make_explainer

    name = _resolve_method(method)
    backend = sorted(k for k in options if k in QUANTUS_BACKEND_KEYWORDS and k not in explainer_options(name))
    if backend:
        raise TypeError(
            f"explain_func got {backend}: these configure quantus.explain's own back ends (Captum, Zennit); "
            f"saliency-gym's explain_func runs our {name!r} explainer, whose options are {explainer_options(name)}"
        )
    channel_axis = 1 if channel_first is not False else 3
    if reduce_axes is not None and {int(a) % 4 for a in reduce_axes} != {channel_axis}:
        raise ValueError(
            f"reduce_axes={tuple(reduce_axes)}: saliency-gym's maps are summed over the channels already; "
            f"only the channel axis ({channel_axis}) can be given"
        )
    classifier, x = _classifier_and_unit_images(model, inputs, device=device, normalize=normalize, channel_first=channel_first)
    if targets is not None and not isinstance(targets, (int, np.integer)):
        targets = _numpy(targets).reshape(-1)
    maps = make_explainer(name, classifier, **options).explain(x, targets).maps.astype(np.float32)
    if not keepdims:
        return maps
    return maps[..., None] if channel_first is False else maps[:, None]


def _as_maps(a: Any, name: str, channel_first: bool | None = None) -> np.ndarray:
    """``(N, H, W)`` from ``(N, H, W)`` or single-channel ``(N, 1, H, W)`` arrays or tensors
    (``(N, H, W, 1)`` with ``channel_first=False``)."""
    arr = _channels_first(_numpy(a), channel_first)
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(
                f"{name} must have one channel, (N, 1, H, W) or (N, H, W), got shape {arr.shape}; sum "
                f"attributions over the channels first ({name}.sum(axis=1, keepdims=True), what "
                "quantus.explain's default reduce_axes=(1,) does)"
            )
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (N, H, W) or (N, 1, H, W), got shape {arr.shape}")
    return arr


def _metric_functions() -> dict[str, tuple[Callable[..., np.ndarray], bool]]:
    """name -> (our metric function on maps, whether it needs masks)."""
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


#: The metrics that query the model: RISE's insertion and deletion (AUC per image).
CURVE_METRICS = ("insertion", "deletion")

#: Quantus's metric class names and the saliency-gym metric each corresponds to (see the module
#: docstring for the options that make the definitions equal).
QUANTUS_METRICS = {
    "PointingGame": "pointing_game",
    "AttributionLocalisation": "energy_pointing_game",
    "Sparseness": "gini_index",
    "TopKIntersection": "top_k_intersection_with_mask",
}


def as_quantus_metric(name: str, **options: Any) -> Callable[..., list[Any]]:
    """One of our metrics as a Quantus-style callable.

    Args:
        name: ``"insertion"`` or ``"deletion"`` (RISE's curves, :func:`insertion_curve` /
            :func:`deletion_curve`: they query ``model``); ``"pointing_game"``,
            ``"energy_pointing_game"``, ``"gini_index"`` or ``"top_k_intersection_with_mask"`` (or the
            Quantus name of the same metric: ``"PointingGame"``, ``"AttributionLocalisation"``,
            ``"Sparseness"``, ``"TopKIntersection"``; *our* definition and defaults are used either
            way).
        **options: keyword arguments of our metric function (``ties=``, ``tolerance=``,
            ``normalize=``, ``k=`` for the map metrics; ``step=``, ``substrate=``, ``max_batch=``,
            ``generator=`` for the curves), and for the curves two of this adapter's:
            ``normalize=`` (``"imagenet"``, ``(mean, std)``: ``x_batch`` is normalised for a raw
            module, as :func:`explain_func` reads it) and ``return_curves=True`` (each image's
            curve instead of its AUC, as Quantus's ``PixelFlipping`` returns by default).

    Returns:
        ``metric(model, x_batch, y_batch, a_batch=None, s_batch=None, channel_first=None,
        explain_func=None, explain_func_kwargs=None, model_predict_kwargs=None, softmax=None,
        device=None, batch_size=None, custom_batch=None) -> list``: one score per image, as a
        Quantus metric returns (NaN where ours is undefined, e.g. an empty mask). For the curves
        the score is the AUC (RISE's normalised trapezoid over the ``ceil(H*W/step) + 1`` points,
        in [0, 1]); ``model`` is an ``nn.Module`` or a :class:`FrozenClassifier`, ``y_batch`` the
        explained classes (``None``: the predicted ones), ``softmax`` must be ``None`` or ``True``
        (the curves score probabilities) and ``device`` places a raw module. ``a_batch`` and
        ``s_batch`` are ``(N, H, W)`` or ``(N, 1, H, W)``; with ``a_batch=None`` the maps come from
        ``explain_func(model=model, inputs=x_batch, targets=y_batch, **explain_func_kwargs)``
        (e.g. :func:`explain_func`; ``device`` is added to its keywords as Quantus does).
        ``batch_size`` and ``custom_batch`` are accepted and unused (our metrics batch by the
        classifier's batch size); ``model_predict_kwargs`` must be empty.
    """
    functions = _metric_functions()
    key = QUANTUS_METRICS.get(name, name)
    if key not in functions and key not in CURVE_METRICS:
        raise ValueError(
            f"unknown metric {name!r}; choose one of {sorted([*functions, *CURVE_METRICS])} or {sorted(QUANTUS_METRICS)}"
        )
    curve = key in CURVE_METRICS
    options = dict(options)
    normalize = options.pop("normalize", None) if curve else None
    return_curves = bool(options.pop("return_curves", False)) if curve else False

    def metric(
        model: Any = None,
        x_batch: Any = None,
        y_batch: Any = None,
        a_batch: Any = None,
        s_batch: Any = None,
        channel_first: bool | None = None,
        explain_func: Callable[..., Any] | None = None,
        explain_func_kwargs: dict[str, Any] | None = None,
        model_predict_kwargs: dict[str, Any] | None = None,
        softmax: bool | None = None,
        device: Any = None,
        batch_size: int | None = None,
        custom_batch: Any = None,
    ) -> list[Any]:
        if model_predict_kwargs:
            raise TypeError(f"{key}: model_predict_kwargs are not supported (got {sorted(model_predict_kwargs)})")
        if a_batch is None:
            if explain_func is None:
                raise ValueError(f"{key}: give a_batch, or explain_func (and model, x_batch, y_batch) to compute it")
            kwargs = dict(explain_func_kwargs or {})
            if device is not None:
                kwargs.setdefault("device", device)
            a_batch = explain_func(model=model, inputs=x_batch, targets=y_batch, **kwargs)
        maps = _as_maps(a_batch, "a_batch", channel_first)
        if curve:
            return _curve_scores(key, model, x_batch, y_batch, maps, softmax=softmax, device=device,
                                 normalize=normalize, channel_first=channel_first, return_curves=return_curves,
                                 options=options)  # fmt: skip
        function, needs_masks = functions[key]
        if needs_masks:
            if s_batch is None:
                raise ValueError(f"{key} needs ground-truth masks: pass s_batch")
            scores = function(maps, _as_maps(s_batch, "s_batch", channel_first).astype(bool), **options)
        else:
            scores = function(maps, **options)
        return [float(s) for s in scores]

    metric.__name__ = metric.__qualname__ = key
    metric.__doc__ = f"saliency-gym's {key} with Quantus's argument names (see as_quantus_metric)."
    return metric


def _curve_scores(
    mode: str, model: Any, x_batch: Any, y_batch: Any, maps: np.ndarray, *, softmax: bool | None, device: Any,
    normalize: Any, channel_first: bool | None, return_curves: bool, options: dict[str, Any],
) -> list[Any]:
    """Insertion or deletion AUCs (or curves) of ``maps`` on ``x_batch``, Quantus's inputs."""
    from saliency_gym.metrics import deletion_curve, insertion_curve

    if softmax is False:
        raise ValueError(f"{mode} scores probabilities (RISE's definition); softmax=False (logits) is not supported")
    if model is None or x_batch is None:
        raise ValueError(f"{mode} queries the model: pass model and x_batch")
    classifier, x = _classifier_and_unit_images(model, x_batch, device=device, normalize=normalize, channel_first=channel_first)
    targets = None if y_batch is None else _numpy(y_batch).reshape(-1).astype(np.int64)
    function = insertion_curve if mode == "insertion" else deletion_curve
    result = function(classifier, x, maps, targets, **options)
    return [row.tolist() for row in result.curves] if return_curves else [float(v) for v in result.auc]
