"""Small convolutional classifiers for the shipped datasets.

The architecture is deliberately plain (four convolutions, global pooling, one linear
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

#: Global poolings of the last block: 1x1 output, whatever the image size.
POOLS: dict[str, Callable[[], nn.Module]] = {
    "avg": lambda: nn.AdaptiveAvgPool2d(1),
    "max": lambda: nn.AdaptiveMaxPool2d(1),
}


class SmallCNN(nn.Module):
    """``conv-pool``, ``conv-conv-pool``, ``conv``, global average pool, linear.

    With the default ``width=16`` it has about 33k parameters (a 140 kB checkpoint) and classifies
    about 2,500 32x32 images a second on two CPU cores: the forward pass is the unit cost of
    every environment step, RISE mask and metric curve, so it is kept small. Pooling comes early
    so that only one convolution runs at full resolution.

    For 64x64 images with one small object among clutter (``shapes_cluttered``), two options:
    ``stem_stride=2`` makes that first convolution stride 2, so every later layer costs what it
    costs on 32x32 images, the receptive field doubles (41 pixels) and the last block is an 8x8
    map, one cell per cell of the environments' 8x8 grid; ``pool="max"`` takes the strongest
    response of each channel anywhere instead of the average (whose evidence the clutter
    dilutes): the object is found wherever it lies, and learning is much faster.

    Args:
        in_channels: image channels (3 for shapes, 1 for digits).
        num_classes: number of output logits.
        width: channels of the first convolution (doubled, then quadrupled, in later blocks).
        activation: ``"relu"`` (default), ``"softplus"`` or ``"gelu"``.
        stem_stride: stride of the first convolution (1, the default and every checkpoint before
            ``shapes_cluttered``; or 2).
        pool: global pooling of the last block, ``"avg"`` (default) or ``"max"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 5,
        width: int = 16,
        activation: str = "relu",
        stem_stride: int = 1,
        pool: str = "avg",
    ) -> None:
        super().__init__()
        in_channels = check_int("in_channels", in_channels, minimum=1)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        width = check_int("width", width, minimum=4)
        check_choice("activation", activation, ACTIVATIONS)
        stem_stride = check_int("stem_stride", stem_stride, minimum=1, maximum=2)
        check_choice("pool", pool, POOLS)
        act = ACTIVATIONS[activation]
        w1, w2, w3 = width, 2 * width, 4 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w1, 3, stride=stem_stride, padding=1), nn.BatchNorm2d(w1), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(w1, w2, 3, padding=1), nn.BatchNorm2d(w2), act(),
            nn.Conv2d(w2, w2, 3, padding=1), nn.BatchNorm2d(w2), act(),
            nn.MaxPool2d(2),
            nn.Conv2d(w2, w3, 3, padding=1), nn.BatchNorm2d(w3), act(),
        )  # fmt: skip
        self.pool = POOLS[pool]()
        self.classifier = nn.Linear(w3, num_classes)
        self.config: dict[str, Any] = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "width": width,
            "activation": activation,
        }
        # Defaults stay implicit, so the arguments of the older checkpoints' recipes read the same.
        if stem_stride != 1:
            self.config["stem_stride"] = stem_stride
        if pool != "avg":
            self.config["pool"] = pool

    @property
    def target_layer(self) -> nn.Module:
        """The last convolutional block's output, the layer Grad-CAM explains."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
