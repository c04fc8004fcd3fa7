"""Built-in data sources by name: ``load_dataset("shapes", split="test")``."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from saliency_gym.data.base import DataSource
from saliency_gym.data.cluttered import ClutteredShapesSource
from saliency_gym.data.digits import DigitsSource
from saliency_gym.data.pairs import ShapePairsSource
from saliency_gym.data.photos import PhotosSource
from saliency_gym.data.shapes import ShapesSource

_BUILTIN: dict[str, Callable[..., DataSource]] = {
    "shapes": lambda **kw: ShapesSource(size=32, **kw),
    "shapes64": lambda **kw: ShapesSource(size=64, **kw),
    "digits": lambda **kw: DigitsSource(size=32, **kw),
    "shape_pairs": lambda **kw: ShapePairsSource(size=32, **kw),
    "shapes_cluttered": lambda **kw: ClutteredShapesSource(size=64, **kw),
    "photos": lambda **kw: PhotosSource(**kw),
    # The augmented training stream by name, for environment kwargs given as text (YAML, CLI).
    "photos_augmented": lambda **kw: PhotosSource(augment=True, **kw),
    # The photos agents' training stream: crops of the 40 training object photos and the 100
    # street photos (explained for the model's prediction: the street photos have no label).
    "photos_training": lambda **kw: PhotosSource(augment=True, **{"collection": "objects+street", "n": 1024, **kw}),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_BUILTIN)


def load_dataset(name: str, split: str = "test", **kwargs: Any) -> DataSource:
    """Build a shipped data source by name.

    Args:
        name: one of :func:`available_datasets` (``shapes``, ``shapes64``, ``digits``, ``shape_pairs``,
            ``shapes_cluttered``, ``photos``).
        split: ``"train"``, ``"val"`` or ``"test"`` (``photos``: ``"train"``, ``"test"`` or
            ``"all"``, see :class:`~saliency_gym.data.photos.PhotosSource`).
        **kwargs: passed to the source (e.g. ``n`` for the number of samples, ``seed`` for shapes;
            ``augment=True, n=256, seed=0`` for the augmented ``photos`` training stream, which
            needs scikit-image: ``pip install 'saliency-gym[imagenet]'``).
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    if name not in _BUILTIN:
        raise ValueError(f"unknown dataset {name!r}; available: {available_datasets()}")
    try:
        return _cached(name, split, tuple(sorted(kwargs.items())))
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return _BUILTIN[name](split=split, **kwargs)


@lru_cache(maxsize=16)
def _cached(name: str, split: str, kwargs: tuple[tuple[str, Any], ...]) -> DataSource:
    """Built-in sources are read-only and deterministic, so one instance per argument set is shared
    (generating the shapes test split takes a couple of seconds)."""
    return _BUILTIN[name](split=split, **dict(kwargs))
