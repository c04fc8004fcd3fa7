"""The reference insertion/deletion loop: one image, one step, one classifier call at a time.

It follows RISE's ``CausalMetric.single_run`` literally and exists to check the batched evaluator
of :mod:`saliency_gym.metrics.insertion_deletion` (same values) and to measure its speed-up
(``benchmarks/bench_insertion_deletion.py``); use the batched functions otherwise.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics.curves import CurveResult, _pixel_setup, _scores, _setup
from saliency_gym.types import ImageBatch, MapBatch, TargetsLike

__all__ = ["insertion_deletion_loop"]


def insertion_deletion_loop(
    classifier: FrozenClassifier | nn.Module,
    images: ImageBatch,
    maps: MapBatch | torch.Tensor,
    targets: TargetsLike = None,
    *,
    mode: str,
    step: int | None = None,
    substrate: Any = None,
    foils: TargetsLike = None,
    generator: torch.Generator | None = None,
) -> CurveResult:
    """Reference implementation: one image, one step, one classifier call at a time.

    This is RISE's ``CausalMetric.single_run`` loop (score the current image, then copy the next
    ``step`` pixels of the order from the finish image into it) applied to each image in turn,
    with the same ordering, tie rule, substrate draw and score as
    :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve` /
    :func:`~saliency_gym.metrics.insertion_deletion.deletion_curve`. It exists to check the
    batched evaluator and to measure its speed-up; use the batched functions otherwise.
    ``mode`` is ``"insertion"`` or ``"deletion"``; ``substrate=None`` takes the mode's default
    (blur for insertion, zeros for deletion). Other arguments as in
    :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve`.
    """
    clf, x, queries_before, m, step = _pixel_setup(classifier, images, maps, step)
    n, c, h, w = x.shape
    hw = h * w
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    n_steps = math.ceil(hw / step)
    curves = np.empty((n, n_steps + 1), dtype=np.float64)
    device = s.images.device
    for i in range(n):
        order = torch.as_tensor(np.argsort(-m[i].reshape(-1), kind="stable"), device=device)
        current = s.start[i].reshape(c, hw).clone()
        finish = s.finish[i].reshape(c, hw)
        target = torch.as_tensor([int(s.targets[i])], device=device)
        foil = None if s.foils is None else torch.as_tensor([int(s.foils[i])], device=device)
        for j in range(n_steps + 1):
            probs = s.classifier.probs(current.view(1, c, h, w))
            curves[i, j] = _scores(probs, target, foil).item()
            if j < n_steps:
                coords = order[step * j : step * (j + 1)]
                current[:, coords] = finish[:, coords]
    return s.result(mode, curves, np.minimum(np.arange(n_steps + 1) * step, hw) / hw, n_steps)
