"""Shared fixtures: small, fast, deterministic data and classifiers."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier, load_classifier
from saliency_gym.data import ShapesSource

# Under pytest-xdist each worker gets one intra-op thread: two workers with two threads each would
# oversubscribe the two cores CI has and make every small forward pass slow.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def shapes_classifier() -> FrozenClassifier:
    return load_classifier("shapes", device="cpu")


@pytest.fixture(scope="session")
def shapes_small() -> ShapesSource:
    return ShapesSource(split="test", n=20, seed=0)


class RegionModel(nn.Module):
    """Two-class model whose logit for class 1 is the mean brightness of one region.

    Its saliency is known: only pixels in ``rows x cols`` matter, and only for class 1.
    """

    def __init__(self, rows: slice, cols: slice, scale: float = 10.0) -> None:
        super().__init__()
        self.rows, self.cols, self.scale = rows, cols, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        region = x[:, :, self.rows, self.cols].mean(dim=(1, 2, 3))
        logit = self.scale * (region - 0.5)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)


@pytest.fixture()
def region_classifier() -> FrozenClassifier:
    """A 1x8x8 two-class classifier that only looks at the top-left 2x2 pixels."""
    return FrozenClassifier(RegionModel(slice(0, 2), slice(0, 2)), (1, 8, 8), device="cpu", name="region")


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
