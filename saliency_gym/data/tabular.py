"""Tabular data sources: seeded rows of standardised features and a label.

The image :class:`~saliency_gym.data.base.DataSource` promises ``(C, H, W)`` images in [0, 1] and
evidence masks; tables have neither, so they get their own small interface in parallel:
:class:`TabularSource` is a finite, deterministic, indexable collection of
:class:`TabularSample` (``features (F,) float32``, ``label``), with :meth:`~TabularSource.get_batch`
and :meth:`~TabularSource.arrays` returning a :class:`TabularBatch`.

Shipped sources (bundled with scikit-learn, no download), used by ID-ExpO's tabular experiments:

* ``breast_cancer``: 569 rows, 30 features, 2 classes (Wisconsin diagnostic);
* ``wine``: 178 rows, 13 features, 3 classes.

The split is fixed, as for the digits: per class, a permutation from ``default_rng(0)`` puts 20%
of the rows in ``test`` and 10% of the rest in ``val``. Features are standardised with the mean
and standard deviation of the ``train`` split (so 0 is the training mean of every feature, the
natural "absent" baseline for insertion/deletion on tables).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from saliency_gym.data.base import stratified_split
from saliency_gym.validation import as_label_array, check_choice, check_int, class_names_for

SPLITS = ("train", "val", "test")
_SPLIT_SEED = 0
_LOADERS = {"breast_cancer": "load_breast_cancer", "wine": "load_wine"}

__all__ = [
    "ArrayTabularSource",
    "SklearnTabularSource",
    "TabularBatch",
    "TabularSample",
    "TabularSource",
    "available_tabular_datasets",
    "load_tabular",
]


@dataclass(frozen=True)
class TabularSample:
    """One row of a :class:`TabularSource`."""

    features: np.ndarray
    """``float32 (F,)`` feature values."""
    label: int
    """Class id in ``[0, num_classes)``."""


@dataclass(frozen=True)
class TabularBatch:
    """Rows stacked: ``features (N, F) float32`` and ``labels (N,) int64``."""

    features: np.ndarray
    labels: np.ndarray


class TabularSource(ABC):
    """A finite, deterministic, indexable collection of labelled feature rows.

    Subclasses implement :meth:`__len__` and :meth:`__getitem__` and set :attr:`feature_names`
    and :attr:`class_names`.
    """

    #: Column names; ``len(feature_names)`` is the number of features.
    feature_names: tuple[str, ...]
    #: Class names; ``len(class_names)`` is the number of classes.
    class_names: tuple[str, ...]
    #: Short identifier used in logs and tables.
    name: str = "table"

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> TabularSample: ...

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> TabularBatch:
        """Stack the rows at ``indices`` into one :class:`TabularBatch`."""
        samples = [self[int(i)] for i in np.asarray(indices).reshape(-1)]
        if not samples:
            return TabularBatch(np.zeros((0, self.num_features), np.float32), np.zeros(0, np.int64))
        return TabularBatch(
            np.stack([s.features for s in samples]).astype(np.float32, copy=False),
            np.array([s.label for s in samples], dtype=np.int64),
        )

    def arrays(self) -> TabularBatch:
        """All rows as one :class:`TabularBatch`."""
        return self.get_batch(np.arange(len(self)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n={len(self)}, features={self.num_features}, classes={self.num_classes})"


class ArrayTabularSource(TabularSource):
    """A tabular source over in-memory arrays (read-only views).

    Args:
        features: ``(N, F)`` finite floats.
        labels: ``(N,)`` integer class ids.
        feature_names: column names (default ``"f0"``, ``"f1"``, ...).
        class_names: class names (default ``"0"``..``"K-1"`` for ``K = max(labels) + 1``).
        name: identifier used in logs and tables.
    """

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray | Sequence[int],
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "table",
    ) -> None:
        x = np.asarray(features)
        if x.ndim != 2:
            raise ValueError(f"features must have shape (N, F), got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"features must be floating, got dtype {x.dtype}")
        if x.size and not np.isfinite(x).all():
            raise ValueError("features must be finite (no NaN or infinite values)")
        y = as_label_array(labels, n=x.shape[0], allow_scalar=False)
        names = class_names_for(y, class_names)
        if feature_names is None:
            feature_names = [f"f{i}" for i in range(x.shape[1])]
        if len(feature_names) != x.shape[1]:
            raise ValueError(f"{len(feature_names)} feature names for {x.shape[1]} features")
        self._features = x.astype(np.float32)
        self._labels = y
        self._features.flags.writeable = False
        self._labels.flags.writeable = False
        self.feature_names = tuple(str(f) for f in feature_names)
        self.class_names = names
        self.name = name

    def __len__(self) -> int:
        return self._features.shape[0]

    def __getitem__(self, index: int) -> TabularSample:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"index {index} is out of range for {self.name} with {n} rows")
        i = int(index) % n
        return TabularSample(self._features[i], int(self._labels[i]))

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> TabularBatch:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for {self.name} with {n} rows")
        return TabularBatch(self._features[idx], self._labels[idx])


@lru_cache(maxsize=4)
def _bundle(name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...], dict[str, np.ndarray]]:
    """Raw features, labels, names and the fixed split indices of a scikit-learn dataset."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, _LOADERS[name])()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)
    splits = stratified_split(y, _SPLIT_SEED)
    return x, y, tuple(bunch.feature_names), tuple(str(c) for c in bunch.target_names), splits


class SklearnTabularSource(ArrayTabularSource):
    """One of scikit-learn's bundled tables, standardised by the training split's statistics.

    Args:
        name: ``"breast_cancer"`` or ``"wine"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        n: optional cap on the number of rows (the first ``n`` of the split).
    """

    def __init__(self, name: str = "breast_cancer", split: str = "test", n: int | None = None) -> None:
        check_choice("tabular dataset", name, _LOADERS)
        check_choice("split", split, SPLITS)
        x, y, feature_names, class_names, splits = _bundle(name)
        train = x[splits["train"]]
        self.mean = train.mean(axis=0).astype(np.float32)
        std = train.std(axis=0)
        self.std = np.where(std > 0, std, 1.0).astype(np.float32)
        idx = splits[split]
        if n is not None:
            idx = idx[: check_int("n", n, minimum=1)]
        super().__init__((x[idx] - self.mean) / self.std, y[idx], feature_names, class_names, name=name)
        self.split = split


def available_tabular_datasets() -> list[str]:
    """Names accepted by :func:`load_tabular`."""
    return sorted(_LOADERS)


def load_tabular(name: str, split: str = "test", **kwargs: Any) -> SklearnTabularSource:
    """Build a shipped tabular source by name (``"breast_cancer"``, ``"wine"``).

    Args:
        name: one of :func:`available_tabular_datasets`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        **kwargs: passed to :class:`SklearnTabularSource` (``n``).
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    if name not in _LOADERS:
        raise ValueError(f"unknown tabular dataset {name!r}; available: {available_tabular_datasets()}")
    return SklearnTabularSource(name, split, **kwargs)
