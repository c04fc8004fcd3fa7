"""What ``saliency-gym explain`` writes, one layout for every engine (local and ``--engine ray``).

::

    <out>/maps/<method>/<image>.npy        the (H, W) float32 map, at the model's input size
    <out>/overlays/<method>/<image>.png    the map over the photo at the photo's own size, with a colour bar
    <out>/manifest.json                    the settings, then one row per image and method

``<image>`` is the file's path inside the image folder, extension kept (``cat.png``;
``square/001.jpg`` with class sub-folders), so ``cat.png`` and ``cat.jpg`` never share an output;
or a 6-digit index for a named dataset (:func:`image_names`). Every file is written atomically and
the map last, so an image whose maps all exist is finished: a run started again explains only the
others (:meth:`MapWriter.todo`) and keeps the manifest rows of the finished ones.

The manifest's ``"maps"`` list has one row per (image, method): ``image``, ``target`` (the
explained class id), ``class`` (its name), ``method``, ``queries`` and ``seconds`` (the explainer's
classifier queries and wall seconds per image, averaged over the batch the image was explained in)
and ``path`` (of the ``.npy``, relative to ``<out>``), so ``pandas.DataFrame(manifest["maps"])`` is
the table of a run. ``"images"`` lists every image once (``image``, ``target``, ``class``).

Overlays: for an image folder, the photo is read again at its own resolution (the same centre crop
the model saw, at most :data:`OVERLAY_MAX_SIDE` pixels a side) and the map is resized onto it; a
dataset without files is enlarged by whole pixels to at least :data:`OVERLAY_MIN_SIDE`. Colours
follow :mod:`saliency_gym.plotting` (sign-aware, outliers clipped).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.data import DataSource
    from saliency_gym.specs import ModelDataSpec

__all__ = [
    "MANIFEST",
    "MapWriter",
    "explain_settings",
    "explained_classes",
    "image_names",
    "overlay_png",
    "photo_at_own_size",
]

#: The manifest's file name inside the output folder.
MANIFEST = "manifest.json"
#: Largest side of an overlay read from a photo (bigger photos are scaled down to it).
OVERLAY_MAX_SIDE = 1024
#: Smallest side of an overlay: smaller images (a 32 px dataset) are enlarged by whole pixels.
OVERLAY_MIN_SIDE = 256


def image_names(source: DataSource) -> list[str]:
    """Output names of a source's images: paths inside an image folder, extension kept (``cat.png``,
    ``square/cat.jpg`` in a folder of class sub-folders), else 6-digit indices.

    Keeping the extension keeps ``cat.png`` and ``cat.jpg`` apart; names that still differ only
    in case (one output file on a case-insensitive file system) are refused with a ``ValueError``.
    """
    files, root = _files_and_root(source)
    if files is None or root is None:
        return [f"{i:06d}" for i in range(len(source))]
    names = [Path(f).relative_to(root).as_posix() for f in files]
    clashes: dict[str, list[str]] = {}
    for name in names:
        clashes.setdefault(name.casefold(), []).append(name)
    repeated = [group for group in clashes.values() if len(group) > 1]
    if repeated:
        shown = "; ".join(" and ".join(group) for group in repeated[:5])
        raise ValueError(
            f"image files in {root} differ only in case ({shown}), so their outputs would overwrite "
            "each other on a case-insensitive file system; rename them"
        )
    return names


def _files_and_root(source: DataSource) -> tuple[list[Path] | None, Path | None]:
    """The image files of a folder source (in sample order) and its folder, else ``(None, None)``."""
    folder = getattr(source, "folder", source)  # a folder re-labelled to the classifier's classes
    files = getattr(folder, "files", None)
    root = getattr(folder, "root", None)
    if files is None or root is None:
        return None, None
    return [Path(f[0] if isinstance(f, tuple) else f) for f in files], Path(root)


def explained_classes(classifier: FrozenClassifier, source: DataSource, labels: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The ``labels`` of a labelled source, else the classifier's predictions on ``images`` (the
    classes ``explain`` explains)."""
    if source.has_label:
        return np.asarray(labels, dtype=np.int64)
    return classifier.predict(images, count=False).cpu().numpy().astype(np.int64)


def photo_at_own_size(source: DataSource, index: int, image: np.ndarray, max_side: int = OVERLAY_MAX_SIDE) -> np.ndarray:
    """Image ``index`` of ``source`` as the overlays draw it: ``(C, H', W')`` in [0, 1].

    For an image folder: the file read again at its own resolution, cropped as the model's input
    was (the same centre crop), scaled down to at most ``max_side`` pixels a side. Otherwise
    ``image`` (the model's input) enlarged by whole pixels to at least :data:`OVERLAY_MIN_SIDE`.
    """
    files, _ = _files_and_root(source)
    _, h, w = np.shape(image)
    if files is not None:
        from PIL import Image

        from saliency_gym.data.image_files import centre_crop_box, read_image

        path = files[int(index)]
        with Image.open(path) as photo:
            width, height = photo.size
        left, top, right, bottom = centre_crop_box(width, height, (h, w))
        crop_h, crop_w = bottom - top, right - left
        shrink = min(1.0, max_side / max(crop_h, crop_w))
        size = (max(h, round(crop_h * shrink)), max(w, round(crop_w * shrink)))
        return read_image(path, size, "RGB" if np.shape(image)[0] == 3 else "L")
    factor = max(1, -(-OVERLAY_MIN_SIDE // max(h, w)))
    return np.kron(np.asarray(image, np.float32), np.ones((1, factor, factor), np.float32))


def overlay_png(image: np.ndarray, saliency: np.ndarray, *, nearest: bool | None = None) -> bytes:
    """PNG bytes of ``saliency`` (``(H, W)``) blended over ``image`` (``(C, H', W')`` in [0, 1], the
    map resized to it) with a colour bar (:func:`saliency_gym.envs.render.overlay_rgb`).
    ``nearest``: resize without smoothing; by default, when the map is constant on grid cells."""
    from PIL import Image

    from saliency_gym.envs.render import overlay_rgb
    from saliency_gym.plotting import grid_of

    if nearest is None:
        nearest = grid_of(saliency) is not None
    buffer = io.BytesIO()
    Image.fromarray(overlay_rgb(image, saliency, nearest=nearest)).save(buffer, format="PNG")
    return buffer.getvalue()


def _save_npy(path: Path, array: np.ndarray) -> None:
    from saliency_gym.checkpoint import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, write)


def _save_bytes(path: Path, data: bytes) -> None:
    from saliency_gym.checkpoint import atomic_write

    atomic_write(path, lambda tmp: tmp.write_bytes(data))


class MapWriter:
    """Writes the maps, overlays and manifest of one explanation run (the layout of this module).

    Args:
        out: the output folder.
        methods: the explainers' names (one folder each).
        names: every image's output name (:func:`image_names`), in the data's order.
        class_names: the classifier's class names (the manifest's ``class`` column).
        settings: what the manifest records above its rows (model, data, options, ...).
    """

    def __init__(self, out: str | os.PathLike[str], methods: Sequence[str], names: Sequence[str],
                 class_names: Sequence[str], settings: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.out = Path(out)
        self.methods, self.names = list(methods), list(names)
        self.class_names = list(class_names)
        self.settings = dict(settings or {})
        self.targets: dict[str, int] = {}
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self._read_previous()

    def map_path(self, method: str, index: int) -> Path:
        """Where image ``index``'s map of ``method`` goes."""
        return self.out / "maps" / method / f"{self.names[index]}.npy"

    def overlay_path(self, method: str, index: int) -> Path:
        """Where image ``index``'s overlay of ``method`` goes."""
        return self.out / "overlays" / method / f"{self.names[index]}.png"

    def todo(self) -> list[int]:
        """Indices of the images not finished yet (some method's map is missing)."""
        return [i for i in range(len(self.names)) if not all(self.map_path(m, i).is_file() for m in self.methods)]

    def load_map(self, method: str, index: int) -> np.ndarray:
        """A map written before (by this run or an earlier one)."""
        return np.load(self.map_path(method, index), allow_pickle=False)

    def write(self, index: int, target: int, method: str, saliency: np.ndarray, *, queries: float,
              seconds: float, overlay: bytes | None = None) -> None:  # fmt: skip
        """Write one image's map of one method (its overlay first, the map last) and record its row."""
        if overlay is not None:
            _save_bytes(self.overlay_path(method, index), overlay)
        _save_npy(self.map_path(method, index), np.asarray(saliency, np.float32))
        name = self.names[index]
        self.targets[name] = int(target)
        self.rows[(name, method)] = {
            "image": name, "target": int(target), "class": self._class(int(target)), "method": method,
            "queries": float(queries), "seconds": float(seconds),
            "path": self.map_path(method, index).relative_to(self.out).as_posix(),
        }  # fmt: skip

    def _class(self, target: int) -> str | None:
        return self.class_names[target] if 0 <= target < len(self.class_names) else None

    def _read_previous(self) -> None:
        """Keep the rows of an earlier run's manifest (resume)."""
        path = self.out / MANIFEST
        if not path.is_file():
            return
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # rewritten at the end
        for entry in previous.get("images", []):
            if isinstance(entry, dict) and entry.get("target") is not None:
                self.targets[str(entry["image"])] = int(entry["target"])
        for row in previous.get("maps", []):
            if isinstance(row, dict) and "image" in row and "method" in row:
                self.rows[(str(row["image"]), str(row["method"]))] = row

    def write_manifest(self) -> Path:
        """Write ``manifest.json`` (atomically): the settings, ``images`` and ``maps`` rows of every
        image whose maps exist, in the data's order."""
        images, rows = [], []
        for name in self.names:
            target = self.targets.get(name)
            images.append({"image": name, "target": target, "class": None if target is None else self._class(target)})
            rows += [self.rows[(name, m)] for m in self.methods
                     if (name, m) in self.rows and (self.out / self.rows[(name, m)]["path"]).is_file()]  # fmt: skip
        manifest = {**self.settings, "methods": self.methods, "class_names": self.class_names,
                    "images": images, "maps": rows}  # fmt: skip
        path = self.out / MANIFEST
        _save_bytes(path, json.dumps(manifest, indent=1, default=str).encode())
        return path


def explain_settings(model: str, spec: ModelDataSpec, options: dict[str, dict[str, Any]], *, engine: str) -> dict[str, Any]:
    """What a manifest records above its rows: the model's name, its spec, the data, the
    explainers' options and the engine (the same keys for the local and the Ray run)."""
    return {"model": model, "spec": spec.as_dict(), "data": spec.data, "class_map": spec.class_map,
            "options": options, "engine": engine}  # fmt: skip
