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

Every file is checked before anything is built (:func:`check_config_keys`,
:func:`check_hyperparameters`): a top-level key must be ``default`` or an environment id, a key in
a block must not be one the trainer sets itself (``seed``, ``device``), and a value must have the
type the algorithm's signature gives it (``learning_rate: "fast"`` is a
``ValueError`` naming the key, the value and the type, not SB3's ``AssertionError`` mid-setup).

"Act" means :class:`~saliency_gym.agents.policies.AgentPolicy`, which every explanation and
evaluation goes through, so no algorithm ever picks a used cell when it explains.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
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
#: rl-zoo's bookkeeping keys of a block (not algorithm arguments) and the types they take.
BOOKKEEPING_KEYS: dict[str, Any] = {
    "n_timesteps": int | float, "policy": str, "normalize": bool, "n_envs": int,
    "env_kwargs": dict[str, Any] | None, "policy_kwargs": dict[str, Any] | None,
}  # fmt: skip
#: Algorithm arguments saliency-gym train sets itself (from its own options), never from YAML.
SET_BY_TRAINER = {"policy": "--algo", "env": "--env", "seed": "--seed", "device": "--device",
                  "verbose": "(always 0)", "tensorboard_log": "--out (<out>/tb)", "_init_setup_model": "(always on)"}  # fmt: skip
#: What a top-level key of a config file that is an environment id looks like (``ns/Name-v0``).
_ENV_ID = re.compile(r"^(?:[\w.-]+/)?[\w.:-]+-v\d+$")


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


@functools.cache
def algorithm_arguments(algo: str) -> dict[str, Any]:
    """The keyword arguments of ``algo``'s class and their types (from its signature)."""
    cls = algorithm_spec(algo).cls
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: check names only
        hints = {}
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = inspect.signature(cls.__init__).parameters.items()
    return {name: hints.get(name, Any) for name, p in parameters if name != "self" and p.kind in keyword}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a YAML value has type ``hint`` (numbers, strings, booleans, mappings, lists, ``None``
    and unions of them; anything YAML cannot write, such as a callable or a class, never fits)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None) or hint is None:
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is dict or origin is dict or origin is Mapping:
        return isinstance(value, dict)
    if hint is list or origin is list:
        return isinstance(value, list)
    if hint is tuple or origin is tuple:
        return isinstance(value, tuple)
    return False


def _describe(hint: Any) -> str:
    """``hint`` in words, leaving out what YAML cannot write (callables, classes)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        words = [w for w in (_describe(arm) for arm in typing.get_args(hint)) if w]
        return " or ".join(dict.fromkeys(words))
    named = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in named:
        return named[hint]
    if hint is dict or origin in (dict, Mapping):
        return "a mapping"
    if hint is list or origin is list:
        return "a list"
    if hint is tuple or origin is tuple:
        return "a tuple"
    return ""


def check_hyperparameters(block: Mapping[str, Any], algo: str, where: str) -> None:
    """Check the keys and value types of one block of hyperparameters for ``algo`` (``where``
    names the file and the block in the error).

    Raises ``ValueError`` for an argument ``saliency-gym train`` sets itself (``seed``,
    ``device``, ...) and for a value of the wrong type (naming the key, the value and what it must
    be; a number YAML read as text, ``3e-4``, gets a hint). A key that is not an argument of
    ``algo`` is left to the algorithm's constructor (a ``TypeError`` naming it; a block may serve
    several algorithms).
    """
    arguments = algorithm_arguments(algo)
    for key, value in block.items():
        if key in ZOO_ONLY_KEYS:
            continue  # refused after merging, with its own message
        if key in SET_BY_TRAINER and key not in BOOKKEEPING_KEYS:
            raise ValueError(f"{where}: {key!r} is set by saliency-gym train ({SET_BY_TRAINER[key]}), not by the config")
        if key not in BOOKKEEPING_KEYS and key not in arguments:
            continue  # not an argument of this algorithm: its constructor refuses it, naming it
        hint = BOOKKEEPING_KEYS[key] if key in BOOKKEEPING_KEYS else arguments[key]
        if not _fits(value, hint):
            expected = _describe(hint) or "another type"
            kind = type(value).__name__
            article = "an" if kind[0] in "aeiou" else "a"
            hint_text = ""
            if isinstance(value, str) and _fits(1.0, hint):
                try:
                    float(value)
                    hint_text = f" (YAML reads {value} as text; write {float(value)!r})"
                except ValueError:
                    pass
            raise ValueError(
                f"{where}: hyperparameter {key} = {value!r} is {article} {kind}; {algo} expects {expected}{hint_text}"
            )


def _is_section(key: Any) -> bool:
    """Whether a top-level key of a config file names a section: ``default`` or an environment id."""
    return key == "default" or (isinstance(key, str) and (key in gym.registry or bool(_ENV_ID.match(key))))


def check_config_keys(data: Mapping[str, Any], path: Path) -> None:
    """Refuse a top-level key that is neither ``default`` nor an environment id (a hyperparameter
    put at the top level would otherwise be ignored silently), and, in the nested form, a key of a
    section that is not an algorithm name (``ValueError`` naming the key and where it belongs)."""
    for key, entry in data.items():
        if not _is_section(key):
            known = key in BOOKKEEPING_KEYS or any(key in algorithm_arguments(a) for a in ALGORITHMS)
            what = "a hyperparameter: put it" if known else "neither an environment id nor 'default': put hyperparameters"
            raise ValueError(
                f"{path}: top-level key {key!r} is {what} under 'default:' (every environment) or under an "
                "environment id, e.g. 'saliency_gym/SaliencyReveal-Shapes-v0:'"
            )
        if entry is not None and not isinstance(entry, dict):
            raise ValueError(f"{path}: the entry {key!r} must be a mapping of hyperparameters")
    if _is_nested(data):
        for key, entry in data.items():
            stray = sorted(set(entry or {}) - set(ALGORITHMS))
            if stray:
                raise ValueError(
                    f"{path}: {key!r} maps algorithms ({sorted(set(entry) & set(ALGORITHMS))}) and also holds {stray}; "
                    f"in this form every key under {key!r} is an algorithm name ({sorted(ALGORITHMS)})"
                )


def _is_nested(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is our older nested form (``<id or default>: {<algo>: {...}}``)."""
    return any(isinstance(v, dict) and set(v) & set(ALGORITHMS) for v in data.values())


def _block(data: dict[str, Any], env_id: str, algo: str, path: Path) -> dict[str, Any]:
    """The hyperparameters ``data`` gives ``algo`` on ``env_id``.

    rl-zoo's form: the id's block, else ``default``'s (as rl-zoo reads it). Our older nested form
    (``<id or default>: {<algo>: {...}}``): ``default``'s entry for ``algo`` with the id's on top.
    """
    nested = _is_nested(data)
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
        where = f"{path} [{section}{f' / {algo}' if nested else ''}]"
        check_hyperparameters(entry, algo, where)
        params = _merge(params, entry)
    return params


def load_hyperparameters(env_id: str, algo: str, config: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Hyperparameters for ``algo`` on ``env_id``: the shipped rl-zoo file's block for the id (or
    its ``default``), with the matching block of ``config`` (another YAML file, rl-zoo's form or
    our nested one) layered on top key by key.

    Raises ``ValueError`` for a key or a value type the algorithm does not take
    (:func:`check_config_keys`, :func:`check_hyperparameters`), when ``policy`` names another
    class than the algorithm's, when ``normalize`` is on (our environments' observations are already in [0, 1]) or when a key only
    rl-zoo's trainer acts on is present.
    """
    spec = algorithm_spec(algo)
    layers = [spec.config_file] + ([Path(config)] if config is not None else [])
    params: dict[str, Any] = {}
    for path in layers:
        data = _read_yaml(path)
        check_config_keys(data, path)
        params = _merge(params, _block(data, env_id, algo, path))
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
