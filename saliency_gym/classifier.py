"""The frozen classifier every environment, explainer and metric queries.

:class:`FrozenClassifier` wraps any ``nn.Module`` (or a callable returning logits) and is the only
way the rest of saliency-gym touches a model. It

* validates inputs at the boundary (``(N, C, H, W)`` floats in [0, 1] of the expected shape),
* batches them (``batch_size`` images per forward pass, by default sized from a memory budget and
  the model's measured per-image activation footprint) on its ``device``,
* runs under :func:`torch.inference_mode` for probabilities (outputs returned as float32),
* checks the scores of its first forward passes against what was declared (logits or
  probabilities), and
* counts every image it is asked about in :attr:`queries`, the query budget benchmarks report.

Gradient-based explainers need a differentiable forward pass; :meth:`logits` provides it (still
counted) while the parameters stay frozen (``requires_grad=False``, eval mode).

How a forward pass is made fast on a device (mixed precision and ``channels_last`` on CUDA, the
TorchScript copy of ``optimize``, the automatic batch size) lives in
:mod:`saliency_gym.models.backend`; measured speeds are in ``benchmarks/bench_photos_speed.py``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.models.backend import (
    AMP_DTYPES,
    AUTO_MAX_BATCH_CPU,
    AUTO_MAX_BATCH_CUDA,
    AUTO_MEMORY_BUDGET_CPU,
    AUTO_PROBE_IMAGES,
    BackendOptions,
    auto_batch_size,
    measure_activation_bytes,
    optimize_for_inference,
    to_memory_format,
)
from saliency_gym.validation import as_image_batch, check_int, resolve_device

#: How many forward passes (the first ones) have their outputs checked (finite; probabilities when
#: declared so; not probabilities when declared logits). Later passes skip the checks.
OUTPUT_CHECKS = 2
#: Tolerance of the probability checks on declared probabilities (range and row sums).
PROBS_TOLERANCE = 1e-3
#: Row sums within this of 1 (with non-negative entries) make declared logits look like probabilities.
LOOKS_LIKE_PROBS_TOLERANCE = 1e-4


class FeatureTap(nn.Module):
    """``model`` returning ``(scores, activations of layer average-pooled to size)`` from one
    forward pass (a forward hook on ``layer``), so it can be traced and optimised like the model."""

    def __init__(self, model: nn.Module, layer: nn.Module, size: tuple[int, int]) -> None:
        super().__init__()
        self.model, self.layer = model, layer
        self.size: tuple[int, int] = (int(size[0]), int(size[1]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        captured: list[torch.Tensor] = []

        def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor) or output.ndim != 4:
                shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
                raise ValueError(f"the observed layer must output (N, C, h, w) activations, got {shape}")
            captured.append(output)

        handle = self.layer.register_forward_hook(keep)
        try:
            out = self.model(x)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(f"the observed layer ran {len(captured)} times in one forward pass; observe a layer that runs once")
        return out, torch.nn.functional.adaptive_avg_pool2d(captured[0].float(), self.size)


class FrozenClassifier:
    """A frozen, batched, query-counting image classifier.

    Args:
        model: an ``nn.Module`` or any callable mapping an ``(N, C, H, W)`` float tensor to
            ``(N, K)`` logits (or probabilities with ``outputs="probs"``).
        input_shape: per-image ``(C, H, W)`` the model accepts; checked on every call.
        class_names: names of the ``K`` classes (defaults to ``"0"``..``"K-1"``, ``K`` read from
            the first call when ``num_classes`` is not given).
        num_classes: number of classes, if ``class_names`` is not given.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``None`` for CUDA when available.
        batch_size: images per forward pass (larger inputs are split and re-joined), or
            ``"auto"`` (the default): ``memory_budget // per-image activation bytes`` clamped to
            ``[1, AUTO_MAX_BATCH_CPU]`` on a CPU (``AUTO_MAX_BATCH_CUDA`` on CUDA), so 224x224
            batches never exhaust memory. The per-image footprint is measured once, lazily, by a
            probe pass of :data:`~saliency_gym.models.backend.AUTO_PROBE_IMAGES` mid-grey images
            (uncounted, outputs not checked; see
            :func:`~saliency_gym.models.backend.measure_activation_bytes`).
            :attr:`batch_size` reads the chosen size (probing if needed),
            :attr:`activation_bytes_per_image` the measured footprint, :attr:`auto_batch_size`
            whether the size is automatic. Large models get small batches on a CPU, the shipped
            32x32 CNNs the maximum. Explainers and metrics that build large masked batches (RISE,
            insertion/deletion) follow it.
        memory_budget: bytes of activation memory a forward pass may use with
            ``batch_size="auto"``; ``None``: :data:`~saliency_gym.models.backend.AUTO_MEMORY_BUDGET_CPU`
            (64 MiB, sized for the CPU caches) on a CPU,
            :data:`~saliency_gym.models.backend.AUTO_MEMORY_FRACTION_CUDA` of the free CUDA memory
            at probe time on CUDA.
        outputs: ``"logits"`` (softmax is applied) or ``"probs"`` (already probabilities). The
            outputs of the first forward passes are checked against it: non-finite scores, or
            declared probabilities that are not, raise ``ValueError``; declared logits that look
            like probabilities warn.
        normalize: optional ``(mean, std)`` per channel applied inside the wrapper, so callers
            always pass [0, 1] images (typical for torchvision models).
        check_range: whether to verify that inputs lie in [0, 1] (cheap; keep it on).
        optimize: run :meth:`probs` through an inference-optimised copy of the module (batch-norm
            folded into convolutions, frozen TorchScript graph;
            :func:`~saliency_gym.models.backend.optimize_for_inference`). Only for modules whose
            forward has no data-dependent control flow (it is traced once); gradients
            (:meth:`logits`) always use the eager module. Values agree with eager mode to about
            1e-5. It stays off by default for wrapped modules because a trace silently freezes
            data-dependent control flow (the loaders of shipped models turn it on). With ``amp``
            the copy runs under autocast too. Speed-ups: see ``benchmarks/bench_photos_speed.py``.
        amp: run :meth:`probs` under :func:`torch.autocast` (mixed precision) on CUDA; ``None``
            (default): on for CUDA devices. Outputs are returned as float32 either way, and
            :meth:`logits` (gradients) always stays in float32. A no-op on other devices (CPU
            autocast is slower than float32 on most CPUs).
        amp_dtype: the autocast dtype, ``torch.bfloat16`` or ``torch.float16``; ``None``:
            bfloat16 where the GPU supports it, else float16.
        channels_last: keep the module's 4-D weights and the inputs in ``channels_last`` memory
            format (faster convolutions on tensor-core GPUs); ``None`` (default): on for CUDA.
            Allowed on a CPU (same values up to float round-off), off there by default.
        name: identifier used in logs and tables.
        meta: what is known about the model's provenance (for a shipped or saved classifier: its
            ``dataset``, ``path``, training metadata); empty for a model wrapped by hand.
    """

    def __init__(
        self,
        model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
        input_shape: Sequence[int],
        *,
        class_names: Sequence[str] | None = None,
        num_classes: int | None = None,
        device: torch.device | str | None = None,
        batch_size: int | str = "auto",
        outputs: str = "logits",
        normalize: tuple[Sequence[float], Sequence[float]] | None = None,
        check_range: bool = True,
        optimize: bool = False,
        name: str = "classifier",
        meta: Mapping[str, Any] | None = None,
        memory_budget: int | None = None,
        amp: bool | None = None,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool | None = None,
    ) -> None:
        if not callable(model):
            raise TypeError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
        if outputs not in ("logits", "probs"):
            raise ValueError(f"outputs={outputs!r} is not supported; choose 'logits' or 'probs'")
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) != 3 or min(input_shape) < 1:
            raise ValueError(f"input_shape must be (C, H, W) with positive sizes, got {input_shape}")
        self.device = resolve_device(device)
        self._batch_size: int | None = None
        #: the footprint measured by the ``batch_size="auto"`` probe (``None`` before it ran)
        self.activation_bytes_per_image: int | None = None
        self.batch_size = batch_size  # the setter validates "auto" too
        self.memory_budget = None if memory_budget is None else check_int("memory_budget", memory_budget, minimum=1)
        #: mixed precision and memory format as asked for (resolved per device by the properties)
        self.backend = BackendOptions(amp=amp, amp_dtype=amp_dtype, channels_last=channels_last)
        self.input_shape: tuple[int, int, int] = input_shape
        self.outputs = outputs
        self.check_range = bool(check_range)
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})
        if isinstance(model, nn.Module):
            model = model.to(self.device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
        self.model = model
        self._apply_memory_format()
        if class_names is not None:
            self.class_names: tuple[str, ...] | None = tuple(str(c) for c in class_names)
            if num_classes is not None and num_classes != len(self.class_names):
                raise ValueError("num_classes disagrees with len(class_names)")
        elif num_classes is not None:
            self.class_names = tuple(str(i) for i in range(check_int("num_classes", num_classes, minimum=2)))
        else:
            self.class_names = None
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None
        if normalize is not None:
            mean, std = (torch.as_tensor(v, dtype=torch.float32, device=self.device) for v in normalize)
            if mean.numel() != input_shape[0] or std.numel() != input_shape[0] or (std <= 0).any():
                raise ValueError("normalize must be (mean, std) with one value per channel and std > 0")
            self._mean, self._std = mean.view(1, -1, 1, 1), std.view(1, -1, 1, 1)
        self.optimize = bool(optimize)
        if self.optimize and not isinstance(model, nn.Module):
            raise TypeError("optimize=True needs an nn.Module (it is traced); pass optimize=False for callables")
        self._fast_model: Callable[[torch.Tensor], torch.Tensor] | None = None
        #: :meth:`probs_and_features`' modules per ``(layer id, grid)`` (see :meth:`_feature_tap`)
        self._feature_taps: dict[tuple[int, tuple[int, int]], Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = {}
        #: forward passes whose outputs are still to be checked (see :func:`check_scores`)
        self._output_checks_left = OUTPUT_CHECKS
        self.queries = 0

    # ------------------------------------------------------------------ properties
    @property
    def batch_size(self) -> int:
        """Images per forward pass; with ``batch_size="auto"`` the size chosen from the memory
        budget (the first read runs the uncounted probe pass, see the class docstring)."""
        if self._batch_size is None:
            self._batch_size = self._auto_batch_size()
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int | str) -> None:
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"batch_size must be a positive int or 'auto', got {value!r}")
            self.auto_batch_size = True
            self._batch_size = None
        else:
            self._batch_size = check_int("batch_size", value, minimum=1)
            self.auto_batch_size = False

    @property
    def amp(self) -> bool:
        """Whether :meth:`probs` runs in mixed precision (only ever on CUDA)."""
        return self.backend.amp_on(self.device)

    @property
    def amp_dtype(self) -> torch.dtype:
        """The autocast dtype :meth:`probs` uses when :attr:`amp` is on."""
        return self.backend.autocast_dtype(self.device)

    @property
    def channels_last(self) -> bool:
        """Whether weights and inputs use ``channels_last`` memory format."""
        return self.backend.channels_last_on(self.device)

    @property
    def num_classes(self) -> int:
        if self.class_names is None:
            self.probs(torch.full((1, *self.input_shape), 0.5), count=False)
        assert self.class_names is not None
        return len(self.class_names)

    @property
    def module(self) -> nn.Module:
        """The wrapped ``nn.Module`` (for Grad-CAM hooks and the like)."""
        if not isinstance(self.model, nn.Module):
            raise TypeError("this classifier wraps a plain callable, not an nn.Module")
        return self.model

    # ------------------------------------------------------------------ queries
    def reset_queries(self) -> int:
        """Set the query counter to zero and return the previous count."""
        previous, self.queries = self.queries, 0
        return previous

    @contextmanager
    def uncounted(self) -> Iterator[None]:
        """Queries made inside this block are not added to :attr:`queries`.

        For bookkeeping that is not part of the measured cost (an evaluation callback during
        training, a benchmark's reference scores); queries counted before and after are kept.
        """
        saved = self.queries
        try:
            yield
        finally:
            self.queries = saved

    def _prepare(self, images: Any, validate: bool = True) -> tuple[torch.Tensor, bool]:
        single = isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 3
        if single:
            images = images[None]
        if not validate and isinstance(images, torch.Tensor) and images.dtype == torch.float32:
            return images.to(self.device), single
        x = as_image_batch(
            images, expected_shape=self.input_shape, check_range=self.check_range, device=self.device
        )
        return x, single

    def _inference_model(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The module :meth:`probs` runs: the eager one, or its optimised copy (built once)."""
        if not self.optimize:
            return self.model
        if self._fast_model is None:
            self._fast_model = optimize_for_inference(
                self.module, self.input_shape, self.device, channels_last=self.channels_last
            )
        return self._fast_model

    def _apply_memory_format(self) -> None:
        """Put the module's 4-D weights in ``channels_last`` format when that option is on."""
        if self.channels_last and isinstance(self.model, nn.Module):
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for :meth:`probs` when :attr:`amp` is on (CUDA), else nothing."""
        return self.backend.autocast(self.device)

    def _model_input(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` and give it the memory format the module expects."""
        if self._mean is not None and self._std is not None:
            x = (x - self._mean) / self._std
        return to_memory_format(x, self.channels_last)

    def _auto_batch_size(self) -> int:
        """The automatic batch size: the memory budget over the measured per-image footprint."""
        probe = torch.full((AUTO_PROBE_IMAGES, *self.input_shape), 0.5, device=self.device)

        def fast_forward(x: torch.Tensor) -> Any:
            with self._autocast():
                return self._inference_model()(x)

        per_image = measure_activation_bytes(
            self.model, probe, self.device, prepare=self._model_input, fast_forward=fast_forward
        )
        self.activation_bytes_per_image = per_image
        return auto_batch_size(per_image, self.device, self.memory_budget)

    def _forward(self, x: torch.Tensor, fast: bool = False) -> torch.Tensor:
        x = self._model_input(x)
        if fast:
            with self._autocast():
                out = self._inference_model()(x)
        else:
            out = self.model(x)
        return self._checked_scores(out, x.shape[0])

    def _checked_scores(self, out: Any, n: int) -> torch.Tensor:
        """``out`` as float32 ``(n, K)`` scores, checked (shape, classes; the first passes' values)."""
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model must return (N, K) scores for N images, got {shape}")
        if self.class_names is None:
            self.class_names = tuple(str(i) for i in range(out.shape[1]))
        elif out.shape[1] != len(self.class_names):
            raise ValueError(f"the model returned {out.shape[1]} scores, expected {len(self.class_names)} classes")
        out = out.float()
        if self._output_checks_left > 0 and out.shape[0] > 0:
            self._output_checks_left -= 1
            check_scores(out.detach(), self.outputs, self.name)
        return out

    def logits(self, images: Any, *, count: bool = True) -> torch.Tensor:
        """Differentiable ``(N, K)`` scores (log-probabilities when the model outputs probabilities).

        Used by gradient explainers (Captum's ``forward_func``): gradients flow to the inputs, never
        to the frozen parameters. Not batched, since autograd needs the whole graph.
        """
        x, single = self._prepare(images)
        if count:
            self.queries += x.shape[0]
        out = self._forward(x)
        if self.outputs == "probs":
            out = out.clamp_min(1e-12).log()
        return out[0] if single else out

    def probs(self, images: Any, *, count: bool = True, validate: bool = True) -> torch.Tensor:
        """Class probabilities ``(N, K)`` (``(K,)`` for one ``(C, H, W)`` image) on :attr:`device`.

        Runs under :func:`torch.inference_mode` in chunks of :attr:`batch_size`; adds ``N`` to
        :attr:`queries` unless ``count`` is false. ``validate=False`` skips the input checks for
        float32 tensors built from already validated images (the environments' hot path).
        """
        x, single = self._prepare(images, validate)
        batch_size = self.batch_size
        with torch.inference_mode():
            chunks = []
            for start in range(0, x.shape[0], batch_size):
                out = self._forward(x[start : start + batch_size], fast=True)
                chunks.append(out.softmax(dim=1) if self.outputs == "logits" else out)
            if chunks:
                result = torch.cat(chunks)
            else:
                result = torch.zeros((0, self.num_classes if self.class_names else 0), device=self.device)
        if count:
            self.queries += x.shape[0]
        return result[0] if single else result

    __call__ = probs

    def probs_and_features(
        self,
        images: Any,
        layer: nn.Module,
        size: tuple[int, int],
        *,
        count: bool = True,
        validate: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities ``(N, K)`` and ``layer``'s activations average-pooled to ``size``
        (``(N, C, rows, cols)``, float32), both from the same forward pass.

        What the saliency-search environments' ``observe_features`` observe: the classifier's own
        spatial evidence on a grid, at no query beyond the one that scores the canvas. Runs the
        eager module (a forward hook on ``layer``; the traced copy of ``optimize`` has no layers),
        under :func:`torch.inference_mode`, in chunks of :attr:`batch_size`; counts ``N`` queries
        unless ``count`` is false. ``layer`` must be a submodule of :attr:`module` whose output is
        ``(N, C, h, w)`` (see :func:`saliency_gym.layers.resolve_named_layer`).
        """
        if not isinstance(self.model, nn.Module):
            raise TypeError("probs_and_features needs a classifier that wraps an nn.Module (its layers are hooked)")
        x, single = self._prepare(images, validate)
        tap = self._feature_tap(layer, (int(size[0]), int(size[1])))
        batch_size = self.batch_size
        with torch.inference_mode():
            probs, features = [], []
            for start in range(0, x.shape[0], batch_size):
                chunk = self._model_input(x[start : start + batch_size])
                with self._autocast():
                    out, pooled = tap(chunk)
                out = self._checked_scores(out, chunk.shape[0])
                probs.append(out.softmax(dim=1) if self.outputs == "logits" else out)
                features.append(pooled.float())
        if count:
            self.queries += x.shape[0]
        if not probs:
            return torch.zeros((0, self.num_classes), device=self.device), torch.zeros((0, 0, *size), device=self.device)
        p, f = torch.cat(probs), torch.cat(features)
        return (p[0], f[0]) if single else (p, f)

    def _feature_tap(self, layer: nn.Module, size: tuple[int, int]) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """The module that returns ``(scores, pooled activations of layer)``: eager, or (with
        ``optimize``) its inference-optimised copy, built once per layer and grid."""
        if not isinstance(self.model, nn.Module):
            raise TypeError("feature observations need a classifier that wraps an nn.Module")
        key = (id(layer), size)
        if key not in self._feature_taps:
            tap = FeatureTap(self.model, layer, size)
            with torch.inference_mode():  # a layer that cannot be observed fails here, clearly
                tap(self._model_input(torch.full((1, *self.input_shape), 0.5, device=self.device)))
            self._feature_taps[key] = (
                optimize_for_inference(tap, self.input_shape, self.device, channels_last=self.channels_last)  # type: ignore[assignment]
                if self.optimize else tap
            )  # fmt: skip
        return self._feature_taps[key]

    def predict(self, images: Any, *, count: bool = True) -> torch.Tensor:
        """Predicted class ids ``(N,)`` (``argmax`` of :meth:`probs`)."""
        return self.probs(images, count=count).argmax(dim=-1)

    def accuracy(self, images: Any, labels: Any) -> float:
        """Fraction of ``images`` whose predicted class equals ``labels`` (counts queries)."""
        predicted = self.predict(images).cpu().numpy()
        return float((predicted == np.asarray(labels)).mean())

    def to(self, device: torch.device | str | None) -> FrozenClassifier:
        """Move the wrapped model to ``device`` (in place) and return ``self``."""
        was_channels_last = self.channels_last
        self.device = resolve_device(device)
        self._fast_model = None  # rebuilt for the new device on the next call
        self._feature_taps = {}
        if self.auto_batch_size:  # re-measured on the new device
            self._batch_size = None
            self.activation_bytes_per_image = None
        if isinstance(self.model, nn.Module):
            self.model.to(self.device)
            if was_channels_last and not self.channels_last:
                self.model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        self._apply_memory_format()
        if self._mean is not None and self._std is not None:
            self._mean, self._std = self._mean.to(self.device), self._std.to(self.device)
        return self

    def __repr__(self) -> str:
        return (
            f"FrozenClassifier(name={self.name!r}, input_shape={self.input_shape}, "
            f"classes={None if self.class_names is None else len(self.class_names)}, "
            f"device={self.device}, queries={self.queries})"
        )


def check_scores(out: torch.Tensor, outputs: str, name: str) -> None:
    """Check the scores ``out`` of one of a classifier's first forward passes against what was
    declared (``outputs``: ``"logits"`` or ``"probs"``; ``name`` names the model in messages).

    Non-finite scores raise ``ValueError``; declared probabilities that are not (values outside
    [0, 1] or rows not summing to 1) raise ``ValueError``; declared logits whose rows are all
    non-negative and sum to 1 (on a batch of at least 2 images) warn that they look like
    probabilities. :class:`FrozenClassifier` checks only its first :data:`OUTPUT_CHECKS` passes,
    so the hot path stays free of the extra reductions.
    """
    finite = torch.isfinite(out)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        rows = int((~finite).any(dim=1).sum())
        raise ValueError(
            f"the model {name!r} returned {bad} non-finite score(s) (NaN or infinite) in "
            f"{rows} of {out.shape[0]} image(s); saliency-gym needs finite {outputs}"
        )
    sums = out.sum(dim=1)
    if outputs == "probs":
        lo, hi = out.min().item(), out.max().item()
        in_range = lo >= -PROBS_TOLERANCE and hi <= 1 + PROBS_TOLERANCE
        if not in_range or bool(((sums - 1).abs() > PROBS_TOLERANCE).any()):
            raise ValueError(
                f"the model {name!r} was declared with outputs='probs', but the model's outputs "
                f"do not look like probabilities (row sums in [{sums.min().item():.4g}, "
                f"{sums.max().item():.4g}], values in [{lo:.4g}, {hi:.4g}]; probabilities lie in "
                "[0, 1] and sum to 1); pass outputs='logits'"
            )
    elif (
        out.shape[0] >= 2
        and bool((out >= 0).all())
        and bool(((sums - 1).abs() <= LOOKS_LIKE_PROBS_TOLERANCE).all())
    ):
        warnings.warn(
            f"the model {name!r} was declared with outputs='logits', but its outputs look like "
            f"probabilities (non-negative, every row of a batch of {out.shape[0]} sums to 1); a "
            "softmax of probabilities flattens the scores: pass outputs='probs' if the model "
            "ends in a softmax",
            UserWarning,
            stacklevel=4,
        )


__all__ = [
    "AMP_DTYPES",
    "AUTO_MAX_BATCH_CPU",
    "AUTO_MAX_BATCH_CUDA",
    "AUTO_MEMORY_BUDGET_CPU",
    "LOOKS_LIKE_PROBS_TOLERANCE",
    "OUTPUT_CHECKS",
    "PROBS_TOLERANCE",
    "FeatureTap",
    "FrozenClassifier",
    "check_scores",
    "optimize_for_inference",
]
