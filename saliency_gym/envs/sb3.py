"""Stable-Baselines3 ``VecEnv`` adapter for the native vector environments.

SB3 expects same-step resets with the last observation of a finished episode in
``info["terminal_observation"]``; :class:`SB3VecEnv` provides that over any saliency-gym
native vector environment (:class:`~saliency_gym.envs.saliency.SaliencySearchVectorEnv`,
:class:`~saliency_gym.envs.attack.AttributionAttackVectorEnv`) in ``SAME_STEP`` mode, so PPO and
MaskablePPO train with one batched classifier query per step. The per-environment ``info``
dictionaries hold every key the vector env reports for that sub-environment (its ``_key`` mask
set). ``env_method("action_masks")`` is what sb3-contrib's ``get_action_masks`` calls (for the
environments that have action masks). ``SaliencySB3VecEnv`` is the former name of
:class:`SB3VecEnv`, kept as an alias.

The sub-environments of the adapter share one vector environment: ``get_attr`` returns its
attribute once per requested index, ``set_attr`` sets it for all sub-environments (``indices``
naming only some of them is a ``ValueError``), and ``env_method`` calls the shared method once per
requested index (``action_masks`` returns the rows of the requested indices).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from saliency_gym.envs.vector_base import BatchedVectorEnv

__all__ = ["SB3VecEnv", "SaliencySB3VecEnv"]

_SKIPPED_INFO_KEYS = ("final_obs", "final_info")


def _plain(value: Any) -> Any:
    """NumPy scalars to Python scalars (arrays and objects are kept as they are)."""
    return value.item() if isinstance(value, np.generic) else value


class SB3VecEnv(VecEnv):
    """SB3 view of a saliency-gym native vector environment (any family).

    Args:
        env_id: a registered id (``"saliency_gym/SaliencyReveal-Shapes-v0"``); its ``kwargs`` and
            ``**kwargs`` configure the environment.
        num_envs: episodes stepped together.
        **kwargs: environment arguments (see the environment docstrings).
    """

    def __init__(self, env_id: str, num_envs: int = 8, **kwargs: Any) -> None:
        spec = gym.spec(env_id)
        if spec.vector_entry_point is None or not str(spec.id).startswith("saliency_gym/"):
            raise ValueError(f"{env_id!r} is not a saliency-gym environment with a native vector version")
        venv = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
        self.venv: BatchedVectorEnv[Any, Any] = cast(BatchedVectorEnv[Any, Any], venv.unwrapped)
        self.env_id = env_id
        self.render_mode = self.venv.render_mode
        super().__init__(num_envs, self.venv.single_observation_space, self.venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        if any(s is not None for s in self._seeds):
            seed: list[int | None] | None = list(self._seeds)
        else:
            seed = None
        options = self._options[0] if self._options and self._options[0] else None
        obs, _ = self.venv.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        shape = self.action_space.shape or ()
        self._actions = np.asarray(actions).reshape((self.num_envs, *shape))

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        done = terminated | truncated
        # Per key once, not per sub-environment: 1-D numeric arrays become Python lists in one call.
        columns: list[tuple[str, Any, Any]] = []
        for key, value in infos.items():
            if key.startswith("_") or key in _SKIPPED_INFO_KEYS:
                continue
            mask = infos.get(f"_{key}")
            if isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype != object:
                value = value.tolist()
            columns.append((key, value, None if mask is None else mask.tolist()))
        truncated_only = (truncated & ~terminated).tolist()
        out_infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            info: dict[str, Any] = {
                key: value[i] if isinstance(value, list) else _plain(value[i])
                for key, value, mask in columns
                if mask is None or mask[i]
            }
            info["TimeLimit.truncated"] = truncated_only[i]
            if done[i]:
                info["terminal_observation"] = infos["final_obs"][i]
            out_infos.append(info)
        return obs, rewards.astype(np.float32), done, out_infos

    def close(self) -> None:
        self.venv.close()

    def action_masks(self) -> np.ndarray:
        """``(num_envs, n_actions)`` booleans (environments with action masks only)."""
        masks: np.ndarray = getattr(self.venv, "action_masks")()  # noqa: B009 - not every family has them
        return masks

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render() if self.venv.render_mode == "rgb_array" else None
        return list(frames) if frames is not None else [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The shared vector environment's attribute, once per requested index."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the attribute of the shared vector environment: for every sub-environment at once."""
        requested = sorted(set(self._get_indices(indices)))
        if requested != list(range(self.num_envs)):
            raise ValueError(
                f"set_attr({attr_name!r}) with indices {requested}: the {self.num_envs} sub-environments share one "
                "vector environment, so an attribute can only be set for all of them (indices=None)"
            )
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        idx = list(self._get_indices(indices))
        if method_name == "action_masks":
            masks = self.action_masks()
            return [masks[i] for i in idx]
        method = getattr(self.venv, method_name)
        return [method(*method_args, **method_kwargs) for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


#: The former name of :class:`SB3VecEnv`.
SaliencySB3VecEnv = SB3VecEnv
