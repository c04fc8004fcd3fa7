"""Configuration of the saliency-search environments: every knob, its default and its check.

``SaliencySearchConfig.from_kwargs(mode, **kwargs)`` is the single place where the keyword
arguments of ``gym.make("saliency_gym/SaliencyReveal-v0", **kwargs)`` are validated and resolved
(names to classifiers, data sources and substrates), so the reveal and mask environments, their
vector versions and the SB3 adapter all accept exactly the same arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import ArraySource, DataSource, load_dataset
from saliency_gym.grid import PatchGrid
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.validation import check_choice, check_float, check_int

MODES = ("reveal", "mask")
REWARD_MODES = ("auc", "auc_trapezoid", "delta", "log_odds")
TARGET_RULES = ("predicted", "label")
FOIL_RULES = ("runner_up",)


def default_config() -> dict[str, Any]:
    """Every keyword argument of the saliency-search environments with its default."""
    return {
        "classifier": "shapes",
        "data": None,
        "split": "train",
        "image": None,
        "label": None,
        "grid": 8,
        "substrate": None,
        "budget": None,
        "target": "predicted",
        "reward_mode": "auc",
        "observe_score": False,
        "invalid_action_penalty": None,
        "max_steps": None,
        "device": None,
    }


@dataclass
class SaliencySearchConfig:
    """Resolved, validated settings of one saliency-search environment (see the env docstrings)."""

    mode: str
    classifier: FrozenClassifier
    data: DataSource
    grid: PatchGrid
    substrate: Substrate
    budget: int
    target: int | str
    foil: int | str | None
    reward_mode: str
    observe_score: bool
    invalid_action_penalty: float
    max_steps: int

    @classmethod
    def from_kwargs(cls, mode: str, **kwargs: Any) -> SaliencySearchConfig:
        check_choice("mode", mode, MODES)
        unknown = sorted(set(kwargs) - set(default_config()))
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown}; allowed: {sorted(default_config())}")
        cfg = {**default_config(), **kwargs}
        classifier, data = resolve_classifier_and_data(cfg)
        grid = resolve_grid(cfg["grid"], data.image_shape)
        substrate_spec = cfg["substrate"] if cfg["substrate"] is not None else ("blur" if mode == "reveal" else "zeros")
        channel_mean = data.channel_mean() if substrate_spec == "mean" else None
        substrate = make_substrate(substrate_spec, channel_mean=channel_mean)
        budget = grid.num_cells if cfg["budget"] is None else check_int("budget", cfg["budget"], minimum=1, maximum=grid.num_cells)
        target, foil = _resolve_target(cfg["target"], classifier.num_classes, data)
        if substrate.class_aware and not isinstance(foil, int):
            raise ValueError(
                f"the class-aware substrate {substrate.name!r} makes a counterfactual of the foil class: "
                "use a one-vs-one target (target, foil) with a fixed foil class id"
            )
        reward_mode = check_choice("reward_mode", cfg["reward_mode"], REWARD_MODES)
        penalty = cfg["invalid_action_penalty"]
        penalty = -1.0 / grid.num_cells if penalty is None else check_float("invalid_action_penalty", penalty, maximum=0.0)
        max_steps = 2 * budget if cfg["max_steps"] is None else check_int("max_steps", cfg["max_steps"], minimum=budget)
        if not isinstance(cfg["observe_score"], (bool, np.bool_)):
            raise TypeError(f"observe_score must be a bool, got {cfg['observe_score']!r}")
        return cls(
            mode=mode, classifier=classifier, data=data, grid=grid, substrate=substrate, budget=budget,
            target=target, foil=foil, reward_mode=reward_mode, observe_score=bool(cfg["observe_score"]),
            invalid_action_penalty=penalty, max_steps=max_steps,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for logs and ``repr``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["classifier"] = self.classifier.name
        out["data"] = f"{self.data.name} ({len(self.data)} images)"
        out["grid"] = self.grid.shape
        out["substrate"] = self.substrate.name
        return out


def resolve_classifier_and_data(cfg: dict[str, Any]) -> tuple[FrozenClassifier, DataSource]:
    """The classifier and the data source of a configuration, checked to fit each other."""
    classifier = resolve_classifier(cfg["classifier"], cfg["device"])
    data = resolve_data(cfg, classifier)
    if tuple(data.image_shape) != tuple(classifier.input_shape):
        raise ValueError(
            f"data images have shape {tuple(data.image_shape)} but the classifier expects {classifier.input_shape}"
        )
    if data.num_classes != classifier.num_classes:
        raise ValueError(f"data has {data.num_classes} classes but the classifier has {classifier.num_classes}")
    return classifier, data


def resolve_classifier(spec: Any, device: Any) -> FrozenClassifier:
    if isinstance(spec, FrozenClassifier):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        from saliency_gym.zoo import load_classifier

        return load_classifier(spec, device=device)
    raise TypeError(
        f"classifier must be a FrozenClassifier, a shipped name or a checkpoint path, got {type(spec).__name__}"
    )


def resolve_data(cfg: dict[str, Any], classifier: FrozenClassifier) -> DataSource:
    if cfg["image"] is not None:
        if cfg["data"] is not None:
            raise ValueError("pass either `image` (a fixed image) or `data`, not both")
        image = cfg["image"]
        image = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if image.shape != tuple(classifier.input_shape):
            raise ValueError(f"image must have the classifier's shape {classifier.input_shape}, got {image.shape}")
        label = cfg["label"]
        labels = [0 if label is None else check_int("label", label, minimum=0, maximum=classifier.num_classes - 1)]
        return ArraySource(image[None], labels, class_names=classifier.class_names, name="image", has_label=label is not None)
    if cfg["label"] is not None:
        raise ValueError("`label` goes with a fixed `image`; data sources carry their own labels")
    data = cfg["data"]
    if data is None:
        data = classifier.meta.get("dataset")
        if data is None:
            raise ValueError("pass `data` (a DataSource or a dataset name) or `image` for a custom classifier")
    if isinstance(data, str):
        return load_dataset(data, split=cfg["split"])
    if isinstance(data, DataSource):
        if len(data) == 0:
            raise ValueError("data source is empty")
        return data
    raise TypeError(f"data must be a DataSource or a dataset name, got {type(data).__name__}")


def resolve_grid(spec: Any, image_shape: tuple[int, ...]) -> PatchGrid:
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return PatchGrid.for_shape(image_shape, spec[0], spec[1])
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return PatchGrid.for_shape(image_shape, int(spec))
    raise TypeError(f"grid must be an int (cells per side) or a (rows, cols) pair, got {spec!r}")


def _check_class(name: str, value: Any, num_classes: int) -> int:
    return check_int(name, value, minimum=0, maximum=num_classes - 1)


def _resolve_target(spec: Any, num_classes: int, data: DataSource) -> tuple[int | str, int | str | None]:
    foil: int | str | None = None
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2:
            raise ValueError(f"a one-vs-one target must be a (target, foil) pair, got {spec!r}")
        spec, foil = spec
        if isinstance(foil, str):
            check_choice("foil", foil, FOIL_RULES)
        else:
            foil = _check_class("foil", foil, num_classes)
    if isinstance(spec, str):
        check_choice("target", spec, TARGET_RULES)
        if spec == "label" and not data.has_label:
            raise ValueError("target='label' needs a label: pass `label=` with the fixed image")
        target: int | str = spec
    else:
        target = _check_class("target", spec, num_classes)
    if isinstance(target, int) and isinstance(foil, int) and target == foil:
        raise ValueError(f"target and foil must differ, both are {target}")
    return target, foil
