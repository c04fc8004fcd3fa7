"""Saliency search (RExL) as Gymnasium environments: reveal (insertion) and mask (deletion).

``SaliencyRevealEnv`` / ``SaliencyMaskEnv`` are single environments and
``SaliencyRevealVectorEnv`` / ``SaliencyMaskVectorEnv`` their native vector versions (what
``gym.make_vec`` builds). All four are the shared skeletons
(:class:`~saliency_gym.envs.base.BatchedEngineEnv`,
:class:`~saliency_gym.envs.vector_base.BatchedVectorEnv`) over one batched engine,
:class:`~saliency_gym.envs.core.SaliencySearchCore`, with ``N = 1`` or ``N = num_envs``; this
module holds the family: its spaces, its action check and the documentation.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from saliency_gym.envs.base import BatchedEngineEnv, EnvFamily
from saliency_gym.envs.common_config import action_mask_space
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore
from saliency_gym.envs.engine import check_discrete_actions
from saliency_gym.envs.vector_base import BatchedVectorEnv

__all__ = [
    "SaliencyMaskEnv",
    "SaliencyMaskVectorEnv",
    "SaliencyRevealEnv",
    "SaliencyRevealVectorEnv",
    "SaliencySearchEnv",
    "SaliencySearchVectorEnv",
    "build_spaces",
    "saliency_family",
    "unwrap_search_env",
]


def build_spaces(config: SaliencySearchConfig) -> tuple[spaces.Dict, spaces.Discrete]:
    """The single-environment observation and action spaces of a configuration."""
    shape = tuple(config.classifier.input_shape)
    obs: dict[str, spaces.Space[Any]] = {
        "image": spaces.Box(0.0, 1.0, shape, np.float32),
        "canvas": spaces.Box(0.0, 1.0, shape, np.float32),
        "chosen": spaces.Box(0.0, 1.0, config.grid.shape, np.float32),
    }
    if config.observe_score:
        obs["score"] = spaces.Box(-1.0, 1.0, (1,), np.float32)
    # Activations are finite but unbounded: the widest finite float32 box.
    feature_shape, big = (config.feature_channels, *config.grid.shape), float(np.finfo(np.float32).max)
    if config.image_features:
        obs["image_features"] = spaces.Box(-big, big, feature_shape, np.float32)
    if config.canvas_features:
        obs["canvas_features"] = spaces.Box(-big, big, feature_shape, np.float32)
    if config.observe_class:
        k = config.classifier.num_classes
        obs["target"] = spaces.Box(0.0, 1.0, (k,), np.float32)
        if config.foil is not None:
            obs["foil"] = spaces.Box(0.0, 1.0, (k,), np.float32)
    if config.observe_action_mask:
        obs["action_mask"] = action_mask_space(config.grid.num_cells)
    return spaces.Dict(obs), spaces.Discrete(config.grid.num_cells)


def check_actions(actions: Any, n: int, config: SaliencySearchConfig) -> np.ndarray:
    """``n`` cell ids in ``[0, cells)`` as int64, or ``ValueError``."""
    return check_discrete_actions(actions, n, config.grid.num_cells, noun="cell id")


def saliency_family(mode: str) -> EnvFamily[SaliencySearchConfig, SaliencySearchCore]:
    """The saliency-search family in ``mode`` (``"reveal"`` or ``"mask"``)."""
    return EnvFamily(
        make_config=partial(SaliencySearchConfig.from_kwargs, mode),
        make_engine=SaliencySearchCore,
        build_spaces=build_spaces,
        check_actions=check_actions,
    )


class SaliencySearchEnv(BatchedEngineEnv[SaliencySearchConfig, SaliencySearchCore]):
    """One saliency-search episode at a time: what :class:`SaliencyRevealEnv` (insertion) and
    :class:`SaliencyMaskEnv` (deletion) share. Each of them lists only what differs.

    ## Description
    Saliency-map generation as a sequential search (Reinforcement Explanation Learning). A frozen
    classifier explains one image per episode. The image is divided into a ``grid x grid`` lattice
    of cells; each action *chooses* one cell: reveal copies it from the image onto the substrate,
    mask replaces it in the image with the substrate. The agent is rewarded by the evidence the
    chosen cell moves for the explained class, so a good policy chooses the most important cells
    first. The order of the episode, and the gain each cell brought, is a saliency map obtained
    with one classifier query per step.

    ## Action Space
    ``Discrete(cells)``: the id (row-major) of the cell to choose. ``action_masks()`` returns the
    cells not yet chosen (for sb3-contrib's MaskablePPO). Choosing a cell a second time changes
    nothing, spends no query, earns ``invalid_action_penalty`` (default ``-1 / cells``) and counts as
    a step; ``info["invalid_action"]`` is true. Actions outside ``[0, cells)`` raise ``ValueError``.

    ## Observation Space
    ``Dict`` of:
    - ``"image"``: ``Box(0, 1, (C, H, W), float32)``, the image being explained (constant in an episode).
    - ``"canvas"``: ``Box(0, 1, (C, H, W), float32)``, what the classifier sees now (per mode).
    - ``"chosen"``: ``Box(0, 1, (rows, cols), float32)``, 1 for the cells chosen so far.
    - ``"target"`` (only with ``observe_class=True``): ``Box(0, 1, (K,), float32)``, the explained
      class one-hot; ``"foil"`` likewise for a one-vs-one ``(target, foil)``
    - ``"score"`` (only with ``observe_score=True``): ``Box(-1, 1, (1,), float32)``, the current score
      ``s_k`` of the canvas (black-box feedback).
    - ``"image_features"`` / ``"canvas_features"`` (only with ``observe_features``):
      ``(F, rows, cols)`` float32, the classifier's own activations at ``feature_layer`` (its
      Grad-CAM layer by default), average-pooled to the grid, for the image (computed at reset) and
      for the current canvas (from the same forward pass that scores it: no extra query).
    - ``"action_mask"`` (only with ``observe_action_mask=True``): ``Box(0, 1, (cells,), float32)``,
      ``action_masks()`` as 0/1, for learners that read the mask from the observation (RLlib).

    ## Rewards
    The score of a canvas is ``s = p_target`` (or ``p_target - p_foil`` one-vs-one); with ``K``
    cells in the grid, ``s_k`` is the score after ``k`` chosen cells. ``reward_mode`` is ``"auc"``
    (default), ``"auc_trapezoid"``, ``"delta"`` or ``"log_odds"`` (the ``"delta"`` difference in
    log-odds ``log p_t - log(1 - p_t)``, or ``log p_t - log p_foil``); each mode's formulas are on
    the env. Both ``"auc"`` rewards rest on ``AUC = sum_k s_k / K + (s_0 - s_K) / (2K)`` (trapezoid
    rule) and ``s_k = s_0 + sum_(j<=k) (s_j - s_(j-1))``: the return ranks cell orders as the AUC
    does, and a cell that moves its evidence early is rewarded at once, which makes credit
    assignment short. ``info["rewards"]`` breaks the reward into ``evidence`` and ``penalty``.

    ## Starting State
    An image is drawn uniformly from the data source with the environment's seeded generator (or
    chosen with ``reset(options={"image_index": i})``); the substrate is computed from it; the
    target follows ``target=`` unless ``reset(options={"target": c})`` names the class to explain
    for that episode.

    ## Episode End
    Terminated after ``budget`` distinct cells (default: all). Truncated after ``max_steps`` steps
    (default ``2 * budget``), which only repeated cells can reach. At the end, ``info["saliency"]``
    holds the ``(H, W)`` map the episode implies: each chosen cell scored by its gain.

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
    - ``target``: ``"predicted"`` (default), ``"label"``, ``"random"`` (a class drawn per episode), a class id, or a one-vs-one pair
      ``(target, foil)`` where ``foil`` is a class id or ``"runner_up"``.
    - ``reward_mode``: ``"auc"`` (default), ``"auc_trapezoid"``, ``"delta"`` or ``"log_odds"``.
    - ``observe_score``: add ``"score"`` to the observation (default False).
    - ``observe_class``: add ``"target"`` (and ``"foil"``) to the observation (default False).
    - ``observe_action_mask``: add ``"action_mask"`` to the observation (default False).
    - ``observe_features``: ``"image"``, ``"canvas"``, ``"both"`` (or ``True``) to add the feature
      keys above (default False); ``feature_layer``: the observed layer's dotted name.
    - ``invalid_action_penalty``, ``max_steps``: see above. ``device``: for a classifier given by name.
    - ``render_mode``: ``"rgb_array"`` returns labelled frames (image, canvas with step and score,
      saliency so far); ``"human"`` shows them in a matplotlib window (needs a GUI backend).

    ## Registered Configurations
    For each mode ``M`` (``Reveal``, ``Mask``):
    - ``saliency_gym/SaliencyM-v0`` (shapes classifier and data by default; every argument above)
    - ``saliency_gym/SaliencyM-Shapes-v0``: the shipped shapes classifier, 32x32, 8x8 grid
    - ``saliency_gym/SaliencyM-Digits-v0``: the shipped digits classifier, 32x32, 8x8 grid
    - ``saliency_gym/SaliencyM-Shapes64-v0``: the shipped shapes64 classifier, 64x64, 8x8 grid
    - ``saliency_gym/SaliencyM-ShapesCluttered-v0``: the shipped shapes_cluttered classifier, 64x64,
      one small shape anywhere among clutter (a centre prior fails here), 8x8 grid
    ``gym.make_vec(id, num_envs=N)`` builds the native vector env: one batched query per step.
    """

    mode: str = "reveal"
    family = saliency_family("reveal")

    def action_masks(self) -> np.ndarray:
        """Boolean ``(cells,)``: the cells that may still be chosen."""
        return self.core.action_masks()[0].copy()


class SaliencySearchVectorEnv(BatchedVectorEnv[SaliencySearchConfig, SaliencySearchCore]):
    """``num_envs`` saliency-search episodes stepped with one batched classifier query per step
    (what ``gym.make_vec`` builds); :class:`SaliencyRevealVectorEnv` and
    :class:`SaliencyMaskVectorEnv` name the mode.

    Seeding and ``autoreset_mode`` (``NEXT_STEP`` or ``SAME_STEP``) are those of
    :class:`~saliency_gym.envs.vector_base.BatchedVectorEnv`. The ``info`` arrays are ``score``,
    ``initial_score``, ``queries``, ``target``, ``label``, ``image_index``, ``n_chosen``,
    ``invalid_action``, ``reward_evidence`` and ``reward_penalty``, plus ``saliency``,
    ``cell_order`` and ``gains`` for the episodes that end; ``action_masks()`` is
    ``(num_envs, cells)``.
    """

    mode: str = "reveal"
    family = saliency_family("reveal")

    def action_masks(self) -> np.ndarray:
        """Boolean ``(num_envs, cells)``: the cells each episode may still choose."""
        return self.core.action_masks().copy()


def unwrap_search_env(env: gym.Env[Any, Any]) -> SaliencySearchEnv:
    """The saliency-search environment below ``env``'s wrappers (``gym.make`` adds some), typed:
    its ``config`` and ``action_masks()`` read without casts. ``TypeError`` for another env."""
    inner = env.unwrapped
    if not isinstance(inner, SaliencySearchEnv):
        raise TypeError(f"expected a saliency-search environment (SaliencyReveal/SaliencyMask), got {type(inner).__name__}")
    return inner


class SaliencyRevealEnv(SaliencySearchEnv):
    """Reveal image cells onto a substrate until the classifier is convinced (insertion).

    Every section not written out here is :class:`SaliencySearchEnv`'s.

    ## Description
    The canvas starts as the substrate (a blurred copy of the image by default) and each action
    copies one cell of the real image onto it: a good policy reveals the most convincing cells first.

    ## Action Space
    ``Discrete(cells)``: the cell to reveal.

    ## Observation Space
    ``"canvas"``: the substrate with the chosen cells of the image revealed.

    ## Rewards
    ``s_0`` is the score of the substrate.
    - ``reward_mode="auc"`` (default): ``r_k = (s_k - s_(k-1)) * (K - k + 1/2) / K``, the evidence
      gained, weighted by the share of the curve it still lifts. Summed over the full budget, the
      return is the patch-level insertion AUC that
      ``saliency_gym.metrics.insertion_deletion.patch_insertion_curve`` computes for the same cell
      order *minus* the endpoint term ``s_0`` (fixed by the image and the substrate, whatever the
      order): it ranks cell orders as the AUC does but is not equal to it.
    - ``reward_mode="auc_trapezoid"``: ``r_k = (s_(k-1) + s_k) / (2K)``, each step's trapezoid slice:
      the only mode whose return equals the insertion AUC exactly, endpoint terms included.
    - ``reward_mode="delta"``: ``r_k = s_k - s_(k-1)``, the evidence gained (the return telescopes to
      ``s_budget - s_0``, so with a budget below ``K`` it rewards finding the best cells first).
    - ``reward_mode="log_odds"``: the same difference in log-odds.

    ## Starting State
    The substrate defaults to ``blur``. Reset costs one query for the substrate, plus one for the
    image when the target is the predicted class or the foil the runner-up.

    ## Episode End
    A chosen cell's gain is ``s_k - s_(k-1)``.

    ## Info
    As :class:`SaliencySearchEnv`.

    ## Arguments
    As :class:`SaliencySearchEnv`.

    ## Registered Configurations
    ``saliency_gym/SaliencyReveal-v0``, ``-Shapes-v0``, ``-Digits-v0``, ``-Shapes64-v0``,
    ``-ShapesCluttered-v0`` (see :class:`SaliencySearchEnv`).
    """

    mode = "reveal"
    family = saliency_family("reveal")


class SaliencyMaskEnv(SaliencySearchEnv):
    """Mask image cells with a substrate until the classifier's evidence is gone (deletion).

    Every section not written out here is :class:`SaliencySearchEnv`'s.

    ## Description
    The canvas starts as the image and each action replaces one cell with the substrate (black by
    default): a good policy masks the most important cells first.

    ## Action Space
    ``Discrete(cells)``: the cell to mask.

    ## Observation Space
    ``"canvas"``: the image with the chosen cells replaced by the substrate.

    ## Rewards
    ``s_0`` is the score of the image.
    - ``reward_mode="auc"`` (default): ``r_k = (s_(k-1) - s_k) * (K - k + 1/2) / K``, the evidence
      removed, weighted by the share of the curve it still lowers. Summed over the full budget, the
      return is one minus the patch-level deletion AUC that
      ``saliency_gym.metrics.insertion_deletion.patch_deletion_curve`` computes for the same cell
      order, *minus* the endpoint term ``1 - s_0`` (fixed by the image and the substrate, whatever
      the order): it ranks cell orders as the AUC does but is not equal to it.
    - ``reward_mode="auc_trapezoid"``: ``r_k = (1 - (s_(k-1) + s_k) / 2) / K``, each step's trapezoid
      slice: the only mode whose return equals one minus the deletion AUC exactly, endpoint terms
      included.
    - ``reward_mode="delta"``: ``r_k = s_(k-1) - s_k``, the evidence removed (the return telescopes
      to ``s_0 - s_budget``, so with a budget below ``K`` it rewards finding the best cells first).
    - ``reward_mode="log_odds"``: the same difference in log-odds.

    ## Starting State
    The substrate defaults to ``zeros``. Reset costs one query for the image.

    ## Episode End
    A chosen cell's gain is ``s_(k-1) - s_k``.

    ## Info
    As :class:`SaliencySearchEnv`.

    ## Arguments
    As :class:`SaliencySearchEnv`.

    ## Registered Configurations
    ``saliency_gym/SaliencyMask-v0``, ``-Shapes-v0``, ``-Digits-v0``, ``-Shapes64-v0``,
    ``-ShapesCluttered-v0`` (see :class:`SaliencySearchEnv`).
    """

    mode = "mask"
    family = saliency_family("mask")


class SaliencyRevealVectorEnv(SaliencySearchVectorEnv):
    """Native vector version of :class:`SaliencyRevealEnv`: ``num_envs`` reveal episodes, one batched
    classifier query per step (what ``gym.make_vec`` builds for the ``saliency_gym/SaliencyReveal*`` ids);
    seeding, ``info`` arrays and ``action_masks()`` as :class:`SaliencySearchVectorEnv`.
    """

    mode = "reveal"
    family = saliency_family("reveal")


class SaliencyMaskVectorEnv(SaliencySearchVectorEnv):
    """Native vector version of :class:`SaliencyMaskEnv`: ``num_envs`` mask episodes, one batched
    classifier query per step (what ``gym.make_vec`` builds for the ``saliency_gym/SaliencyMask*`` ids);
    seeding, ``info`` arrays and ``action_masks()`` as :class:`SaliencySearchVectorEnv`.
    """

    mode = "mask"
    family = saliency_family("mask")
