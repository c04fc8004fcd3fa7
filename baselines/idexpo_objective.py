"""ID-ExpO's training loss and its model selection.

* :func:`idexpo_loss`: ``CE + lambda1 (soft insertion + soft deletion) + lambda2 mean(e^2)`` on a
  batch (Yoshikawa & Iwata, AISTATS 2024), absent pixels taking the batch's substrate;
* :func:`evaluate_faithfulness`: validation accuracy and *hard* insertion/deletion AUCs of the
  training explainer's maps, under each substrate of the recipe (:func:`substrates_of`);
* :func:`select_best`: the evaluated model with the largest ``insertion - deletion`` AUC (averaged
  over those substrates) among those above an accuracy floor.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saliency_gym.baselines.differentiable_explainers import DifferentiableExplainer
from saliency_gym.baselines.idexpo_config import IDExpOConfig
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.metrics.soft_insertion_deletion import (
    feature_deletion_curve,
    feature_insertion_curve,
    soft_insertion_deletion,
)
from saliency_gym.validation import check_choice, check_float

__all__ = ["evaluate_faithfulness", "idexpo_loss", "select_best", "substrate_spec", "substrates_of"]

#: The concrete substrates a recipe's ``substrate`` stands for (``"random"`` draws one per batch).
_CONCRETE = {"constant": ("constant",), "blur": ("blur",), "rise": ("constant", "blur"), "random": ("constant", "blur")}


def substrates_of(config: IDExpOConfig) -> tuple[str, ...]:
    """The concrete substrates (``"constant"``, ``"blur"``) that ``config`` selects with (and,
    except for ``"rise"``, trains with: ``"random"`` draws one of them per batch)."""
    return _CONCRETE[config.substrate]


def substrate_spec(name: str, baseline: float) -> float | str:
    """What the soft and hard metrics take for a concrete substrate: the number ``baseline`` for
    ``"constant"``, the substrate name ``"blur"`` for ``"blur"``."""
    check_choice("substrate", name, ("constant", "blur"))
    return float(baseline) if name == "constant" else "blur"


def idexpo_loss(
    model: nn.Module,
    explainer: DifferentiableExplainer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: IDExpOConfig,
    *,
    substrate: str | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``CE + lambda1 (soft ins + soft del) + lambda2 mean(e^2)`` on one batch, and its parts.

    The explanation is of the true class, differentiable in the parameters
    (``explainer.create_graph`` should be true for training). ``substrate`` is this batch's
    substrate (``"constant"``, ``"blur"`` or ``"rise"``: insertion from the blur, deletion to the
    constant); ``None`` takes ``config.substrate``, which must then not be ``"random"`` (the caller
    draws per batch).
    """
    if substrate is None:
        if config.substrate == "random":
            raise ValueError('substrate="random" is drawn per batch by the caller: pass substrate="constant" or "blur"')
        substrate = config.substrate
    if substrate == "rise":
        baseline, deletion_baseline = substrate_spec("blur", config.baseline), substrate_spec("constant", config.baseline)
    else:
        baseline = deletion_baseline = substrate_spec(substrate, config.baseline)
    if isinstance(baseline, str) and inputs.ndim != 4:
        raise ValueError(f"substrate {substrate!r} needs images (N, C, H, W); tables take substrate='constant'")
    logits = model(inputs)
    ce = F.cross_entropy(logits, labels)
    e = explainer(inputs, labels)
    soft = soft_insertion_deletion(
        model, inputs, e, labels, temperature=config.temperature, n_steps=config.n_steps,
        fraction=config.fraction, baseline=baseline, deletion_baseline=deletion_baseline, deletion_form=config.deletion_form,
        detach_thresholds=config.detach_thresholds, tie_break=config.tie_break,
    )  # fmt: skip
    ins, dele = soft.insertion.mean(), soft.deletion.mean()
    l2 = e.pow(2).mean()
    regulariser = config.lambda_ins_del * (ins + dele) + config.lambda_l2 * l2
    total = ce + regulariser
    parts = {
        "loss/total": total.item(), "loss/ce": ce.item(), "loss/soft_insertion": ins.item(),
        "loss/soft_deletion": dele.item(), "loss/l2": l2.item(), "loss/regulariser": regulariser.item(),
        "train/accuracy": float((logits.argmax(1) == labels).float().mean()),
    }  # fmt: skip
    return total, parts


def _maps(explainer: DifferentiableExplainer, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> np.ndarray:
    """Detached maps of ``explainer`` in chunks (no graph kept)."""
    keep = explainer.create_graph
    explainer.create_graph = False
    try:
        return np.concatenate([explainer(x[i : i + chunk], y[i : i + chunk]).detach().cpu().numpy() for i in range(0, len(x), chunk)])
    finally:
        explainer.create_graph = keep


def evaluate_faithfulness(
    model: nn.Module,
    explainer: DifferentiableExplainer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    kind: str,
    baseline: float = 0.0,
    input_shape: tuple[int, ...] | None = None,
    substrates: tuple[str, ...] = ("constant",),
) -> dict[str, float]:
    """Accuracy and hard insertion/deletion AUCs of ``explainer``'s maps (true classes).

    Images: RISE's curves with one row per step (``step = W``), once per substrate in
    ``substrates`` (``"constant"``: the value ``baseline``; ``"blur"``: RISE's blur), the same
    substrate for insertion and deletion; tables: one feature per step, features replaced by
    ``baseline``. ``insertion_auc`` / ``deletion_auc`` are the means over the substrates, and
    ``insertion_auc/<substrate>`` / ``deletion_auc/<substrate>`` each substrate's.
    """
    check_choice("kind", kind, ("image", "tabular"))
    if not isinstance(substrates, tuple) or not substrates:
        raise ValueError(f"substrates must be a non-empty tuple of 'constant' / 'blur', got {substrates!r}")
    for name in substrates:
        check_choice("substrate", name, ("constant", "blur"))
    if kind == "tabular" and substrates != ("constant",):
        raise ValueError(f"tables take substrates=('constant',) only, got {substrates!r}")
    model.eval()
    with torch.no_grad():
        accuracy = float((torch.cat([model(inputs[i : i + 256]) for i in range(0, len(inputs), 256)]).argmax(1) == labels).float().mean())
    maps = _maps(explainer, inputs, labels)
    record: dict[str, float] = {"accuracy": accuracy}
    if kind == "image":
        frozen = FrozenClassifier(copy.deepcopy(model), input_shape or tuple(inputs.shape[1:]), device=inputs.device, name="idexpo")
        for name in substrates:
            spec = substrate_spec(name, baseline)
            record[f"insertion_auc/{name}"] = insertion_curve(frozen, inputs, maps, labels, substrate=spec).mean_auc
            record[f"deletion_auc/{name}"] = deletion_curve(frozen, inputs, maps, labels, substrate=spec).mean_auc
    else:
        record["insertion_auc/constant"] = feature_insertion_curve(model, inputs, maps, labels, baseline=float(baseline)).mean_auc
        record["deletion_auc/constant"] = feature_deletion_curve(model, inputs, maps, labels, baseline=float(baseline)).mean_auc
    record["insertion_auc"] = float(np.mean([record[f"insertion_auc/{name}"] for name in substrates]))
    record["deletion_auc"] = float(np.mean([record[f"deletion_auc/{name}"] for name in substrates]))
    return record


def select_best(history: list[dict[str, Any]], floor: float) -> dict[str, Any] | None:
    """The evaluation with the largest ``insertion_auc - deletion_auc`` among those with
    ``accuracy >= floor`` (the earliest on ties), or ``None`` when none reaches the floor."""
    floor = check_float("floor", floor, minimum=0.0, maximum=1.0)
    best = None
    for record in history:
        if record["accuracy"] + 1e-12 < floor:
            continue
        score = record["insertion_auc"] - record["deletion_auc"]
        if best is None or score > best["insertion_auc"] - best["deletion_auc"]:
            best = record
    return best
