"""Saliency search (RExL) as Gymnasium environments: reveal (insertion) and mask (deletion).

``SaliencyRevealEnv`` / ``SaliencyMaskEnv`` are single environments and
``SaliencyRevealVectorEnv`` / ``SaliencyMaskVectorEnv`` their native vector versions (what
``gym.make_vec`` builds). All four are views of one batched engine,
:class:`~saliency_gym.envs.core.SaliencySearchCore`, with ``N = 1`` or ``N = num_envs``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore, StepOutcome
from saliency_gym.envs.render import render_episode
from saliency_gym.envs.vector_base import BatchedVectorEnv

_DOC = """{title}

## Description
Saliency-map generation as a sequential search (Reinforcement Explanation Learning). A frozen
classifier explains one image per episode. The image is divided into a ``grid x grid`` lattice of
cells; {description} The agent is rewarded by the evidence the chosen cell {evidence} for the
explained class, so a good policy {policy}. The order of the episode, and the gain each cell
brought, is a saliency map obtained with one classifier query per step.

## Action Space
``Discrete(cells)``: the id (row-major) of the cell to {verb}. ``action_masks()`` returns the
cells not yet chosen (for sb3-contrib's MaskablePPO). Choosing a cell a second time changes
nothing, spends no query, earns ``invalid_action_penalty`` (default ``-1 / cells``) and counts as
a step; ``info["invalid_action"]`` is true. Actions outside ``[0, cells)`` raise ``ValueError``.

## Observation Space
``Dict`` of:
- ``"image"``: ``Box(0, 1, (C, H, W), float32)``, the image being explained (constant in an episode).
- ``"canvas"``: ``Box(0, 1, (C, H, W), float32)``, what the classifier sees now: {canvas}.
- ``"chosen"``: ``Box(0, 1, (rows, cols), float32)``, 1 for the cells chosen so far.
- ``"score"`` (only with ``observe_score=True``): ``Box(-1, 1, (1,), float32)``, the current score
  ``s_k`` of the canvas (black-box feedback).

## Rewards
The score of a canvas is ``s = p_target`` (or ``p_target - p_foil`` one-vs-one). With ``K`` cells
in the grid and ``s_k`` the score after ``k`` chosen cells (``s_0``: {start}):
- ``reward_mode="auc"`` (default): ``r_k = {gain_formula} * (K - k + 1/2) / K``, the evidence
  gained, weighted by the share of the curve it still lifts. Summed over the full budget the
  return is the patch-level {auc_name} that ``saliency_gym.metrics.insertion_deletion.{metric_fn}``
  computes for the same cell order, up to the endpoint term {endpoint} (fixed by the image and the
  substrate, whatever the order): ``AUC = sum_k s_k / K + (s_0 - s_K) / (2K)`` (trapezoid rule) and
  ``s_k = s_0 + sum_(j<=k) (s_j - s_(j-1))``. A cell that brings its evidence early is rewarded at
  once, which makes credit assignment short.
- ``reward_mode="auc_trapezoid"``: ``r_k = {auc_formula}``, each step's trapezoid slice: the return
  is exactly the {auc_name}, endpoint terms included.
- ``reward_mode="delta"``: ``r_k = {delta}``, the evidence gained (the return telescopes to
  ``{delta_return}``, so with a budget below ``K`` it rewards finding the best cells first).
- ``reward_mode="log_odds"``: the same difference in log-odds ``log p_t - log(1 - p_t)`` (or
  ``log p_t - log p_foil``).
``info["rewards"]`` breaks the reward into ``evidence`` and ``penalty``.

## Starting State
An image is drawn uniformly from the data source with the environment's seeded generator (or
chosen with ``reset(options={{"image_index": i}})``); the substrate (default ``{default_substrate}``)
is computed from it; the target is fixed (``target=``). Reset costs {reset_queries}.

## Episode End
Terminated after ``budget`` distinct cells (default: all). Truncated after ``max_steps`` steps
(default ``2 * budget``), which only repeated cells can reach. At the end, ``info["saliency"]``
holds the ``(H, W)`` map the episode implies: each chosen cell scored by its gain {gain}.

## Info
``score``, ``initial_score`` (``s_0``), ``queries`` (classifier images used in this episode),
``cell_order``, ``gains`` (per chosen cell), ``target``, ``foil`` (one-vs-one), ``label``,
``image_index``, ``invalid_action``, ``rewards``; ``saliency`` at the end.

## Arguments
- ``classifier``: a ``FrozenClassifier``, a shipped name (``"shapes"``, ``"digits"``) or a checkpoint
  path. Default ``"shapes"``.
- ``data``: a ``DataSource`` or a dataset name; default: the classifier's own dataset.
- ``split``: the split of a named dataset, default ``"train"`` (use ``"test"`` to evaluate).
- ``image``, ``label``: explain one fixed ``(C, H, W)`` image instead of a data source.
- ``grid``: cells per side (``int``) or ``(rows, cols)``; default 8. Non-square images are fine.
- ``substrate``: ``"zeros"``, ``"mean"``, ``"blur"``, ``"noise"``, a number, a baseline image, a
  callable ``fn(images, targets)`` or a ``Substrate``.
- ``budget``: cells per episode (default all).
- ``target``: ``"predicted"`` (default), ``"label"``, a class id, or a one-vs-one pair
  ``(target, foil)`` where ``foil`` is a class id or ``"runner_up"``.
- ``reward_mode``: ``"auc"`` (default), ``"auc_trapezoid"``, ``"delta"`` or ``"log_odds"``.
- ``observe_score``: add ``"score"`` to the observation (default False).
- ``invalid_action_penalty``, ``max_steps``: see above. ``device``: for a classifier given by name.
- ``render_mode``: ``"rgb_array"`` shows image, canvas and saliency so far side by side.

## Registered Configurations
- ``saliency_gym/{name}-v0`` (shapes classifier and data by default; every argument above)
- ``saliency_gym/{name}-Shapes-v0``: the shipped shapes classifier, 32x32, 8x8 grid
- ``saliency_gym/{name}-Digits-v0``: the shipped digits classifier, 32x32, 8x8 grid
- ``saliency_gym/{name}-Shapes64-v0``: the shipped shapes64 classifier, 64x64, 8x8 grid
``gym.make_vec(id, num_envs=N)`` builds the native vector env: one batched query per step.
"""

_REVEAL = dict(
    name="SaliencyReveal",
    title="Reveal image cells onto a substrate until the classifier is convinced (insertion).",
    description="the canvas starts as the substrate (a blurred copy of the image by default) and "
    "each action copies one cell of the real image onto it.",
    evidence="adds",
    policy="reveals the most convincing cells first",
    verb="reveal",
    canvas="the substrate with the chosen cells of the image revealed",
    start="the substrate",
    auc_formula="(s_(k-1) + s_k) / (2K)",
    gain_formula="(s_k - s_(k-1))",
    endpoint="``-s_0``",
    auc_name="insertion AUC",
    metric_fn="patch_insertion_curve",
    delta="s_k - s_(k-1)",
    delta_return="s_budget - s_0",
    default_substrate="blur",
    reset_queries="one query for the substrate, plus one for the image when the target is the "
    "predicted class or the foil the runner-up",
    gain="``s_k - s_(k-1)``",
)
_MASK = dict(
    name="SaliencyMask",
    title="Mask image cells with a substrate until the classifier's evidence is gone (deletion).",
    description="the canvas starts as the image and each action replaces one cell with the "
    "substrate (black by default).",
    evidence="removes",
    policy="masks the most important cells first",
    verb="mask",
    canvas="the image with the chosen cells replaced by the substrate",
    start="the image",
    auc_formula="(1 - (s_(k-1) + s_k) / 2) / K",
    gain_formula="(s_(k-1) - s_k)",
    endpoint="``-(1 - s_0)``",
    auc_name="one minus the deletion AUC",
    metric_fn="patch_deletion_curve",
    delta="s_(k-1) - s_k",
    delta_return="s_0 - s_budget",
    default_substrate="zeros",
    reset_queries="one query for the image",
    gain="``s_(k-1) - s_k``",
)


def build_spaces(config: SaliencySearchConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    """The single-environment observation and action spaces of a configuration."""
    shape = tuple(config.classifier.input_shape)
    obs = {
        "image": spaces.Box(0.0, 1.0, shape, np.float32),
        "canvas": spaces.Box(0.0, 1.0, shape, np.float32),
        "chosen": spaces.Box(0.0, 1.0, config.grid.shape, np.float32),
    }
    if config.observe_score:
        obs["score"] = spaces.Box(-1.0, 1.0, (1,), np.float32)
    return spaces.Dict(obs), spaces.Discrete(config.grid.num_cells)


def _check_actions(actions: Any, n: int, num_cells: int) -> np.ndarray:
    arr = np.asarray(actions)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        if arr.shape == (n,) and np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"actions must be {n} integer cell id(s), got {actions!r}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_cells):
        raise ValueError(f"actions must be cell ids in [0, {num_cells - 1}], got {arr.tolist()}")
    return arr.astype(np.int64)


def _reward_breakdown(outcome: StepOutcome, i: int) -> dict[str, float]:
    return {"evidence": float(outcome.reward_evidence[i]), "penalty": float(outcome.reward_penalty[i])}


class SaliencySearchEnv(gym.Env):
    """One saliency-search episode at a time; see :class:`SaliencyRevealEnv` and :class:`SaliencyMaskEnv`."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    mode: str = "reveal"

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; choose {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.config = SaliencySearchConfig.from_kwargs(self.mode, **kwargs)
        self.core = SaliencySearchCore(self.config, 1)
        self.observation_space, self.action_space = build_spaces(self.config)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.core.rngs[0] = self.np_random
        self.core.advance(None, np.zeros(1, bool), np.ones(1, bool), options=options)
        self._needs_reset = False
        return self._obs(), self.core.episode_info(0, final=False)

    def step(self, action: Any):
        if self._needs_reset:
            raise RuntimeError("the episode has ended (or never started): call reset() before step()")
        actions = _check_actions(np.reshape(np.asarray(action), (-1,)), 1, self.config.grid.num_cells)
        outcome = self.core.advance(actions, np.ones(1, bool), np.zeros(1, bool))
        terminated, truncated = bool(outcome.terminated[0]), bool(outcome.truncated[0])
        self._needs_reset = terminated or truncated
        info = self.core.episode_info(0, final=self._needs_reset)
        info["invalid_action"] = bool(outcome.invalid[0])
        info["rewards"] = _reward_breakdown(outcome, 0)
        return self._obs(), float(outcome.rewards[0]), terminated, truncated, info

    def _obs(self) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.core.observation().items()}

    def action_masks(self) -> np.ndarray:
        """Boolean ``(cells,)``: the cells that may still be chosen."""
        return self.core.action_masks()[0].copy()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return render_episode(self.core, 0)


class SaliencySearchVectorEnv(BatchedVectorEnv):
    """``num_envs`` saliency-search episodes stepped with one batched classifier query per step.

    Sub-environment ``i`` reset with ``seed + i`` plays exactly the episodes of a single environment
    reset with that seed. ``autoreset_mode`` is Gymnasium's ``NEXT_STEP`` (default: the step after
    an episode ends resets it, within that step's single query) or ``SAME_STEP`` (the finished
    episode's final observation is in ``info["final_obs"]`` and the reset costs one more batched
    query on the steps where episodes end; the SB3 adapter uses this mode).
    """

    mode: str = "reveal"

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        def build(n: int):
            config = SaliencySearchConfig.from_kwargs(self.mode, **kwargs)
            return (config, SaliencySearchCore(config, n), *build_spaces(config))

        self._setup(num_envs, render_mode, autoreset_mode, build)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        all_envs = self._reset_all(seed, options)
        return self.core.observation(), self._infos(all_envs, final=np.zeros(self.num_envs, bool))

    def step(self, actions: Any):
        self._check_started()
        actions = _check_actions(actions, self.num_envs, self.config.grid.num_cells)
        step_mask, reset_mask = self._step_masks()
        outcome = self.core.advance(actions, step_mask, reset_mask)
        done = (outcome.terminated | outcome.truncated) & step_mask
        infos = self._infos(step_mask, final=done)
        infos["invalid_action"] = outcome.invalid.copy()
        infos["reward_evidence"] = outcome.reward_evidence.copy()
        infos["reward_penalty"] = outcome.reward_penalty.copy()
        obs = self._finish_step(done, infos)
        return obs, outcome.rewards.copy(), outcome.terminated & step_mask, outcome.truncated & step_mask, infos

    def _infos(self, valid: np.ndarray, final: np.ndarray) -> dict[str, Any]:
        """Gymnasium vector infos: arrays over sub-environments, with ``_key`` masks."""
        core = self.core
        infos: dict[str, Any] = {
            "score": core.scores.copy(),
            "initial_score": core.initial_scores.copy(),
            "queries": core.queries.copy(),
            "target": core.targets.copy(),
            "label": core.labels.copy(),
            "image_index": core.image_index.copy(),
            "n_chosen": core.n_chosen.copy(),
        }
        for key in list(infos):
            infos[f"_{key}"] = valid.copy()
        if final.any():
            h, w = core.cfg.grid.height, core.cfg.grid.width
            saliency = np.zeros((self.num_envs, h, w), np.float32)
            order = np.empty(self.num_envs, dtype=object)
            gains = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(final):
                saliency[i] = core.saliency_map(i)
                k = int(core.n_chosen[i])
                order[i], gains[i] = core.order[i, :k].copy(), core.gains[i, :k].copy()
            infos.update(saliency=saliency, _saliency=final.copy(), cell_order=order, _cell_order=final.copy(),
                         gains=gains, _gains=final.copy())  # fmt: skip
        return infos

    def action_masks(self) -> np.ndarray:
        """Boolean ``(num_envs, cells)``: the cells each episode may still choose."""
        return self.core.action_masks().copy()

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array":
            return None
        return tuple(render_episode(self.core, i) for i in range(self.num_envs))


class SaliencyRevealEnv(SaliencySearchEnv):
    __doc__ = _DOC.format(**_REVEAL)
    mode = "reveal"


class SaliencyMaskEnv(SaliencySearchEnv):
    __doc__ = _DOC.format(**_MASK)
    mode = "mask"


class SaliencyRevealVectorEnv(SaliencySearchVectorEnv):
    __doc__ = f"Native vector version of :class:`SaliencyRevealEnv`.\n\n{SaliencySearchVectorEnv.__doc__}"
    mode = "reveal"


class SaliencyMaskVectorEnv(SaliencySearchVectorEnv):
    __doc__ = f"Native vector version of :class:`SaliencyMaskEnv`.\n\n{SaliencySearchVectorEnv.__doc__}"
    mode = "mask"
