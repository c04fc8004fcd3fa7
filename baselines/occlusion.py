"""Sliding-window occlusion (Zeiler & Fergus), backed by Captum's ``Occlusion``.

Each window of ``window x window`` pixels is replaced by the baseline in turn; a pixel's saliency is
the mean drop of the target-class probability over the windows that cover it. Captum evaluates
``perturbations_per_eval`` occluded images per forward pass, so the classifier sees large batches.
Cost: one query per window position, plus one for the unoccluded image.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers import Explainer
from saliency_gym.substrates import make_substrate
from saliency_gym.validation import check_int


class OcclusionExplainer(Explainer):
    """Occlusion saliency: probability drop when a sliding window is replaced by a baseline.

    Args:
        classifier: the model to explain.
        window: side of the square occluding window, in pixels.
        stride: step between window positions, in pixels.
        baseline: what occluded pixels become: a number in [0, 1] (0 is black) or any substrate /
            baseline provider spec (``"blur"``, an image, ``provider.for_class(foil)``, ...).
        perturbations_per_eval: occluded images per forward pass.
    """

    name = "occlusion"
    accepts_baseline = True

    def __init__(
        self,
        classifier: FrozenClassifier,
        window: int = 6,
        stride: int = 2,
        baseline: Any = 0.0,
        perturbations_per_eval: int = 256,
    ) -> None:
        super().__init__(classifier)
        _, h, w = classifier.input_shape
        self.window = check_int("window", window, minimum=1, maximum=min(h, w))
        self.stride = check_int("stride", stride, minimum=1, maximum=min(h, w))
        self.baseline = make_substrate(baseline)
        self.perturbations_per_eval = check_int("perturbations_per_eval", perturbations_per_eval, minimum=1)

    def expected_queries(self) -> int:
        """Forward passes one image costs: one per window position plus the original."""
        _, h, w = self.classifier.input_shape
        positions = (math.floor((h - self.window) / self.stride) + 1) * (math.floor((w - self.window) / self.stride) + 1)
        return positions + 1

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import Occlusion

        c = images.shape[1]
        occlusion = Occlusion(lambda x: self.classifier.probs(x))
        attributions = occlusion.attribute(
            images,
            sliding_window_shapes=(c, self.window, self.window),
            strides=(c, self.stride, self.stride),
            baselines=self.baseline(images, targets).detach(),
            target=targets,
            perturbations_per_eval=self.perturbations_per_eval,
        )
        # Captum spreads each window's drop over its pixels per channel; channels are occluded
        # together, so every channel holds the same value.
        return attributions.mean(dim=1)
