"""Tiny models for the bring-your-own-model tests, built by ``module:factory`` specs
(``tests.byo_models:tiny_cnn``)."""

from __future__ import annotations

import torch
from torch import nn

NOT_A_FACTORY = 42


def tiny_cnn(num_classes: int = 3, channels: int = 3) -> nn.Module:
    """A two-convolution CNN for (channels, H, W) images of any size."""
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, num_classes),
    )  # fmt: skip


def seeded_tiny_cnn(num_classes: int = 3, seed: int = 0) -> nn.Module:
    """:func:`tiny_cnn` with weights drawn from ``seed`` (the same every call)."""
    torch.manual_seed(seed)
    return tiny_cnn(num_classes).eval()


def not_a_module() -> str:
    return "not a model"
