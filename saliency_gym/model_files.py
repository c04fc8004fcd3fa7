"""Compatibility alias of :mod:`saliency_gym.models.model_files` (bring your own model:
``load_model``) and :mod:`saliency_gym.models.archive_checks` (the inspection of untrusted
``.pt2`` and TorchScript archives).

Model loading lives in :mod:`saliency_gym.models`; this module only re-exports those modules (and
the ImageNet constants it used to define, now in :mod:`saliency_gym.models.imagenet`). New code
imports from the modules named above.
"""

from saliency_gym.models import model_files as _model_files
from saliency_gym.models.archive_checks import check_export_archive, check_torchscript_archive
from saliency_gym.models.imagenet import (
    IMAGENET_CLASSES_FILE,
    IMAGENET_MEAN,
    IMAGENET_STD,
    imagenet_class_names,
)
from saliency_gym.models.model_files import *  # noqa: F403

__all__ = [
    *_model_files.__all__,
    "IMAGENET_CLASSES_FILE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "check_export_archive",
    "check_torchscript_archive",
    "imagenet_class_names",
]
