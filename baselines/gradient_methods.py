"""Gradient, Integrated Gradients, SmoothGrad, GradientSHAP, DeepLIFT and Input x Gradient.

Each class wraps one Captum method on :class:`~saliency_gym.baselines.captum_base.CaptumGradientExplainer`
(counted forward function, channel reduction, seeded noise); see that module for the shared rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from saliency_gym.baselines.captum_base import (
    IG_METHODS,
    CaptumGradientExplainer,
    SubstrateBaselineMixin,
    check_seed,
    seeded_global_rng,
    unchecked_range,
)
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.validation import check_choice, check_float, check_int


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

    def __init__(
        self, classifier: ClassifierLike, abs: bool = True, channel_reduction: str | None = None, *, input_shape: Sequence[int] | None = None
    ) -> None:
        self.abs = bool(abs)
        self.default_reduction = "max_abs" if self.abs else "sum"
        super().__init__(classifier, channel_reduction, input_shape=input_shape)

    def expected_queries(self) -> int:
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

    def expected_queries(self) -> int:
        return 1

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import InputXGradient

        return InputXGradient(self.forward).attribute(images, target=targets)


class IntegratedGradientsExplainer(SubstrateBaselineMixin, CaptumGradientExplainer):
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
        classifier: ClassifierLike,
        baseline: Any = "zeros",
        n_steps: int = 50,
        method: str = "gausslegendre",
        internal_batch_size: int | None = None,
        seed: int | None = 0,
        channel_reduction: str | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction, input_shape=input_shape)
        self.set_baseline(baseline, seed)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.method = check_choice("method", method, IG_METHODS)
        self.internal_batch_size = None if internal_batch_size is None else check_int("internal_batch_size", internal_batch_size, minimum=1)

    def expected_queries(self) -> int:
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
        classifier: ClassifierLike,
        nt_samples: int = 50,
        stdevs: float = 0.15,
        abs: bool = True,
        nt_samples_batch_size: int | None = None,
        seed: int | None = 0,
        channel_reduction: str | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        self.abs = bool(abs)
        self.default_reduction = "max_abs" if self.abs else "sum"
        super().__init__(classifier, channel_reduction, input_shape=input_shape)
        self.nt_samples = check_int("nt_samples", nt_samples, minimum=1)
        self.stdevs = check_float("stdevs", stdevs, minimum=0.0)
        self.nt_samples_batch_size = (
            None if nt_samples_batch_size is None else check_int("nt_samples_batch_size", nt_samples_batch_size, minimum=1)
        )
        self.seed = check_seed(seed)

    def expected_queries(self) -> int:
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


class GradientShapExplainer(SubstrateBaselineMixin, CaptumGradientExplainer):
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
        classifier: ClassifierLike,
        baseline: Any = "zeros",
        n_samples: int = 50,
        stdevs: float = 0.1,
        seed: int | None = 0,
        channel_reduction: str | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction, input_shape=input_shape)
        self.set_baseline(baseline, seed)
        self.n_samples = check_int("n_samples", n_samples, minimum=1)
        self.stdevs = check_float("stdevs", stdevs, minimum=0.0)

    def expected_queries(self) -> int:
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


class DeepLiftExplainer(SubstrateBaselineMixin, CaptumGradientExplainer):
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
        classifier: ClassifierLike,
        baseline: Any = "zeros",
        multiply_by_inputs: bool = True,
        eps: float = 1e-10,
        seed: int | None = 0,
        channel_reduction: str | None = None,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, channel_reduction, input_shape=input_shape)
        self.classifier.module  # noqa: B018 - raises TypeError for a classifier that wraps a plain callable
        self.set_baseline(baseline, seed)
        self.multiply_by_inputs = bool(multiply_by_inputs)
        self.eps = check_float("eps", eps, minimum=0.0, exclusive_minimum=True)

    def expected_queries(self) -> int:
        return 2

    def attribute_channels(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import DeepLift

        deeplift = DeepLift(_CountedModule(self.classifier), multiply_by_inputs=self.multiply_by_inputs, eps=self.eps)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"\s*Setting forward, backward hooks", category=UserWarning)
            return deeplift.attribute(images, baselines=self.baselines(images, targets), target=targets)


