"""Compatibility alias of :mod:`saliency_gym.models.vision` (torchvision and timm architectures
with local weights).

Model loading lives in :mod:`saliency_gym.models`; this module only re-exports
:mod:`saliency_gym.models.vision` (and the ImageNet mean and std it used to define, now in
:mod:`saliency_gym.models.imagenet`). New code imports from :mod:`saliency_gym.models.vision`.
"""

from saliency_gym.models import vision as _vision
from saliency_gym.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from saliency_gym.models.vision import *  # noqa: F403

__all__ = [*_vision.__all__, "IMAGENET_MEAN", "IMAGENET_STD"]
