"""Gymnasium environments (registered on ``import saliency_gym``).

- ``saliency_gym/SaliencyReveal-v0`` / ``SaliencyMask-v0`` (+ ``-Shapes-v0``, ``-Digits-v0`` presets):
  saliency search by insertion / deletion (RExL), with native vector versions for ``gym.make_vec``
  and an SB3 ``VecEnv`` adapter (:class:`~saliency_gym.envs.sb3.SB3VecEnv`, formerly
  ``SaliencySB3VecEnv``).
- ``saliency_gym/AttributionAttack-v0`` (+ ``-Shapes-v0``, ``-ShapesRobust-v0``, ``-Digits-v0``,
  ``-Shapes64-v0``): perturb an image within an L-infinity ball, keeping its label, to shift its
  attribution map (LENS); same vector env and adapter.

Layout: each family is a configuration (``config`` / ``attack_config``, on the shared
``common_config``), a batched engine (``core`` / ``attack_core``, implementing
:class:`~saliency_gym.envs.engine.BatchedEngine`) and a thin module of spaces, action check and
documented environment classes (``saliency`` / ``attack``) over the shared single and vector
skeletons (``base``, ``vector_base``).
"""

from typing import Any

from saliency_gym.envs.attack import AttributionAttackEnv, AttributionAttackVectorEnv
from saliency_gym.envs.attack_config import AttackOptions, AttributionAttackConfig
from saliency_gym.envs.base import BatchedEngineEnv, EnvFamily
from saliency_gym.envs.config import SaliencySearchConfig, SaliencySearchOptions, default_config
from saliency_gym.envs.engine import BatchedEngine, StepOutcome
from saliency_gym.envs.reference import normalized_score, reference_scores
from saliency_gym.envs.registration import register_envs
from saliency_gym.envs.saliency import (
    SaliencyMaskEnv,
    SaliencyMaskVectorEnv,
    SaliencyRevealEnv,
    SaliencyRevealVectorEnv,
)
from saliency_gym.envs.vector_base import BatchedVectorEnv

__all__ = [
    "AttackOptions",
    "AttributionAttackConfig",
    "AttributionAttackEnv",
    "AttributionAttackVectorEnv",
    "BatchedEngine",
    "BatchedEngineEnv",
    "BatchedVectorEnv",
    "EnvFamily",
    "SB3VecEnv",
    "SaliencyMaskEnv",
    "SaliencyMaskVectorEnv",
    "SaliencyRevealEnv",
    "SaliencyRevealVectorEnv",
    "SaliencySB3VecEnv",
    "SaliencySearchConfig",
    "SaliencySearchOptions",
    "StepOutcome",
    "default_config",
    "normalized_score",
    "reference_scores",
    "register_envs",
]


def __getattr__(name: str) -> Any:
    """The SB3 adapter, imported on first use (Stable-Baselines3 is heavy to import)."""
    if name in ("SB3VecEnv", "SaliencySB3VecEnv"):
        from saliency_gym.envs import sb3

        return getattr(sb3, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
