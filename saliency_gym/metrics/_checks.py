"""Boundary checks of the metric evaluators.

The map and mask checks (:func:`as_map_batch`, :func:`as_mask_batch`) live in
:mod:`saliency_gym.validation` with the other boundary checks (the grid ranks cells with them too)
and are re-exported here. Models and images go through the explainers' own boundary
(:func:`saliency_gym.explainers.base.as_classifier`, :func:`~saliency_gym.explainers.base.as_classifier_images`),
so a metric accepts exactly the models an explainer accepts (a :class:`FrozenClassifier` or a raw
``nn.Module``) and rejects the same images with the same hint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers.base import as_classifier, as_classifier_images
from saliency_gym.types import ImageBatch
from saliency_gym.validation import as_image_batch, as_map_batch, as_mask_batch

__all__ = ["as_map_batch", "as_mask_batch", "classifier_and_images"]


def classifier_and_images(classifier: Any, images: ImageBatch, *, name: str = "images") -> tuple[FrozenClassifier, torch.Tensor]:
    """The metric's classifier and its validated ``images``.

    ``classifier`` is a :class:`FrozenClassifier`, or an ``nn.Module`` wrapped as
    ``FrozenClassifier(module, images.shape[1:])`` by :func:`as_classifier` (the images give the
    input shape an explainer must be told). Images are ``(N, C, H, W)`` floats in [0, 1] of the
    classifier's shape on its device; values outside [0, 1] raise a ``ValueError`` that names
    ``normalize=``.
    """
    if isinstance(classifier, nn.Module):
        shape = as_image_batch(images, name=name, check_range=False).shape[1:]  # shape errors first
        classifier = as_classifier(classifier, tuple(shape))
    elif not isinstance(classifier, FrozenClassifier):
        raise TypeError(
            f"classifier must be a FrozenClassifier or an nn.Module, got {type(classifier).__name__}; wrap a "
            "model with saliency_gym.FrozenClassifier(model, input_shape) or use load_classifier(name)"
        )
    return classifier, as_classifier_images(images, classifier, name=name)
