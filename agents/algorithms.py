"""The algorithm registry and the hyperparameters per environment id (YAML, rl-zoo style).

| name | class | action masks |
|---|---|---|
| ``maskable_ppo`` (default) | sb3-contrib ``MaskablePPO`` with :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy` | native: masked logits in training and inference |
| ``ppo``, ``a2c`` | SB3 ``PPO``, ``A2C`` | trained with the environment's rule (a used cell changes nothing and earns ``-1/K``); act through masked logits |
| ``recurrent_ppo`` | sb3-contrib ``RecurrentPPO`` | as PPO, with an LSTM state over the episode |
| ``dqn`` | SB3 ``DQN`` | trained with the environment's rule; acts through masked Q-values |

"Act" means :class:`~saliency_gym.agents.policies.AgentPolicy`, which every explanation and
evaluation goes through, so no algorithm ever picks a used cell when it explains.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from saliency_gym.agents.cell_policy import CellMaskablePolicy
from saliency_gym.agents.extractors import EXTRACTORS

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "saliency.yaml"


@dataclass(frozen=True)
class AlgorithmSpec:
    """An SB3 algorithm class, its policy (an alias or a class) and how it handles action masks."""

    cls: type[BaseAlgorithm]
    policy: str | type
    native_masking: bool
    on_policy: bool

    @property
    def policy_class(self) -> type:
        """The SB3 policy class (an alias like ``"MultiInputPolicy"`` resolved)."""
        return self.cls.policy_aliases[self.policy] if isinstance(self.policy, str) else self.policy


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "maskable_ppo": AlgorithmSpec(MaskablePPO, CellMaskablePolicy, True, True),
    "ppo": AlgorithmSpec(PPO, "MultiInputPolicy", False, True),
    "a2c": AlgorithmSpec(A2C, "MultiInputPolicy", False, True),
    "recurrent_ppo": AlgorithmSpec(RecurrentPPO, "MultiInputLstmPolicy", False, True),
    "dqn": AlgorithmSpec(DQN, "MultiInputPolicy", False, False),
}


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The :class:`AlgorithmSpec` registered as ``name`` (``ValueError`` naming the known ones)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` layered over ``base``, recursively for nested dicts (e.g. ``policy_kwargs``).

    Kept as our own four lines on purpose: none of our dependencies offers a recursive merge
    (PyYAML's ``<<`` merge keys are shallow and only work inside one document; rl-zoo's loader is
    not a dependency).
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else copy.deepcopy(value)
    return out


def load_hyperparameters(env_id: str, algo: str, config: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Hyperparameters for ``algo`` on ``env_id``: the YAML's ``default`` entry, overridden by the
    entry of the id (and, when the id is not listed, by nothing). ``config`` is another YAML file
    of the same shape, layered on top of the shipped one."""
    algorithm_spec(algo)
    layers = [DEFAULT_CONFIG] + ([Path(config)] if config is not None else [])
    params: dict[str, Any] = {}
    for path in layers:
        if not path.is_file():
            raise FileNotFoundError(f"hyperparameter file not found: {path}")
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} must map environment ids (or 'default') to algorithms")
        for section in ("default", env_id):
            entry = (data.get(section) or {}).get(algo)
            if entry is not None:
                if not isinstance(entry, dict):
                    raise ValueError(f"{path}: {section}/{algo} must be a mapping of hyperparameters")
                params = _merge(params, entry)
    return params


def resolve_policy_kwargs(policy_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """Replace the YAML's extractor name by its class (YAML holds only names)."""
    kwargs = dict(policy_kwargs or {})
    name = kwargs.pop("features_extractor", None)
    if name is not None:
        if name not in EXTRACTORS:
            raise ValueError(f"unknown features_extractor {name!r}; choose one of {sorted(EXTRACTORS)}")
        kwargs["features_extractor_class"] = EXTRACTORS[name]
    return kwargs


def split_hyperparameters(params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """``(n_envs, env_kwargs, algorithm kwargs with resolved policy_kwargs)``."""
    params = copy.deepcopy(params)
    n_envs = int(params.pop("n_envs", 8))
    env_kwargs = params.pop("env_kwargs", {}) or {}
    params["policy_kwargs"] = resolve_policy_kwargs(params.get("policy_kwargs"))
    return n_envs, env_kwargs, params
