"""The bring-your-own-model loader, exercised through a stand-in ``torchvision`` module.

PyPI's torchvision does not import beside the pinned CPU torch here, so the loader's code path is
tested with a fake module of the same API; with the real extra installed the last test runs too.
"""

import sys
import types

import pytest
import torch
from torch import nn

from saliency_gym.checkpoint import CheckpointError
from saliency_gym.vision import load_vision_classifier


@pytest.fixture()
def fake_torchvision(monkeypatch):
    def get_model(name, weights=None, num_classes=1000):
        assert weights is None, "the loader must never ask for pretrained weights"
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))

    models = types.SimpleNamespace(list_models=lambda: ["tinynet"], get_model=get_model)
    module = types.ModuleType("torchvision")
    module.models = models
    monkeypatch.setitem(sys.modules, "torchvision", module)
    return get_model


def test_loads_local_weights(tmp_path, fake_torchvision):
    reference = fake_torchvision("tinynet", num_classes=4)
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    clf = load_vision_classifier("tinynet", tmp_path / "w.pt", num_classes=4, input_shape=(3, 8, 8), device="cpu")
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(clf.probs(x), reference((x - mean) / std).softmax(1))


def test_errors(tmp_path, fake_torchvision):
    with pytest.raises(FileNotFoundError):
        load_vision_classifier("tinynet", tmp_path / "none.pt", num_classes=4)
    torch.save(fake_torchvision("tinynet", num_classes=3).state_dict(), tmp_path / "w3.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_vision_classifier("tinynet", tmp_path / "w3.pt", num_classes=4, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="unknown torchvision architecture"):
        load_vision_classifier("resnet999", tmp_path / "w3.pt", num_classes=4)
    with pytest.raises(ValueError, match="library"):
        load_vision_classifier("tinynet", tmp_path / "w3.pt", num_classes=4, library="keras")
