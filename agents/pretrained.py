"""Loading trained agents (shipped or your own) as policies and explainers.

Shipped agents live in ``saliency_gym/agents/pretrained/<name>.pt`` (or ``<name>.zip``) and were
produced by ``saliency-gym train`` (see the README for the exact commands); they are weights-only
checkpoints, rebuilt from their hyperparameters.

Every function here also takes the path of an SB3 ``.zip`` agent written by saliency-gym
(``final.zip`` of a training run, or :func:`~saliency_gym.agents.agent_checkpoints.convert_to_zip`):
only its JSON metadata and its ``policy.pth`` weights are read (``weights_only``), never SB3's
pickled ``data`` member, so loading an agent here runs no code from the file. ``MaskablePPO.load``
opens the same file with SB3's own (pickle-based) loader: for trusted files only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from saliency_gym.agents.policies import AgentPolicy
from saliency_gym.agents.policy_explainer import PolicyExplainer, open_agent
from saliency_gym.checkpoint import resolve_checkpoint
from saliency_gym.classifier import FrozenClassifier

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def shipped_agents() -> list[str]:
    """Names of the agents shipped inside the package (``.pt`` or ``.zip``)."""
    return sorted(_shipped_files())


def _shipped_files() -> dict[str, Path]:
    """Shipped name -> file; a ``.pt`` wins over a ``.zip`` of the same name."""
    files = {p.stem: p for p in PRETRAINED_DIR.glob("*.zip")}
    files.update({p.stem: p for p in PRETRAINED_DIR.glob("*.pt")})
    return files


def resolve_agent_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The checkpoint file (``.pt`` or ``.zip``) of a shipped agent's name or of a path (errors
    name the shipped ones)."""
    return resolve_checkpoint(name_or_path, _shipped_files(), "agent")


def load_agent_policy(name_or_path: str | os.PathLike[str], device: str = "cpu") -> tuple[AgentPolicy, dict[str, Any]]:
    """An :class:`AgentPolicy` and the checkpoint's payload (minus weights), from a shipped name, a
    ``.pt`` / ``.zip`` agent file or a run folder (see the module docstring: nothing is unpickled).
    An agent trained on your own model rebuilds it from its metadata (see
    :func:`~saliency_gym.agents.policy_explainer.open_agent`)."""
    return open_agent(name_or_path, device=device)


def agent_explainer(
    name_or_path: str | os.PathLike[str],
    classifier: FrozenClassifier | None = None,
    *,
    scoring: str = "order",
    device: str = "cpu",
) -> PolicyExplainer:
    """A :class:`PolicyExplainer` that rolls out a trained agent with its training settings
    (mode, grid, substrate, observations); ``classifier`` defaults to the agent's own."""
    policy, info = open_agent(name_or_path, classifier, device=device)
    config = info["config"]
    return PolicyExplainer(
        classifier or config.classifier, policy, mode=config.mode, grid=config.grid.shape,
        substrate=config.substrate, scoring=scoring, observe_score=config.observe_score, name=policy.name,
        feature_layer=config.feature_layer_name,
    )  # fmt: skip
