"""Bring-your-own models: torchvision or timm architectures with local weights.

``load_vision_classifier("resnet18", "weights.pt", num_classes=10, input_shape=(3, 224, 224))``
builds the architecture *without* pretrained weights (never a download), loads the local state
dict with ``torch.load(weights_only=True)`` and wraps it in a :class:`FrozenClassifier` with the
usual ImageNet normalisation applied inside the wrapper (so callers pass [0, 1] images).
Needs the ``[vision]`` extra (``pip install saliency-gym[vision]``).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliency_gym.checkpoint import CheckpointError
from saliency_gym.classifier import FrozenClassifier

LIBRARIES = ("torchvision", "timm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_architecture(arch: str, library: str = "torchvision", num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Instantiate ``arch`` from ``library`` with random weights (no network access)."""
    if library not in LIBRARIES:
        raise ValueError(f"library={library!r} is not supported; choose one of {list(LIBRARIES)}")
    try:
        module = importlib.import_module(library)
    except ImportError as exc:
        raise ImportError(
            f"{library} is not installed; install the vision extra: pip install 'saliency-gym[vision]'"
        ) from exc
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if library == "torchvision":
        models = module.models
        available = models.list_models()
        if arch not in available:
            raise ValueError(f"unknown torchvision architecture {arch!r}; e.g. {available[:8]}")
        return models.get_model(arch, weights=None, **kwargs)
    if arch not in module.list_models():
        raise ValueError(f"unknown timm architecture {arch!r}")
    return module.create_model(arch, pretrained=False, **kwargs)


def load_vision_classifier(
    arch: str,
    weights: str | os.PathLike[str],
    *,
    library: str = "torchvision",
    num_classes: int,
    input_shape: Sequence[int] = (3, 224, 224),
    class_names: Sequence[str] | None = None,
    normalize: tuple[Sequence[float], Sequence[float]] | None = (IMAGENET_MEAN, IMAGENET_STD),
    device: torch.device | str | None = None,
    batch_size: int = 64,
) -> FrozenClassifier:
    """A :class:`FrozenClassifier` for ``arch`` with the state dict stored at ``weights``.

    ``weights`` is a file holding a state dict (or a dict with a ``"state_dict"`` entry), read
    with ``weights_only=True``.
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    model = build_architecture(arch, library, num_classes=num_classes)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read weights {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"weights {path} hold a {type(state).__name__}, expected a state dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"weights {path} do not fit {library}.{arch}: {exc}") from exc
    return FrozenClassifier(
        model, input_shape, num_classes=None if class_names else num_classes, class_names=class_names,
        normalize=normalize, device=device, batch_size=batch_size, name=arch,
    )  # fmt: skip
