"""Boundary checks shared by every public entry point.

Each helper raises :class:`TypeError` for a wrong kind of value and :class:`ValueError` for a
value of the right kind that is out of its allowed range, with a message that says what was
received and what is allowed. Keeping them in one place keeps the messages consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

#: Slack allowed on the [0, 1] pixel range (interpolation and float round-off).
RANGE_TOLERANCE = 1e-4


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ``ValueError`` listing them."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking its type and bounds (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` after checking its type and bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not exclusive_minimum and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def as_image_batch(
    images: Any,
    *,
    name: str = "images",
    expected_shape: Sequence[int] | None = None,
    check_range: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert ``images`` to a float32 ``(N, C, H, W)`` tensor, validating it on the way.

    Accepts a NumPy array or a tensor of floating dtype, shaped ``(N, C, H, W)`` (a single
    ``(C, H, W)`` image is *not* silently promoted: callers decide that). Values must lie in
    [0, 1] (up to :data:`RANGE_TOLERANCE`) unless ``check_range`` is false. ``expected_shape`` is
    the per-image ``(C, H, W)``.
    """
    if isinstance(images, np.ndarray):
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(
                f"{name} must have a floating dtype with values in [0, 1], got {images.dtype}; "
                "convert uint8 images with `images.astype(np.float32) / 255`"
            )
        array = np.ascontiguousarray(images)
        tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    elif isinstance(images, torch.Tensor):
        if not torch.is_floating_point(images):
            raise TypeError(
                f"{name} must have a floating dtype with values in [0, 1], got {images.dtype}; "
                "convert uint8 images with `images.float() / 255`"
            )
        tensor = images
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(images).__name__}")
    if tensor.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(tensor.shape)}")
    if expected_shape is not None and tuple(tensor.shape[1:]) != tuple(expected_shape):
        raise ValueError(
            f"{name} must have per-image shape (C, H, W) = {tuple(expected_shape)}, "
            f"got {tuple(tensor.shape[1:])}"
        )
    tensor = tensor.to(device=device, dtype=torch.float32)
    if check_range and tensor.numel() > 0:
        lo, hi = torch.aminmax(tensor)
        if not (torch.isfinite(lo) and torch.isfinite(hi)):
            raise ValueError(f"{name} contain NaN or infinite values")
        if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
            raise ValueError(
                f"{name} must have values in [0, 1], got range [{lo.item():.4g}, {hi.item():.4g}]"
            )
    return tensor


def as_label_array(labels: Any, *, n: int, num_classes: int, name: str = "labels") -> np.ndarray:
    """Convert ``labels`` to an ``int64`` array of length ``n`` with values in ``[0, num_classes)``."""
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
        labels = np.full(n, int(labels))
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D sequence of length {n}, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must be class ids in [0, {num_classes - 1}], got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def resolve_device(device: torch.device | str | None) -> torch.device:
    """``None`` means CUDA when available, else CPU; strings are validated by torch."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here")
    return resolved
