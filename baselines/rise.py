"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

RISE probes a black box with randomly masked copies of the image and weights each mask by the
probability the classifier still gives the explained class:

.. math::

    S_{x,c}(\\lambda) = \\frac{1}{N \\cdot p} \\sum_{i=1}^{N} f_c(x \\odot M_i) \\, M_i(\\lambda),

an unbiased Monte Carlo estimate of :math:`E[f_c(x \\odot M) \\mid M(\\lambda) = 1]` (Eq. 6 of the
paper). Masks follow the paper's generation procedure (Sec. 3.2) and the authors' reference
``generate_masks`` (github.com/eclique/RISE, ``explanations.py``):

1. sample an ``s x s`` binary grid, each cell kept with probability ``p``;
2. upsample it with bilinear interpolation to ``(s + 1) * cell`` pixels, ``cell = ceil(H / s)``
   (per axis, so non-square images work), with mirror-reflected borders as in the reference's
   ``skimage.transform.resize(..., order=1, mode="reflect")``;
3. crop an ``H x W`` window at a random shift in ``[0, cell)`` along each axis.

Unlike the reference, which loops over masks in NumPy, the upsample-and-crop is done for many
masks at once: bilinear interpolation is separable, so each mask is ``A_h[x:x+H] @ grid @
A_w[y:y+W]^T`` for fixed interpolation matrices ``A_h``, ``A_w``, one batched matmul on the
classifier's device. The random draws (grids, then row shifts, then column shifts) are made once
per explainer from its seed on a CPU generator; every mask is a function of its own draws only, so
masks can be built in any chunks and two explainers with the same seed give identical maps. Masks
are cached on the device and reused for every image (as the reference does) while all ``N`` of them
fit in :data:`MASK_CACHE_BYTES`; larger sets (4,000 masks of 224x224 floats are 800 MB) are rebuilt
chunk by chunk as they are used, which costs far less than the forward passes they feed.

Cost: exactly ``n_masks`` classifier queries per image, evaluated ``batch_size`` masked images per
call (by default the classifier's own batch size, which follows a memory budget), batched across
masks and across images.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.substrates import ConstantSubstrate, Substrate, make_substrate
from saliency_gym.validation import check_float, check_int

#: Masks are cached on the device when all of them take at most this many bytes (256 MiB);
#: otherwise they are generated chunk by chunk, identically, as they are used.
MASK_CACHE_BYTES = 256 << 20
#: Masks built at once when they are not cached (at least the batch size): large enough for an
#: efficient batched matmul, small enough to bound memory (256 masks of 224x224 are 51 MB).
MASK_BLOCK = 256


def _bilinear_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """``(size_out, size_in)`` matrix of 1-D linear interpolation with mirror-reflected borders.

    Output pixel ``j`` samples input coordinate ``u = (j + 0.5) * size_in / size_out - 0.5``
    (pixel-area alignment, ``align_corners=False``); coordinates beyond the first or last input
    sample are mirrored about it (NumPy's ``"reflect"``, SciPy's ``"mirror"``), which is what
    ``skimage.transform.resize(order=1, mode="reflect", anti_aliasing=False)`` computes.
    """
    j = torch.arange(size_out, dtype=torch.float64)
    u = (j + 0.5) * size_in / size_out - 0.5
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    if size_in == 1:
        return matrix.fill_(1.0)
    last = size_in - 1
    u = torch.where(u < 0, -u, u)
    u = torch.where(u > last, 2 * last - u, u)
    lower = u.floor().clamp(0, last).long()
    frac = u - lower
    upper = (lower + 1).clamp(max=last)
    rows = torch.arange(size_out)
    matrix.index_put_((rows, lower), 1 - frac, accumulate=True)
    matrix.index_put_((rows, upper), frac, accumulate=True)
    return matrix


@dataclass(frozen=True)
class RISEMaskDraws:
    """The random draws that fix a set of RISE masks (on the CPU): ``grid`` ``float64 (N, s, s)``
    binary cells, ``shift_h`` / ``shift_w`` ``int64 (N,)`` crop offsets, and the mask size."""

    grid: torch.Tensor
    shift_h: torch.Tensor
    shift_w: torch.Tensor
    height: int
    width: int

    def __len__(self) -> int:
        return int(self.grid.shape[0])

    def build(self, start: int = 0, stop: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """Masks ``start:stop`` as ``float32 (stop - start, H, W)`` on ``device`` (default CPU).

        Each mask depends only on its own draws, so chunks concatenate to the full set."""
        stop = len(self) if stop is None else stop
        s = self.grid.shape[1]
        cell_h, cell_w = math.ceil(self.height / s), math.ceil(self.width / s)
        up_h, up_w = (s + 1) * cell_h, (s + 1) * cell_w
        dev = torch.device("cpu") if device is None else torch.device(device)
        a_h = _bilinear_matrix(s, up_h).to(dev)
        a_w = _bilinear_matrix(s, up_w).to(dev)
        shift_h = self.shift_h[start:stop].to(dev)
        shift_w = self.shift_w[start:stop].to(dev)
        # Rows x..x+H of the height interpolation matrix crop the upsampled canvas; likewise columns.
        rows = a_h[shift_h[:, None] + torch.arange(self.height, device=dev)]  # (n, H, s)
        cols = a_w[shift_w[:, None] + torch.arange(self.width, device=dev)]  # (n, W, s)
        masks = rows @ self.grid[start:stop].to(dev) @ cols.transpose(1, 2)  # (n, H, W)
        return masks.clamp_(0.0, 1.0).to(torch.float32)


def draw_rise_masks(
    n_masks: int,
    grid_size: int,
    p: float,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
) -> RISEMaskDraws:
    """Draw the random parts of ``n_masks`` RISE masks (see :func:`generate_rise_masks`): the
    grid first, then the row shifts, then the column shifts, all from ``generator``."""
    n_masks = check_int("n_masks", n_masks, minimum=1)
    grid_size = check_int("grid_size", grid_size, minimum=1)
    p = check_float("p", p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    height = check_int("height", height, minimum=1)
    width = check_int("width", width, minimum=1)
    cell_h, cell_w = math.ceil(height / grid_size), math.ceil(width / grid_size)
    grid = (torch.rand(n_masks, grid_size, grid_size, generator=generator) < p).to(torch.float64)
    shift_h = torch.randint(0, cell_h, (n_masks,), generator=generator)
    shift_w = torch.randint(0, cell_w, (n_masks,), generator=generator)
    return RISEMaskDraws(grid, shift_h, shift_w, height, width)


def generate_rise_masks(
    n_masks: int,
    grid_size: int,
    p: float,
    height: int,
    width: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """RISE's random smooth masks, ``float32 (n_masks, height, width)`` with values in [0, 1].

    Args:
        n_masks: number of masks ``N``.
        grid_size: cells per side ``s`` of the binary grid.
        p: probability that a grid cell is kept (1 in the grid).
        height, width: mask size in pixels (the image size).
        generator: a CPU ``torch.Generator``; the grid is drawn first, then the row shifts, then
            the column shifts, so a seed fixes all of them.
        device: where the upsampling runs and the masks are returned (default: the CPU); the
            draws are always made on the CPU, so a seed gives the same masks on every device.

    Why a shift: upsampling an ``s x s`` grid to exactly ``H x W`` would put every cell border at
    the same pixels for all masks; a random sub-cell shift of the ``(s + 1)``-cell canvas spreads
    them out (Sec. 3.2 of the paper).
    """
    draws = draw_rise_masks(n_masks, grid_size, p, height, width, generator=generator)
    return draws.build(device=device)


class RISEExplainer(Explainer):
    """RISE saliency: the expected class probability given that a pixel is kept (Petsiuk et al. 2018).

    Args:
        classifier: the model to explain (only :meth:`FrozenClassifier.probs` is used: black box).
        n_masks: number of random masks ``N`` (the paper uses 4,000 for ResNet-50 and 8,000 on
            larger grids); the map's Monte Carlo noise falls as ``1 / sqrt(N)``.
        grid_size: cells per side ``s`` of the random grid (the paper's ``s = 7`` on 224x224;
            smaller cells localise finer but need more masks).
        p: probability ``p`` that a cell is kept (``p1 = 0.5`` in the paper); must lie in (0, 1].
        seed: seeds the masks (and a stochastic substrate), so maps are reproducible; ``None``
            draws a fresh seed.
        batch_size: masked images built and sent to the classifier per call (bounds memory:
            ``batch_size * C * H * W`` floats); masks of several images share a call when
            ``n_masks < batch_size``. ``None`` (default): the classifier's
            :attr:`~FrozenClassifier.batch_size`, which follows its memory budget; a larger
            value only builds bigger tensors that the classifier splits again.
        substrate: what masked-out pixels become. ``"zeros"`` (default) gives RISE's ``x * M``;
            any :func:`~saliency_gym.substrates.make_substrate` spec (``"blur"``, ``"mean"``,
            ``"noise"``, a number, an image, a callable) gives ``M * x + (1 - M) * b`` with the
            baseline ``b`` evaluated once per batch of images and targets.

    Attributes:
        masks: the ``(N, H, W)`` masks on the classifier's device (generated on first use; all of
            them at once, even when :meth:`attribute_batch` streams them in chunks).
    """

    name = "rise"
    accepts_baseline = True

    def __init__(
        self,
        classifier: ClassifierLike,
        n_masks: int = 4000,
        grid_size: int = 7,
        p: float = 0.5,
        seed: int | None = 0,
        batch_size: int | None = None,
        substrate: Any = "zeros",
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, input_shape=input_shape)
        self.n_masks = check_int("n_masks", n_masks, minimum=1)
        self.grid_size = check_int("grid_size", grid_size, minimum=1)
        self.p = check_float("p", p, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        self.seed = secrets.randbits(63) if seed is None else check_int("seed", seed, minimum=0)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, minimum=1)
        self.substrate: Substrate = make_substrate(substrate)
        self._masks: torch.Tensor | None = None
        self._draws: RISEMaskDraws | None = None

    # ------------------------------------------------------------------ masks
    def _draws_for(self, height: int, width: int) -> RISEMaskDraws:
        """The random draws of the masks for ``height x width`` images (from :attr:`seed`)."""
        draws = self._draws
        if draws is None or (draws.height, draws.width) != (height, width):
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            draws = draw_rise_masks(self.n_masks, self.grid_size, self.p, height, width, generator=generator)
            self._draws = draws
        return draws

    def generate_masks(self, height: int, width: int) -> torch.Tensor:
        """(Re)generate the cached masks for ``height x width`` images from :attr:`seed`."""
        self._masks = self._draws_for(height, width).build(device=self.classifier.device)
        return self._masks

    @property
    def masks(self) -> torch.Tensor:
        """The ``(N, H, W)`` masks for the classifier's input size, on its device."""
        _, h, w = self.classifier.input_shape
        return self._masks_for(h, w)

    def _masks_for(self, height: int, width: int) -> torch.Tensor:
        masks = self._masks
        if masks is None or tuple(masks.shape[1:]) != (height, width):
            return self.generate_masks(height, width)
        if masks.device != self.classifier.device:  # the classifier was moved with .to(device)
            self._masks = masks = masks.to(self.classifier.device)
        return masks

    def _mask_chunk(self, height: int, width: int, start: int, stop: int) -> torch.Tensor:
        """Masks ``start:stop``: a view of the cache when all masks fit in
        :data:`MASK_CACHE_BYTES` (or are cached already), else built on the device for this chunk."""
        cached = self._masks
        if cached is not None and tuple(cached.shape[1:]) == (height, width):
            return self._masks_for(height, width)[start:stop]
        if self.n_masks * height * width * 4 <= MASK_CACHE_BYTES:
            return self._masks_for(height, width)[start:stop]
        return self._draws_for(height, width).build(start, stop, device=self.classifier.device)

    def expected_queries(self) -> int:
        """Forward passes one image costs: one per mask."""
        return self.n_masks

    # ------------------------------------------------------------------ saliency
    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n_images, _, h, w = images.shape
        n = self.n_masks
        targets = targets.to(images.device).long()
        zero_substrate = isinstance(self.substrate, ConstantSubstrate) and self.substrate.value == 0.0
        if zero_substrate:
            baselines = None
        else:
            generator = torch.Generator(device="cpu").manual_seed(self.seed + 1)
            baselines = self.substrate(images, targets, generator).to(images.device, images.dtype)

        # Masks in blocks (built once per block, shared by all images). A classifier call covers
        # ``batch`` masks of one image, or a whole block for several images when blocks are small.
        batch = self.classifier.batch_size if self.batch_size is None else self.batch_size
        block = min(n, max(batch, MASK_BLOCK))
        images_per_call = max(1, batch // block)
        saliency = torch.zeros(n_images, h * w, device=images.device)
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            m = self._mask_chunk(h, w, lo, hi)  # (b, H, W)
            for first in range(0, n_images, images_per_call):
                last = min(first + images_per_call, n_images)
                x = images[first:last, None]  # (g, 1, C, H, W)
                scores = torch.empty(last - first, hi - lo, device=images.device)
                for s0 in range(0, hi - lo, batch):
                    s1 = min(s0 + batch, hi - lo)
                    mb = m[None, s0:s1, None]  # (1, k, 1, H, W), broadcast over images and channels
                    if baselines is None:
                        masked = x * mb
                    else:
                        base = baselines[first:last, None]
                        masked = base + mb * (x - base)
                    # x * M of validated images stays in [0, 1]: no need to check it again.
                    probs = self.classifier.probs(masked.flatten(0, 1), validate=baselines is not None)
                    chosen = targets[first:last, None, None].expand(-1, s1 - s0, 1)
                    scores[:, s0:s1] = probs.view(last - first, s1 - s0, -1).gather(2, chosen)[..., 0]
                saliency[first:last] += scores @ m.view(hi - lo, h * w)
        return (saliency / (n * self.p)).view(n_images, h, w)

    def __repr__(self) -> str:
        return (
            f"RISEExplainer(classifier={self.classifier.name!r}, n_masks={self.n_masks}, "
            f"grid_size={self.grid_size}, p={self.p}, seed={self.seed}, substrate={self.substrate.name!r})"
        )
