"""ImageNet-1k constants, in one place: the normalisation statistics and the class names.

* :data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`: torchvision's per-channel mean and std of [0, 1]
  ImageNet images (``--normalize imagenet``; :mod:`saliency_gym.models.vision` applies them by
  default).
* :func:`imagenet_class_names`: the 1,000 class names in class-id order, read from
  ``saliency_gym/data/imagenet_classes.txt`` (torchvision's ``models/_meta.py``, BSD-3-Clause).

Used by the shipped ImageNet classifier (:mod:`saliency_gym.models.efficientnet`), the photos data
(:mod:`saliency_gym.data.photos`) and user models with 1,000 outputs
(:mod:`saliency_gym.models.model_files`). Imports nothing heavy.
"""

from __future__ import annotations

import functools
from pathlib import Path

#: torchvision's ImageNet mean and std per channel (RGB), for [0, 1] images.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The 1,000 ImageNet-1k class names (torchvision's order), one per line.
IMAGENET_CLASSES_FILE = Path(__file__).resolve().parent.parent / "data" / "imagenet_classes.txt"
#: How many classes ImageNet-1k has.
IMAGENET_NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names indexed by class id (``[285]`` is ``"Egyptian cat"``)."""
    lines = IMAGENET_CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = tuple(line.strip() for line in lines if line.strip())
    if len(names) != IMAGENET_NUM_CLASSES:  # a damaged installation, not a user error
        raise RuntimeError(f"{IMAGENET_CLASSES_FILE} holds {len(names)} class names, expected 1000")
    return names


__all__ = [
    "IMAGENET_CLASSES_FILE",
    "IMAGENET_MEAN",
    "IMAGENET_NUM_CLASSES",
    "IMAGENET_STD",
    "imagenet_class_names",
]
