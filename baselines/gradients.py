"""Gradient-based explainers backed by Captum.

Each class wraps one Captum method (``Method(forward_func).attribute(...)``) rather than
re-deriving it, and adapts it to the :class:`~saliency_gym.Explainer` protocol:

* the forward function is :meth:`FrozenClassifier.logits`, so every image Captum pushes through
  the model (interpolation steps, noisy copies, DeepLIFT's concatenated baselines) is counted in
  the classifier's query budget; ``queries_per_image()`` states the expected count;
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
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainer import Explainer
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.validation import check_choice, check_float, check_int

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


def _check_seed(seed: int | None) -> int:
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

    def __init__(self, classifier: FrozenClassifier, channel_reduction: str | None = None) -> None:
        super().__init__(classifier)
        reduction = self.default_reduction if channel_reduction is None else channel_reduction
        self.channel_reduction: str = check_choice("channel_reduction", reduction, CHANNEL_REDUCTIONS)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Captum's ``forward_func``: the classifier's logits, counted as queries."""
        return self.classifier.logits(images)

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Captum's ``(N, C, H, W)`` attributions for ``images`` and ``targets``."""
        raise NotImplementedError

    def attribute(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # A detached leaf that already requires gradients: Captum's bookkeeping never touches the
        # caller's tensor and it does not warn about switching gradients on.
        inputs = images.detach().requires_grad_(True)
        attributions = self.attribute_channels(inputs, targets.to(images.device).long())
        return reduce_channels(attributions.detach(), self.channel_reduction)


class _SubstrateBaselineMixin:
    """Baselines for Captum from a substrate, evaluated per batch with the targets."""

    substrate: Substrate
    seed: int

    def baselines(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The substrate's ``(N, C, H, W)`` baselines (a stochastic one is seeded by :attr:`seed`)."""
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        out = self.substrate(images, targets, generator)
        if tuple(out.shape) != tuple(images.shape):
            raise ValueError(f"substrate {self.substrate.name!r} returned shape {tuple(out.shape)}, expected {tuple(images.shape)}")
        return out.to(images.device, images.dtype).detach()


class GradientExplainer(CaptumGradientExplainer):
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman 2014), Captum's ``Saliency``.

    The map is ``d logit_c / d x``: how fast the class score changes with each pixel.

    Args:
        classifier: the model to explain.
        abs: take the gradient's magnitude (the paper's choice, Captum's default). ``False``
            keeps signed gradients.
        channel_reduction: default ``"max_abs"`` with ``abs=True`` (max over channels, as in the
            paper) and ``"sum"`` for signed gradients (the derivative along a uniform brightening
            of all channels).

    Cost: one query per image.
    """

    name = "gradient"

    def __init__(self, classifier: FrozenClassifier, abs: bool = True, channel_reduction: str | None = None) -> None:
        self.abs = bool(abs)
        self.default_reduction = "max_abs" if self.abs else "sum"
        super().__init__(classifier, channel_reduction)

    def queries_per_image(self) -> int:
        return 1

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import Saliency

        return Saliency(self.forward).attribute(images, target=targets, abs=self.abs)


class InputXGradientExplainer(CaptumGradientExplainer):
    """Input x Gradient (Shrikumar et al. 2016), Captum's ``InputXGradient``.

    ``x * d logit_c / d x``: a first-order Taylor estimate of each pixel's contribution relative
    to a black image; for piecewise-linear networks without biases it sums to the logit.

    Args:
        classifier: the model to explain.
        channel_reduction: default ``"sum"`` (signed contributions add up over channels).

    Cost: one query per image.
    """

    name = "input_x_gradient"

    def queries_per_image(self) -> int:
        return 1

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import InputXGradient

        return InputXGradient(self.forward).attribute(images, target=targets)


class IntegratedGradientsExplainer(_SubstrateBaselineMixin, CaptumGradientExplainer):
    """Integrated Gradients (Sundararajan, Taly & Yan 2017), Captum's ``IntegratedGradients``.

    ``(x - b) * integral_0^1 d logit_c(b + a (x - b)) / dx da``; satisfies completeness: the
    attributions sum to ``logit_c(x) - logit_c(b)`` up to the integration error.

    Args:
        classifier: the model to explain.
        baseline: the reference ``b``, any substrate spec (``"zeros"``, ``"blur"``, ``"mean"``,
            ``"noise"``, a number, an image, a callable ``fn(images, targets)``), evaluated per
            batch with the targets.
        n_steps: integration points per image (the paper suggests 20-300).
        method: Captum's integration rule, one of :data:`IG_METHODS`.
        internal_batch_size: interpolated images per forward pass (``None``: all
            ``n_steps * N`` at once).
        seed: seeds a stochastic baseline (``"noise"``).
        channel_reduction: default ``"sum"`` (keeps completeness).

    Cost: ``n_steps`` queries per image.
    """

    name = "integrated_gradients"

    def __init__(
        self,
        classifier: FrozenClassifier,
        baseline: Any = "zeros",
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        seed: int | None = 0,
        channel_reduction: str | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction)
        self.substrate = make_substrate(baseline)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.method = check_choice("method", method, IG_METHODS)
        self.internal_batch_size = None if internal_batch_size is None else check_int("internal_batch_size", internal_batch_size, minimum=1)
        self.seed = _check_seed(seed)

    def queries_per_image(self) -> int:
        return self.n_steps

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import IntegratedGradients

        return IntegratedGradients(self.forward).attribute(
            images,
            baselines=self.baselines(images, targets),
            target=targets,
            n_steps=self.n_steps,
            method=self.method,
            internal_batch_size=self.internal_batch_size,
        )


class SmoothGradExplainer(CaptumGradientExplainer):
    """SmoothGrad (Smilkov et al. 2017): gradients averaged over noisy copies of the image.

    Captum's ``NoiseTunnel(Saliency)`` with ``nt_type="smoothgrad"``: ``nt_samples`` copies with
    Gaussian noise of standard deviation ``stdevs`` (the paper finds 10-20% of the input range
    best; images here span [0, 1]).

    Args:
        classifier: the model to explain.
        nt_samples: noisy copies per image (the paper sees little change beyond 50).
        stdevs: noise standard deviation in pixel units.
        abs: average gradient magnitudes (Captum's ``Saliency`` default) or signed gradients.
        nt_samples_batch_size: noisy copies per forward pass (``None``: all at once).
        seed: seeds the noise; each call redraws it from this seed.
        channel_reduction: default ``"max_abs"`` with ``abs=True``, ``"sum"`` otherwise.

    Cost: ``nt_samples`` queries per image.
    """

    name = "smoothgrad"

    def __init__(
        self,
        classifier: FrozenClassifier,
        nt_samples: int = 50,
        stdevs: float = 0.15,
        abs: bool = True,
        nt_samples_batch_size: int | None = None,
        seed: int | None = 0,
        channel_reduction: str | None = None,
    ) -> None:
        self.abs = bool(abs)
        self.default_reduction = "max_abs" if self.abs else "sum"
        super().__init__(classifier, channel_reduction)
        self.nt_samples = check_int("nt_samples", nt_samples, minimum=1)
        self.stdevs = check_float("stdevs", stdevs, minimum=0.0)
        self.nt_samples_batch_size = (
            None if nt_samples_batch_size is None else check_int("nt_samples_batch_size", nt_samples_batch_size, minimum=1)
        )
        self.seed = _check_seed(seed)

    def queries_per_image(self) -> int:
        return self.nt_samples

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import NoiseTunnel, Saliency

        tunnel = NoiseTunnel(Saliency(self.forward))
        with unchecked_range(self.classifier), seeded_global_rng(self.seed, images.device):
            return tunnel.attribute(
                images,
                nt_type="smoothgrad",
                nt_samples=self.nt_samples,
                nt_samples_batch_size=self.nt_samples_batch_size,
                stdevs=self.stdevs,
                target=targets,
                abs=self.abs,
            )


class GradientShapExplainer(_SubstrateBaselineMixin, CaptumGradientExplainer):
    """GradientSHAP (Lundberg & Lee 2017; Erion et al.'s expected gradients), Captum's ``GradientShap``.

    For each of ``n_samples`` draws: add Gaussian noise (``stdevs``) to the image, pick a random
    point on the segment from the baseline to it, and take ``(x - b) * gradient`` there; average.
    It approximates SHAP values (expected Integrated Gradients over baselines and noise).

    The baseline is the substrate's, per image. Captum draws baselines from a *shared*
    distribution for the whole batch, which is right only when every image has the same baseline
    (zeros, a constant, a fixed image, a dataset mean): then one batched Captum call is made. For
    image-dependent substrates (blur, per-image mean, noise) Captum is called image by image with
    that image's own baseline, so one image's map never depends on the others in its batch.

    Args:
        classifier: the model to explain.
        baseline: any substrate spec (see :class:`IntegratedGradientsExplainer`).
        n_samples: random draws per image.
        stdevs: standard deviation of the noise added to the image (pixel units).
        seed: seeds the draws; each call redraws them from this seed.
        channel_reduction: default ``"sum"`` (keeps completeness in expectation).

    Cost: ``n_samples`` queries per image.
    """

    name = "gradient_shap"

    def __init__(
        self,
        classifier: FrozenClassifier,
        baseline: Any = "zeros",
        n_samples: int = 50,
        stdevs: float = 0.1,
        seed: int | None = 0,
        channel_reduction: str | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction)
        self.substrate = make_substrate(baseline)
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.stdevs = check_float("stdevs", stdevs, minimum=0.0)
        self.seed = _check_seed(seed)

    def queries_per_image(self) -> int:
        return self.n_samples

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import GradientShap

        shap = GradientShap(self.forward)
        baselines = self.baselines(images, targets)
        shared = bool((baselines == baselines[:1]).all())
        with unchecked_range(self.classifier), seeded_global_rng(self.seed, images.device):
            if shared:
                return shap.attribute(images, baselines=baselines[:1], n_samples=self.n_samples, stdevs=self.stdevs, target=targets)
            return torch.cat(
                [
                    shap.attribute(
                        images[i : i + 1], baselines=baselines[i : i + 1], n_samples=self.n_samples,
                        stdevs=self.stdevs, target=targets[i : i + 1],
                    )  # fmt: skip
                    for i in range(images.shape[0])
                ]
            )


class _CountedModule(nn.Module):
    """An ``nn.Module`` view of a classifier whose forward is its counted :meth:`logits`.

    DeepLIFT needs a module (it hooks the model's forward and its non-linear submodules); this
    wrapper holds the classifier's module as a child, so its ReLUs get DeepLIFT's hooks, while
    every forward pass still goes through (and is counted by) the classifier.
    """

    def __init__(self, classifier: FrozenClassifier) -> None:
        super().__init__()
        self.model = classifier.module
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.logits(x)


class DeepLiftExplainer(_SubstrateBaselineMixin, CaptumGradientExplainer):
    """DeepLIFT with the Rescale rule (Shrikumar, Greenside & Kundaje 2017), Captum's ``DeepLift``.

    Backpropagates multipliers ``delta output / delta input`` of each non-linearity between the
    image and the baseline instead of local gradients; satisfies summation-to-delta (the map sums
    to ``logit_c(x) - logit_c(b)``).

    Limits: the classifier must wrap an ``nn.Module`` (not a plain callable), and every
    non-linearity must be its own module used once in the forward pass (Captum stores each
    module's input and output on it; a reused ``nn.ReLU`` instance or ``F.relu`` calls give wrong
    or failing attributions). Non-linearities Captum does not list (e.g. ``GELU``) fall back to
    plain gradients. :class:`~saliency_gym.models.cnn.SmallCNN` builds a fresh activation per
    layer and works; ``BatchNorm`` (linear in eval mode) is handled. ``MaxPool2d`` runs, but
    Captum 0.9's max-pool multipliers do not preserve summation-to-delta: on the shipped shapes
    classifier, Captum's own convergence delta against a black baseline was -1.3, 2.5 and 4.5
    logits on three test images, against about 1e-6 with the max pools swapped for average pools.
    Read DeepLIFT maps of max-pooling networks as approximate.

    Args:
        classifier: the model to explain (must wrap an ``nn.Module``).
        baseline: any substrate spec (see :class:`IntegratedGradientsExplainer`).
        multiply_by_inputs: ``True`` gives global attributions ``(x - b) * multipliers``;
            ``False`` the multipliers alone.
        eps: Captum's threshold below which a difference ``delta input`` counts as zero.
        seed: seeds a stochastic baseline (``"noise"``).
        channel_reduction: default ``"sum"`` (keeps summation-to-delta).

    Cost: two queries per image (Captum runs the images and their baselines in one batch).
    """

    name = "deeplift"

    def __init__(
        self,
        classifier: FrozenClassifier,
        baseline: Any = "zeros",
        multiply_by_inputs: bool = True,
        eps: float = 1e-10,
        seed: int | None = 0,
        channel_reduction: str | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction)
        classifier.module  # noqa: B018 - raises TypeError for a classifier that wraps a plain callable
        self.substrate = make_substrate(baseline)
        self.multiply_by_inputs = bool(multiply_by_inputs)
        self.eps = check_float("eps", eps, minimum=0.0, exclusive_minimum=True)
        self.seed = _check_seed(seed)

    def queries_per_image(self) -> int:
        return 2

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import DeepLift

        deeplift = DeepLift(_CountedModule(self.classifier), multiply_by_inputs=self.multiply_by_inputs, eps=self.eps)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Setting forward, backward hooks", category=UserWarning)
            return deeplift.attribute(images, baselines=self.baselines(images, targets), target=targets)


class GradCAMExplainer(Explainer):
    """Grad-CAM (Selvaraju et al. 2017), Captum's ``LayerGradCam``, upsampled to the image.

    The layer's activation maps are weighted by their spatially averaged gradients and summed;
    negative evidence is cut by a ReLU (the paper's choice), and the coarse map is upsampled
    bilinearly to the input size with ``LayerAttribution.interpolate``.

    Args:
        classifier: the model to explain (must wrap an ``nn.Module``).
        layer: the convolutional layer to explain: a submodule of ``classifier.module`` or its
            dotted name (``"features.12"``). ``None`` uses the model's ``target_layer`` property
            (:class:`~saliency_gym.models.cnn.SmallCNN`: the last convolutional block).
        relu: apply the ReLU to the map (``False`` keeps negative evidence).
        interpolate_mode: upsampling mode for ``torch.nn.functional.interpolate``.

    Cost: one query per image.
    """

    name = "gradcam"

    def __init__(
        self,
        classifier: FrozenClassifier,
        layer: nn.Module | str | None = None,
        relu: bool = True,
        interpolate_mode: str = "bilinear",
    ) -> None:
        super().__init__(classifier)
        self.layer: nn.Module = resolve_layer(classifier.module, layer, owner="classifier.module")
        self.relu = bool(relu)
        self.interpolate_mode = check_choice("interpolate_mode", interpolate_mode, ("bilinear", "bicubic", "nearest", "area"))

    def queries_per_image(self) -> int:
        return 1

    def attribute(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import LayerAttribution, LayerGradCam

        gradcam = LayerGradCam(self.classifier.logits, self.layer)
        coarse = gradcam.attribute(images.detach().requires_grad_(True), target=targets.to(images.device).long(), relu_attributions=self.relu)
        if coarse.ndim != 4:
            raise ValueError(
                f"Grad-CAM needs a convolutional layer with (N, C, h, w) output; the chosen layer gives {tuple(coarse.shape)}"
            )
        upsampled = LayerAttribution.interpolate(coarse.detach(), tuple(images.shape[-2:]), interpolate_mode=self.interpolate_mode)
        return upsampled[:, 0]

    def __repr__(self) -> str:
        return f"GradCAMExplainer(classifier={self.classifier.name!r}, layer={type(self.layer).__name__}, relu={self.relu})"


def resolve_layer(module: nn.Module, layer: nn.Module | str | None, owner: str = "model") -> nn.Module:
    """The layer Grad-CAM explains: ``layer`` itself, the submodule of that dotted name, or (for
    ``None``) the model's ``target_layer`` property (the last convolutional block of SmallCNN).

    ``owner`` names ``module`` in the error messages.
    """
    if layer is None:
        layer = getattr(module, "target_layer", None)
        if not isinstance(layer, nn.Module):
            raise ValueError(
                f"{type(module).__name__} has no target_layer property; pass layer= (a submodule "
                "or its dotted name, e.g. the last convolutional block)"
            )
    elif isinstance(layer, str):
        try:
            layer = module.get_submodule(layer)
        except AttributeError:
            names = [name for name, _ in module.named_modules() if name]
            raise ValueError(f"{type(module).__name__} has no submodule {layer!r}; submodules: {names}") from None
    elif not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module, a submodule name or None, got {type(layer).__name__}")
    if not any(layer is m for m in module.modules()):
        raise ValueError(f"layer must be a submodule of {owner}")
    return layer
