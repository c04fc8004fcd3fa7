"""*Cluttered shapes*: one small shape anywhere in a 64x64 image among fragments of shapes.

In the spirit of cluttered MNIST (Mnih et al. 2014, recurrent attention models): the class is the
kind of one small target shape (the five ``shapes`` classes), placed uniformly anywhere in the
image, borders included, among clutter cut from shapes. The data sets ``shapes`` and ``digits``
put the object near the centre, so a fixed centre-out reveal order does about as well as an
explainer that looks at the image; here the location carries no information, so an explainer has
to find the evidence.

What keeps the class unambiguous: every clutter fragment is a shape seen through a square window of
at most ``FRAGMENT_SIDE[1]`` pixels, smaller than the smallest target's bounding box; a window is
always cut across the outline (the shape covers part of it, never all of it), so a fragment is an
edge or a corner, never a whole shape; fragments keep a one-pixel gap between their windows (two
never merge into a bigger blob) and a two-pixel gap to the target (so the evidence mask, the
target's pixels, is exact). Colours, shading and background follow the ``shapes`` data for the
target and the clutter alike, so neither colour nor texture tells them apart.

As cluttered MNIST cuts its fragments from a fixed set of digits, fragments come from a fixed bank
(:func:`fragment_bank`, ``BANK_SIZE`` cuts from a constant seed), which also keeps rendering at
well under a millisecond an image. Samples are generated from
``numpy.random.default_rng([seed, split, CLUTTERED_STREAM, size, index])``: deterministic per
``(seed, split, index)``, independent of how many others were generated, and disjoint across splits
and from the ``shapes`` and ``shape_pairs`` streams.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from saliency_gym.data.base import Sample
from saliency_gym.data.shapes import (
    SHAPE_CLASSES,
    SPLITS,
    RenderedSource,
    dilate,
    shape_mask,
    textured_background,
)
from saliency_gym.validation import check_int

DEFAULT_CLUTTERED_SIZES: dict[str, int] = {"train": 12000, "val": 1000, "test": 2000}
#: Extra seed component that keeps these streams apart from ``shapes`` (``[seed, split, size, i]``)
#: and ``shape_pairs`` (``[seed, split, 7919, size, k]``).
CLUTTERED_STREAM = 104729
#: Circumscribed radius of the target (and of the shapes fragments are cut from), as a fraction of
#: the image side: 8.3 to 10.9 pixels at 64x64, so a target's bounding box is at least 11 pixels.
TARGET_RADIUS: tuple[float, float] = (0.13, 0.17)
#: Side of the square window a fragment is cut with, in pixels (inclusive range).
FRAGMENT_SIDE: tuple[int, int] = (4, 7)
#: Share of a fragment's window that the cut shape covers (a fragment is an edge, never a block).
FRAGMENT_FILL: tuple[float, float] = (0.2, 0.8)
#: Gap in pixels between the target and any fragment pixel, and between two fragment windows.
TARGET_GAP, FRAGMENT_GAP = 2, 1
#: Number of fragments in the bank, and the seed that cuts them.
BANK_SIZE, BANK_SEED = 4096, 20140624
_SHADING = 0.06  # the +-0.03 shading noise of a painted shape, as in ``shapes``
_TRIES = 12  # random places a fragment tries before it is dropped


def place_target(rng: np.random.Generator, label: int, size: int) -> tuple[np.ndarray, int, int]:
    """A target of class ``label`` placed uniformly: ``(crop (h, w) bool, top, left)``.

    The shape is rasterised on a small local canvas (random radius, rotation and sub-pixel
    offset) and cropped to its bounding box, whose top-left corner is drawn uniformly among every
    position that keeps the box inside the image, so the target touches the borders as often as
    it lies anywhere else.
    """
    kind = SHAPE_CLASSES[label]
    radius = rng.uniform(*TARGET_RADIUS) * size
    angle = rng.uniform(0, 2 * np.pi)
    local = int(np.ceil(2 * radius)) + 3
    cy, cx = local / 2 + rng.uniform(-0.5, 0.5, size=2)
    crop = _crop_to_content(shape_mask(kind, cy, cx, radius, angle, local, local))
    top = int(rng.integers(0, size - crop.shape[0] + 1))
    left = int(rng.integers(0, size - crop.shape[1] + 1))
    return crop, top, left


def cut_fragments(rng: np.random.Generator, size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clutter fragments: square windows of ``FRAGMENT_SIDE`` pixels cut from shapes.

    Each shape (any class, the targets' radius range for an image of side ``size``, random
    rotation) is centred 0.2 to 1.1 radii away from its window's centre; a cut is kept when the
    shape covers a ``FRAGMENT_FILL`` share of the window, i.e. the window crosses its outline.
    Candidates are rasterised in batches, one call per kind. Returns ``(windows, sides)``:
    ``(count, m, m)`` booleans (``m`` the largest side), fragment ``j`` being
    ``windows[j, :sides[j], :sides[j]]``.
    """
    windows, sides = _cuts(rng, size, 3 * count + 16)  # at 64x64 about half of them are cuts
    while len(sides) < count:  # larger images: a window crosses an outline less often
        more = _cuts(rng, size, 3 * count + 16)
        windows, sides = np.concatenate([windows, more[0]]), np.concatenate([sides, more[1]])
    return windows[:count], sides[:count]


def _cuts(rng: np.random.Generator, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The cuts among ``n`` candidate windows (see :func:`cut_fragments`)."""
    lo, hi = FRAGMENT_SIDE
    sides = rng.integers(lo, hi + 1, size=n)
    kinds = rng.integers(len(SHAPE_CLASSES), size=n)
    radius = rng.uniform(*TARGET_RADIUS, size=n) * size
    offset = rng.uniform(0.2, 1.1, size=n) * radius
    direction, angle = rng.uniform(0, 2 * np.pi, size=(2, n))
    cy, cx = sides / 2 + offset * np.sin(direction), sides / 2 + offset * np.cos(direction)
    windows = np.zeros((n, hi, hi), dtype=bool)
    for k, kind in enumerate(SHAPE_CLASSES):
        of_kind = kinds == k
        py, px, pr, pa = (v[of_kind][:, None, None] for v in (cy, cx, radius, angle))
        windows[of_kind] = shape_mask(kind, py, px, pr, pa, hi, hi)
    yy, xx = np.mgrid[0:hi, 0:hi]
    windows &= (yy < sides[:, None, None]) & (xx < sides[:, None, None])
    fill = windows.sum(axis=(1, 2)) / sides**2
    kept = (fill >= FRAGMENT_FILL[0]) & (fill <= FRAGMENT_FILL[1])
    return windows[kept], sides[kept]


@lru_cache(maxsize=4)
def fragment_bank(size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The fixed bank of ``BANK_SIZE`` fragments for images of side ``size`` (read-only arrays,
    built once per process by :func:`cut_fragments` from ``BANK_SEED``)."""
    windows, sides = cut_fragments(np.random.default_rng([BANK_SEED, size]), size, BANK_SIZE)
    windows.flags.writeable = False
    sides.flags.writeable = False
    return windows, sides


def render_cluttered_sample(
    rng: np.random.Generator,
    label: int,
    size: int = 64,
    channels: int = 3,
    n_fragments: tuple[int, int] = (8, 12),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one sample of class ``label``.

    Returns ``(image (C, H, W) float32, mask (H, W) bool, clutter (H, W) int16)``: ``mask`` is
    exactly the target's pixels and ``clutter`` numbers each fragment's pixels ``1, 2, ...`` (0
    elsewhere), so tests can check every fragment. Between ``n_fragments[0]`` and
    ``n_fragments[1]`` fragments are drawn from :func:`fragment_bank`; each tries a few random
    places and is dropped when none keeps the gaps, so a crowded image may show fewer.
    """
    background = textured_background(rng, channels, size, size)
    bg_mean = background.mean(axis=(1, 2))
    crop, top, left = place_target(rng, label, size)
    count = int(rng.integers(n_fragments[0], n_fragments[1] + 1))
    bank, bank_sides = fragment_bank(size)
    picks = rng.integers(len(bank), size=count)
    windows, sides = bank[picks], bank_sides[picks]
    colours = contrasting_colours(rng, bg_mean, 0.3, count + 1)  # the target's, then each fragment's
    free_range = (size - sides + 1)[:, None, None]  # top-left corners that keep a window inside
    corners = (rng.random((count, _TRIES, 2)) * free_range).astype(np.int64)  # uniform over them

    # Keep-out of the target, padded so that every candidate window can be read off it at once.
    g, m = TARGET_GAP, bank.shape[1]
    keep_out = np.zeros((size + 2 * g + m, size + 2 * g + m), dtype=bool)
    keep_out[top : top + crop.shape[0] + 2 * g, left : left + crop.shape[1] + 2 * g] = dilate(np.pad(crop, g), g)
    rows = corners[..., 0, None, None] + g + np.arange(m)[:, None]
    cols = corners[..., 1, None, None] + g + np.arange(m)[None, :]
    clear = ~(keep_out[rows, cols] & windows[:, None]).any(axis=(2, 3))  # (count, tries)

    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    clutter = np.zeros((size, size), dtype=np.int16)
    painted = np.zeros((channels, size, size))
    painted[:, mask] = colours[0][:, None]
    boxes: list[tuple[int, int, int]] = []  # (top, left, side) of the placed fragments
    for j, side in enumerate(sides.tolist()):
        for y, x in corners[j][clear[j]].tolist():
            if all(_apart(y, x, side, *box) for box in boxes):
                boxes.append((y, x, side))
                fragment = windows[j, :side, :side]
                clutter[y : y + side, x : x + side][fragment] = len(boxes)
                painted[:, y : y + side, x : x + side][:, fragment] = colours[1 + j][:, None]
                break
    shaded = painted + _SHADING * (rng.random((channels, size, size)) - 0.5)
    image = np.where((mask | (clutter > 0))[None], shaded, background)
    return np.clip(image, 0.0, 1.0).astype(np.float32), mask, clutter


def contrasting_colours(rng: np.random.Generator, background: np.ndarray, min_distance: float, n: int) -> np.ndarray:
    """``(n, C)`` random colours, each at least ``min_distance`` (mean absolute difference) from
    ``background``: :func:`~saliency_gym.data.shapes.contrasting_colour` drawn ``n`` at a time."""
    colours = rng.random((n, background.shape[0]))
    for _ in range(100):
        near = np.abs(colours - background).mean(axis=1) < min_distance
        if not near.any():
            return colours
        colours[near] = rng.random((int(near.sum()), background.shape[0]))
    colours[near] = np.where(background > 0.5, 0.0, 1.0)
    return colours


def _apart(y: int, x: int, side: int, y2: int, x2: int, side2: int) -> bool:
    """Whether two square windows keep at least ``FRAGMENT_GAP`` pixels between them."""
    gap = FRAGMENT_GAP
    return y >= y2 + side2 + gap or y2 >= y + side + gap or x >= x2 + side2 + gap or x2 >= x + side + gap


def _crop_to_content(mask: np.ndarray) -> np.ndarray:
    """``mask`` cropped to the bounding box of its ``True`` pixels."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


class ClutteredShapesSource(RenderedSource):
    """One small shape (the class) anywhere in a 64x64 image among fragments of shapes.

    The evidence mask is exactly the target shape's pixels. Samples are rendered on first access
    and cached, like :class:`~saliency_gym.data.shapes.ShapesSource`.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; splits are disjoint streams of the generator.
        n: number of samples (defaults: train 12000, val 1000, test 2000).
        seed: generator seed; the same ``(seed, split, size)`` always gives the same sample at an
            index, whatever ``n`` is.
        size: image side in pixels (64 by default; at least 48, so that a target stays small).
        max_fragments: the most clutter fragments drawn for one image (12 by default); an image
            draws between two thirds of it and all of it.

    Classes are balanced: sample ``i`` has label ``i % 5`` (``circle``, ``square``, ``triangle``,
    ``cross``, ``ring``).
    """

    class_names = SHAPE_CLASSES

    def __init__(
        self, split: str = "test", n: int | None = None, seed: int = 0, size: int = 64, max_fragments: int = 12
    ) -> None:
        self._init_stream(split, n, seed, size, DEFAULT_CLUTTERED_SIZES)
        check_int("size", size, minimum=48)
        self.max_fragments = check_int("max_fragments", max_fragments, minimum=0, maximum=64)
        self.name = "shapes_cluttered" if self.size == 64 else f"shapes_cluttered{self.size}"

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render sample ``index`` afresh: ``(image, mask, clutter)`` as
        :func:`render_cluttered_sample` returns them (the clutter map is not kept in the cache)."""
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, SPLITS[self.split], CLUTTERED_STREAM, self.size, index])
        fewest = (2 * self.max_fragments) // 3
        return render_cluttered_sample(
            rng, index % len(SHAPE_CLASSES), size=self.size, n_fragments=(fewest, self.max_fragments)
        )

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        sample = self._cache.get(index)
        if sample is None:
            image, mask, _ = self.render(index)
            image.flags.writeable = False
            mask.flags.writeable = False
            sample = self._cache[index] = Sample(image, index % len(SHAPE_CLASSES), mask)
        return sample
