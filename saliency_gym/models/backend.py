"""How a :class:`~saliency_gym.classifier.FrozenClassifier` runs its forward passes fast.

:class:`~saliency_gym.classifier.FrozenClassifier` owns the query API (input checks, batches,
query counting, output checks). What only makes a forward pass cheaper on a device, without
changing its values beyond float round-off, lives here:

* :class:`BackendOptions`: mixed precision (``amp``, ``amp_dtype``) and the ``channels_last``
  memory format, each on by default for CUDA devices and resolved per device;
* :func:`optimize_for_inference`: an inference-only copy of a module (traced, frozen TorchScript
  graph with batch norm folded into the convolutions, or a ``torch.fx`` fusion as a fallback);
* automatic batch sizing: :func:`measure_activation_bytes` (the per-image activation footprint of
  one forward pass) and :func:`auto_batch_size` (a memory budget over that footprint).

Measured throughput of these options: see ``benchmarks/bench_photos_speed.py``.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: ``batch_size="auto"`` on a CPU: the activation memory one forward pass may use (64 MiB). Far
#: below what would exhaust memory, on purpose: on a CPU throughput peaks when a batch's working set
#: stays in the last-level cache, so a large model gets small batches (a few images at 224x224)
#: while small models still reach :data:`AUTO_MAX_BATCH_CPU`. Pass ``memory_budget`` to trade
#: speed for fewer, larger calls.
AUTO_MEMORY_BUDGET_CPU = 64 << 20
#: ``batch_size="auto"`` on CUDA: the fraction of the device's free memory (what the driver reports
#: free plus what PyTorch's caching allocator holds unused) one forward pass may use.
AUTO_MEMORY_FRACTION_CUDA = 0.5
#: Upper bounds of the automatic batch size. On a CPU, batches beyond a few dozen images gain no
#: throughput (the working set leaves the caches), they only cost memory; accelerators want large
#: batches.
AUTO_MAX_BATCH_CPU = 64
AUTO_MAX_BATCH_CUDA = 1024
#: Images of the probe pass that measures the per-image activation footprint.
AUTO_PROBE_IMAGES = 2
#: CPU estimate of the live activation memory of one image, from the outputs of the leaf modules
#: seen in the probe pass: this many times the largest single output (a layer's input and output,
#: a residual branch kept alive and the convolution workspace), plus the input image itself.
#: Inference frees every other intermediate as soon as it is consumed. For a callable that is not
#: an ``nn.Module`` (no hooks to read) the estimate is this many times the input image instead:
#: :data:`AUTO_CALLABLE_INPUT_FACTOR`.
AUTO_CPU_PEAK_FACTOR = 4
AUTO_CALLABLE_INPUT_FACTOR = 32
#: Mixed-precision dtypes a classifier may run in (``amp_dtype``).
AMP_DTYPES = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class BackendOptions:
    """Mixed precision and memory format of a classifier's inference passes, as asked for.

    ``None`` means "the device's default": on for CUDA, off elsewhere (and ``amp_dtype``: bfloat16
    where the GPU supports it, else float16). Mixed precision only ever runs on CUDA (CPU autocast
    is slower than float32 on most CPUs); ``channels_last`` is allowed on a CPU (same values up to
    float round-off).
    """

    amp: bool | None = None
    amp_dtype: torch.dtype | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        for option, value in (("amp", self.amp), ("channels_last", self.channels_last)):
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"{option} must be True, False or None (on for CUDA), got {value!r}")
        if self.amp_dtype is not None and self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be torch.bfloat16, torch.float16 or None, got {self.amp_dtype!r}")

    def amp_on(self, device: torch.device) -> bool:
        """Whether inference on ``device`` runs in mixed precision (only ever on CUDA)."""
        wanted = device.type == "cuda" if self.amp is None else self.amp
        return bool(wanted) and device.type == "cuda"

    def autocast_dtype(self, device: torch.device) -> torch.dtype:
        """The autocast dtype used on ``device`` when :meth:`amp_on` is true."""
        if self.amp_dtype is not None:
            return self.amp_dtype
        if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16

    def channels_last_on(self, device: torch.device) -> bool:
        """Whether weights and inputs use ``channels_last`` memory format on ``device``."""
        return device.type == "cuda" if self.channels_last is None else self.channels_last

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision on ``device`` when :meth:`amp_on`, else nothing."""
        if self.amp_on(device):
            return torch.autocast(device_type="cuda", dtype=self.autocast_dtype(device))
        return contextlib.nullcontext()


def auto_batch_size(per_image_bytes: int, device: torch.device, memory_budget: int | None) -> int:
    """The automatic batch size: ``memory_budget`` (``None``: :data:`AUTO_MEMORY_BUDGET_CPU` on a
    CPU, :data:`AUTO_MEMORY_FRACTION_CUDA` of the free memory on CUDA) over the per-image
    footprint, clamped to ``[1, AUTO_MAX_BATCH_CPU]`` (``AUTO_MAX_BATCH_CUDA`` on CUDA)."""
    if device.type == "cuda":
        budget = memory_budget if memory_budget is not None else free_cuda_bytes(device)
        cap = AUTO_MAX_BATCH_CUDA
    else:
        budget = memory_budget if memory_budget is not None else AUTO_MEMORY_BUDGET_CPU
        cap = AUTO_MAX_BATCH_CPU
    return int(max(1, min(cap, budget // max(per_image_bytes, 1))))


def free_cuda_bytes(device: torch.device) -> int:
    """:data:`AUTO_MEMORY_FRACTION_CUDA` of the memory a forward pass on ``device`` can still get:
    what the driver reports free plus what PyTorch's caching allocator reserved but does not use."""
    free, _total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(AUTO_MEMORY_FRACTION_CUDA * (free + cached))


def measure_activation_bytes(
    model: Callable[[torch.Tensor], Any],
    probe: torch.Tensor,
    device: torch.device,
    *,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    fast_forward: Callable[[torch.Tensor], Any],
) -> int:
    """Bytes of memory one image of ``probe`` needs in an inference pass.

    On CUDA: the peak of ``torch.cuda.max_memory_allocated`` over ``fast_forward(prepare(probe))``
    (the pass inference really runs: optimised copy, autocast). On a CPU: an estimate from the
    outputs of the leaf modules of ``model`` in an eager pass (see :data:`AUTO_CPU_PEAK_FACTOR`);
    a plain callable, or a TorchScript module whose layers cannot be hooked, is not measured: its
    estimate is :data:`AUTO_CALLABLE_INPUT_FACTOR` times the input size. Runs under
    :func:`torch.inference_mode`; ``prepare`` normalises the probe and sets its memory format.
    """
    n = probe.shape[0]
    input_bytes = probe[0].numel() * probe.element_size()
    with torch.inference_mode():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            fast_forward(prepare(probe))
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - before
            return max(int(peak // n), input_bytes)
        if not isinstance(model, nn.Module):  # nothing to hook: no need to call it
            return AUTO_CALLABLE_INPUT_FACTOR * input_bytes
        largest = 0

        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            nonlocal largest
            tensors = output if isinstance(output, (tuple, list)) else (output,)
            size = sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))
            largest = max(largest, size)

        leaves = [m for m in model.modules() if not list(m.children())] or [model]
        handles = []
        try:
            handles = [m.register_forward_hook(record) for m in leaves]
        except RuntimeError:  # e.g. a scripted module; treated as a plain callable below
            largest = 0
        try:
            if handles:
                model(prepare(probe))
        finally:
            for handle in handles:
                handle.remove()
    if largest == 0:  # no hook fired (a TorchScript module runs its own graph)
        return AUTO_CALLABLE_INPUT_FACTOR * input_bytes
    return int(AUTO_CPU_PEAK_FACTOR * largest // n + input_bytes)


def optimize_for_inference(
    module: nn.Module, input_shape: Sequence[int], device: torch.device, *, channels_last: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    """An inference-only copy of ``module``: traced, frozen, batch norm folded (TorchScript).

    ``channels_last`` traces with an input in that memory format (the format inference feeds).
    Under mixed precision (CUDA) the copy runs inside :func:`torch.autocast` like the eager module.
    Only for modules whose forward has no data-dependent control flow (it is traced once); values
    agree with eager mode to about 1e-5.

    TorchScript is deprecated in recent PyTorch releases but remains the fastest way to run small
    CNNs on a CPU without a compile step; where it is unavailable or fails (a module with
    data-dependent control flow, say), the copy falls back to ``torch.fx`` conv/batch-norm fusion,
    and failing that to the eager module. A fallback is announced with a :class:`UserWarning` that
    names the path taken and why: it is still correct, only slower.
    """
    example = torch.rand(2, *input_shape, device=device)
    if channels_last and example.ndim == 4:
        example = example.contiguous(memory_format=torch.channels_last)
    reference = copy.deepcopy(module).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(reference, example)
            fast = torch.jit.optimize_for_inference(traced)
            fast(example)
        return fast
    except Exception as exc:  # noqa: BLE001 - any failure means: use a simpler, still correct path
        reason = f"TorchScript tracing of {type(module).__name__} failed ({type(exc).__name__}: {exc})"
    try:
        from torch.fx.experimental.optimization import fuse

        fused: nn.Module = fuse(reference)
    except Exception as exc:  # noqa: BLE001
        warnings.warn(
            f"optimize=True: {reason}, and torch.fx fusion failed too ({type(exc).__name__}: {exc}); "
            "falling back to the eager module",
            UserWarning,
            stacklevel=2,
        )
        return module
    warnings.warn(f"optimize=True: {reason}; falling back to torch.fx conv/batch-norm fusion", UserWarning, stacklevel=2)
    return fused


def to_memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` in ``channels_last`` memory format when that is on and ``x`` is 4-D, else ``x``."""
    if channels_last and x.ndim == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


__all__ = [
    "AMP_DTYPES",
    "AUTO_CALLABLE_INPUT_FACTOR",
    "AUTO_CPU_PEAK_FACTOR",
    "AUTO_MAX_BATCH_CPU",
    "AUTO_MAX_BATCH_CUDA",
    "AUTO_MEMORY_BUDGET_CPU",
    "AUTO_MEMORY_FRACTION_CUDA",
    "AUTO_PROBE_IMAGES",
    "BackendOptions",
    "auto_batch_size",
    "free_cuda_bytes",
    "measure_activation_bytes",
    "optimize_for_inference",
    "to_memory_format",
]
