"""The ID-ExpO recipe: :class:`IDExpOConfig` (hyperparameters of
:func:`saliency_gym.baselines.idexpo.fine_tune`, validated at the boundary)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from saliency_gym.baselines.differentiable_explainers import DIFFERENTIABLE_EXPLAINERS
from saliency_gym.metrics.soft_insertion_deletion import DEFAULT_TIE_BREAK, DELETION_FORMS
from saliency_gym.runs import TrainingOptions
from saliency_gym.validation import check_choice

__all__ = ["FINE_TUNE_SUBSTRATES", "IDExpOConfig", "check_bool"]

#: What absent pixels become during fine-tuning (:attr:`IDExpOConfig.substrate`).
FINE_TUNE_SUBSTRATES = ("constant", "blur", "rise", "random")


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool``, else raise a ``TypeError`` naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


@dataclass
class IDExpOConfig(TrainingOptions):
    """Hyperparameters of :func:`fine_tune`.

    ``benchmarks/bench_idexpo.py`` lists the recipes it measured per dataset (``RECIPES``); on the
    image sets it uses ``deletion_form="direct"``, since the ratio form's ``log p_y(x_del)`` is
    unbounded below and dominated the loss in short runs on shapes.
    """

    option_kind = "ID-ExpO option"

    classifier: str = "shapes"
    """Shipped classifier name, checkpoint path, or tabular dataset name (a base MLP is trained)."""
    explainer: str = "gradcam"
    """Differentiable explainer: ``"gradcam"``, ``"gradient"`` or ``"input_x_gradient"``."""
    lambda_ins_del: float = 0.3
    """``lambda1``, weight of soft insertion + soft deletion."""
    lambda_l2: float = 1e-3
    """``lambda2``, weight of ``mean(e^2)``."""
    temperature: float = 1.0
    """``tau`` of the soft masks (the paper's 1)."""
    n_steps: int = 8
    """Soft-metric steps (``D // n_steps`` features per step)."""
    fraction: float = 0.5
    """Share of the steps used (the paper's ``K = 0.5``: the top half of the features)."""
    baseline: float = 0.0
    """Value of absent features for ``substrate="constant"`` (0: black pixels, the training mean
    of standardised table features), in the soft metrics and the hard selection metrics."""
    substrate: str = "constant"
    """What absent pixels become, in the soft metrics and the hard selection metrics:
    ``"constant"`` (the value ``baseline``), ``"blur"`` (RISE's Gaussian blur of the image, the
    insertion substrate of :func:`~saliency_gym.metrics.insertion_deletion.insertion_curve`),
    ``"rise"`` (RISE's pairing: insertion from the blur, deletion to the constant) or ``"random"``
    (each batch draws ``"constant"`` or ``"blur"`` from the run's seeded generator). With
    ``"rise"`` and ``"random"`` selection averages the AUCs under both the constant and the blur
    substrate. A model tuned with one substrate can lose faithfulness under the other; tables take
    ``"constant"`` only."""
    tie_break: float = DEFAULT_TIE_BREAK
    """``kappa`` of the soft masks' tie rule (the hard metric's index order; see
    :mod:`saliency_gym.metrics.soft_insertion_deletion`)."""
    deletion_form: str = "ratio"
    """``"ratio"`` (the paper's) or ``"direct"``."""
    detach_thresholds: bool = False
    """Treat the soft masks' thresholds and scale as constants (the authors' code)."""
    lr: float = 5e-5
    weight_decay: float = 0.0
    steps: int = 150
    batch_size: int = 32
    eval_every: int = 50
    val_size: int = 200
    """Validation inputs scored for model selection (the first ``val_size`` of the split)."""
    accuracy_drop: float = 0.01
    """Allowed drop of validation accuracy below the starting model's (the floor)."""
    accuracy_floor: float | None = None
    """An absolute validation-accuracy floor instead of ``start - accuracy_drop``."""
    checkpoint_every: int = 50
    seed: int = 0
    tabular_epochs: int = 60
    """Epochs of the base MLP when ``classifier`` names a tabular dataset."""

    def validate(self) -> IDExpOConfig:
        """Check every field; raise ``TypeError``/``ValueError`` naming the bad one."""
        if not isinstance(self.classifier, (str, os.PathLike)):
            raise TypeError(f"classifier must be a name or a path, got {type(self.classifier).__name__}")
        check_choice("explainer", self.explainer, DIFFERENTIABLE_EXPLAINERS)
        check_choice("deletion_form", self.deletion_form, DELETION_FORMS)
        check_choice("substrate", self.substrate, FINE_TUNE_SUBSTRATES)
        check_bool("detach_thresholds", self.detach_thresholds)
        self.check_floats("lambda_ins_del", "lambda_l2", "weight_decay", "tie_break", minimum=0.0)
        self.check_floats("temperature", "lr", minimum=0.0, exclusive_minimum=True)
        self.check_floats("fraction", minimum=0.0, maximum=1.0, exclusive_minimum=True)
        self.check_floats("baseline")
        self.check_floats("accuracy_drop", minimum=0.0, maximum=1.0)
        self.check_floats("accuracy_floor", minimum=0.0, maximum=1.0, optional=True)
        self.check_ints("n_steps", "steps", "batch_size", "eval_every", "val_size", "checkpoint_every", "tabular_epochs", minimum=1)
        self.check_ints("seed", minimum=0)
        return self

