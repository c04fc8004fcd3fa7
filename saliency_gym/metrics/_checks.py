"""Boundary checks of the metric evaluators.

The map and mask checks (:func:`as_map_batch`, :func:`as_mask_batch`) live in
:mod:`saliency_gym.validation` with the other boundary checks (the grid ranks cells with them too)
and are re-exported here; :func:`check_classifier` is the metrics' own.
"""

from __future__ import annotations

from typing import Any

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.validation import as_map_batch, as_mask_batch

__all__ = ["as_map_batch", "as_mask_batch", "check_classifier"]


def check_classifier(classifier: Any) -> FrozenClassifier:
    """Return ``classifier`` if it is a :class:`FrozenClassifier`, else raise a ``TypeError``."""
    if not isinstance(classifier, FrozenClassifier):
        raise TypeError(
            f"classifier must be a FrozenClassifier, got {type(classifier).__name__}; wrap a model "
            "with saliency_gym.FrozenClassifier(model, input_shape) or use load_classifier(name)"
        )
    return classifier
