"""Data for a classifier from one argument: a dataset name or a folder of images.

:func:`resolve_data_spec` is what every command calls for ``--data``: a registered name
(``shapes``, ``digits``, ...: :func:`~saliency_gym.data.load_dataset`), or a folder of images, read
lazily and brought to the classifier's input size (scaled by bit depth, centre-cropped to keep the
aspect ratio, every file checked up front: :mod:`saliency_gym.data.image_files`):

* class sub-folders (``root/<class>/<image>``, :class:`~saliency_gym.data.ImageFolderSource`):
  each sub-folder is matched to one of the classifier's classes **by name** (ignoring case, runs
  of white space and ``_`` versus space), or through a class map (``class_map=``: folder name ->
  class name or class id, as a dict, a JSON object or a ``folder,class`` CSV file). Folders left
  unmatched are refused with both lists of names: sorted order is never used, since one misspelt
  folder would silently shift every label;
* a flat folder of images: :class:`UnlabelledImageFolder`, whose ``has_label`` is ``False`` (label 0
  is a placeholder; explain the predicted class instead).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data.adapters import ImageFolderSource
from saliency_gym.data.base import DataSource, Sample
from saliency_gym.data.image_files import (
    IMAGE_EXTENSIONS,
    check_image_files,
    image_files_in,
    read_image,
)
from saliency_gym.data.registry import available_datasets, load_dataset

#: A class map: folder name -> class name or class id; or a JSON / CSV file holding one.
ClassMapType: TypeAlias = "Mapping[str, str | int] | str | os.PathLike[str]"

#: At most this many names are listed in an error.
_LISTED = 20


def _pillow_mode(channels: int, where: str) -> str:
    if channels not in (1, 3):
        raise ValueError(
            f"images from {where} can be read for 1 or 3 channels; the classifier takes {channels}"
        )
    return "RGB" if channels == 3 else "L"


class UnlabelledImageFolder(DataSource):
    """The images directly inside ``root`` (sorted by name) at ``size``, without labels.

    Every sample's label is the placeholder 0 (:attr:`has_label` is ``False``); ``class_names`` are
    the classifier's, so environments and metrics can score any class. Files are checked when the
    source is built and read by :func:`~saliency_gym.data.image_files.read_image` (bit depth,
    centre crop).
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
        if mode not in ("RGB", "L"):
            raise ValueError(f"mode={mode!r} is not supported; choose 'RGB' or 'L'")
        self.files = image_files_in(root)
        if not self.files:
            raise ValueError(f"no images with extensions {IMAGE_EXTENSIONS} in {root}")
        check_image_files(self.files, where=str(root))
        self.root = root
        self.size = (int(size[0]), int(size[1]))
        self.mode = mode
        self.class_names = tuple(class_names)
        self.image_shape = (3 if mode == "RGB" else 1, self.size[0], self.size[1])
        self.name = root.name

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        return Sample(read_image(self.files[index], self.size, self.mode), 0, None)


class _ClassifierLabels(DataSource):
    """An :class:`ImageFolderSource` whose labels are re-numbered to the classifier's class ids
    (``ids[folder label]``)."""

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
    spec: DataSource | str | os.PathLike[str],
    classifier: FrozenClassifier,
    *,
    split: str = "test",
    class_map: ClassMapType | None = None,
) -> DataSource:
    """A data source for ``classifier`` from a :class:`DataSource`, a dataset name or an image folder.

    A named dataset uses ``split``; a folder has no splits. ``class_map`` (class sub-folders only)
    maps folder names to the classifier's class names or ids: a dict, or the path of a JSON object
    or a ``folder,class`` CSV file (:func:`load_class_map`); folders it does not name are matched
    by name. Raises ``ValueError`` for an unknown name, a folder without images, a bad image file,
    or class sub-folders that do not match the classifier's classes.
    """
    if isinstance(spec, DataSource):
        if class_map is not None:
            raise ValueError(
                "class_map applies to a folder of class sub-folders, not to a data source"
            )
        return spec
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"data must be a dataset name or an image folder, got {type(spec).__name__}"
        )
    text = os.fspath(spec)
    path = Path(text)
    if not path.is_dir():
        if text in available_datasets():
            if class_map is not None:
                raise ValueError(
                    f"class_map applies to a folder of class sub-folders, not to the dataset {text!r}"
                )
            return load_dataset(text, split=split)
        if path.exists():
            raise ValueError(f"data {text!r} is a file; pass a folder of images or a dataset name")
        if os.sep in text or text.startswith("."):
            raise FileNotFoundError(f"image folder not found: {text}")
        raise ValueError(
            f"unknown dataset {text!r}; choose one of {available_datasets()} or pass a folder of images"
        )
    mapping = load_class_map(class_map) if class_map is not None else None
    c, h, w = classifier.input_shape
    mode = _pillow_mode(c, text)
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and image_files_in(p))
    names = _class_names(classifier)
    if not subfolders:
        if mapping is not None:
            raise ValueError(
                f"a class map was given, but {text} has no class sub-folders (its images are read "
                "unlabelled); drop the class map or put the images in class sub-folders"
            )
        return UnlabelledImageFolder(path, names, (h, w), mode)
    if len(subfolders) == 1:
        raise ValueError(
            f"{text} holds one class sub-folder ({subfolders[0].name!r}); put the images in class sub-folders named "
            "after the classifier's classes, or directly in the folder (unlabelled)"
        )
    ids = match_class_folders([p.name for p in subfolders], names, mapping, where=text)
    folder = ImageFolderSource(path, size=(h, w), mode=mode)
    # Folders without images are classes of the folder source that no sample carries: id -1.
    return _ClassifierLabels(folder, names, [ids.get(n, -1) for n in folder.class_names])


def _key(name: str) -> str:
    """A name compared by :func:`match_class_folders`: case, white space and ``_`` ignored."""
    return " ".join(name.replace("_", " ").split()).casefold()


def _preview(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LISTED else "")


def _classes_named(name: str, class_names: Sequence[str]) -> list[int]:
    """The ids of the classes called ``name``: exact matches, else matches by :func:`_key`."""
    exact = [i for i, n in enumerate(class_names) if n == name]
    return exact or [i for i, n in enumerate(class_names) if _key(n) == _key(name)]


def _class_id(value: str | int, class_names: Sequence[str]) -> list[int]:
    """The class ids a class-map value may mean: an int is an id; a string is a class name, or an
    id written in digits when no class has that name. One id when it is unambiguous."""
    if isinstance(value, int):
        return [value] if 0 <= value < len(class_names) else []
    named = _classes_named(value, class_names)
    text = value.strip()
    if not named and text.isdigit() and int(text) < len(class_names):
        return [int(text)]
    return named


def match_class_folders(
    folders: Sequence[str],
    class_names: Sequence[str],
    class_map: Mapping[str, str | int] | None = None,
    *,
    where: str = "the data folder",
) -> dict[str, int]:
    """The classifier's class id of each class folder in ``folders``.

    A folder named in ``class_map`` (exactly or ignoring case, white space and ``_``) takes the
    class the map gives (a class name, or an id); any other folder must carry the name of exactly
    one class, compared the same way (a folder name is never read as an id). Order never matters.
    Raises ``ValueError`` listing the unmatched folders (or map entries) and the classifier's class
    names.
    """
    exact_map = dict(class_map or {})
    loose_map = {_key(k): v for k, v in exact_map.items()}
    ids: dict[str, int] = {}
    unmatched: list[str] = []
    bad_entries: list[str] = []
    for folder in folders:
        value = exact_map.get(folder, loose_map.get(_key(folder)))
        found = (
            _classes_named(folder, class_names) if value is None else _class_id(value, class_names)
        )
        if len(found) == 1:
            ids[folder] = found[0]
            continue
        fits = f" (fits classes {', '.join(map(str, found))})" if found else ""
        if value is None:
            unmatched.append(f"{folder!r}{fits}")
        else:
            bad_entries.append(f"{folder!r} -> {value!r}{fits}")
    if bad_entries:
        raise ValueError(
            f"the class map for {where} maps folders to no single class of the classifier "
            f"({', '.join(bad_entries)}); the classifier has {len(class_names)} classes: "
            f"{_preview(class_names)} (or give ids 0-{len(class_names) - 1})"
        )
    if unmatched:
        shown = ", ".join(unmatched[:_LISTED]) + (
            f", ... ({len(unmatched)} in all)" if len(unmatched) > _LISTED else ""
        )
        raise ValueError(
            f"the class sub-folders {shown} of {where} are not classes of the classifier (names are "
            f"compared ignoring case, spaces and '_', and must fit one class); its classes are "
            f"{_preview(class_names)}. "
            "Rename the folders, give a class map (folder -> class name or id: a JSON or "
            "'folder,class' CSV file), or put the images directly in the folder to explain them "
            "without labels"
        )
    return ids


def load_class_map(spec: ClassMapType) -> dict[str, str | int]:
    """A class map (folder name -> class name or class id) from a mapping or a file.

    A ``.json`` file holds one object (``{"zero": "0", "eight": 8}``: a JSON number is a class id,
    a string a class name, or an id in digits when no class has that name); a ``.csv`` file holds
    rows ``folder,class`` (an optional first row ``folder,class`` is a header; blank rows and rows
    starting with ``#`` are skipped). Raises ``FileNotFoundError``, or ``ValueError`` for another
    format, a malformed row or a folder mapped twice.
    """
    if isinstance(spec, Mapping):
        return _checked_map(spec.items(), "the class map")
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(
            f"class_map must be a dict or the path of a JSON or CSV file, got {type(spec).__name__}"
        )
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"class map file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"class map {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"class map {path} must hold one JSON object (folder -> class), got {type(data).__name__}"
            )
        return _checked_map(data.items(), f"class map {path}")
    if suffix == ".csv":
        rows: list[tuple[str, str]] = []
        with open(path, newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                cells = [cell.strip() for cell in row]
                if not any(cells) or cells[0].startswith("#"):
                    continue
                if len(cells) != 2 or not all(cells):
                    raise ValueError(
                        f"class map {path}, row {number}: expected 'folder,class', got {','.join(row)!r}"
                    )
                if not rows and [c.casefold() for c in cells] == ["folder", "class"]:
                    continue  # header
                rows.append((cells[0], cells[1]))
        return _checked_map(rows, f"class map {path}")
    raise ValueError(
        f"class map {path} must be a .json or .csv file, got {suffix or 'no extension'!r}"
    )


def _checked_map(items: Iterable[tuple[object, object]], where: str) -> dict[str, str | int]:
    """``items`` as a class map, after checking each entry's types and that no folder repeats."""
    result: dict[str, str | int] = {}
    seen: dict[str, str] = {}
    for folder, value in items:
        if (
            not isinstance(folder, str)
            or isinstance(value, bool)
            or not isinstance(value, (str, int))
        ):
            raise ValueError(
                f"{where}: entries must map a folder name to a class name or id, got {folder!r}: {value!r}"
            )
        if _key(folder) in seen:
            raise ValueError(
                f"{where} maps the folder {folder!r} twice (also as {seen[_key(folder)]!r})"
            )
        seen[_key(folder)] = folder
        result[folder] = value
    return result


def _class_names(classifier: FrozenClassifier) -> tuple[str, ...]:
    classifier.num_classes  # noqa: B018 - fills class_names from one probe when not known yet
    assert classifier.class_names is not None
    return classifier.class_names
