"""Gymnasium environments (registered on ``import saliency_gym``).

- ``saliency_gym/SaliencyReveal-v0`` / ``SaliencyMask-v0`` (+ ``-Shapes-v0``, ``-Digits-v0`` presets):
  saliency search by insertion / deletion (RExL), with native vector versions for ``gym.make_vec``
  and an SB3 ``VecEnv`` adapter (:class:`~saliency_gym.envs.sb3.SaliencySB3VecEnv`).
- ``saliency_gym/AttributionAttack-v0`` (+ ``-Shapes-v0``, ``-ShapesRobust-v0``, ``-Digits-v0``,
  ``-Shapes64-v0``): perturb an image within an L-infinity ball, keeping its label, to shift its
  attribution map (LENS); same vector env and adapter.
"""

from saliency_gym.envs.attack import AttributionAttackEnv, AttributionAttackVectorEnv
from saliency_gym.envs.attack_config import AttributionAttackConfig
from saliency_gym.envs.config import SaliencySearchConfig, default_config
from saliency_gym.envs.registration import register_envs
from saliency_gym.envs.saliency import (
    SaliencyMaskEnv,
    SaliencyMaskVectorEnv,
    SaliencyRevealEnv,
    SaliencyRevealVectorEnv,
)

__all__ = [
    "AttributionAttackConfig",
    "AttributionAttackEnv",
    "AttributionAttackVectorEnv",
    "SaliencyMaskEnv",
    "SaliencyMaskVectorEnv",
    "SaliencyRevealEnv",
    "SaliencyRevealVectorEnv",
    "SaliencySearchConfig",
    "default_config",
    "register_envs",
]
