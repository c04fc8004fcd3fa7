"""Small convolutional classifiers for the shipped datasets.

The architecture is deliberately plain (four convolutions, global average pooling, one linear
layer) so that every attribution method applies: ``features`` ends with the last convolutional
block, which Grad-CAM hooks, and the activation is a constructor argument so that white-box
attribution attacks can swap ReLU for a softplus surrogate with non-zero second derivatives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from saliency_gym.validation import check_choice, check_int

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "softplus": lambda: nn.Softplus(beta=10.0),
    "gelu": nn.GELU,
}


class SmallCNN(nn.Module):
    """``conv-pool``, ``conv-conv-pool``, ``conv``, global average pool, linear.

    With the default ``width=16`` it has about 33k parameters (a 140 kB checkpoint) and classifies
    about 2,500 32x32 images a second on two CPU cores: the forward pass is the unit cost of
    every environment step, RISE mask and metric curve, so it is kept small. Pooling comes early
    so that only one convolution runs at full resolution.

    Args:
        in_channels: image channels (3 for shapes, 1 for digits).
        num_classes: number of output logits.
        width: channels of the first convolution (doubled, then quadrupled, in later blocks).
        activation: ``"relu"`` (default), ``"softplus"`` or ``"gelu"``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 5, width: int = 16, activation: str = "relu") -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, minimum=1)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        width = check_int("width", width, minimum=4)
        check_choice("activation", activation, ACTIVATIONS)
        act = ACTIVATIONS[activation]
        w1, w2, w3 = width, 2 * width, 4 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, padding=1), nn.BatchNorm2d(w1), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, 3, padding=1), nn.BatchNorm2d(w2), act(),
            nn.Conv2d(w2, w2, 3, padding=1), nn.BatchNorm2d(w2), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(w2, w3, 3, padding=1), nn.BatchNorm2d(w3), act(),
        )  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(w3, num_classes)
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "width": width,
            "activation": activation,
        }

    @property
    def target_layer(self) -> nn.Module:
        """The last convolutional block's output, the layer Grad-CAM explains."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
