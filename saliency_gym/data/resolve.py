"""Data for a classifier from one argument: a dataset name or a folder of images.

:func:`resolve_data_spec` is what every command calls for ``--data``: a registered name
(``shapes``, ``digits``, ...: :func:`~saliency_gym.data.load_dataset`), or a folder of images, read
lazily and resized to the classifier's input size:

* class sub-folders (``root/<class>/<image>``, :class:`~saliency_gym.data.ImageFolderSource`): the
  sub-folder names must be class names of the classifier (labels are then the classifier's class
  ids), or there must be exactly as many sub-folders as classes (labels in sorted folder order);
* a flat folder of images: :class:`UnlabelledImageFolder`, whose ``has_label`` is ``False`` (label 0
  is a placeholder; explain the predicted class instead).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data.adapters import IMAGE_EXTENSIONS, ImageFolderSource, _to_chw_float
from saliency_gym.data.base import DataSource, Sample
from saliency_gym.data.registry import available_datasets, load_dataset


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _pillow_mode(channels: int, where: str) -> str:
    if channels not in (1, 3):
        raise ValueError(
            f"images from {where} can be read for 1 or 3 channels; the classifier takes {channels}"
        )
    return "RGB" if channels == 3 else "L"


class UnlabelledImageFolder(DataSource):
    """The images directly inside ``root`` (sorted by name), resized to ``size``, without labels.

    Every sample's label is the placeholder 0 (:attr:`has_label` is ``False``); ``class_names`` are
    the classifier's, so environments and metrics can score any class.
    """

    has_label = False

    def __init__(
        self,
        root: str | os.PathLike[str],
        class_names: Sequence[str],
        size: tuple[int, int],
        mode: str = "RGB",
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        self.files = _images_in(root)
        if not self.files:
            raise ValueError(f"no images with extensions {IMAGE_EXTENSIONS} in {root}")
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode
        self.class_names = tuple(class_names)
        self.image_shape = (3 if mode == "RGB" else 1, self.size[0], self.size[1])
        self.name = root.name

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        from PIL import Image

        index = self._check_index(index)
        path = self.files[index]
        with Image.open(path) as img:
            resized = img.convert(self.mode).resize(
                (self.size[1], self.size[0]), Image.Resampling.BILINEAR
            )
            image = _to_chw_float(resized, str(path))
        return Sample(image, 0, None)


class _ClassifierLabels(DataSource):
    """An :class:`ImageFolderSource` whose labels are re-numbered to the classifier's class ids."""

    def __init__(
        self, folder: ImageFolderSource, class_names: Sequence[str], ids: Sequence[int]
    ) -> None:
        self.folder = folder
        self.ids = list(ids)
        self.class_names = tuple(class_names)
        self.image_shape = folder.image_shape
        self.name = folder.name

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> Sample:
        sample = self.folder[index]
        return Sample(sample.image, self.ids[sample.label], sample.mask)


def resolve_data_spec(
    spec: DataSource | str | os.PathLike[str], classifier: FrozenClassifier, *, split: str = "test"
) -> DataSource:
    """A data source for ``classifier`` from a :class:`DataSource`, a dataset name or an image folder.

    A named dataset uses ``split``; a folder has no splits. Raises ``ValueError`` for an unknown
    name, a folder without images, or class sub-folders that do not match the classifier.
    """
    if isinstance(spec, DataSource):
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"data must be a dataset name or an image folder, got {type(spec).__name__}"
        )
    text = os.fspath(spec)
    path = Path(text)
    if not path.is_dir():
        if text in available_datasets():
            return load_dataset(text, split=split)
        if path.exists():
            raise ValueError(f"data {text!r} is a file; pass a folder of images or a dataset name")
        if os.sep in text or text.startswith("."):
            raise FileNotFoundError(f"image folder not found: {text}")
        raise ValueError(
            f"unknown dataset {text!r}; choose one of {available_datasets()} or pass a folder of images"
        )
    c, h, w = classifier.input_shape
    mode = _pillow_mode(c, text)
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and _images_in(p))
    if not subfolders:
        return UnlabelledImageFolder(path, _class_names(classifier), (h, w), mode)
    names = _class_names(classifier)
    folder_classes = [p.name for p in subfolders]
    if len(folder_classes) == 1:
        raise ValueError(
            f"{text} holds one class sub-folder ({folder_classes[0]!r}); put the images in class sub-folders named "
            "after the classifier's classes, or directly in the folder (unlabelled)"
        )
    folder = ImageFolderSource(path, size=(h, w), mode=mode)
    if set(folder.class_names) <= set(names):
        index = {n: i for i, n in enumerate(names)}
        return _ClassifierLabels(folder, names, [index[n] for n in folder.class_names])
    if len(folder.class_names) == len(names):
        return folder
    unknown = sorted(set(folder.class_names) - set(names))[:5]
    raise ValueError(
        f"the class sub-folders of {text} ({len(folder.class_names)}, e.g. {unknown}) are not classes of the "
        f"classifier {classifier.name!r} ({len(names)} classes, e.g. {list(names[:5])}); name them after its "
        "classes, or put the images directly in the folder to explain them without labels"
    )


def _class_names(classifier: FrozenClassifier) -> tuple[str, ...]:
    classifier.num_classes  # noqa: B018 - fills class_names from one probe when not known yet
    assert classifier.class_names is not None
    return classifier.class_names
