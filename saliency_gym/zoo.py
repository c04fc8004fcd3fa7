"""Compatibility alias of :mod:`saliency_gym.models.zoo` (shipped classifiers by name).

Model loading lives in :mod:`saliency_gym.models`; this module only re-exports
:mod:`saliency_gym.models.zoo` so that ``from saliency_gym.zoo import load_classifier`` keeps
working. New code imports from :mod:`saliency_gym.models.zoo`.
"""

from saliency_gym.models import zoo as _zoo
from saliency_gym.models.zoo import *  # noqa: F403

__all__ = list(_zoo.__all__)
