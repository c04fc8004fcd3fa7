"""Configuration of the attribution-attack environments: every knob, its default and its check.

``AttributionAttackConfig.from_kwargs(**kwargs)`` is the single place where the keyword arguments
of ``gym.make("saliency_gym/AttributionAttack-v0", **kwargs)`` are validated and resolved (names
to classifiers, data sources and explainers), so the single environment, its vector version and
the SB3 adapter accept exactly the same arguments. Classifier and data resolution are shared with
the saliency-search environments (:mod:`saliency_gym.envs.config`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource
from saliency_gym.envs.config import resolve_classifier_and_data, resolve_grid
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.grid import PatchGrid
from saliency_gym.metrics.similarity import SIMILARITY_NAMES
from saliency_gym.validation import check_choice, check_float, check_int

ACTION_TYPES = ("cell_sign", "continuous")
LABEL_RULES = ("revert", "penalize", "terminate")
MAP_TRANSFORMS = ("abs", "none")


def default_config() -> dict[str, Any]:
    """Every keyword argument of the attribution-attack environments with its default."""
    return {
        "classifier": "shapes",
        "data": None,
        "split": "train",
        "image": None,
        "label": None,
        "explainer": "gradient",
        "explainer_options": None,
        "map_transform": "abs",
        "dissimilarity": "topk",
        "k": None,
        "w": 1,
        "nan_value": 1.0,
        "epsilon": 8 / 255,
        "action_type": "cell_sign",
        "grid": 8,
        "step_size": None,
        "budget": 16,
        "on_label_change": "revert",
        "label_change_penalty": -1.0,
        "device": None,
    }


@dataclass
class AttributionAttackConfig:
    """Resolved, validated settings of one attribution-attack environment (see the env docstring)."""

    classifier: FrozenClassifier
    data: DataSource
    explainer: Explainer
    map_transform: str
    dissimilarity: str
    k: int
    w: int
    nan_value: float
    epsilon: float
    action_type: str
    grid: PatchGrid
    step_size: float
    budget: int
    on_label_change: str
    label_change_penalty: float

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> AttributionAttackConfig:
        unknown = sorted(set(kwargs) - set(default_config()))
        if unknown:
            raise TypeError(f"unknown argument(s) {unknown}; allowed: {sorted(default_config())}")
        cfg = {**default_config(), **kwargs}
        classifier, data = resolve_classifier_and_data(cfg)
        explainer = _resolve_explainer(cfg["explainer"], cfg["explainer_options"], classifier)
        _, h, w_pixels = classifier.input_shape
        map_transform = check_choice("map_transform", cfg["map_transform"], MAP_TRANSFORMS)
        dissimilarity = check_choice("dissimilarity", cfg["dissimilarity"], SIMILARITY_NAMES)
        k = max(1, (h * w_pixels) // 10) if cfg["k"] is None else check_int("k", cfg["k"], minimum=1, maximum=h * w_pixels)
        w = check_int("w (neighbourhood radius in pixels)", cfg["w"], minimum=0)
        nan_value = check_float("nan_value", cfg["nan_value"], minimum=0.0, maximum=2.0)
        epsilon = check_float("epsilon", cfg["epsilon"], minimum=0.0, maximum=1.0, exclusive_minimum=True)
        action_type = check_choice("action_type", cfg["action_type"], ACTION_TYPES)
        grid = resolve_grid(cfg["grid"], classifier.input_shape)
        step = cfg["step_size"]
        step_size = epsilon / 4 if step is None else check_float("step_size", step, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        budget = check_int("budget", cfg["budget"], minimum=1)
        on_label_change = check_choice("on_label_change", cfg["on_label_change"], LABEL_RULES)
        penalty = check_float("label_change_penalty", cfg["label_change_penalty"], maximum=0.0)
        return cls(
            classifier=classifier, data=data, explainer=explainer, map_transform=map_transform,
            dissimilarity=dissimilarity, k=k, w=w, nan_value=nan_value, epsilon=epsilon,
            action_type=action_type, grid=grid, step_size=step_size, budget=budget,
            on_label_change=on_label_change, label_change_penalty=penalty,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for logs and ``repr``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["classifier"] = self.classifier.name
        out["data"] = f"{self.data.name} ({len(self.data)} images)"
        out["explainer"] = self.explainer.name
        out["grid"] = self.grid.shape
        return out


def _resolve_explainer(spec: Any, options: Any, classifier: FrozenClassifier) -> Explainer:
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"explainer_options must be a dict of the explainer's keyword arguments or None, got {options!r}")
    if isinstance(spec, Explainer):
        if options:
            raise ValueError("explainer_options go with an explainer given by name, not with an Explainer instance")
        if spec.classifier is not classifier:
            raise ValueError("the Explainer must be bound to the environment's classifier (pass the same FrozenClassifier)")
        return spec
    if isinstance(spec, str):
        return make_explainer(spec, classifier, **(options or {}))
    raise TypeError(f"explainer must be an explainer name (see baselines.available_explainers()) or an Explainer, got {spec!r}")

