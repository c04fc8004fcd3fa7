"""How good a counterfactual baseline is: valid (the classifier agrees), close (small edit), and,
where the true counterfactual is known, *minimal*: the edit the data actually needs.

A counterfactual ``b`` of an image ``x`` for a target class ``t`` is *valid* when the classifier
assigns ``b`` to ``t``. Validity alone is cheap: an adversarial smudge is valid. On data whose
one-vs-one answer is known (``shape_pairs``: the plain image of a marked image's pair differs from
it exactly on the mark) a counterfactual can be compared with the true one ``x*``:

* ``true_l1``: mean per-pixel ``|b - x*|``;
* ``gap_closed``: ``1 - |b - x*|_1 / |x - x*|_1`` per image: 1 for the true counterfactual, 0 for
  doing nothing (``b = x``), negative for an edit that ends farther from ``x*`` than ``x`` was;
* ``edit_in_region``: the share of the edit ``|b - x|`` that lies inside the region where ``x``
  and ``x*`` differ (1: every changed pixel is one that had to change).
"""

from __future__ import annotations

import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics._checks import classifier_and_images


def counterfactual_scores(
    classifier: FrozenClassifier | nn.Module,
    counterfactuals: torch.Tensor,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    true_counterfactuals: torch.Tensor | None = None,
    regions: torch.Tensor | None = None,
) -> dict[str, float]:
    """Mean scores of counterfactuals ``(N, C, H, W)`` of ``images`` for ``targets`` ``(N,)``.

    Args:
        classifier: the model the counterfactuals must convince (``N`` counted queries): a
            :class:`FrozenClassifier` or an ``nn.Module`` (wrapped for the images' shape, as
            explainers and the other metrics wrap one).
        counterfactuals: baselines in [0, 1], one per image.
        images: the inputs.
        targets: the class each counterfactual should be assigned to.
        true_counterfactuals: the known true counterfactuals ``x*`` (adds ``true_l1`` and
            ``gap_closed``); images equal to their ``x*`` are skipped in ``gap_closed``.
        regions: ``(N, H, W)`` boolean masks of where ``x`` must change (adds ``edit_in_region``;
            images with no edit are skipped).

    Returns:
        ``{"validity", "proximity_l1"}`` and, as given, ``"true_l1"``, ``"gap_closed"``,
        ``"edit_in_region"``: means over images.
    """
    if counterfactuals.shape != images.shape or images.ndim != 4:
        raise ValueError(
            f"counterfactuals {tuple(counterfactuals.shape)} and images {tuple(images.shape)} must be the same (N, C, H, W)"
        )
    if targets.shape != (images.shape[0],):
        raise ValueError(f"targets must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
    b, x = counterfactuals.float().cpu(), images.float().cpu()
    clf, checked = classifier_and_images(classifier, counterfactuals, name="counterfactuals")
    predicted = clf.predict(checked).cpu()
    scores = {
        "validity": float((predicted == targets.cpu()).float().mean()),
        "proximity_l1": float((b - x).abs().flatten(1).mean(1).mean()),
    }
    if true_counterfactuals is not None:
        if true_counterfactuals.shape != images.shape:
            raise ValueError(f"true_counterfactuals must have shape {tuple(images.shape)}, got {tuple(true_counterfactuals.shape)}")
        truth = true_counterfactuals.float().cpu()
        residual = (b - truth).abs().flatten(1).sum(1)
        needed = (x - truth).abs().flatten(1).sum(1)
        scores["true_l1"] = float(residual.mean() / truth[0].numel())
        keep = needed > 0
        scores["gap_closed"] = float((1 - residual[keep] / needed[keep]).mean()) if keep.any() else float("nan")
    if regions is not None:
        if regions.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"regions must have shape {(images.shape[0], *images.shape[2:])}, got {tuple(regions.shape)}")
        edit = (b - x).abs().sum(1).flatten(1)
        total = edit.sum(1)
        inside = (edit * regions.cpu().flatten(1).float()).sum(1)
        keep = total > 0
        scores["edit_in_region"] = float((inside[keep] / total[keep]).mean()) if keep.any() else float("nan")
    return scores
