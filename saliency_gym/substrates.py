"""Substrates (baseline providers): what "absent" pixels become.

Insertion starts from a substrate and reveals the image; deletion replaces the image by it; RISE,
occlusion and Integrated Gradients need one too. A :class:`Substrate` maps a batch of images (and,
for class-aware providers such as GANMEX or MDTS, the target classes) to a batch of baselines of
the same shape. :func:`make_substrate` turns a user's specification (a name, a number, an image or
a callable) into one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from saliency_gym.validation import check_float, check_int

SUBSTRATE_NAMES = ("zeros", "mean", "blur", "noise")


class Substrate(ABC):
    """Maps images ``(N, C, H, W)`` in [0, 1] to baselines of the same shape, in [0, 1].

    ``targets`` are the explained classes (class-aware providers use them); ``generator`` seeds the
    stochastic ones, so a seeded environment reset always draws the same substrate.
    """

    name: str = "substrate"
    #: True when the result depends on a random generator (noise).
    stochastic: bool = False
    #: True when the result depends on the target class (counterfactual baselines).
    class_aware: bool = False

    @abstractmethod
    def __call__(
        self, images: torch.Tensor, targets: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ConstantSubstrate(Substrate):
    """Every pixel takes ``value`` (``0`` gives the classic black baseline)."""

    def __init__(self, value: float = 0.0) -> None:
        self.value = check_float("substrate value", value, minimum=0.0, maximum=1.0)
        self.name = "zeros" if self.value == 0 else f"constant({self.value:g})"

    def __call__(self, images, targets=None, generator=None):
        return torch.full_like(images, self.value)


class MeanSubstrate(Substrate):
    """The per-channel mean of a dataset (or of each image when no mean is given)."""

    name = "mean"

    def __init__(self, channel_mean: Any = None) -> None:
        self.channel_mean = None if channel_mean is None else torch.as_tensor(np.asarray(channel_mean, dtype=np.float32)).reshape(-1)
        if self.channel_mean is not None and ((self.channel_mean < 0).any() or (self.channel_mean > 1).any()):
            raise ValueError("channel_mean values must lie in [0, 1]")

    def __call__(self, images, targets=None, generator=None):
        if self.channel_mean is None:
            return images.mean(dim=(2, 3), keepdim=True).expand_as(images).clone()
        if self.channel_mean.numel() != images.shape[1]:
            raise ValueError(f"channel_mean has {self.channel_mean.numel()} values for {images.shape[1]} channels")
        return self.channel_mean.to(images.device).view(1, -1, 1, 1).expand_as(images).clone()


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """A normalised ``size x size`` Gaussian kernel (RISE's ``gkern``)."""
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    kernel = torch.outer(g, g)
    return kernel / kernel.sum()


class BlurSubstrate(Substrate):
    """A Gaussian blur of the image, RISE's insertion substrate (kernel 11, sigma 5 by default).

    Borders are reflected (RISE zero-pads, which darkens the edges of small images).
    """

    name = "blur"

    def __init__(self, kernel_size: int = 11, sigma: float = 5.0) -> None:
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.sigma = check_float("sigma", sigma, minimum=0.0, exclusive_minimum=True)
        self._kernel = gaussian_kernel(self.kernel_size, self.sigma)

    def __call__(self, images, targets=None, generator=None):
        c = images.shape[1]
        pad = self.kernel_size // 2
        kernel = self._kernel.to(images.device, images.dtype).expand(c, 1, -1, -1)
        mode = "reflect" if pad < min(images.shape[-2:]) else "replicate"
        padded = F.pad(images, (pad, pad, pad, pad), mode=mode)
        return F.conv2d(padded, kernel, groups=c).clamp_(0, 1)


class NoiseSubstrate(Substrate):
    """Uniform noise in ``[low, high]``, drawn from the caller's generator."""

    name = "noise"
    stochastic = True

    def __init__(self, low: float = 0.0, high: float = 1.0) -> None:
        self.low = check_float("low", low, minimum=0.0, maximum=1.0)
        self.high = check_float("high", high, minimum=self.low, maximum=1.0)

    def __call__(self, images, targets=None, generator=None):
        noise = torch.rand(images.shape, generator=generator, device="cpu" if generator is None else generator.device)
        return (self.low + (self.high - self.low) * noise).to(images.device, images.dtype)


class ImageSubstrate(Substrate):
    """A fixed baseline image ``(C, H, W)`` (or one per item of a batch, ``(N, C, H, W)``)."""

    name = "image"

    def __init__(self, image: Any) -> None:
        image = torch.as_tensor(np.asarray(image, dtype=np.float32))
        if image.ndim not in (3, 4):
            raise ValueError(f"a baseline image must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
        if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError("a baseline image must be finite with values in [0, 1]")
        self.image = image

    def __call__(self, images, targets=None, generator=None):
        expected = tuple(images.shape[1:]) if self.image.ndim == 3 else tuple(images.shape)
        if tuple(self.image.shape) != expected:
            raise ValueError(f"baseline image has shape {tuple(self.image.shape)}, expected {expected}")
        return self.image.to(images.device).expand_as(images).clone()


class CallableSubstrate(Substrate):
    """Wrap ``fn(images, targets) -> baselines``; its output is checked for shape and range."""

    def __init__(self, fn: Callable[..., torch.Tensor], name: str | None = None) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "callable"))

    def __call__(self, images, targets=None, generator=None):
        out = self.fn(images, targets)
        out = torch.as_tensor(out, dtype=images.dtype, device=images.device)
        if out.shape != images.shape:
            raise ValueError(f"substrate {self.name!r} returned shape {tuple(out.shape)}, expected {tuple(images.shape)}")
        if not torch.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError(f"substrate {self.name!r} must return finite values in [0, 1]")
        return out


def make_substrate(spec: Any, *, channel_mean: Any = None) -> Substrate:
    """Build a :class:`Substrate` from a user's specification.

    Args:
        spec: a :class:`Substrate`; a name (``"zeros"``, ``"mean"``, ``"blur"``, ``"noise"``); a number
            in [0, 1] (a constant); an image array/tensor (a fixed baseline); or a callable
            ``fn(images, targets) -> baselines``.
        channel_mean: the dataset's per-channel mean, used by ``"mean"``.
    """
    if isinstance(spec, Substrate):
        return spec
    if isinstance(spec, str):
        if spec == "zeros":
            return ConstantSubstrate(0.0)
        if spec == "mean":
            return MeanSubstrate(channel_mean)
        if spec == "blur":
            return BlurSubstrate()
        if spec == "noise":
            return NoiseSubstrate()
        raise ValueError(f"unknown substrate {spec!r}; choose one of {list(SUBSTRATE_NAMES)}, a number, an image or a callable")
    if isinstance(spec, (bool, np.bool_)):
        raise TypeError(f"substrate must be a name {list(SUBSTRATE_NAMES)}, a number, an image or a callable, got a bool")
    if isinstance(spec, (int, float, np.integer, np.floating)):  # NumPy scalars of any width too
        return ConstantSubstrate(float(spec))
    if isinstance(spec, (np.ndarray, torch.Tensor)):
        if spec.ndim == 0:  # a 0-d array is a number
            value = spec.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"a 0-d substrate array must hold a real number, got dtype {spec.dtype}")
            return ConstantSubstrate(float(value))
        return ImageSubstrate(spec)
    if callable(spec):
        return CallableSubstrate(spec)
    raise TypeError(
        f"substrate must be a name {list(SUBSTRATE_NAMES)}, a number, an image or a callable, got {type(spec).__name__}"
    )
