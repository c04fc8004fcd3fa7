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


def failing_factory(kind: str = "runtime") -> nn.Module:
    """A factory that fails the way ``kind`` names: ``runtime``, ``key``, ``exit0`` or ``interrupt``."""
    if kind == "runtime":
        raise RuntimeError("CUDA out of memory (simulated)")
    if kind == "key":
        raise KeyError("num_classes")
    if kind == "exit0":
        raise SystemExit(0)
    if kind == "interrupt":
        raise KeyboardInterrupt
    raise AssertionError(f"unknown kind {kind!r}")


class _IntegerScores(nn.Module):
    """:func:`tiny_cnn` whose scores are rounded to integers (an "integer logits" model)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = tiny_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x) * 100).round().long()


def integer_logits() -> nn.Module:
    return _IntegerScores()


class FileWritingNet(nn.Module):
    """:func:`tiny_cnn` whose forward also writes its input to ``path`` with TorchScript's
    ``aten::save``: what a crafted TorchScript file can do with no pickle at all."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.net = tiny_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.ops.aten.save(x, self.path)
        return self.net(x)
