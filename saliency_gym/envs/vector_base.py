"""What every native vector environment of saliency-gym shares: argument checks, spaces, seeding.

A native vector env here is a thin Gymnasium ``VectorEnv`` over a batched engine (``core``) that
holds one random generator per sub-environment in ``core.rngs`` and resets the sub-environments
selected by a mask in ``core.advance(None, step_mask, reset_mask, options=...)``. Subclasses
build their configuration and engine, then call :meth:`BatchedVectorEnv._setup`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space


class BatchedVectorEnv(gym.vector.VectorEnv):
    """Shared set-up and seeded reset of the batched vector environments."""

    def _setup(
        self,
        num_envs: Any,
        render_mode: str | None,
        autoreset_mode: AutoresetMode | str,
        build: Any,
    ) -> None:
        """Validate the common arguments, then ``config, core, obs_space, action_space = build(n)``."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        autoreset_mode = AutoresetMode(autoreset_mode)
        if autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be NEXT_STEP or SAME_STEP")
        if render_mode is not None and render_mode != "rgb_array":
            raise ValueError(f"render_mode={render_mode!r} is not supported; choose 'rgb_array' or None")
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": autoreset_mode}
        self.render_mode = render_mode
        self.num_envs = int(num_envs)
        self.config, self.core, self.single_observation_space, self.single_action_space = build(self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, bool)
        self._started = False

    def _reset_all(self, seed: int | list[int | None] | None, options: dict[str, Any] | None) -> np.ndarray:
        """Seed (``seed + i`` for sub-env ``i``, as Gymnasium does) and reset every sub-environment;
        returns the all-true mask of the reset sub-environments."""
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed must be an int or a list of {self.num_envs} seeds, got {len(seeds)}")
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seeds[0])
        for i, s in enumerate(seeds):
            if s is not None:
                self.core.rngs[i] = seeding.np_random(s)[0]
        all_envs = np.ones(self.num_envs, bool)
        self.core.advance(None, ~all_envs, all_envs, options=options)
        self._autoreset[:] = False
        self._started = True
        return all_envs

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("call reset() before step()")

    def _step_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """``(step_mask, reset_mask)`` of this step: in NEXT_STEP mode the episodes that ended on
        the previous step are reset now (in the same batched query), the others step."""
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            reset_mask = np.zeros(self.num_envs, bool)
        else:
            reset_mask = self._autoreset.copy()
        return ~reset_mask, reset_mask

    def _finish_step(self, done: np.ndarray, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        """The observation to return. In SAME_STEP mode, episodes that just ended are reset now
        (one more batched query) and their last observation and info go to ``infos["final_obs"]``
        and ``infos["final_info"]``, as Gymnasium's vector API prescribes."""
        obs = self.core.observation()
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP and done.any():
            infos["final_obs"] = np.array(
                [{k: v[i] for k, v in obs.items()} if done[i] else None for i in range(self.num_envs)], dtype=object
            )
            infos["_final_obs"] = done.copy()
            infos["final_info"] = {key: value for key, value in infos.items() if key not in ("final_obs", "_final_obs")}
            infos["_final_info"] = done.copy()
            self.core.advance(None, np.zeros(self.num_envs, bool), done)
            obs = self.core.observation()
        self._autoreset = done
        return obs
