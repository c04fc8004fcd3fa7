"""Bring-your-own models: torchvision or timm architectures with local weights.

``load_vision_classifier("resnet18", "weights.pt", num_classes=10, input_shape=(3, 224, 224))``
builds the architecture *without* pretrained weights (never a download), loads the local state
dict with ``torch.load(weights_only=True)`` and wraps it in a :class:`FrozenClassifier` with the
usual ImageNet normalisation applied inside the wrapper (so callers pass [0, 1] images). The
command line reaches the same architectures as ``--model torchvision.models:resnet18 --weights
FILE --normalize imagenet`` (:mod:`saliency_gym.models.model_files`).

The ``[vision]`` extra, and why it is pinned (checked against torch 2.13.0+cpu):

* torchvision's wheels pin one torch release each: the METADATA of ``torchvision 0.28.0`` says
  ``Requires-Dist: torch (==2.13.0)`` (0.29.x pins torch 2.14). An unpinned ``torchvision>=0.18``
  therefore resolves to the newest (0.29.1) and *replaces* torch with torch 2.14 and the CUDA
  wheels (``pip install --dry-run`` lists cuda-toolkit and a dozen nvidia-* packages). The extra
  pins ``torchvision==0.28.*`` (with ``timm>=1.0,<2``, which needs torchvision), which keeps an
  installed torch 2.13.0, CPU or CUDA (``2.13.0+cpu`` satisfies ``==2.13.0``).
* PyPI's torchvision 0.28.0 wheel is built against the *CUDA* torch: its ``torchvision/_C.so``
  links ``libc10_cuda.so``, ``libtorch_cuda.so`` and ``libcudart.so.13``, which the CPU torch wheel
  lacks, so beside ``torch 2.13.0+cpu`` its operators never register and ``import torchvision``
  fails with ``operator torchvision::nms does not exist``. With the CPU torch, install torchvision
  from the PyTorch CPU index first, then the extra (already satisfied)::

      pip install torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu
      pip install 'saliency-gym[vision]'

  :func:`build_architecture` turns that failure into an ``ImportError`` saying so.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from saliency_gym.models.model_files import load_state_dict_file

LIBRARIES = ("torchvision", "timm")


def import_vision_library(library: str) -> Any:
    """Import ``torchvision`` or ``timm``, turning a missing or mismatched install into an
    ``ImportError`` that says how to fix it (see the module docstring)."""
    try:
        return importlib.import_module(library)
    except ImportError as exc:
        raise ImportError(
            f"{library} is not installed; install the vision extra: pip install 'saliency-gym[vision]'"
        ) from exc
    except (RuntimeError, OSError) as exc:  # a torchvision built for another torch (CUDA vs CPU)
        raise ImportError(
            f"{library} is installed but does not load beside torch {torch.__version__} ({exc}); install the "
            "torchvision build made for this torch, e.g. for torch 2.13 on CPU: pip install torchvision==0.28.0 "
            "--index-url https://download.pytorch.org/whl/cpu"
        ) from None


def build_architecture(
    arch: str, library: str = "torchvision", num_classes: int | None = None, **kwargs: Any
) -> nn.Module:
    """Instantiate ``arch`` from ``library`` with random weights (no network access)."""
    if library not in LIBRARIES:
        raise ValueError(f"library={library!r} is not supported; choose one of {list(LIBRARIES)}")
    module = import_vision_library(library)
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
    with ``weights_only=True`` (:func:`~saliency_gym.models.model_files.load_state_dict_file`).
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    model = build_architecture(arch, library, num_classes=num_classes)
    load_state_dict_file(model, path, f"{library}.{arch}")
    return FrozenClassifier(
        model, input_shape, num_classes=None if class_names else num_classes, class_names=class_names,
        normalize=normalize, device=device, batch_size=batch_size, name=arch,
    )  # fmt: skip


__all__ = [
    "LIBRARIES",
    "build_architecture",
    "import_vision_library",
    "load_vision_classifier",
]
