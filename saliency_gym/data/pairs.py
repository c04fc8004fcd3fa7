"""*Shape pairs*: a one-vs-one benchmark whose answer to "why A rather than B" is known.

Two classes, ``plain`` and ``marked``, that differ only by a small mark: a disk of a contrasting
colour drawn inside the shape. Samples come in pairs: items ``2k`` (plain) and ``2k + 1`` (marked)
are rendered from the same scene (shape, position, colours, background, distractors, and the place
and colour of the mark), so the two images of a pair differ *exactly* on the mark's pixels. The
evidence mask of both items is that differing region, so a contrastive explanation of a marked
image against the plain class (e.g. Integrated Gradients from a GANMEX counterfactual, Shih et al.
2020) has a pixel-exact answer to point at. On a plain image the mask marks where its pair's mark
is; the plain class has no evidence of its own there, so localisation is scored on marked images.

Scenes reuse the shapes renderer (:func:`~saliency_gym.data.shapes.render_shapes_sample`): any of
the five shapes, random size, position, rotation and colours, textured background and distractor
dots and strokes of the same colour distribution *outside* the shape, so a classifier must look
for a dot inside the shape rather than for any dot.

Samples are generated from ``numpy.random.default_rng([seed, split, PAIRS_STREAM, k])`` for pair
``k``: deterministic, independent of how many others were generated, and disjoint across splits
and from the ``shapes`` data's streams.
"""

from __future__ import annotations

import numpy as np

from saliency_gym.data.base import Sample
from saliency_gym.data.shapes import (
    SHAPE_CLASSES,
    SPLITS,
    RenderedSource,
    contrasting_colour,
    dilate,
    render_shapes_sample,
)
from saliency_gym.validation import check_float

PAIR_CLASSES: tuple[str, ...] = ("plain", "marked")
DEFAULT_PAIR_SIZES: dict[str, int] = {"train": 12000, "val": 1000, "test": 2000}
#: Extra seed component that keeps pair streams apart from the shapes data's ``[seed, split, size, i]``.
PAIRS_STREAM = 7919


def mark_mask(cy: float, cx: float, radius: float, height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` disk of pixel centres within ``radius`` of ``(cy, cx)``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def render_pair(
    rng: np.random.Generator, size: int = 32, mark_radius: float = 1.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one scene twice: ``(plain (C, H, W), marked (C, H, W), differing region (H, W) bool)``.

    The mark is a disk of ``mark_radius`` pixels centred on a pixel of the shape that lies at
    least ``mark_radius + 1`` pixels inside it, so the whole mark (and a one-pixel rim of shape
    around it) lies on the shape; its colour contrasts with the shape's mean colour.
    """
    kind = int(rng.integers(len(SHAPE_CLASSES)))
    plain, shape = render_shapes_sample(rng, kind, size=size)
    margin = int(np.ceil(mark_radius)) + 1
    interior = shape & ~dilate(~shape, margin)
    if not interior.any():  # very thin shapes at their smallest size: fall back to a 1-pixel rim
        interior = shape & ~dilate(~shape, 1)
    if not interior.any():
        interior = shape
    ys, xs = np.nonzero(interior)
    pick = int(rng.integers(len(ys)))
    mark = mark_mask(ys[pick] + 0.5, xs[pick] + 0.5, mark_radius, size, size) & shape
    shape_colour = plain[:, shape].mean(axis=1)
    colour = contrasting_colour(rng, shape_colour, 0.35)
    marked = np.where(mark[None], colour[:, None, None].astype(np.float32), plain)
    return plain, marked.astype(np.float32), mark


class ShapePairsSource(RenderedSource):
    """Pairs of images, ``plain`` and ``marked``, that differ only by a small mark inside a shape.

    Item ``i`` belongs to pair ``i // 2`` and has label ``i % 2`` (0 plain, 1 marked); its evidence
    mask is the region where the pair's two images differ (the mark). Samples are rendered on first
    access and cached, like :class:`~saliency_gym.data.shapes.ShapesSource`.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint streams).
        n: number of samples (defaults: train 12000, val 1000, test 2000).
        seed: generator seed; the same ``(seed, split)`` gives the same sample at an index.
        size: image side in pixels (32 by default).
        mark_radius: radius of the mark in pixels (about 10 pixels at the default 1.8).
    """

    class_names = PAIR_CLASSES

    def __init__(
        self, split: str = "test", n: int | None = None, seed: int = 0, size: int = 32, mark_radius: float = 1.8
    ) -> None:
        self._init_stream(split, n, seed, size, DEFAULT_PAIR_SIZES)
        self.mark_radius = check_float("mark_radius", mark_radius, minimum=0.5, maximum=size / 8)
        self.name = "shape_pairs"

    def pair_of(self, index: int) -> int:
        """The index of the other image of ``index``'s pair (it may lie beyond ``len(self)``)."""
        index = self._check_index(index)
        return index + 1 if index % 2 == 0 else index - 1

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        sample = self._cache.get(index)
        if sample is None:
            pair, label = divmod(index, 2)
            rng = np.random.default_rng([self.seed, SPLITS[self.split], PAIRS_STREAM, self.size, pair])
            plain, marked, region = render_pair(rng, self.size, self.mark_radius)
            for i, image in ((2 * pair, plain), (2 * pair + 1, marked)):
                if i < self.n:
                    image.flags.writeable = False
                    self._cache[i] = Sample(image, i % 2, region)
            region.flags.writeable = False
            sample = self._cache[index]
        return sample
