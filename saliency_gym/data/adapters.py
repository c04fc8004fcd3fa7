"""Bring-your-own data: adapters from torch datasets and image folders to :class:`DataSource`.

Both adapters read lazily (one item per ``__getitem__``), so large datasets are never loaded whole.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_gym.data.base import DataSource, Sample
from saliency_gym.data.image_files import (
    IMAGE_EXTENSIONS,
    check_image_files,
    image_files_in,
    read_image,
)
from saliency_gym.validation import RANGE_TOLERANCE

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderSource", "TorchDatasetSource"]

#: At most this many loose files are named in an error.
_NAMED = 5


def _to_chw_float(image: Any, where: str) -> np.ndarray:
    """Convert a tensor/array/PIL image to a float32 ``(C, H, W)`` array in [0, 1]."""
    if type(image).__module__.startswith("PIL."):  # a PIL image: (H, W[, C]) uint8
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[:, :, None]
        image = np.moveaxis(image, -1, 0)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{where}: image must be float in [0, 1] or uint8, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[None]
    if image.ndim != 3:
        raise ValueError(f"{where}: image must have shape (C, H, W) or (H, W), got {image.shape}")
    if image.min() < -RANGE_TOLERANCE or image.max() > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"{where}: image values must lie in [0, 1], got [{image.min():.3g}, {image.max():.3g}]; "
            "undo any normalisation transform (the classifier wrapper applies its own)"
        )
    return np.clip(image, 0, 1).astype(np.float32)


class TorchDatasetSource(DataSource):
    """Wrap any map-style ``torch.utils.data.Dataset`` whose items are ``(image, label)``,
    ``(image, label, mask)`` or a dict with keys ``image``, ``label`` and optionally ``mask``.

    Images may be tensors, arrays or PIL images, ``(C, H, W)`` floats in [0, 1] or uint8.

    Args:
        dataset: the dataset (must implement ``__len__`` and ``__getitem__``).
        class_names: the class names; ``len(class_names)`` is the number of classes.
        name: identifier used in logs and tables.
    """

    def __init__(self, dataset: Any, class_names: Sequence[str], name: str = "torch-dataset") -> None:
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError("dataset must be a map-style dataset with __len__ and __getitem__")
        if len(dataset) == 0:
            raise ValueError("dataset is empty")
        if len(class_names) < 2:
            raise ValueError("class_names must name at least two classes")
        self.dataset = dataset
        self.class_names = tuple(str(c) for c in class_names)
        self.name = name
        first = self[0]
        self.image_shape = tuple(first.image.shape)
        self._has_masks = first.mask is not None

    @property
    def has_masks(self) -> bool:
        return self._has_masks

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        item = self.dataset[index]
        where = f"{self.name}[{index}]"
        if isinstance(item, dict):
            image, label, mask = item["image"], item["label"], item.get("mask")
        elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
            image, label = item[0], item[1]
            mask = item[2] if len(item) == 3 else None
        else:
            raise TypeError(f"{where}: items must be (image, label[, mask]) or a dict, got {type(item).__name__}")
        image = _to_chw_float(image, where)
        if hasattr(self, "image_shape") and image.shape != self.image_shape:
            raise ValueError(f"{where}: image shape {image.shape} differs from the first item's {self.image_shape}")
        label = int(label.item() if isinstance(label, torch.Tensor) else label)
        if not 0 <= label < self.num_classes:
            raise ValueError(f"{where}: label {label} is outside [0, {self.num_classes - 1}]")
        if mask is not None:
            mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask).astype(bool)
            if mask.shape != image.shape[1:]:
                raise ValueError(f"{where}: mask shape {mask.shape} differs from image {image.shape[1:]}")
        return Sample(image, label, mask)


class ImageFolderSource(DataSource):
    """Images in ``root/<class name>/<file>``, read with Pillow at a common size.

    Classes are the sorted subfolder names; files are read in sorted order, so the index of an
    image is stable. Each image is read by :func:`~saliency_gym.data.image_files.read_image`: scaled
    by its bit depth (8-bit by 255, 16-bit by 65535, float images must lie in [0, 1]) and
    centre-cropped to the aspect ratio of ``size`` before resizing, so photos are not squashed.
    Every file is checked when the source is built
    (:func:`~saliency_gym.data.image_files.check_image_files`), so a corrupt file is refused before
    any work starts; an image file directly in ``root`` is refused too (it has no class). Needs
    Pillow (installed with matplotlib; also in the ``[vision]`` extra).

    Args:
        root: the folder holding one subfolder per class.
        size: ``(height, width)`` (or one int) every image is brought to.
        mode: Pillow mode, ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
    """

    def __init__(self, root: str | os.PathLike[str], size: int | tuple[int, int] = 32, mode: str = "RGB") -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode={mode!r} is not supported; choose 'RGB' or 'L'")
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        if len(classes) < 2:
            raise ValueError(f"{root} must hold at least two class subfolders, found {classes}")
        loose = image_files_in(root)
        if loose:
            more = f" and {len(loose) - _NAMED} more" if len(loose) > _NAMED else ""
            names = ", ".join(p.name for p in loose[:_NAMED]) + more
            what = "it in a class folder" if len(loose) == 1 else "them in class folders"
            raise ValueError(
                f"{root} holds class sub-folders and also {len(loose)} image file(s) at its top "
                f"({names}), which would have no class; put {what} or use a flat folder"
            )
        self.files: list[tuple[Path, int]] = [
            (f, label) for label, cls in enumerate(classes) for f in image_files_in(root / cls)
        ]
        if not self.files:
            raise ValueError(f"no images with extensions {IMAGE_EXTENSIONS} under {root}")
        check_image_files((f for f, _ in self.files), where=str(root))
        self.root = root
        self.size = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.mode = mode
        self.class_names = tuple(classes)
        self.image_shape = (3 if mode == "RGB" else 1, *self.size)
        self.name = root.name

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        path, label = self.files[index]
        return Sample(read_image(path, self.size, self.mode), label, None)
