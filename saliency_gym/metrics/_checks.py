"""Boundary checks shared by the metric evaluators (saliency maps and ground-truth masks).

Like :mod:`saliency_gym.validation`, every helper raises :class:`TypeError` for a wrong kind of
value and :class:`ValueError` for a value of the right kind that is out of range, and says what was
received and what is allowed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier


def check_classifier(classifier: Any) -> FrozenClassifier:
    """Return ``classifier`` if it is a :class:`FrozenClassifier`, else raise a ``TypeError``."""
    if not isinstance(classifier, FrozenClassifier):
        raise TypeError(
            f"classifier must be a FrozenClassifier, got {type(classifier).__name__}; wrap a model "
            "with saliency_gym.FrozenClassifier(model, input_shape) or use load_classifier(name)"
        )
    return classifier


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(value).__name__}")


def _describe_indices(bad: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in bad[:5])
    return shown + (f", ... ({len(bad)} in all)" if len(bad) > 5 else "")


def as_map_batch(
    maps: Any,
    *,
    n: int | None = None,
    shape: tuple[int, int] | None = None,
    name: str = "maps",
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
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must hold one map per image: expected {n} maps, got {arr.shape[0]}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{name} must have the images' spatial size (H, W) = {tuple(shape)}, got {tuple(arr.shape[1:])}"
        )
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
    masks: Any,
    *,
    n: int | None = None,
    shape: tuple[int, int] | None = None,
    name: str = "masks",
) -> np.ndarray:
    """Validate ground-truth masks and return them as a ``bool (N, H, W)`` array.

    Boolean arrays are taken as they are; integer or float arrays must hold only 0 and 1.
    """
    arr = _to_numpy(masks, name)
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (N, H, W), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must hold one mask per map: expected {n} masks, got {arr.shape[0]}")
    if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have the maps' size (H, W) = {tuple(shape)}, got {tuple(arr.shape[1:])}")
    if arr.dtype == bool:
        return arr
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be boolean (or 0/1 numbers), got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must be boolean or hold only 0 and 1, got other values")
    return arr.astype(bool)
