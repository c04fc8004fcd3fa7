"""The one single-environment skeleton of every family, over a batched engine with ``n = 1``.

A family is an :class:`EnvFamily`: how to build its configuration from the keyword arguments, its
engine (:class:`~saliency_gym.envs.engine.BatchedEngine`), its spaces and its action checker.
:class:`BatchedEngineEnv` is the Gymnasium environment of any family (render-mode check, seeding,
reset, step with action checks, observations, infos, rendering), and
:class:`~saliency_gym.envs.vector_base.BatchedVectorEnv` its native vector version; the family
modules only name their family and document their environments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from saliency_gym.envs.engine import BatchedEngine
from saliency_gym.envs.render import HumanViewer
from saliency_gym.types import InfoDict, ObsDict

ConfigT = TypeVar("ConfigT")
EngineT = TypeVar("EngineT", bound=BatchedEngine[Any])

#: The render modes every saliency-gym environment supports: ``"rgb_array"`` (labelled frames as
#: arrays) and ``"human"`` (the frame in a matplotlib window; needs a GUI backend, checked at
#: ``render()`` time so environment checkers can still build the environment).
RENDER_MODES = ["rgb_array", "human"]


@dataclass(frozen=True)
class EnvFamily(Generic[ConfigT, EngineT]):
    """What a family of environments supplies to the shared single and vector skeletons.

    Attributes:
        make_config: keyword arguments -> validated configuration (unknown keys: ``TypeError``).
        make_engine: ``(config, n)`` -> the engine of ``n`` episodes.
        build_spaces: configuration -> single-environment ``(observation_space, action_space)``.
        check_actions: ``(actions, n, config)`` -> the checked ``(n, ...)`` actions, or ``ValueError``.
    """

    make_config: Callable[..., ConfigT]
    make_engine: Callable[[ConfigT, int], EngineT]
    build_spaces: Callable[[ConfigT], tuple[spaces.Dict, spaces.Space[Any]]]
    check_actions: Callable[[Any, int, ConfigT], np.ndarray]


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if supported (``"rgb_array"``, ``"human"`` or ``None``), else ``ValueError``."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode={render_mode!r} is not supported; choose {RENDER_MODES} or None")
    return render_mode


class BatchedEngineEnv(gym.Env[dict[str, Any], Any], Generic[ConfigT, EngineT]):
    """One episode at a time of a family's engine (``n = 1``); subclasses set :attr:`family`.

    ``reset(seed=...)`` seeds the episode generator the engine draws images with, so a single
    environment reset with seed ``s`` plays the episodes of sub-environment ``i`` of a vector
    environment reset with ``s - i``. ``step`` after an episode ended raises ``RuntimeError``.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}
    family: ClassVar[EnvFamily[Any, Any]]

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.render_mode = check_render_mode(render_mode)
        self.config: ConfigT = self.family.make_config(**kwargs)
        self.core: EngineT = self.family.make_engine(self.config, 1)
        self.observation_space, self.action_space = self.family.build_spaces(self.config)
        self._needs_reset = True
        self._viewer: HumanViewer | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[ObsDict, InfoDict]:
        super().reset(seed=seed)
        self.core.rngs[0] = self.np_random
        self.core.advance(None, np.zeros(1, bool), np.ones(1, bool), options=options)
        self._needs_reset = False
        return self._obs(), self.core.episode_info(0, final=False)

    def step(self, action: Any) -> tuple[ObsDict, float, bool, bool, InfoDict]:
        if self._needs_reset:
            raise RuntimeError("the episode has ended (or never started): call reset() before step()")
        actions = self.family.check_actions(self._batch_of_one(action), 1, self.config)
        outcome = self.core.advance(actions, np.ones(1, bool), np.zeros(1, bool))
        terminated, truncated = bool(outcome.terminated[0]), bool(outcome.truncated[0])
        self._needs_reset = terminated or truncated
        info = self.core.episode_info(0, final=self._needs_reset)
        info.update(outcome.step_info(0))
        return self._obs(), float(outcome.rewards[0]), terminated, truncated, info

    def _batch_of_one(self, action: Any) -> np.ndarray:
        """The action as a batch of one: an action id becomes ``(1,)``, an array gains a batch axis."""
        arr = np.asarray(action)
        if isinstance(self.action_space, spaces.Discrete):
            return np.reshape(arr, (-1,))
        return arr[None]

    def _obs(self) -> ObsDict:
        return {key: value[0] for key, value in self.core.observation().items()}

    def render(self) -> np.ndarray | None:  # type: ignore[override,unused-ignore]  # gymnasium<1.3 types it RenderFrame
        """The labelled frame (``"rgb_array"``), or ``None`` after drawing it in a window (``"human"``,
        ``RuntimeError`` without a matplotlib GUI backend) or when there is no render mode."""
        if self.render_mode is None:
            return None
        frame = self.core.render_frame(0)
        if self.render_mode == "human":
            if self._viewer is None:
                self._viewer = HumanViewer(type(self).__name__)
            self._viewer.show(frame, fps=float(self.metadata.get("render_fps", 4)))
            return None
        return frame

    def close(self) -> None:
        viewer = getattr(self, "_viewer", None)
        if viewer is not None:
            viewer.close()
            self._viewer = None
        super().close()
