"""A small multilayer perceptron for tabular data (ID-ExpO's tabular predictor).

The tabular counterpart of :class:`~saliency_gym.models.cnn.SmallCNN`: a plain MLP with a
``config`` dict, so :func:`saliency_gym.models.zoo.save_classifier` can write it and the checkpoint
rebuilds it by name. Inputs are rows ``(N, F)`` of standardised features; ``(N, ..., F)`` inputs
(e.g. a table viewed as a ``1 x 1 x F`` image) are flattened, so image-shaped tooling can wrap it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from saliency_gym.models.cnn import ACTIVATIONS
from saliency_gym.validation import check_choice, check_int


class TabularMLP(nn.Module):
    """``Linear-act`` blocks then a linear classifier.

    Args:
        num_features: input columns ``F``.
        num_classes: output logits.
        hidden: widths of the hidden layers (default two layers of 64).
        activation: ``"relu"`` (default), ``"softplus"`` or ``"gelu"``.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
    ) -> None:
        super().__init__()
        num_features = check_int("num_features", num_features, minimum=1)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise TypeError(f"hidden must be a sequence of layer widths, got {type(hidden).__name__}")
        widths = [check_int("hidden width", h, minimum=1) for h in hidden]
        check_choice("activation", activation, ACTIVATIONS)
        layers: list[nn.Module] = []
        previous = num_features
        for width in widths:
            layers += [nn.Linear(previous, width), ACTIVATIONS[activation]()]
            previous = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(previous, num_classes)
        self.num_features = num_features
        self.config: dict[str, Any] = {
            "num_features": num_features,
            "num_classes": num_classes,
            "hidden": widths,
            "activation": activation,
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], -1)
        if rows.shape[1] != self.num_features:
            raise ValueError(f"TabularMLP expects {self.num_features} features per row, got input of shape {tuple(x.shape)}")
        return self.classifier(self.features(rows))
