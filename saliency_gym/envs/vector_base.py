"""The one native vector-environment skeleton of every family, over a batched engine.

A native vector env here is a thin Gymnasium ``VectorEnv`` over the family's engine (``core``,
:class:`~saliency_gym.envs.engine.BatchedEngine`) with ``n = num_envs``: argument checks, spaces,
seeding, reset, step with the family's action check, the vector ``info`` arrays (with their
``_key`` masks) and both autoreset modes are here; subclasses only set :attr:`family`
(:class:`~saliency_gym.envs.base.EnvFamily`).

Sub-environment ``i`` reset with ``seed + i`` plays exactly the episodes of a single environment
reset with that seed. ``autoreset_mode`` is Gymnasium's ``NEXT_STEP`` (default: the step after an
episode ends resets it, within that step's batched query) or ``SAME_STEP`` (the finished episode's
final observation is in ``info["final_obs"]`` and the reset costs one more batched query on the
steps where episodes end; the SB3 adapter uses this mode).
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from saliency_gym.envs.base import RENDER_MODES, EnvFamily, check_render_mode
from saliency_gym.envs.engine import BatchedEngine
from saliency_gym.envs.render import HumanViewer
from saliency_gym.types import EnvMask, InfoDict, ObsDict

ConfigT = TypeVar("ConfigT")
EngineT = TypeVar("EngineT", bound=BatchedEngine[Any])


class BatchedVectorEnv(gym.vector.VectorEnv[ObsDict, Any, Any], Generic[ConfigT, EngineT]):
    """``num_envs`` episodes of a family's engine, stepped with one batched query per step.

    Args:
        num_envs: number of sub-environments.
        render_mode: ``"rgb_array"`` (a tuple of frames), ``"human"`` (the frames stacked in a
            matplotlib window; needs a GUI backend) or ``None``.
        autoreset_mode: ``NEXT_STEP`` (default) or ``SAME_STEP``.
        **kwargs: the family's environment arguments.
    """

    family: ClassVar[EnvFamily[Any, Any]]

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        autoreset_mode = AutoresetMode(autoreset_mode)
        if autoreset_mode == AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode must be NEXT_STEP or SAME_STEP")
        self.metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4, "autoreset_mode": autoreset_mode}
        self.render_mode = check_render_mode(render_mode)
        self.num_envs = int(num_envs)
        self.config: ConfigT = self.family.make_config(**kwargs)
        self.core: EngineT = self.family.make_engine(self.config, self.num_envs)
        self.single_observation_space, self.single_action_space = self.family.build_spaces(self.config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._autoreset = np.zeros(self.num_envs, bool)
        self._started = False
        self._viewer: HumanViewer | None = None

    # ------------------------------------------------------------------ Gymnasium API
    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsDict, InfoDict]:
        """Seed (``seed + i`` for sub-env ``i``, as Gymnasium does) and reset every sub-environment."""
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
        return self.core.observation(), self._infos(all_envs, final=np.zeros(self.num_envs, bool))

    def step(self, actions: Any) -> tuple[ObsDict, np.ndarray, EnvMask, EnvMask, InfoDict]:
        if not self._started:
            raise RuntimeError("call reset() before step()")
        checked = self.family.check_actions(actions, self.num_envs, self.config)
        # In NEXT_STEP mode the episodes that ended on the previous step are reset now (in the same
        # batched query), the others step.
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            reset_mask = np.zeros(self.num_envs, bool)
        else:
            reset_mask = self._autoreset.copy()
        step_mask = ~reset_mask
        outcome = self.core.advance(checked, step_mask, reset_mask)
        terminated, truncated = outcome.terminated & step_mask, outcome.truncated & step_mask
        done = terminated | truncated
        infos = self._infos(step_mask, final=done)
        infos.update(outcome.step_infos())
        obs = self._finish_step(done, infos)
        return obs, outcome.rewards.copy(), terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:  # type: ignore[override,unused-ignore]  # gymnasium<1.3 types it RenderFrame
        """The labelled frames (``"rgb_array"``), or ``None`` after drawing them stacked in a window
        (``"human"``, ``RuntimeError`` without a matplotlib GUI backend) or without a render mode."""
        if self.render_mode is None:
            return None
        frames = tuple(self.core.render_frame(i) for i in range(self.num_envs))
        if self.render_mode == "human":
            if self._viewer is None:
                self._viewer = HumanViewer(type(self).__name__)
            self._viewer.show(np.concatenate(frames, axis=0), fps=float(self.metadata.get("render_fps", 4)))
            return None
        return frames

    def close_extras(self, **kwargs: Any) -> None:
        viewer = getattr(self, "_viewer", None)
        if viewer is not None:
            viewer.close()
            self._viewer = None
        super().close_extras(**kwargs)

    # ------------------------------------------------------------------ helpers
    def _infos(self, valid: EnvMask, final: EnvMask) -> InfoDict:
        """Gymnasium vector infos: arrays over sub-environments, with ``_key`` masks (``valid`` for
        the state summaries, ``final`` for what only ending episodes report)."""
        infos: InfoDict = {}
        for key, value in self.core.info_arrays().items():
            infos[key], infos[f"_{key}"] = value, valid.copy()
        if final.any():
            for key, value in self.core.final_info_arrays(final).items():
                infos[key], infos[f"_{key}"] = value, final.copy()
        return infos

    def _finish_step(self, done: EnvMask, infos: InfoDict) -> ObsDict:
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
