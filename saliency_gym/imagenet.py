"""Compatibility alias of :mod:`saliency_gym.models.efficientnet` (the shipped ImageNet
classifier, EfficientNet-Lite0).

Model loading lives in :mod:`saliency_gym.models`; this module only re-exports
:mod:`saliency_gym.models.efficientnet` (and :func:`imagenet_class_names`, now in
:mod:`saliency_gym.models.imagenet`). New code imports from those modules.
"""

from saliency_gym.models import efficientnet as _efficientnet
from saliency_gym.models.efficientnet import *  # noqa: F403
from saliency_gym.models.imagenet import imagenet_class_names

__all__ = [*_efficientnet.__all__, "imagenet_class_names"]
