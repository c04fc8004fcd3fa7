"""scikit-learn's bundled 8x8 handwritten digits, upsampled, with a fixed train/test split.

The 1,797 images ship inside scikit-learn (no download). Pixel values 0..16 are scaled to [0, 1]
and upsampled bilinearly to ``size x size`` (32 by default). The split is fixed: per class, a
permutation from ``default_rng(0)`` puts 20% of the images in ``test``, and 10% of the rest in
``val``. There are no ground-truth evidence masks.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from saliency_gym.data.base import ArraySource, stratified_split
from saliency_gym.validation import check_choice, check_int

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
_SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _split_indices() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    return stratified_split(load_digits().target, _SPLIT_SEED)


class DigitsSource(ArraySource):
    """scikit-learn digits upsampled to ``size x size`` single-channel images.

    Args:
        split: ``"train"`` (1,293 images), ``"val"`` (144) or ``"test"`` (360).
        size: output side in pixels (8 keeps the originals).
        n: optional cap on the number of samples (the first ``n`` of the split).
    """

    def __init__(self, split: str = "test", size: int = 32, n: int | None = None) -> None:
        from sklearn.datasets import load_digits

        check_choice("split", split, ("train", "val", "test"))
        size = check_int("size", size, minimum=8, maximum=256)
        bunch = load_digits()
        idx = _split_indices()[split]
        if n is not None:
            idx = idx[: check_int("n", n, minimum=1)]
        images = torch.from_numpy(bunch.images[idx].astype(np.float32) / 16.0)[:, None]
        if size != 8:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        super().__init__(
            images.clamp_(0, 1).numpy(), bunch.target[idx].astype(np.int64), None, DIGIT_CLASSES, name="digits"
        )
        self.split, self.size = split, size
