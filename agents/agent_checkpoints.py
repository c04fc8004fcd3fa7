"""Agent checkpoints as weights-only dictionaries (never pickled objects).

SB3's ``.zip`` format cloudpickles parts of the model (schedules, spaces), which executes code on
load. Our agent checkpoints hold only tensors and primitive values (the algorithm name, the YAML
hyperparameters, the environment id and arguments, the policy and optimiser state dicts and the
step count), are written atomically and read with ``torch.load(weights_only=True)``; the policy is
rebuilt from the hyperparameters and the environment's spaces.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from saliency_gym.agents.algorithms import algorithm_spec, split_hyperparameters
from saliency_gym.checkpoint import CheckpointError, atomic_save, safe_load
from saliency_gym.runs import atomic_copy

AGENT_FORMAT = "saliency_gym.agent/v1"
_REQUIRED = ("algo", "env_id", "env_kwargs", "hyperparameters", "policy_state", "num_timesteps")


def save_agent(
    model: BaseAlgorithm,
    path: str | os.PathLike[str],
    *,
    algo: str,
    env_id: str,
    env_kwargs: dict[str, Any],
    hyperparameters: dict[str, Any],
    seed: int,
    meta: dict[str, Any] | None = None,
    with_optimizer: bool = True,
) -> Path:
    """Write ``model`` atomically; ``with_optimizer=False`` keeps shipped agents small."""
    policy_state = {k: v.detach().cpu() for k, v in model.policy.state_dict().items()}
    payload: dict[str, Any] = {
        "format": AGENT_FORMAT,
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs),
        "hyperparameters": hyperparameters,
        "policy_state": policy_state,
        "num_timesteps": int(model.num_timesteps),
        "seed": int(seed),
        "meta": dict(meta or {}),
    }
    if with_optimizer:
        payload["optimizer_state"] = model.policy.optimizer.state_dict()
    return atomic_save(payload, path)


def save_step_checkpoint(model: BaseAlgorithm, folder: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``<folder>/last.pt`` atomically, then ``<folder>/step_<n>.pt`` (``n``: the model's step
    count) as an atomic copy of the same bytes. ``last.pt`` is always whole, and written first, so
    a process killed between the two writes never leaves a step file newer than ``last.pt`` (the
    file ``--resume`` reads). ``kwargs`` go to :func:`save_agent`; returns the step file."""
    folder = Path(folder)
    last = save_agent(model, folder / "last.pt", **kwargs)
    return atomic_copy(last, folder / f"step_{int(model.num_timesteps)}.pt")


def load_agent_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint dictionary (weights-only load, format and keys checked)."""
    payload = safe_load(path, expected_format=AGENT_FORMAT, required_keys=_REQUIRED)
    algorithm_spec(payload["algo"])
    return payload


def agent_env(payload: dict[str, Any], **overrides: Any) -> gym.Env:
    """A single environment configured as the agent's training environment."""
    return gym.make(payload["env_id"], **{**payload["env_kwargs"], **overrides})


def build_policy(payload: dict[str, Any], observation_space: gym.Space, action_space: gym.Space, device: str = "cpu") -> BasePolicy:
    """Rebuild the SB3 policy of a checkpoint from its hyperparameters and load its weights."""
    spec = algorithm_spec(payload["algo"])
    _, _, kwargs = split_hyperparameters(payload["hyperparameters"])
    policy = spec.policy_class(observation_space, action_space, lambda _: 0.0, **kwargs["policy_kwargs"])
    try:
        policy.load_state_dict(payload["policy_state"])
    except RuntimeError as exc:
        raise CheckpointError(f"agent weights do not fit the {payload['algo']} policy: {exc}") from exc
    return policy.to(device).eval()


def restore_model(payload: dict[str, Any], model: BaseAlgorithm) -> BaseAlgorithm:
    """Load a checkpoint's weights, optimiser state and step count into a freshly built model."""
    try:
        model.policy.load_state_dict(payload["policy_state"])
        if "optimizer_state" in payload:
            model.policy.optimizer.load_state_dict(payload["optimizer_state"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint does not fit the {payload['algo']} model: {exc}") from exc
    model.num_timesteps = int(payload["num_timesteps"])
    return model
