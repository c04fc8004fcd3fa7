"""Classifier architectures that saliency-gym trains and ships, by name.

Checkpoints store the architecture's name and constructor arguments; :func:`build_model` rebuilds
the module from them (see :mod:`saliency_gym.zoo`).
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
