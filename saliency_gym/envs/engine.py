"""The batched-engine protocol every environment family implements, and what one step returns.

A family of saliency-gym environments is one *engine*: the state and transition of ``n`` episodes
held as arrays, advanced together with one batched classifier query per call. The single
environment (:class:`~saliency_gym.envs.base.BatchedEngineEnv`) is the engine with ``n = 1``, the
native vector environment (:class:`~saliency_gym.envs.vector_base.BatchedVectorEnv`) the engine
with ``n = num_envs``, so the two can never drift apart. Both drive the engine through
:class:`BatchedEngine` only:

* :meth:`BatchedEngine.advance` steps the episodes selected by ``step_mask`` and (re)starts those in
  ``reset_mask``, and returns a :class:`StepOutcome`;
* :meth:`BatchedEngine.observation` gives the batched observation;
* :meth:`BatchedEngine.info_arrays` / :meth:`BatchedEngine.final_info_arrays` give the vector
  ``info`` arrays, :meth:`BatchedEngine.episode_info` the ``info`` dict of one episode;
* :meth:`BatchedEngine.render_frame` draws one episode.

Episode ``i`` draws its images with the generator ``rngs[i]`` (see
:func:`~saliency_gym.envs.episodes.draw_episode_images`), which the environments seed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import torch

from saliency_gym.data import Batch
from saliency_gym.envs.common_config import EnvConfig
from saliency_gym.envs.episodes import draw_episode_images
from saliency_gym.types import EnvMask, InfoDict, ObsDict

ConfigT = TypeVar("ConfigT", bound=EnvConfig)
OutcomeT = TypeVar("OutcomeT", bound="StepOutcome")

#: ``(N,)`` float64 per-environment values (rewards, reward parts).
FloatArray = npt.NDArray[np.float64]


@dataclass
class StepOutcome:
    """What one call of :meth:`BatchedEngine.advance` produced, per environment.

    ``rewards`` is the sum of the named ``reward_parts`` (what ``info["rewards"]`` breaks the reward
    into, and ``info["reward_<part>"]`` in a vector env); ``flags`` are the per-step boolean
    ``info`` entries (``invalid_action``, ``label_changed``, ...). Entries of environments that did
    not step are zero / False. Subclasses name their parts and flags in :attr:`reward_names` and
    :attr:`flag_names` and build a blank outcome with :meth:`zeros`.
    """

    rewards: FloatArray
    terminated: EnvMask
    truncated: EnvMask
    reward_parts: dict[str, FloatArray]
    flags: dict[str, EnvMask]

    reward_names: ClassVar[tuple[str, ...]] = ()
    flag_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def zeros(cls: type[OutcomeT], n: int) -> OutcomeT:
        """A blank outcome for ``n`` environments: no reward, not ended, every flag False."""
        return cls(
            rewards=np.zeros(n),
            terminated=np.zeros(n, bool),
            truncated=np.zeros(n, bool),
            reward_parts={name: np.zeros(n) for name in cls.reward_names},
            flags={name: np.zeros(n, bool) for name in cls.flag_names},
        )

    def sum_rewards(self) -> None:
        """Set :attr:`rewards` to the sum of the reward parts."""
        total = np.zeros_like(self.rewards)
        for part in self.reward_parts.values():
            total = total + part
        self.rewards = total

    def step_info(self, i: int) -> InfoDict:
        """The per-step ``info`` entries of environment ``i``: its flags and ``rewards``."""
        info: InfoDict = {name: bool(flag[i]) for name, flag in self.flags.items()}
        info["rewards"] = {name: float(part[i]) for name, part in self.reward_parts.items()}
        return info

    def step_infos(self) -> InfoDict:
        """The per-step vector ``info`` entries: the flags and ``reward_<part>`` arrays."""
        infos: InfoDict = {name: flag.copy() for name, flag in self.flags.items()}
        infos.update({f"reward_{name}": part.copy() for name, part in self.reward_parts.items()})
        return infos


class BatchedEngine(ABC, Generic[ConfigT]):
    """State and transition of ``n`` episodes of one environment family, as arrays.

    The base holds what every family tracks per episode: the image (``images`` on the device,
    ``images_np`` on the host), its ``labels`` and data ``image_index``, the explained ``targets``,
    the ``steps`` taken and the classifier ``queries`` spent; :meth:`_start_episodes` draws and
    loads new episodes.

    Attributes:
        n: number of episodes advanced together.
        rngs: one generator per episode (episode ``i`` draws its images with ``rngs[i]``).
        config: the validated configuration.
    """

    def __init__(self, config: ConfigT, num_envs: int) -> None:
        self.config = config
        self.n = num_envs
        self.device = config.classifier.device
        self.num_cells = config.grid.num_cells
        self._cell_index = config.grid.index_tensor(self.device)
        image_batch = (num_envs, *config.classifier.input_shape)
        self.images = torch.zeros(image_batch, device=self.device)
        self.images_np = np.zeros(image_batch, np.float32)
        self.targets = np.zeros(num_envs, np.int64)
        self.labels = np.zeros(num_envs, np.int64)
        self.image_index = np.zeros(num_envs, np.int64)
        self.steps = np.zeros(num_envs, np.int64)
        self.queries = np.zeros(num_envs, np.int64)
        self.rngs: list[np.random.Generator] = [np.random.default_rng() for _ in range(num_envs)]

    @property
    def cfg(self) -> ConfigT:
        """The configuration (short name kept for the policies and tools that read it)."""
        return self.config

    def _start_episodes(
        self,
        idx: np.ndarray,
        seeds: Sequence[int | None] | None,
        options: dict[str, Any] | None,
        extra_seeds: bool = False,
        extra_keys: Sequence[str] = (),
    ) -> tuple[Batch, torch.Tensor, list[int | None]]:
        """Draw and load the images of new episodes in ``idx`` and zero their counters.

        Returns the loaded batch, its images on the device and (with ``extra_seeds``) one more
        seed per episode (see :func:`~saliency_gym.envs.episodes.draw_episode_images`).
        """
        picks, batch, episode_seeds = draw_episode_images(
            self.config.data, self.rngs, idx, self.n, seeds, options, extra_seeds=extra_seeds, extra_keys=extra_keys
        )
        images = torch.from_numpy(np.ascontiguousarray(batch.images)).to(self.device)
        self.images[idx] = images
        self.images_np[idx] = batch.images
        self.labels[idx] = batch.labels
        self.image_index[idx] = picks
        self.steps[idx] = 0
        self.queries[idx] = 0
        return batch, images, episode_seeds

    @abstractmethod
    def advance(
        self,
        actions: np.ndarray | None,
        step_mask: EnvMask,
        reset_mask: EnvMask,
        seeds: Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> StepOutcome:
        """Step the episodes in ``step_mask & ~reset_mask`` with ``actions`` (checked, one row per
        environment) and reset those in ``reset_mask``; ``seeds[i]`` re-seeds ``rngs[i]``."""

    @abstractmethod
    def observation(self, idx: np.ndarray | slice = slice(None)) -> ObsDict:
        """The batched observation of the episodes ``idx`` (default: all)."""

    @abstractmethod
    def info_arrays(self) -> dict[str, np.ndarray]:
        """Per-environment state summaries as ``(n,)`` arrays: the vector ``info`` entries."""

    def final_info_arrays(self, final: EnvMask) -> dict[str, np.ndarray]:
        """Vector ``info`` entries reported only for the episodes that end (``final``); entries of
        other environments are placeholders. None by default."""
        return {}

    def episode_info(self, i: int, final: bool) -> InfoDict:
        """The ``info`` dictionary of episode ``i`` (``final``: it has just ended). By default the
        entries of :meth:`info_arrays` as Python scalars."""
        return {key: value[i].item() for key, value in self.info_arrays().items()}

    @abstractmethod
    def render_frame(self, i: int) -> np.ndarray:
        """The ``rgb_array`` frame of episode ``i``, ``(height, width, 3)`` uint8."""


def check_discrete_actions(
    actions: Any, n: int, num_actions: int, noun: str = "action id", hint: str = ""
) -> npt.NDArray[np.int64]:
    """``n`` action ids in ``[0, num_actions)`` as int64, or ``ValueError``.

    Integral floats are accepted (some agents emit them); ``noun`` names an id in the messages
    (``"cell id"``) and ``hint`` follows the range (``" (cell, then sign)"``).
    """
    arr = np.asarray(actions)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        if arr.shape == (n,) and np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"actions must be {n} integer {noun}(s) in [0, {num_actions - 1}], got {actions!r}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_actions):
        raise ValueError(f"actions must be {noun}s in [0, {num_actions - 1}]{hint}, got {arr.tolist()}")
    return arr.astype(np.int64)


def check_box_actions(actions: Any, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Real, finite continuous actions of exactly ``shape`` as float32, or ``ValueError``.

    Values outside the action box are kept: the engine clips them (as SB3's Box policies expect).
    """
    arr = np.asarray(actions)
    if arr.shape != shape or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"continuous actions must be real arrays of shape {shape}, got {getattr(arr, 'shape', None)} {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("continuous actions must be finite")
    return arr.astype(np.float32)
