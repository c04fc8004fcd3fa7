"""The shared machinery of the Captum-backed explainers.

Each class wraps one Captum method (``Method(forward_func).attribute(...)``) rather than
re-deriving it, and adapts it to the :class:`~saliency_gym.Explainer` protocol:

* the forward function is :meth:`FrozenClassifier.logits`, so every image Captum pushes through
  the model (interpolation steps, noisy copies, DeepLIFT's concatenated baselines) is counted in
  the classifier's query budget; ``expected_queries()`` states the expected count;
* baselines come from a substrate (:func:`~saliency_gym.substrates.make_substrate`: ``"zeros"``,
  ``"blur"``, ``"mean"``, ``"noise"``, a number, an image or a callable), evaluated per batch with
  the explained targets, so class-aware baselines plug in unchanged;
* stochastic methods (SmoothGrad, GradientSHAP) draw their noise from torch's and NumPy's global
  generators, as Captum does; they run inside a forked, seeded RNG state, so a call is reproducible
  from the explainer's ``seed`` and the caller's global RNG state is left as it was;
* Captum returns ``(N, C, H, W)`` attributions; the map is reduced over channels as documented
  per method (:func:`reduce_channels`). Methods that satisfy completeness (Integrated Gradients,
  DeepLIFT, GradientSHAP, Input x Gradient) default to ``"sum"``, which keeps the sum of the map
  equal to the attributed logit difference; gradient magnitudes default to ``"max_abs"`` over
  channels, as in Simonyan et al. (2014).

Limits: noisy inputs (SmoothGrad, GradientSHAP with ``stdevs > 0``) leave [0, 1], so the
classifier's range check is switched off for the duration of those calls. DeepLIFT needs the
classifier to wrap an ``nn.Module`` whose non-linearities are modules used once each, and its
summation-to-delta is only approximate with max pooling (see :class:`DeepLiftExplainer`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.validation import check_choice, check_int

#: How ``(N, C, H, W)`` attributions become ``(N, H, W)`` maps.
CHANNEL_REDUCTIONS: tuple[str, ...] = ("sum", "mean", "max_abs", "abs_sum")

#: Integration rules Captum's ``IntegratedGradients`` accepts.
IG_METHODS: tuple[str, ...] = ("gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left", "riemann_right")


def reduce_channels(attributions: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce ``(N, C, H, W)`` attributions to ``(N, H, W)``.

    ``"sum"`` keeps signed contributions and completeness (the map sums to the total
    attribution); ``"mean"`` is the same up to a factor ``1 / C``; ``"max_abs"`` is the largest
    magnitude over channels (Simonyan et al. 2014 for gradients); ``"abs_sum"`` the total
    magnitude.
    """
    check_choice("channel_reduction", how, CHANNEL_REDUCTIONS)
    if attributions.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) attributions, got shape {tuple(attributions.shape)}")
    if how == "sum":
        return attributions.sum(dim=1)
    if how == "mean":
        return attributions.mean(dim=1)
    if how == "max_abs":
        return attributions.abs().amax(dim=1)
    return attributions.abs().sum(dim=1)


@contextmanager
def unchecked_range(classifier: FrozenClassifier) -> Iterator[None]:
    """Temporarily switch off the classifier's [0, 1] input check (for noise-perturbed inputs)."""
    previous = classifier.check_range
    classifier.check_range = False
    try:
        yield
    finally:
        classifier.check_range = previous


@contextmanager
def seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with torch's and NumPy's global generators seeded, then restore both.

    Captum draws SmoothGrad/GradientSHAP noise with ``torch.normal`` and GradientSHAP's path
    positions and baseline choices with ``np.random``; seeding both makes those calls
    reproducible without disturbing the caller's random state.
    """
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        np.random.set_state(numpy_state)


def check_seed(seed: int | None) -> int:
    return secrets.randbits(63) if seed is None else check_int("seed", seed, minimum=0)


class CaptumGradientExplainer(Explainer):
    """Base of the Captum-backed explainers: counted forward function, channel reduction.

    Subclasses implement :meth:`attribute_channels` (``(N, C, H, W)`` Captum attributions) and set
    :attr:`default_reduction`.

    Args:
        classifier: the model to explain (its :meth:`~FrozenClassifier.logits` are attributed).
        channel_reduction: one of :data:`CHANNEL_REDUCTIONS`; ``None`` uses the method's default.
    """

    default_reduction: str = "sum"
    needs_gradients = True

    def __init__(
        self, classifier: ClassifierLike, channel_reduction: str | None = None, *, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(classifier, input_shape=input_shape)
        reduction = self.default_reduction if channel_reduction is None else channel_reduction
        self.channel_reduction: str = check_choice("channel_reduction", reduction, CHANNEL_REDUCTIONS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Captum's ``forward_func``: the classifier's logits, counted as queries."""
        return self.classifier.logits(images)

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Captum's ``(N, C, H, W)`` attributions for ``images`` and ``targets``."""
        raise NotImplementedError

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # A detached leaf that already requires gradients: Captum's bookkeeping never touches the
        # caller's tensor and it does not warn about switching gradients on.
        inputs = images.detach().requires_grad_(True)
        attributions = self.attribute_channels(inputs, targets.to(images.device).long())
        return reduce_channels(attributions.detach(), self.channel_reduction)


class SubstrateBaselineMixin:
    """Baselines for Captum from a substrate, evaluated per batch with the targets."""

    accepts_baseline = True
    substrate: Substrate
    seed: int

    def set_baseline(self, baseline: Any, seed: int | None) -> None:
        """Validate and keep the baseline spec (as a substrate) and the seed of stochastic ones."""
        self.substrate = make_substrate(baseline)
        self.seed = check_seed(seed)

    def baselines(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The substrate's ``(N, C, H, W)`` baselines (a stochastic one is seeded by :attr:`seed`)."""
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        out = self.substrate(images, targets, generator)
        if tuple(out.shape) != tuple(images.shape):
            raise ValueError(f"substrate {self.substrate.name!r} returned shape {tuple(out.shape)}, expected {tuple(images.shape)}")
        return out.to(images.device, images.dtype).detach()


