"""counterfactual_scores: validity, proximity and distance to a known true counterfactual."""

from __future__ import annotations

import math

import pytest
import torch

from saliency_gym.metrics import counterfactual_scores


def test_scores_of_exact_partial_and_wrong_edits(region_classifier):
    # region_classifier says class 1 when the top-left 2x2 pixels are bright (mean > 0.5).
    x = torch.zeros(3, 1, 8, 8)
    x[:, :, :2, :2] = 1.0  # every input is class 1; the true counterfactual (class 0) darkens the corner
    truth = torch.zeros_like(x)
    region = torch.zeros(3, 8, 8, dtype=torch.bool)
    region[:, :2, :2] = True
    exact = truth.clone()
    half = x.clone()
    half[:, :, :2, :1] = 0.0  # half of the needed edit
    elsewhere = x.clone()
    elsewhere[:, :, 6:, 6:] = 1.0  # an edit away from the region: invalid and farther from the truth
    targets = torch.zeros(3, dtype=torch.long)
    s = counterfactual_scores(region_classifier, exact, x, targets, true_counterfactuals=truth, regions=region)
    assert s == {"validity": 1.0, "proximity_l1": pytest.approx(4 / 64), "true_l1": 0.0, "gap_closed": 1.0,
                 "edit_in_region": 1.0}  # fmt: skip
    s = counterfactual_scores(region_classifier, half, x, targets, true_counterfactuals=truth, regions=region)
    assert s["gap_closed"] == pytest.approx(0.5) and s["true_l1"] == pytest.approx(2 / 64) and s["edit_in_region"] == 1.0
    s = counterfactual_scores(region_classifier, elsewhere, x, targets, true_counterfactuals=truth, regions=region)
    assert s["validity"] == 0.0 and s["gap_closed"] == pytest.approx(-1.0) and s["edit_in_region"] == 0.0
    # Doing nothing closes no gap; an image with no edit is left out of edit_in_region.
    s = counterfactual_scores(region_classifier, x, x, targets, true_counterfactuals=truth, regions=region)
    assert s["gap_closed"] == 0.0 and math.isnan(s["edit_in_region"])
    assert set(counterfactual_scores(region_classifier, x, x, targets)) == {"validity", "proximity_l1"}


def test_scores_reject_bad_shapes(region_classifier):
    x = torch.zeros(2, 1, 8, 8)
    t = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="same"):
        counterfactual_scores(region_classifier, x[:1], x, t)
    with pytest.raises(ValueError, match="targets"):
        counterfactual_scores(region_classifier, x, x, t[:1])
    with pytest.raises(ValueError, match="true_counterfactuals"):
        counterfactual_scores(region_classifier, x, x, t, true_counterfactuals=x[:1])
    with pytest.raises(ValueError, match="regions"):
        counterfactual_scores(region_classifier, x, x, t, regions=torch.zeros(2, 4, 4, dtype=torch.bool))
