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


def check_env_id(env_id: Any, prefix: str | tuple[str, ...], what: str = "environment") -> str:
    """``env_id`` if it is a registered Gymnasium id starting with ``prefix`` (one of them, for a
    tuple); else a ``ValueError`` listing the registered ids with that prefix."""
    import gymnasium as gym

    if not isinstance(env_id, str) or env_id not in gym.registry or not env_id.startswith(prefix):
        known = sorted(i for i in gym.registry if i.startswith(prefix))
        raise ValueError(f"unknown {what} {env_id!r}; choose one of {known}")
    return env_id


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking its type and bounds (inclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    value = int(value)
    _check_bounds(name, value, minimum, maximum)
    return value


def _check_bounds(
    name: str, value: float, minimum: float | None, maximum: float | None, exclusive_minimum: bool = False
) -> None:
    """Raise a ``ValueError`` when ``value`` lies outside ``[minimum, maximum]`` (``(minimum, ...`` when exclusive)."""
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum}, got {value}")
        if not exclusive_minimum and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")


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
    _check_bounds(name, value, minimum, maximum, exclusive_minimum)
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


def as_label_array(
    labels: Any,
    *,
    n: int,
    num_classes: int | None = None,
    name: str = "labels",
    allow_scalar: bool = True,
) -> np.ndarray:
    """Convert ``labels`` to an ``int64`` array of length ``n`` with values in ``[0, num_classes)``.

    The one check of class ids, shared by the metrics and explainers (targets, foils) and the data
    sources (labels).

    Args:
        labels: a sequence, NumPy array or tensor of integer class ids; with ``allow_scalar`` also
            one ``int`` that stands for all ``n``.
        n: the required length.
        num_classes: the number of classes; ``None`` only requires non-negative ids.
        name: how the argument is called in error messages.
        allow_scalar: whether one ``int`` is broadcast to ``n`` labels.

    Raises:
        TypeError: the labels are not integers.
        ValueError: wrong shape, or a class id out of range.
    """
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    if allow_scalar and isinstance(labels, (int, np.integer)) and not isinstance(labels, bool):
        labels = np.full(n, int(labels))
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (a 1-D sequence of length {n}), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if not arr.size:
        return arr
    if num_classes is None:
        if arr.min() < 0:
            raise ValueError(f"{name} must be non-negative class ids, got minimum {arr.min()}")
    elif arr.min() < 0 or arr.max() >= num_classes:
        raise ValueError(
            f"{name} must be class ids in [0, {num_classes - 1}], got range [{arr.min()}, {arr.max()}]"
        )
    return arr


def class_names_for(labels: np.ndarray, class_names: Sequence[str] | None) -> tuple[str, ...]:
    """The class names of a data source: ``class_names`` checked against validated ``labels``, or
    ``("0", ..., "K-1")`` for ``K = max(labels) + 1`` (one class for no labels)."""
    if class_names is None:
        return tuple(str(i) for i in range(int(labels.max()) + 1 if labels.size else 1))
    if labels.size and labels.max() >= len(class_names):
        raise ValueError(f"labels go up to {labels.max()} but only {len(class_names)} class names were given")
    return tuple(str(c) for c in class_names)


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(value).__name__}")


def _describe_indices(bad: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in bad[:5])
    return shown + (f", ... ({len(bad)} in all)" if len(bad) > 5 else "")


def _check_stack(
    arr: np.ndarray, *, n: int | None, shape: tuple[int, int] | None, name: str, item: str, of: str
) -> None:
    """Check that ``arr`` is ``(N, H, W)``: ``n`` items (one per ``of``) of size ``shape``."""
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must hold one {item} per {of}: expected {n} {item}s, got {arr.shape[0]}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have the {of}s' spatial size (H, W) = {tuple(shape)}, got {tuple(arr.shape[1:])}")


def as_map_batch(
    maps: Any, *, n: int | None = None, shape: tuple[int, int] | None = None, name: str = "maps"
) -> np.ndarray:
    """Validate saliency maps and return them as a ``float64 (N, H, W)`` array.

    Args:
        maps: NumPy array or tensor ``(N, H, W)`` of real (or boolean) values.
        n: the required number of maps (one per image), if known.
        shape: the required ``(H, W)``, if known (the images' spatial size).
        name: how the argument is called in error messages.

    Raises:
        TypeError: not an array, or a complex / non-numeric dtype.
        ValueError: wrong rank, wrong size, or NaN / infinite values (the indices of the offending
            maps are listed, since a NaN silently corrupts any ranking built on the map).
    """
    arr = _to_numpy(maps, name)
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    _check_stack(arr, n=n, shape=shape, name=name, item="map", of="image")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} contain NaN or infinite values (map index {_describe_indices(bad)}); "
            "saliency maps must be finite to be ranked"
        )
    return arr


def as_mask_batch(
    masks: Any, *, n: int | None = None, shape: tuple[int, int] | None = None, name: str = "masks"
) -> np.ndarray:
    """Validate ground-truth masks and return them as a ``bool (N, H, W)`` array.

    Boolean arrays are taken as they are; integer or float arrays must hold only 0 and 1.
    """
    arr = _to_numpy(masks, name)
    _check_stack(arr, n=n, shape=shape, name=name, item="mask", of="map")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be boolean (or 0/1 numbers), got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be boolean or hold only 0 and 1, got other values")
    return arr.astype(bool)


def resolve_device(device: torch.device | str | None) -> torch.device:
    """The one device resolver of saliency-gym: ``None`` or ``"auto"`` means CUDA when available,
    else CPU; other strings are validated by torch, and a CUDA device without CUDA is an error
    (never a silent CPU run)."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available here")
    return resolved
