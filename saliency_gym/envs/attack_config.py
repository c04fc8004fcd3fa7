"""Configuration of the attribution-attack environments: every knob, its default and its check.

:class:`AttackOptions` declares the keyword arguments of
``gym.make("saliency_gym/AttributionAttack-v0", **kwargs)`` with their types and defaults, and
``AttributionAttackConfig.from_kwargs(**kwargs)`` is the single place where they are validated and
resolved (names to classifiers, data sources and explainers), so the single environment, its
vector version and the SB3 adapter accept exactly the same arguments. Classifier, data and grid
arguments are shared with the saliency-search environments
(:mod:`saliency_gym.envs.common_config`); explainers are built through the core registry
(:func:`saliency_gym.explainers.make_explainer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.envs.common_config import (
    EnvConfig,
    EnvOptions,
    check_flag,
    resolve_classifier_and_data,
    resolve_grid,
)
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.metrics.similarity import SIMILARITY_NAMES
from saliency_gym.validation import check_choice, check_float, check_int

ACTION_TYPES = ("cell_sign", "continuous")
STEP_PATTERNS = ("uniform", "noise")
STARTS = ("zero", "pattern")
REWARDS = ("kept", "best")
LABEL_RULES = ("revert", "penalize", "terminate")
MAP_TRANSFORMS = ("abs", "none")

ConfigT = TypeVar("ConfigT", bound="AttributionAttackConfig")


@dataclass
class AttackOptions(EnvOptions):
    """The keyword arguments of the attribution-attack environments, with their defaults."""

    explainer: str | Explainer = "gradient"
    """An explainer name (the explainer registry) or an ``Explainer`` bound to the classifier."""
    explainer_options: dict[str, Any] | None = None
    """Keyword arguments of an explainer given by name."""
    map_transform: Literal["abs", "none"] = "abs"
    """``"abs"`` (rank pixels by attribution magnitude) or ``"none"``."""
    dissimilarity: str = "topk"
    """A name of :data:`saliency_gym.metrics.similarity.SIMILARITY_NAMES`."""
    k: int | None = None
    """Top-k size; default ``H * W // 10``."""
    w: int = 1
    """LENS neighbourhood / top-k-div suppression radius in pixels."""
    nan_value: float = 1.0
    """Dissimilarity used when a rank correlation is undefined."""
    epsilon: float = 8 / 255
    """L-infinity radius in pixel units."""
    action_type: Literal["cell_sign", "continuous"] = "cell_sign"
    """``"cell_sign"`` (discrete signed cell steps) or ``"continuous"``."""
    step_size: float | None = None
    """Pixel change per step; default ``epsilon / 4``."""
    step_pattern: Literal["uniform", "noise"] = "uniform"
    """``"cell_sign"`` steps: ``"uniform"`` (every pixel of the cell moves by the same signed step) or
    ``"noise"`` (each pixel and channel by the step times a fixed random sign, seeded by
    ``pattern_seed``: a local random-sign perturbation)."""
    pattern_seed: int = 0
    """Seed of the ``"noise"`` step pattern (fixed across episodes, so a policy can learn it)."""
    start: Literal["zero", "pattern"] = "zero"
    """The first perturbation of an episode: ``"zero"`` or ``"pattern"`` (every cell at ``+epsilon`` times
    the step pattern: a random-sign start, as PGD's random start; kept only if it keeps the label)."""
    reward: Literal["kept", "best"] = "kept"
    """``"kept"``: the increase of the kept shift (the return is the last label-kept state's shift);
    ``"best"``: the increase of the best kept shift so far (the return is the best state's shift,
    what an attack that returns its best iterate scores)."""
    observe_original: bool = False
    """Also observe the original image's map (``"original_attribution"``), so a policy can see how far
    the current map has moved."""
    budget: int = 16
    """Steps per episode."""
    on_label_change: Literal["revert", "penalize", "terminate"] = "revert"
    """What a label-changing step does."""
    label_change_penalty: float = -1.0
    """Reward of a label-changing step (``<= 0``)."""


#: ``default_config()``: every keyword argument of the attribution-attack environments with its default.
default_config = AttackOptions.defaults


@dataclass
class AttributionAttackConfig(EnvConfig):
    """Resolved, validated settings of one attribution-attack environment (see the env docstring)."""

    explainer: Explainer
    map_transform: str
    dissimilarity: str
    k: int
    w: int
    nan_value: float
    epsilon: float
    action_type: str
    step_size: float
    step_pattern: str
    pattern_seed: int
    start: str
    reward: str
    observe_original: bool
    on_label_change: str
    label_change_penalty: float
    observe_action_mask: bool = False

    @classmethod
    def from_kwargs(cls: type[ConfigT], **kwargs: Any) -> ConfigT:
        """Validate and resolve the environment's keyword arguments; unknown ones raise ``TypeError``."""
        return cls.resolve(AttackOptions.from_kwargs(**kwargs))

    @classmethod
    def resolve(cls: type[ConfigT], options: AttackOptions) -> ConfigT:
        """The resolved configuration of ``options``."""
        classifier, data = resolve_classifier_and_data(options)
        explainer = _resolve_explainer(options.explainer, options.explainer_options, classifier)
        _, h, w_pixels = classifier.input_shape
        map_transform = check_choice("map_transform", options.map_transform, MAP_TRANSFORMS)
        dissimilarity = check_choice("dissimilarity", options.dissimilarity, SIMILARITY_NAMES)
        k = max(1, (h * w_pixels) // 10) if options.k is None else check_int("k", options.k, minimum=1, maximum=h * w_pixels)
        w = check_int("w (neighbourhood radius in pixels)", options.w, minimum=0)
        nan_value = check_float("nan_value", options.nan_value, minimum=0.0, maximum=2.0)
        epsilon = check_float("epsilon", options.epsilon, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        action_type = check_choice("action_type", options.action_type, ACTION_TYPES)
        grid = resolve_grid(options.grid, classifier.input_shape)
        step = options.step_size
        step_size = epsilon / 4 if step is None else check_float("step_size", step, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        budget = check_int("budget", options.budget, minimum=1)
        step_pattern = check_choice("step_pattern", options.step_pattern, STEP_PATTERNS)
        if step_pattern != "uniform" and action_type != "cell_sign":
            raise ValueError("step_pattern='noise' shapes the steps of action_type='cell_sign'; continuous actions set every pixel themselves")
        pattern_seed = check_int("pattern_seed", options.pattern_seed, minimum=0)
        start = check_choice("start", options.start, STARTS)
        reward = check_choice("reward", options.reward, REWARDS)
        observe_original = check_flag("observe_original", options.observe_original)
        on_label_change = check_choice("on_label_change", options.on_label_change, LABEL_RULES)
        penalty = check_float("label_change_penalty", options.label_change_penalty, maximum=0.0)
        observe_action_mask = check_flag("observe_action_mask", options.observe_action_mask)
        if observe_action_mask and action_type != "cell_sign":
            raise ValueError("observe_action_mask needs discrete actions: use action_type='cell_sign'")
        return cls(
            classifier=classifier, data=data, explainer=explainer, map_transform=map_transform,
            dissimilarity=dissimilarity, k=k, w=w, nan_value=nan_value, epsilon=epsilon,
            action_type=action_type, grid=grid, step_size=step_size, step_pattern=step_pattern,
            pattern_seed=pattern_seed, start=start, reward=reward, observe_original=observe_original, budget=budget,
            on_label_change=on_label_change, label_change_penalty=penalty,
            observe_action_mask=observe_action_mask,
        )  # fmt: skip


    def episode_kwargs(self) -> dict[str, Any]:
        """The keyword arguments that shape episodes (all but classifier, data, explainer and
        epsilon): what rebuilds this environment over other images or another explainer."""
        return {
            "map_transform": self.map_transform, "dissimilarity": self.dissimilarity, "k": self.k, "w": self.w,
            "nan_value": self.nan_value, "action_type": self.action_type, "grid": self.grid.shape,
            "step_size": self.step_size, "step_pattern": self.step_pattern, "pattern_seed": self.pattern_seed, "start": self.start, "reward": self.reward,
            "observe_original": self.observe_original, "budget": self.budget, "on_label_change": self.on_label_change,
            "label_change_penalty": self.label_change_penalty, "observe_action_mask": self.observe_action_mask,
        }  # fmt: skip


def _resolve_explainer(spec: object, options: object, classifier: FrozenClassifier) -> Explainer:
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
    raise TypeError(f"explainer must be an explainer name (see saliency_gym.explainers.available_explainers()) or an Explainer, got {spec!r}")
