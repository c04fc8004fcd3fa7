"""The data-source interface: seeded samples of (image, label, evidence mask).

A :class:`DataSource` is a finite, indexable collection. Images are ``float32`` arrays shaped
``(C, H, W)`` with values in [0, 1]; labels are class ids; the evidence mask is a boolean
``(H, W)`` array marking the pixels that carry the class evidence, or ``None`` where it is unknown.
Every source is deterministic: the same constructor arguments (including the seed) give the same
samples, so environments, metrics and benchmarks are reproducible.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from saliency_gym.validation import RANGE_TOLERANCE, as_label_array, class_names_for


@dataclass(frozen=True)
class Sample:
    """One item of a :class:`DataSource`."""

    image: np.ndarray
    """``float32`` array ``(C, H, W)`` with values in [0, 1]."""
    label: int
    """Class id in ``[0, num_classes)``."""
    mask: np.ndarray | None
    """Boolean ``(H, W)`` evidence mask, or ``None`` when the source has no ground truth."""


@dataclass(frozen=True)
class Batch:
    """Several samples stacked: ``images (N, C, H, W)``, ``labels (N,)``, ``masks (N, H, W)`` or None."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None


class DataSource(ABC):
    """A finite, deterministic, indexable collection of labelled images.

    Subclasses implement :meth:`__len__` and :meth:`__getitem__` and set :attr:`class_names` and
    :attr:`image_shape`; :meth:`get_batch` stacks samples and may be overridden for speed.
    """

    #: Human-readable class names; ``len(class_names)`` is the number of classes.
    class_names: tuple[str, ...]
    #: Per-image shape ``(C, H, W)``.
    image_shape: tuple[int, int, int]
    #: Short identifier used in logs and tables.
    name: str = "data"
    #: Whether the labels are real ground truth (``False`` for a fixed image explained without a
    #: known label, whose label 0 is a placeholder): ``target="label"`` needs real labels.
    has_label: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_masks(self) -> bool:
        """Whether samples carry ground-truth evidence masks."""
        return False

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Sample: ...

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        n = len(self)
        index = int(index)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {self.name} with {n} samples")
        return index % n

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        """Stack the samples at ``indices`` into one :class:`Batch`."""
        samples = [self[int(i)] for i in np.asarray(indices).reshape(-1)]
        if not samples:
            c, h, w = self.image_shape
            return Batch(
                np.zeros((0, c, h, w), np.float32),
                np.zeros(0, np.int64),
                np.zeros((0, h, w), bool) if self.has_masks else None,
            )
        images = np.stack([s.image for s in samples]).astype(np.float32, copy=False)
        labels = np.array([s.label for s in samples], dtype=np.int64)
        masks = None
        if self.has_masks:
            mask_list = [s.mask for s in samples if s.mask is not None]
            if len(mask_list) != len(samples):
                raise ValueError(f"{self.name} has masks, but some of its samples have none")
            masks = np.stack(mask_list)
        return Batch(images, labels, masks)

    def arrays(self) -> Batch:
        """All samples as one :class:`Batch` (fine for the small built-in sources)."""
        return self.get_batch(np.arange(len(self)))

    def channel_mean(self, max_samples: int = 512) -> np.ndarray:
        """Per-channel mean ``(C,)`` over the first ``max_samples`` images (the 'mean' substrate)."""
        images = self.get_batch(np.arange(min(len(self), max_samples))).images
        return images.mean(axis=(0, 2, 3)).astype(np.float32)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, n={len(self)}, "
            f"image_shape={self.image_shape}, classes={self.num_classes})"
        )


class ArraySource(DataSource):
    """A data source over in-memory arrays.

    Args:
        images: ``(N, C, H, W)`` floating array with values in [0, 1] (``(N, H, W)`` is read as one
            channel).
        labels: ``(N,)`` integer class ids.
        masks: optional ``(N, H, W)`` boolean evidence masks.
        class_names: names of the classes; defaults to ``("0", "1", ...)`` for ``max(labels) + 1``.
        name: identifier used in logs and tables.
        has_label: whether ``labels`` are ground truth (``False``: placeholders, see
            :attr:`DataSource.has_label`).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | Sequence[int],
        masks: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
        name: str = "arrays",
        has_label: bool = True,
    ) -> None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W) or (N, H, W), got {images.shape}")
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(
                f"images must be floating with values in [0, 1], got dtype {images.dtype}; "
                "convert uint8 with `images.astype(np.float32) / 255`"
            )
        if images.size and (
            not np.isfinite(images).all()
            or images.min() < -RANGE_TOLERANCE
            or images.max() > 1 + RANGE_TOLERANCE
        ):
            raise ValueError("images must be finite with values in [0, 1]")
        labels = as_label_array(labels, n=images.shape[0], allow_scalar=False)
        names = class_names_for(labels, class_names)
        if masks is not None:
            masks = np.asarray(masks)
            expected = (images.shape[0], images.shape[2], images.shape[3])
            if masks.shape != expected:
                raise ValueError(f"masks must have shape {expected}, got {masks.shape}")
            masks = masks.astype(bool, copy=False)
        self._images = np.clip(images.astype(np.float32, copy=False), 0.0, 1.0)
        self._labels = labels
        self._masks = masks
        for array in (self._images, self._labels, self._masks):
            if array is not None:
                array.flags.writeable = False  # samples are shared views: nobody may edit them
        self.class_names = names
        self.image_shape = tuple(int(s) for s in self._images.shape[1:])  # type: ignore[assignment]
        self.name = name
        self.has_label = bool(has_label)

    @property
    def has_masks(self) -> bool:
        return self._masks is not None

    def __len__(self) -> int:
        return self._images.shape[0]

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        mask = None if self._masks is None else self._masks[index]
        return Sample(self._images[index], int(self._labels[index]), mask)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> Batch:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for {self.name} with {n} samples")
        masks = None if self._masks is None else self._masks[idx]
        return Batch(self._images[idx], self._labels[idx], masks)


def stratified_split(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """A fixed per-class split of ``labels``' indices into ``train``, ``val`` and ``test``.

    Per class (in increasing order), a permutation from ``default_rng(seed)`` puts 20% of the
    indices in ``test`` and 10% of the rest in ``val``; each part is returned sorted.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(0.2 * len(idx)))
        rest = idx[n_test:]
        n_val = int(round(0.1 * len(rest)))
        parts["test"].append(idx[:n_test])
        parts["val"].append(rest[:n_val])
        parts["train"].append(rest[n_val:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
