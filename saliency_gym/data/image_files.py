"""Reading a user's image files: one place that opens a file, checks it and names it in every error.

Image folders (``--data FOLDER``) are read through :func:`read_image`, which turns one file into a
``float32`` ``(C, H, W)`` array in [0, 1] at the model's input size:

* **pixel range by the file's real depth**: 8-bit images are divided by 255, 16-bit integer
  images (``I;16`` PNGs and TIFFs) by 65535; floating-point images (``F`` TIFFs) must already lie
  in [0, 1] and are refused otherwise (never clipped). 32-bit integer images are refused, as no
  range can be assumed for them;
* **aspect ratio kept**: the largest centred region with the target's aspect ratio is cut out and
  resized (for a square input: resize the shorter side, centre-crop), as the shipped photos are
  (:mod:`saliency_gym.data.photos`), so non-square photos are not squashed.

:func:`check_image_files` is the up-front check a folder source runs when it is built, so that a bad
file stops every command before any work (training checkpoints, Ray actors) starts: each file is
opened (which refuses images over Pillow's decompression-bomb limit) and verified, which for PNGs
reads every chunk and checksum and so catches truncation. Files of other formats are decoded too,
since ``verify`` checks little for them: JPEGs at 1/8 scale (the whole stream is read, at about a
quarter of the cost of a full decode), the rarer formats (TIFF, BMP, GIF, WebP) in full, which also
checks the range of float and 32-bit images. A file damaged after the check still fails when it is
read, naming the file.

Every failure is an :class:`ImageFileError` (a ``ValueError``) whose message names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from saliency_gym.validation import RANGE_TOLERANCE

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFileError",
    "centre_crop_box",
    "check_image_files",
    "image_files_in",
    "read_image",
]

#: File extensions (lower case) read as images; other files in an image folder are skipped.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: Pillow modes of 16-bit integer pixels (divided by 65535).
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: At most this many bad files are named in one error.
_NAMED = 5

# Files that passed check_image_files, by (path, size, modification time): a source built twice
# (train and evaluation data of one command) checks its files once.
_checked: set[tuple[str, int, int]] = set()


class ImageFileError(ValueError):
    """An image file that cannot be read or whose pixels are not usable.

    ``path`` names the file and ``reason`` says what is wrong with it (the message holds both)."""

    def __init__(self, path: str | os.PathLike[str], message: str, reason: str = "") -> None:
        self.path = Path(path)
        self.reason = reason or message
        super().__init__(message)


def image_files_in(folder: str | os.PathLike[str]) -> list[Path]:
    """The files directly inside ``folder`` with an image extension, sorted by name."""
    return sorted(
        p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


@contextmanager
def _opened(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)``, with every Pillow or decoder failure raised as an :class:`ImageFileError`
    naming the file (also failures inside the ``with`` block, where decoding happens)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            yield image
    except ImageFileError:
        raise
    except Image.DecompressionBombError as exc:
        reason = f"too large to read safely: {exc}"
        raise ImageFileError(
            path,
            f"image file {path} is {reason} (Pillow's guard against decompression bombs, "
            "PIL.Image.MAX_IMAGE_PIXELS); shrink the image",
            reason,
        ) from None
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow raises OSError ("image file is truncated"), UnidentifiedImageError (an OSError),
        # SyntaxError (broken PNG chunks) or ValueError/EOFError from decoders.
        reason = str(exc) or type(exc).__name__
        raise ImageFileError(
            path, f"cannot read the image file {path}: {reason}; fix or remove the file", reason
        ) from None


def _check_one(path: Path) -> None:
    """Raise :class:`ImageFileError` if ``path`` cannot be opened and verified, or decoded (JPEG:
    at 1/8 scale; PNG: verified only), or holds pixels :func:`read_image` refuses."""
    with _opened(path) as image:
        image.verify()  # PNG: chunk structure and checksums; most other formats: nothing more
    suffix = path.suffix.lower()
    if suffix == ".png":
        return
    with _opened(path) as image:  # verify() leaves the file unusable: open it again
        if suffix in (".jpg", ".jpeg"):
            image.draft(None, (1, 1))  # the whole stream, decoded at 1/8 scale
        image.load()
        scale = _high_depth_scale(image, path)  # refuses 32-bit integers
        if scale is not None:
            _high_depth_pixels(image, scale, path)  # refuses floats outside [0, 1]


def check_image_files(paths: Iterable[str | os.PathLike[str]], where: str = "") -> None:
    """Check every file in ``paths`` (see the module docstring for what is checked).

    Raises one :class:`ImageFileError` naming the bad files (the first few, each with its reason,
    and how many there are) so that a folder is refused before any work starts.
    """
    bad: list[ImageFileError] = []
    for item in paths:
        path = Path(item)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key in _checked:
            continue
        try:
            _check_one(path)
        except ImageFileError as exc:
            bad.append(exc)
        else:
            _checked.add(key)
    if len(bad) == 1:
        raise bad[0]
    if bad:
        listed = "; ".join(f"{exc.path} ({exc.reason})" for exc in bad[:_NAMED])
        more = f"; and {len(bad) - _NAMED} more" if len(bad) > _NAMED else ""
        place = f" in {where}" if where else ""
        raise ImageFileError(
            bad[0].path,
            f"{len(bad)} image files{place} cannot be used: {listed}{more}; fix or remove them",
        )


def centre_crop_box(
    width: int, height: int, size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """The largest centred region ``(left, top, right, bottom)`` of a ``width x height`` image with
    the aspect ratio of ``size`` ``(height, width)``: resized to ``size``, the image's shorter side
    (relative to the target) fills the target and the rest is cropped equally on both sides."""
    target_h, target_w = size
    scale = max(target_w / width, target_h / height)
    crop_w, crop_h = target_w / scale, target_h / scale
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    return (left, top, left + crop_w, top + crop_h)


def _high_depth_scale(image: Image.Image, path: Path) -> float | None:
    """What a non-8-bit grey image's pixels are divided by: 65535 for 16-bit integers, 1 for floats
    (``None`` for an 8-bit mode Pillow converts itself); raises for 32-bit integers."""
    if image.mode in _MODES_16BIT:
        return 65535.0
    if image.mode == "F":
        return 1.0
    if image.mode == "I":
        bits = getattr(image, "tag_v2", {}).get(258)  # TIFF BitsPerSample
        if image.format == "PNG" or (bits is not None and tuple(bits)[:1] == (16,)):
            return 65535.0  # older Pillow reads 16-bit grey PNGs as "I"
        reason = "32-bit integer pixels, whose range is unknown"
        raise ImageFileError(
            path,
            f"image file {path} has {reason}; save it with 8 or 16 bits per channel, or as "
            "floats in [0, 1]",
            reason,
        )
    return None


def _high_depth_pixels(image: Image.Image, scale: float, path: Path) -> np.ndarray:
    """The grey pixels of a 16-bit or float image as float32 in [0, 1], refusing float images
    outside [0, 1] (they are never clipped)."""
    pixels = np.asarray(image, dtype=np.float64) / scale
    if pixels.ndim != 2:
        reason = f"mode {image.mode} with shape {pixels.shape} is not supported"
        raise ImageFileError(path, f"image file {path}: {reason}", reason)
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if (
        not (np.isfinite(low) and np.isfinite(high))
        or low < -RANGE_TOLERANCE
        or high > 1 + RANGE_TOLERANCE
    ):
        reason = f"floating-point pixels in [{low:.4g}, {high:.4g}], not in [0, 1]"
        raise ImageFileError(
            path,
            f"image file {path} holds {reason}; float images must lie in [0, 1] (8- and 16-bit "
            "integer images are scaled by their depth): rescale it",
            reason,
        )
    return np.clip(pixels, 0.0, 1.0).astype(np.float32)


def read_image(
    path: str | os.PathLike[str], size: tuple[int, int], mode: str = "RGB"
) -> np.ndarray:
    """The image file ``path`` as ``float32`` ``(C, H, W)`` in [0, 1] at ``size`` ``(height, width)``.

    ``mode`` is ``"RGB"`` (3 channels; a grey image repeats its channel) or ``"L"`` (1 channel).
    Pixels are scaled by the file's bit depth and the aspect ratio is kept by a centre crop (see the
    module docstring). Raises :class:`ImageFileError` naming the file when it cannot be decoded or
    its pixels are out of range.
    """
    from PIL import Image

    if mode not in ("RGB", "L"):
        raise ValueError(f"mode={mode!r} is not supported; choose 'RGB' or 'L'")
    path = Path(path)
    height, width = int(size[0]), int(size[1])
    with _opened(path) as image:
        image.load()
        box = centre_crop_box(image.width, image.height, (height, width))
        scale = _high_depth_scale(image, path)
        if scale is None:  # 8-bit (and 1-bit, palette, CMYK, ...): Pillow converts the channels
            resized = image.convert(mode).resize(
                (width, height), Image.Resampling.BILINEAR, box=box
            )
            array = np.asarray(resized, dtype=np.float32) / 255.0
            array = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
            return np.ascontiguousarray(array, dtype=np.float32)
        grey = Image.fromarray(_high_depth_pixels(image, scale, path))  # float32: mode "F"
    resized_grey = grey.resize((width, height), Image.Resampling.BILINEAR, box=box)
    # Bilinear weights are convex, so [0, 1] is kept up to float round-off.
    channel = np.clip(np.asarray(resized_grey, dtype=np.float32), 0.0, 1.0)
    channels = 3 if mode == "RGB" else 1
    return np.ascontiguousarray(np.repeat(channel[None], channels, axis=0))
