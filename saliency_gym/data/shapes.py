"""Procedural *shapes*: a benchmark with known answers.

Each image shows one shape (the class) at a random position, size, rotation and colour over a
textured background with small distractor marks in the same colour distribution. The evidence mask
is exactly the set of pixels the shape covers, so localisation metrics have a pixel-exact answer.

Why it is not trivial: colour, position, scale and rotation carry no class information, the
background has low- and high-frequency texture, and distractor strokes are drawn from the same
colours as the shapes, so a classifier must look at the outline of the shape itself (a circle and
a ring differ only inside, a square and a rotated square differ only at the corners).

Samples are generated from ``numpy.random.default_rng([seed, split, index])``: the image at an
index does not depend on how many others were generated, and splits never share a sample.
"""

from __future__ import annotations

import numpy as np

from saliency_gym.data.base import DataSource, Sample
from saliency_gym.validation import check_choice, check_int

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring")
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}
DEFAULT_SIZES: dict[str, int] = {"train": 12000, "val": 1000, "test": 2000}


def shape_mask(
    kind: str,
    cy: float | np.ndarray,
    cx: float | np.ndarray,
    radius: float | np.ndarray,
    angle: float | np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """Rasterise one shape: the boolean ``(height, width)`` mask of pixel centres inside it.

    ``radius`` is the circumscribed radius in pixels, ``angle`` the rotation in radians (circles
    and rings ignore it). Arrays of shape ``(n, 1, 1)`` for ``cy``, ``cx``, ``radius`` and
    ``angle`` rasterise ``n`` shapes of one kind at once: the result is ``(n, height, width)``.
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    dy, dx = yy - cy, xx - cx
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # rotated coordinates
    r2 = dx * dx + dy * dy
    if kind == "circle":
        return r2 <= radius**2
    if kind == "ring":
        return (r2 <= radius**2) & (r2 >= (0.55 * radius) ** 2)
    if kind == "square":
        half = radius / np.sqrt(2.0)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == "cross":
        arm = 0.32 * radius
        return ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))
    if kind == "triangle":
        # Equilateral triangle with circumradius `radius`: three half-planes at 120 degrees.
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            theta = angle + np.pi / 2 + 2 * np.pi * k / 3
            nx, ny = np.cos(theta), np.sin(theta)
            inside &= (dx * nx + dy * ny) <= radius / 2
        return inside
    raise ValueError(f"unknown shape kind {kind!r}; choose one of {list(SHAPE_CLASSES)}")


def _smooth_noise(rng: np.random.Generator, channels: int, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise: a ``cells x cells`` random grid bilinearly upsampled to the image."""
    grid = rng.random((channels, cells + 1, cells + 1))
    ys = np.linspace(0, cells, height)
    xs = np.linspace(0, cells, width)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    wy = (ys - y0)[None, :, None]
    wx = (xs - x0)[None, None, :]
    g00 = grid[:, y0][:, :, x0]
    g01 = grid[:, y0][:, :, x0 + 1]
    g10 = grid[:, y0 + 1][:, :, x0]
    g11 = grid[:, y0 + 1][:, :, x0 + 1]
    return (1 - wy) * ((1 - wx) * g00 + wx * g01) + wy * ((1 - wx) * g10 + wx * g11)


def textured_background(rng: np.random.Generator, channels: int, height: int, width: int) -> np.ndarray:
    """The shapes background, float64 ``(channels, height, width)``: low-frequency colour noise in
    [0.15, 0.65] plus a little pixel noise (shared by every renderer built on the shapes data)."""
    background = 0.15 + 0.5 * _smooth_noise(rng, channels, height, width, cells=4)
    background += 0.08 * (rng.random((channels, height, width)) - 0.5)
    return background


def contrasting_colour(rng: np.random.Generator, background: np.ndarray, min_distance: float) -> np.ndarray:
    """A random RGB colour at least ``min_distance`` (mean absolute difference) from ``background``."""
    for _ in range(100):
        colour = rng.random((background.shape[0],))
        if np.abs(colour - background).mean() >= min_distance:
            return colour
    return np.where(background > 0.5, 0.0, 1.0)


def _stroke_mask(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """A small distractor: a short straight stroke or a dot, sized relative to the image."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    cy, cx = rng.uniform(0, height), rng.uniform(0, width)
    if rng.random() < 0.6:
        length = rng.uniform(0.08, 0.16) * scale
        theta = rng.uniform(0, np.pi)
        ex, ey = np.cos(theta), np.sin(theta)
        t = np.clip((xx - cx) * ex + (yy - cy) * ey, -length / 2, length / 2)
        dist2 = (xx - cx - t * ex) ** 2 + (yy - cy - t * ey) ** 2
        return dist2 <= (0.02 * scale + 0.35) ** 2
    radius = rng.uniform(0.03, 0.05) * scale
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def render_shapes_sample(
    rng: np.random.Generator,
    label: int,
    size: int = 32,
    channels: int = 3,
    n_distractors: tuple[int, int] = (3, 6),
) -> tuple[np.ndarray, np.ndarray]:
    """Render one sample of class ``label``; returns ``(image (C, H, W) float32, mask (H, W) bool)``."""
    kind = SHAPE_CLASSES[label]
    h = w = size
    background = textured_background(rng, channels, h, w)
    bg_mean = background.mean(axis=(1, 2))

    radius = rng.uniform(0.2, 0.32) * size
    margin = radius + 1.0
    cy, cx = rng.uniform(margin, h - margin), rng.uniform(margin, w - margin)
    angle = rng.uniform(0, 2 * np.pi)
    mask = shape_mask(kind, cy, cx, radius, angle, h, w)

    image = background
    # Distractors keep clear of the shape (one-pixel gap) so the evidence mask stays exact.
    keep_out = dilate(mask, 2)
    for _ in range(int(rng.integers(n_distractors[0], n_distractors[1] + 1))):
        stroke = _stroke_mask(rng, h, w, size) & ~keep_out
        colour = contrasting_colour(rng, bg_mean, 0.3)
        image = np.where(stroke[None], colour[:, None, None], image)

    colour = contrasting_colour(rng, bg_mean, 0.3)
    shaded = colour[:, None, None] + 0.06 * (rng.random((channels, h, w)) - 0.5)
    image = np.where(mask[None], shaded, image)
    return np.clip(image, 0.0, 1.0).astype(np.float32), mask


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a ``(2r+1)^2`` square (no SciPy needed for such small images)."""
    out = mask.copy()
    padded = np.pad(mask, radius)
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            out |= padded[radius + dy : radius + dy + h, radius + dx : radius + dx + w]
    return out


class RenderedSource(DataSource):
    """Base of the sources rendered on demand from seeded streams (shapes, shape pairs): ``n``
    samples of a split, every one with an evidence mask, cached once rendered."""

    n: int
    seed: int
    size: int
    split: str

    def _init_stream(self, split: str, n: int | None, seed: int, size: int, default_sizes: dict[str, int]) -> None:
        """Validate and store the stream's ``split``, ``n`` (``None``: the split's default),
        ``seed`` and image ``size``; start an empty cache."""
        check_choice("split", split, SPLITS)
        self.n = default_sizes[split] if n is None else check_int("n", n, minimum=1)
        self.seed = check_int("seed", seed, minimum=0)
        self.size = check_int("size", size, minimum=16, maximum=256)
        self.split = split
        self.image_shape = (3, self.size, self.size)
        self._cache: dict[int, Sample] = {}

    @property
    def has_masks(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.n


class ShapesSource(RenderedSource):
    """Procedurally generated shapes images with pixel-exact evidence masks.

    Samples are rendered on first access and cached, so building a large source is instant and an
    environment that draws a few images pays only for those (about 1 ms each).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; splits are disjoint streams of the generator.
        n: number of samples (defaults: train 12000, val 1000, test 2000).
        seed: generator seed; the same ``(seed, split, size)`` always gives the same sample at an
            index, whatever ``n`` is.
        size: image side in pixels (32 by default; 64 for the ``shapes64`` variant).

    Classes are balanced: sample ``i`` has label ``i % 5``.
    """

    class_names = SHAPE_CLASSES

    def __init__(self, split: str = "test", n: int | None = None, seed: int = 0, size: int = 32) -> None:
        self._init_stream(split, n, seed, size, DEFAULT_SIZES)
        self.name = "shapes" if self.size == 32 else f"shapes{self.size}"

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        sample = self._cache.get(index)
        if sample is None:
            label = index % len(SHAPE_CLASSES)
            rng = np.random.default_rng([self.seed, SPLITS[self.split], self.size, index])
            image, mask = render_shapes_sample(rng, label, size=self.size)
            image.flags.writeable = False
            mask.flags.writeable = False
            sample = self._cache[index] = Sample(image, label, mask)
        return sample
