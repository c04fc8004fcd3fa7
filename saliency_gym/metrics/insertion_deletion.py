"""Insertion and deletion curves (Petsiuk, Das & Saenko, "RISE", BMVC 2018), batched, at pixel level.

Definition (RISE's ``CausalMetric``, ``evaluation.py`` of the authors' repository):

* Pixels are ordered by saliency, most salient first. ``step`` pixels change per iteration, so
  there are ``n_steps = ceil(H * W / step)`` iterations and the curve has ``n_steps + 1`` points:
  the score before any change, then after each iteration (the last one changes only the
  ``H * W - (n_steps - 1) * step`` remaining pixels when ``step`` does not divide ``H * W``).
* **Deletion** starts from the image and replaces pixels by the substrate (RISE: zeros);
  **insertion** starts from the substrate (RISE: a Gaussian blur of the image, kernel 11, sigma 5)
  and reveals image pixels. A changed pixel takes its value in all channels.
* The score is the classifier's probability of the explained class (RISE: the predicted class;
  here ``targets``, defaulting to the predicted class). With ``foils`` the score is
  ``p(target) - p(foil)``, the contrast a one-vs-one explanation is about.
* The area under the curve is the trapezoid rule with the ``n_steps + 1`` points equally spaced on
  [0, 1]: ``AUC = (sum(c) - c[0] / 2 - c[-1] / 2) / (len(c) - 1)`` (RISE's ``auc``), so a curve of
  probabilities has an AUC in [0, 1]. When ``step`` does not divide ``H * W`` the points are still
  equally spaced for the AUC (as in RISE) although the last step changes fewer pixels;
  :attr:`CurveResult.fractions` gives the true fraction of pixels changed, for plots.

Ties (a choice RISE leaves to ``np.argsort``'s unstable quicksort): pixels of equal saliency are
ordered by raster index (row-major, the top-left pixel first), a stable and reproducible order; an
all-equal map therefore changes pixels row by row from the top.

**Batched evaluation.** Every masked image of every step of every input is independent, so the
evaluator builds them in chunks of ``max_batch`` (image, step) pairs and sends each chunk to the
classifier in one :meth:`FrozenClassifier.probs` call (``N * (n_steps + 1)`` queries in all, plus
``N`` when the targets are the predicted classes). The shared engine lives in
:mod:`saliency_gym.metrics.curves`; :func:`~saliency_gym.metrics.reference.insertion_deletion_loop`
is the plain per-image, per-step loop of the same definition, written as RISE writes it; the tests
and ``benchmarks/bench_insertion_deletion.py`` check that both give the same values.

**Patch level.** The environments' cell-by-cell curves are in
:mod:`saliency_gym.metrics.patch_curves` (:func:`patch_insertion_curve`,
:func:`patch_deletion_curve`, :func:`cell_order_from_maps`); they are re-exported here, as are
:class:`CurveResult`, :func:`auc`, :func:`pixel_order` and :func:`insertion_deletion_loop`, so
``saliency_gym.metrics.insertion_deletion.<name>`` keeps working for all of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics.curves import (
    CurveResult,
    _batched_curves,
    _pixel_setup,
    _ranks_from_order,
    _resolve_max_batch,
    _setup,
    auc,
    pixel_order,
)
from saliency_gym.metrics.patch_curves import (
    cell_order_from_maps,
    patch_deletion_curve,
    patch_insertion_curve,
)
from saliency_gym.metrics.reference import insertion_deletion_loop
from saliency_gym.types import ImageBatch, MapBatch, TargetsLike

__all__ = [
    "CurveResult",
    "auc",
    "cell_order_from_maps",
    "deletion_curve",
    "insertion_curve",
    "insertion_deletion_loop",
    "patch_deletion_curve",
    "patch_insertion_curve",
    "pixel_order",
]


def _pixel_curve(
    mode: str,
    classifier: Any,
    images: ImageBatch,
    maps: MapBatch | torch.Tensor,
    targets: TargetsLike,
    step: int | None,
    substrate: Any,
    foils: TargetsLike,
    max_batch: int | None,
    generator: torch.Generator | None,
) -> CurveResult:
    clf, x, queries_before, m, step = _pixel_setup(classifier, images, maps, step)
    chunk = _resolve_max_batch(max_batch, clf)
    n, _, h, w = x.shape
    hw = h * w
    s = _setup(mode, clf, x, queries_before, targets, foils, substrate, generator)
    n_steps = math.ceil(hw / step)
    changed = np.minimum(np.arange(n_steps + 1) * step, hw)
    order = np.argsort(-m.reshape(n, hw), axis=1, kind="stable")
    ranks = _ranks_from_order(order, hw, hw)
    curves = _batched_curves(s, ranks, changed, chunk)
    return s.result(mode, curves, changed / hw, n_steps)


def insertion_curve(
    classifier: FrozenClassifier | nn.Module, images: ImageBatch, maps: MapBatch | torch.Tensor,
    targets: TargetsLike = None, *, step: int | None = None, substrate: Any = "blur",
    foils: TargetsLike = None, max_batch: int | None = None, generator: torch.Generator | None = None,
) -> CurveResult:
    """RISE's insertion curve: start from the substrate (a blur), reveal the most salient pixels first.

    A good map makes the score rise early, so a higher AUC is better.

    Args:
        classifier: the model to query: a :class:`FrozenClassifier`, or an ``nn.Module`` (wrapped as
            ``FrozenClassifier(module, images.shape[1:])``, as explainers wrap one; it is then put in
            eval mode with frozen parameters, on CUDA when available).
        images: ``(N, C, H, W)`` floats in [0, 1] of the classifier's input shape (normalised
            images are a ``ValueError``: give the model its normalisation with
            ``FrozenClassifier(..., normalize=(mean, std))``).
        maps: ``(N, H, W)`` finite saliency maps (larger = more important).
        targets: the explained class per image (or one int for all); ``None`` uses the predicted
            class, which costs ``N`` counted queries.
        step: pixels changed per iteration (RISE's ``step``); ``None`` means ``W``, one image row's
            worth (RISE used ``step=224`` for 224x224 images).
        substrate: what the pixels not yet revealed are, anything :func:`make_substrate` accepts.
            It is drawn once for the whole batch as ``substrate(images, targets, generator)``.
        foils: optional contrasted class per image; the score becomes ``p(target) - p(foil)``.
            Foils must differ from targets.
        max_batch: (image, step) pairs per classifier call; bounds memory at about
            ``3 * max_batch`` images. ``None``: the classifier's
            :attr:`~FrozenClassifier.batch_size` (which follows its memory budget), capped at 64
            on a CPU (fastest there) and 1024 on accelerators.
        generator: seeds stochastic substrates (``"noise"``).

    Returns:
        :class:`CurveResult` with ``curves (N, ceil(H*W/step) + 1)`` and their AUCs.
    """
    return _pixel_curve("insertion", classifier, images, maps, targets, step, substrate, foils, max_batch, generator)


def deletion_curve(
    classifier: FrozenClassifier | nn.Module, images: ImageBatch, maps: MapBatch | torch.Tensor,
    targets: TargetsLike = None, *, step: int | None = None, substrate: Any = "zeros",
    foils: TargetsLike = None, max_batch: int | None = None, generator: torch.Generator | None = None,
) -> CurveResult:
    """RISE's deletion curve: start from the image, replace the most salient pixels by the
    substrate (zeros) first.

    A good map makes the score drop early, so a lower AUC is better. Arguments and result as in
    :func:`insertion_curve`, except that ``substrate`` (default ``"zeros"``) is what the removed
    pixels become.
    """
    return _pixel_curve("deletion", classifier, images, maps, targets, step, substrate, foils, max_batch, generator)
