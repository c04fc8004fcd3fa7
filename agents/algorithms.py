"""The algorithm registry and the hyperparameters per environment id (rl-baselines3-zoo's YAML).

| name | rl-zoo name | class | action masks |
|---|---|---|---|
| ``maskable_ppo`` (default) | ``ppo_mask`` | sb3-contrib ``MaskablePPO`` with :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy` | native: masked logits in training and inference |
| ``ppo``, ``a2c`` | ``ppo``, ``a2c`` | SB3 ``PPO``, ``A2C`` | trained with the environment's rule (a used cell changes nothing and earns ``-1/K``); act through masked logits |
| ``recurrent_ppo`` | ``ppo_lstm`` | sb3-contrib ``RecurrentPPO`` | as PPO, with an LSTM state over the episode |
| ``dqn`` | ``dqn`` | SB3 ``DQN`` | trained with the environment's rule; acts through masked Q-values |

Hyperparameters ship as one rl-zoo file per algorithm, ``agents/configs/<rl-zoo name>.yml``: a
block per environment id (``default`` for any other id) holding ``n_timesteps``, ``policy`` (a
dotted class path), ``n_envs``, ``normalize``, ``env_kwargs``, ``policy_kwargs`` and the
algorithm's own arguments. ``python -m rl_zoo3.train --algo ppo --env <id> --gym-packages
saliency_gym -conf agents/configs/ppo.yml`` reads the same files (rl-zoo has no MaskablePPO, so
``ppo_mask.yml`` is ours alone). A user's ``--config`` file is layered on top, key by key; it may
be an rl-zoo file or our older nested form (``<id or default>: {<algo>: {...}}``).

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
from saliency_gym.agents.sb3_policies import (
    SaliencyDQNPolicy,
    SaliencyLstmPolicy,
    SaliencyMultiInputPolicy,
    class_path,
)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class AlgorithmSpec:
    """An SB3 algorithm class, its policy (an alias or a class) and how it handles action masks."""

    cls: type[BaseAlgorithm]
    policy: type
    native_masking: bool
    on_policy: bool
    zoo_name: str

    @property
    def policy_class(self) -> type:
        """The SB3 policy class."""
        return self.policy

    @property
    def config_file(self) -> Path:
        """The shipped hyperparameter file (rl-zoo's format, named after rl-zoo's algorithm name)."""
        return CONFIG_DIR / f"{self.zoo_name}.yml"


ALGORITHMS: dict[str, AlgorithmSpec] = {
    "maskable_ppo": AlgorithmSpec(MaskablePPO, CellMaskablePolicy, True, True, "ppo_mask"),
    "ppo": AlgorithmSpec(PPO, SaliencyMultiInputPolicy, False, True, "ppo"),
    "a2c": AlgorithmSpec(A2C, SaliencyMultiInputPolicy, False, True, "a2c"),
    "recurrent_ppo": AlgorithmSpec(RecurrentPPO, SaliencyLstmPolicy, False, True, "ppo_lstm"),
    "dqn": AlgorithmSpec(DQN, SaliencyDQNPolicy, False, False, "dqn"),
}

#: rl-zoo keys that only rl-zoo's trainer acts on (wrappers, callbacks, frame stacking).
ZOO_ONLY_KEYS = ("env_wrapper", "vec_env_wrapper", "frame_stack", "callback", "monitor_kwargs")


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


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"hyperparameter file not found: {path}")
    with open(path) as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map environment ids (or 'default') to hyperparameters")
    return data


def _block(data: dict[str, Any], env_id: str, algo: str, path: Path) -> dict[str, Any]:
    """The hyperparameters ``data`` gives ``algo`` on ``env_id``.

    rl-zoo's form: the id's block, else ``default``'s (as rl-zoo reads it). Our older nested form
    (``<id or default>: {<algo>: {...}}``): ``default``'s entry for ``algo`` with the id's on top.
    """
    nested = any(isinstance(v, dict) and set(v) & set(ALGORITHMS) for v in data.values())
    sections = ("default", env_id) if nested else ((env_id,) if env_id in data else ("default",))
    params: dict[str, Any] = {}
    for section in sections:
        entry = data.get(section)
        if nested and entry is not None:
            entry = entry.get(algo) if isinstance(entry, dict) else entry
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: the entry {section!r} must be a mapping of hyperparameters")
        params = _merge(params, entry)
    return params


def load_hyperparameters(env_id: str, algo: str, config: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Hyperparameters for ``algo`` on ``env_id``: the shipped rl-zoo file's block for the id (or
    its ``default``), with the matching block of ``config`` (another YAML file, rl-zoo's form or
    our nested one) layered on top key by key.

    Raises ``ValueError`` when ``policy`` names another class than the algorithm's, when
    ``normalize`` is on (our environments' observations are already in [0, 1]) or when a key only
    rl-zoo's trainer acts on is present.
    """
    spec = algorithm_spec(algo)
    layers = [spec.config_file] + ([Path(config)] if config is not None else [])
    params: dict[str, Any] = {}
    for path in layers:
        params = _merge(params, _block(_read_yaml(path), env_id, algo, path))
    policy = params.get("policy")
    if policy is not None and policy != class_path(spec.policy_class):
        raise ValueError(f"policy {policy!r} does not fit {algo}: saliency-gym trains it with {class_path(spec.policy_class)}")
    if params.get("normalize"):
        raise ValueError("normalize must be false: observations are already in [0, 1] and rewards are AUC increments")
    unsupported = sorted(set(params) & set(ZOO_ONLY_KEYS))
    if unsupported:
        raise ValueError(f"{unsupported} only act in rl-zoo's trainer (python -m rl_zoo3.train); saliency-gym train does not support them")
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
    """``(n_envs, env_kwargs, algorithm kwargs with resolved policy_kwargs)``.

    rl-zoo's bookkeeping keys (``n_timesteps``, ``policy``, ``normalize``) are not algorithm
    arguments and are dropped: the policy class is the algorithm's own.
    """
    params = copy.deepcopy(params)
    n_envs = int(params.pop("n_envs", 8))
    env_kwargs = params.pop("env_kwargs", {}) or {}
    for key in ("n_timesteps", "policy", "normalize"):
        params.pop(key, None)
    params["policy_kwargs"] = resolve_policy_kwargs(params.get("policy_kwargs"))
    return n_envs, env_kwargs, params
