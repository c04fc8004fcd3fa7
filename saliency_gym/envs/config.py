"""Configuration of the saliency-search environments: every knob, its default and its check.

:class:`SaliencySearchOptions` declares the keyword arguments of
``gym.make("saliency_gym/SaliencyReveal-v0", **kwargs)`` with their types and defaults, and
``SaliencySearchConfig.from_kwargs(mode, **kwargs)`` is the single place where they are validated
and resolved (names to classifiers, data sources and substrates), so the reveal and mask
environments, their vector versions and the SB3 adapter all accept exactly the same arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource
from saliency_gym.envs.common_config import (
    EnvConfig,
    EnvOptions,
    check_flag,
    resolve_classifier,
    resolve_classifier_and_data,
    resolve_data,
    resolve_grid,
)
from saliency_gym.layers import resolve_named_layer
from saliency_gym.substrates import Substrate, make_substrate
from saliency_gym.types import Image
from saliency_gym.validation import check_choice, check_float, check_int

__all__ = [
    "FOIL_RULES",
    "MODES",
    "REWARD_MODES",
    "TARGET_RULES",
    "SaliencySearchConfig",
    "SaliencySearchOptions",
    "default_config",
    "resolve_classifier",
    "resolve_classifier_and_data",
    "resolve_data",
    "resolve_grid",
]

MODES = ("reveal", "mask")
REWARD_MODES = ("auc", "auc_trapezoid", "delta", "log_odds")
TARGET_RULES = ("predicted", "label", "random")
FOIL_RULES = ("runner_up",)

#: A substrate as the environments accept it (see :func:`saliency_gym.substrates.make_substrate`).
SubstrateSpec = Substrate | str | float | np.floating[Any] | Image | Callable[..., Any] | None
#: A target rule, a class id, or a one-vs-one ``(target, foil)`` pair.
TargetSpec = str | int | tuple[str | int, str | int]
RewardMode = Literal["auc", "auc_trapezoid", "delta", "log_odds"]

ConfigT = TypeVar("ConfigT", bound="SaliencySearchConfig")


@dataclass
class SaliencySearchOptions(EnvOptions):
    """The keyword arguments of the saliency-search environments, with their defaults."""

    substrate: SubstrateSpec = None
    """``"zeros"``, ``"mean"``, ``"blur"``, ``"noise"``, a number, an image, a callable or a
    ``Substrate``; default ``"blur"`` when revealing, ``"zeros"`` when masking."""
    budget: int | None = None
    """Cells per episode; default all."""
    target: TargetSpec = "predicted"
    """``"predicted"``, ``"label"``, ``"random"`` (a uniformly drawn class per episode, for training
    class-conditioned agents with ``observe_class``), a class id or a one-vs-one pair ``(target, foil)``."""
    reward_mode: RewardMode = "auc"
    """``"auc"``, ``"auc_trapezoid"``, ``"delta"`` or ``"log_odds"``."""
    observe_score: bool = False
    """Add the current score to the observation."""
    observe_class: bool = False
    """Add the explained class (and the foil, one-vs-one) to the observation as one-hot vectors, so
    one policy can explain any class."""
    observe_features: bool | str = False
    """Add the frozen classifier's own spatial evidence, average-pooled to the grid: its
    activations at ``feature_layer`` (``(C, rows, cols)``). ``"image"``: ``"image_features"``, of the
    image, computed once at reset (in reveal mode with a known target that costs one more query);
    ``"canvas"``: ``"canvas_features"``, of the current canvas, from the very forward pass that
    scores it (no extra query); ``"both"`` or ``True``: both; ``False``: none. What RExL's policy
    observes: the classifier's features rather than raw pixels."""
    feature_layer: str | None = None
    """The observed layer's dotted name; default the layer Grad-CAM explains (the model's
    ``target_layer``, else its last convolutional block, see :mod:`saliency_gym.layers`)."""
    invalid_action_penalty: float | None = None
    """Reward of choosing a cell again (``<= 0``); default ``-1 / cells``."""
    max_steps: int | None = None
    """Steps before truncation (``>= budget``); default ``2 * budget``."""


#: ``default_config()``: every keyword argument of the saliency-search environments with its default.
default_config = SaliencySearchOptions.defaults


@dataclass
class SaliencySearchConfig(EnvConfig):
    """Resolved, validated settings of one saliency-search environment (see the env docstrings)."""

    mode: str
    substrate: Substrate
    reward_mode: str
    target: int | str
    foil: int | str | None
    observe_score: bool
    invalid_action_penalty: float
    max_steps: int
    observe_class: bool = False
    observe_action_mask: bool = False
    #: ``"none"``, ``"image"``, ``"canvas"`` or ``"both"`` (see ``SaliencySearchOptions.observe_features``).
    observe_features: str = "none"
    #: The observed layer (``None`` unless features are observed), its dotted name and channels.
    feature_layer: nn.Module | None = None
    feature_layer_name: str | None = None
    feature_channels: int = 0

    @property
    def image_features(self) -> bool:
        """Whether the observation holds ``"image_features"``."""
        return self.observe_features in ("image", "both")

    @property
    def canvas_features(self) -> bool:
        """Whether the observation holds ``"canvas_features"``."""
        return self.observe_features in ("canvas", "both")

    @classmethod
    def from_kwargs(cls: type[ConfigT], mode: str = "reveal", **kwargs: Any) -> ConfigT:
        """Validate and resolve the keyword arguments of an environment in ``mode`` (``"reveal"``
        or ``"mask"``); unknown arguments raise ``TypeError``."""
        check_choice("mode", mode, MODES)
        return cls.resolve(SaliencySearchOptions.from_kwargs(**kwargs), mode)

    @classmethod
    def resolve(cls: type[ConfigT], options: SaliencySearchOptions, mode: str) -> ConfigT:
        """The resolved configuration of ``options`` for an environment in ``mode``."""
        classifier, data = resolve_classifier_and_data(options)
        grid = resolve_grid(options.grid, data.image_shape)
        substrate_spec = options.substrate if options.substrate is not None else ("blur" if mode == "reveal" else "zeros")
        channel_mean = data.channel_mean() if isinstance(substrate_spec, str) and substrate_spec == "mean" else None
        substrate = make_substrate(substrate_spec, channel_mean=channel_mean)
        budget = grid.num_cells if options.budget is None else check_int("budget", options.budget, minimum=1, maximum=grid.num_cells)
        target, foil = _resolve_target(options.target, classifier.num_classes, data)
        if substrate.class_aware and not isinstance(foil, int):
            raise ValueError(
                f"the class-aware substrate {substrate.name!r} makes a counterfactual of the foil class: "
                "use a one-vs-one target (target, foil) with a fixed foil class id"
            )
        reward_mode = check_choice("reward_mode", options.reward_mode, REWARD_MODES)
        penalty = options.invalid_action_penalty
        penalty = -1.0 / grid.num_cells if penalty is None else check_float("invalid_action_penalty", penalty, maximum=0.0)
        max_steps = 2 * budget if options.max_steps is None else check_int("max_steps", options.max_steps, minimum=budget)
        for flag in ("observe_score", "observe_class", "observe_action_mask"):
            check_flag(flag, getattr(options, flag))
        features = _resolve_features(options.observe_features, options.feature_layer, classifier, grid.shape)
        return cls(
            mode=mode, classifier=classifier, data=data, grid=grid, substrate=substrate, budget=budget,
            target=target, foil=foil, reward_mode=reward_mode, observe_score=bool(options.observe_score),
            invalid_action_penalty=penalty, max_steps=max_steps, observe_class=bool(options.observe_class),
            observe_action_mask=bool(options.observe_action_mask), **features,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.pop("feature_layer", None)  # a module; its name is in feature_layer_name
        return out


FEATURE_CHOICES = ("none", "image", "canvas", "both")


def _resolve_features(
    spec: object, layer: object, classifier: FrozenClassifier, grid: tuple[int, int]
) -> dict[str, Any]:
    """The feature-observation fields of the config: which keys, the hooked layer, its channels."""
    if isinstance(spec, (bool, np.bool_)):
        which = "both" if spec else "none"
    elif isinstance(spec, str):
        which = check_choice("observe_features", spec, FEATURE_CHOICES)
    else:
        raise TypeError(f"observe_features must be a bool or one of {FEATURE_CHOICES}, got {spec!r}")
    if layer is not None and not isinstance(layer, str):
        raise TypeError(f"feature_layer must be a layer's dotted name or None, got {type(layer).__name__}")
    if which == "none":
        if layer is not None:
            raise ValueError("feature_layer is set but observe_features is off; pass observe_features=True too")
        return {"observe_features": "none"}
    if not isinstance(classifier.model, nn.Module):
        raise TypeError("observe_features needs a classifier that wraps an nn.Module (its layer is hooked)")
    name, module = resolve_named_layer(classifier.module, layer, owner="the classifier's module")
    probe = torch.full((1, *classifier.input_shape), 0.5, device=classifier.device)
    _, features = classifier.probs_and_features(probe, module, grid, count=False, validate=False)
    return {
        "observe_features": which, "feature_layer": module, "feature_layer_name": name,
        "feature_channels": int(features.shape[1]),
    }  # fmt: skip


def _check_class(name: str, value: Any, num_classes: int) -> int:
    return check_int(name, value, minimum=0, maximum=num_classes - 1)


def _resolve_target(spec: object, num_classes: int, data: DataSource) -> tuple[int | str, int | str | None]:
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
