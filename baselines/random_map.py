"""A random saliency map: the floor every explainer has to beat.

Sanity checks for saliency (Adebayo et al., NeurIPS 2018) and faithfulness metrics such as
insertion/deletion (Petsiuk et al. 2018) are only meaningful relative to a map that carries no
information about the model; this explainer provides it. It never queries the classifier (the
only queries an :meth:`~saliency_gym.Explainer.explain` call can spend are the predictions made
when no targets are given).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import torch

from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.validation import check_int


class RandomMapExplainer(Explainer):
    """Independent uniform noise in [0, 1) per pixel, ignoring the image, target and model.

    Args:
        classifier: the model "explained" (only its device and input shape are used).
        seed: seeds the explainer's own generator (``None``: a fresh seed). Successive calls draw
            successive maps, so a sequence of calls is reproducible from the seed; the global
            torch RNG is left untouched.
    """

    name = "random"

    def __init__(self, classifier: ClassifierLike, seed: int | None = 0, *, input_shape: Sequence[int] | None = None) -> None:
        super().__init__(classifier, input_shape=input_shape)
        self.seed = secrets.randbits(63) if seed is None else check_int("seed", seed, minimum=0)
        self._generator = torch.Generator(device="cpu").manual_seed(self.seed)

    def expected_queries(self) -> int:
        """Forward passes one image costs: none."""
        return 0

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        return torch.rand((n, h, w), generator=self._generator).to(images.device)

    def __repr__(self) -> str:
        return f"RandomMapExplainer(classifier={self.classifier.name!r}, seed={self.seed})"
