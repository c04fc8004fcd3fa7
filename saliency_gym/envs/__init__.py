"""Gymnasium environments (registered on ``import saliency_gym``).

- ``saliency_gym/SaliencyReveal-v0`` / ``SaliencyMask-v0`` (+ ``-Shapes-v0``, ``-Digits-v0`` presets):
  saliency search by insertion / deletion (RExL), with native vector versions for ``gym.make_vec``
  and an SB3 ``VecEnv`` adapter (:class:`~saliency_gym.envs.sb3.SaliencySB3VecEnv`).
"""

from saliency_gym.envs.config import SaliencySearchConfig, default_config
from saliency_gym.envs.registration import register_envs
from saliency_gym.envs.saliency import (
    SaliencyMaskEnv,
    SaliencyMaskVectorEnv,
    SaliencyRevealEnv,
    SaliencyRevealVectorEnv,
)

__all__ = [
    "SaliencyMaskEnv",
    "SaliencyMaskVectorEnv",
    "SaliencyRevealEnv",
    "SaliencyRevealVectorEnv",
    "SaliencySearchConfig",
    "default_config",
    "register_envs",
]
