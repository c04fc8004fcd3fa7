"""Grad-CAM picks its layer itself when none is given (the last convolutional block)."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from saliency_gym.baselines.gradcam import (
    GradCAMExplainer,
    last_conv_block,
    resolve_layer,
    resolve_named_layer,
)
from saliency_gym.classifier import FrozenClassifier


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class TinyResNet(nn.Module):
    """ResNet's module layout: stem, layer1..layer4, avgpool, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            nn.Sequential(Block(4, 4)) for _ in range(4)
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Wrapped(nn.Module):
    """A wrapper around a whole network (as users often write): the search descends into it."""

    def __init__(self) -> None:
        super().__init__()
        self.network = TinyResNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def sequential_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )  # fmt: skip


def test_resnet_like_picks_layer4() -> None:
    model = TinyResNet()
    name, layer = resolve_named_layer(model, None)
    assert name == "layer4" and layer is model.layer4
    assert resolve_named_layer(Wrapped(), None)[0] == "network.layer4"


def test_sequential_cnn_picks_the_last_conv() -> None:
    model = sequential_cnn()
    name, layer = last_conv_block(model)
    assert name == "2" and layer is model[2]


def test_explicit_layer_and_target_layer_still_win() -> None:
    model = TinyResNet()
    assert resolve_named_layer(model, "layer3")[0] == "layer3"
    assert resolve_layer(model, model.layer2) is model.layer2
    model.target_layer = model.layer1  # type: ignore[assignment]
    assert resolve_named_layer(model, None)[0] == "layer1"


def test_efficientnet_lite0_picks_the_head_conv() -> None:
    efficientnet = pytest.importorskip("efficientnet_lite_pytorch")
    model = efficientnet.EfficientNet.from_name("efficientnet-lite0")  # random weights, no download
    name, layer = resolve_named_layer(model, None)
    assert name == "_conv_head" and layer is model._conv_head


def test_no_convolution_is_a_clear_error() -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ValueError, match="no convolutional layer.*layer="):
        resolve_layer(mlp, None)


def test_torchscript_module_is_refused_clearly() -> None:
    scripted = torch.jit.script(sequential_cnn())
    with pytest.raises(TypeError, match="TorchScript.*torch.export"):
        resolve_layer(scripted, None)


def test_explainer_reports_and_logs_its_layer(caplog: pytest.LogCaptureFixture) -> None:
    classifier = FrozenClassifier(TinyResNet(), (3, 16, 16), device="cpu")
    with caplog.at_level(logging.INFO, logger="saliency_gym.layers"):
        explainer = GradCAMExplainer(classifier)
    assert explainer.layer_name == "layer4"
    assert "observe_features): layer4" in caplog.text
    maps = explainer.explain(torch.rand(2, 3, 16, 16).numpy(), [0, 1]).maps
    assert maps.shape == (2, 16, 16)


def test_export_archive_layers_are_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = sequential_cnn().eval()
    program = torch.export.export(
        model, (torch.rand(2, 3, 8, 8),), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    unflat = torch.export.unflatten(program)
    assert last_conv_block(unflat)[0] == "2"
