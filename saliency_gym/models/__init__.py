"""Models: everything that builds or loads a classifier, in one subpackage.

* this module: the architectures saliency-gym trains and ships, by name (:data:`ARCHITECTURES`,
  :func:`build_model`; :mod:`~saliency_gym.models.cnn`, :mod:`~saliency_gym.models.mlp`).
  Checkpoints store the architecture's name and constructor arguments; :func:`build_model`
  rebuilds the module from them;
* :mod:`saliency_gym.models.zoo`: the shipped classifiers by name and the checkpoint format
  (``load_classifier("shapes")``);
* :mod:`saliency_gym.models.efficientnet`: the shipped ImageNet classifier (EfficientNet-Lite0);
* :mod:`saliency_gym.models.imagenet`: ImageNet's mean, std and class names;
* :mod:`saliency_gym.models.model_files`: the user's own models (``load_model``: TorchScript,
  ``torch.export``, ``module:factory`` with weights), with the inspection of untrusted archives in
  :mod:`saliency_gym.models.archive_checks`;
* :mod:`saliency_gym.models.vision`: torchvision and timm architectures with local weights;
* :mod:`saliency_gym.models.backend`: how :class:`~saliency_gym.classifier.FrozenClassifier` runs
  a forward pass fast (mixed precision, channels-last, TorchScript, automatic batch size).

The wrapper every model is queried through, :class:`~saliency_gym.classifier.FrozenClassifier`,
stays in :mod:`saliency_gym.classifier`. The submodules are imported on use, never here, so that
``import saliency_gym.models`` stays light.
"""

from typing import Any

from torch import nn

from saliency_gym.models.cnn import SmallCNN
from saliency_gym.models.mlp import TabularMLP
from saliency_gym.validation import check_choice

ARCHITECTURES: dict[str, type[nn.Module]] = {"SmallCNN": SmallCNN, "TabularMLP": TabularMLP}


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Instantiate a shipped architecture by name (used when loading checkpoints)."""
    check_choice("arch", arch, ARCHITECTURES)
    return ARCHITECTURES[arch](**kwargs)


__all__ = ["ARCHITECTURES", "SmallCNN", "TabularMLP", "build_model"]
