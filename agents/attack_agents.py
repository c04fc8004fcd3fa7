"""Trained attribution-attack agents (shipped or your own runs), opened weights-only, as attacks.

An attack agent is an SB3 policy trained by ``saliency-gym train`` on a
``saliency_gym/AttributionAttack-*`` environment (the ``attack`` blocks of
``agents/configs/ppo_mask.yml``). :func:`load_attack_agent` rebuilds it from its checkpoint (a
``.pt``/``.zip`` file, a run folder, or the name of a shipped one:
``saliency_gym/agents/pretrained/attacks/<dataset>_<explainer>.zip``) and returns an
:class:`AttackAgent`, whose :meth:`~AttackAgent.attack` perturbs any batch of images with the
environment settings the agent was trained with (through
:func:`~saliency_gym.agents.attack_rollout.policy_attack`), so it is scored exactly as the
classical attacks are. Nothing is unpickled: as for the saliency agents, only the JSON metadata and
the weights are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.policies import BasePolicy

from saliency_gym.agents.agent_checkpoints import agent_env, build_policy, load_agent_payload
from saliency_gym.agents.attack_rollout import policy_attack
from saliency_gym.baselines.attacks import AttackResult
from saliency_gym.checkpoint import resolve_checkpoint
from saliency_gym.explainers import Explainer

ATTACK_PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained" / "attacks"
#: Environment arguments a stored agent does not carry over to an attack on other images.
_PER_ATTACK = ("classifier", "data", "split", "image", "label", "explainer", "explainer_options", "epsilon", "device", "render_mode")
DEFAULT_EPSILON = 8 / 255


def shipped_attack_agents() -> list[str]:
    """Names of the shipped attack agents (``<dataset>_<explainer>``)."""
    return sorted(p.stem for p in ATTACK_PRETRAINED_DIR.glob("*.zip"))


def resolve_attack_agent(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint of a shipped attack agent's name, of a file, or of a run folder (its
    ``final.zip``, else ``final.pt``)."""
    if isinstance(name_or_path, (str, os.PathLike)) and Path(name_or_path).is_dir():
        for candidate in ("final.zip", "final.pt"):
            if (Path(name_or_path) / candidate).is_file():
                return Path(name_or_path) / candidate
        raise FileNotFoundError(f"{name_or_path} holds no final.zip or final.pt: is the training finished?")
    shipped = {p.stem: p for p in ATTACK_PRETRAINED_DIR.glob("*.zip")}
    return resolve_checkpoint(name_or_path, shipped, "attack agent")


@dataclass
class AttackAgent:
    """A trained attack policy with the settings it was trained with."""

    policy: BasePolicy
    """The SB3 policy (``predict(observations, deterministic)``)."""
    env_id: str
    env_kwargs: dict[str, Any]
    """The training environment's arguments (explainer, grid, step size, budget, ...)."""
    meta: dict[str, Any]
    """What the checkpoint records: the classifier and data it trained on, training seconds, ..."""
    path: Path

    @property
    def name(self) -> str:
        return self.path.parent.name if self.path.stem == "final" else self.path.stem

    @property
    def explainer(self) -> str:
        """The name of the explainer it was trained against."""
        return str(self.env_kwargs.get("explainer", "gradient"))

    @property
    def trained_epsilon(self) -> float:
        return float(self.env_kwargs.get("epsilon", DEFAULT_EPSILON))

    def predict(self, observation: Any, deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """SB3's ``predict``: actions for (batched) observations of the attack environment."""
        return self.policy.predict(observation, deterministic=deterministic)

    def episode_kwargs(self, epsilon: float) -> dict[str, Any]:
        """The environment arguments of an attack at ``epsilon``: the training ones, with the step
        size scaled by ``epsilon / trained_epsilon`` (the policy observes the perturbation's sign,
        so its steps keep their meaning at every radius)."""
        kwargs = {key: value for key, value in self.env_kwargs.items() if key not in _PER_ATTACK}
        if kwargs.get("step_size") is not None:
            kwargs["step_size"] = float(kwargs["step_size"]) * epsilon / self.trained_epsilon
        return kwargs

    def attack(self, explainer: Explainer, images: Any, epsilon: float, **options: Any) -> AttackResult:
        """Attack ``images`` (``(N, C, H, W)`` in [0, 1]) against ``explainer`` within ``epsilon``;
        ``options`` go to :func:`~saliency_gym.agents.attack_rollout.policy_attack`
        (``selection``, ``deterministic``, ``name``) or override environment arguments
        (``env_kwargs``)."""
        env_kwargs = {**self.episode_kwargs(epsilon), **options.pop("env_kwargs", {})}
        options.setdefault("name", "agent")
        return policy_attack(self, explainer, images, epsilon, env_kwargs=env_kwargs, **options)


def load_attack_agent(name_or_path: str | os.PathLike[str], device: str = "cpu") -> AttackAgent:
    """Open a trained attack agent (a shipped name, a ``.pt``/``.zip`` file or a run folder).

    ``ValueError`` when the checkpoint is not an attribution-attack agent.
    """
    path = resolve_attack_agent(name_or_path)
    payload = load_agent_payload(path)
    env_id = str(payload["env_id"])
    if not env_id.startswith("saliency_gym/AttributionAttack"):
        raise ValueError(f"{path} is an agent of {env_id}, not of an attribution-attack environment")
    env = agent_env(payload)
    try:
        policy = build_policy(payload, env.observation_space, env.action_space, device=device)
    finally:
        env.close()
    return AttackAgent(policy, env_id, dict(payload["env_kwargs"]), dict(payload.get("meta") or {}), path)
