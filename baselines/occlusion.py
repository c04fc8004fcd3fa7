"""Sliding-window occlusion (Zeiler & Fergus), backed by Captum's ``Occlusion``.

Each window of ``window x window`` pixels is replaced by the baseline in turn; a pixel's saliency is
the mean drop of the target-class probability over the windows that cover it. Captum evaluates
``perturbations_per_eval`` occluded images per forward pass, so the classifier sees large batches.
Cost: one query per window position, plus one for the unoccluded image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.substrates import make_substrate
from saliency_gym.validation import check_int


class OcclusionExplainer(Explainer):
    """Occlusion saliency: probability drop when a sliding window is replaced by a baseline.

    Args:
        classifier: the model to explain.
        window: side of the square occluding window, in pixels (default: 3/16 of the shorter
            image side, rounded up: 6 pixels at 32x32, 42 at 224x224).
        stride: step between window positions, in pixels (default: 1/16 of the shorter side: 2 at
            32x32, 14 at 224x224). Defaults scale with the image so the cost stays near 200
            queries per image (197 at 32x32, 197 at 224x224) instead of growing with the pixels.
        baseline: what occluded pixels become: a number in [0, 1] (0 is black) or any substrate /
            baseline provider spec (``"blur"``, an image, ``provider.for_class(foil)``, ...).
        perturbations_per_eval: occluded images per forward pass.
    """

    name = "occlusion"
    accepts_baseline = True

    def __init__(
        self,
        classifier: ClassifierLike,
        window: int | None = None,
        stride: int | None = None,
        baseline: Any = 0.0,
        perturbations_per_eval: int = 256,
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, input_shape=input_shape)
        _, h, w = self.classifier.input_shape
        side = min(h, w)
        window = math.ceil(3 * side / 16) if window is None else window
        stride = math.ceil(side / 16) if stride is None else stride
        self.window = check_int("window", window, minimum=1, maximum=side)
        self.stride = check_int("stride", stride, minimum=1, maximum=side)
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
