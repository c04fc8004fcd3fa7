"""Attribution attacks (LENS) as Gymnasium environments.

``AttributionAttackEnv`` is the single environment and ``AttributionAttackVectorEnv`` its native
vector version (what ``gym.make_vec`` builds). Both are views of one batched engine,
:class:`~saliency_gym.envs.attack_core.AttributionAttackCore`, with ``N = 1`` or ``N = num_envs``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from saliency_gym.envs.attack_config import AttributionAttackConfig
from saliency_gym.envs.attack_core import AttackStepOutcome, AttributionAttackCore
from saliency_gym.envs.render import _GAP, SCALE, _heatmap, _to_rgb
from saliency_gym.envs.vector_base import BatchedVectorEnv

_DOC = """Perturb an image, within an L∞ budget and without changing its label, to move its attribution map.

## Description
Attributional robustness as a sequential attack (Ghorbani, Abid & Zou, "Interpretation of Neural
Networks is Fragile", AAAI 2019; Kamath et al., "Rethinking Robustness of Model Attributions"
(LENS), AAAI 2024). A frozen classifier predicts class ``c`` for an image ``x``; an explainer
(vanilla gradient by default, or any ``Explainer``: Integrated Gradients, SmoothGrad, Grad-CAM,
RISE, ...) gives its attribution map ``m(x)``. Each step the agent adds a small perturbation; the
perturbation ``δ`` is projected onto the L∞ ball ``‖δ‖∞ ≤ epsilon`` and the pixel range
``0 ≤ x + δ ≤ 1``. The agent is rewarded by how much further the map ``m(x + δ)`` of the perturbed
image moves from ``m(x)`` under the chosen dissimilarity, as long as the classifier still predicts
``c``.

## Action Space
Two designs (``action_type=``):
- ``"cell_sign"`` (default): ``Discrete(2 * cells)``. The image is divided into a ``grid`` lattice
  of cells (as in the saliency-search envs); action ``a < cells`` adds ``+step_size`` to every
  pixel and channel of cell ``a``, action ``cells + a`` adds ``-step_size``. A small discrete
  action set that PPO/DQN explore easily, and the signed, local steps are what an L∞ attack
  takes (Ghorbani et al.'s iterations are signed steps too).
- ``"continuous"``: ``Box(-1, 1, (C, rows, cols), float32)``, a low-resolution signed perturbation
  direction upsampled to the image by repeating each cell's value over its pixels, scaled by
  ``step_size`` and added. With ``grid=(H, W)`` it is a full-resolution per-pixel step, which is
  how the white-box attacks of ``saliency_gym.baselines.attacks`` act as policies.
The default ``step_size`` is ``epsilon / 4``: four steps in one direction reach the boundary.

## Observation Space
``Dict`` of:
- ``"image"``: ``Box(0, 1, (C, H, W), float32)``, the original image ``x`` (constant in an episode).
- ``"perturbation"``: ``Box(-epsilon, epsilon, (C, H, W), float32)``, the current ``δ``; the
  perturbed image is ``x + δ``, always in [0, 1].
- ``"attribution"``: ``Box(-1, 1, (H, W), float32)``, the current map ``m(x + δ)`` (after
  ``map_transform``), divided by its largest magnitude (a map of zeros stays zero); with the
  default ``map_transform="abs"`` it lies in [0, 1].
- ``"budget"``: ``Box(0, 1, (1,), float32)``, the fraction of the ``budget`` steps left.

## Rewards
The shift of a state is ``D(m(x), m(x + δ))`` with ``D = 1 - similarity`` from
``saliency_gym.metrics.similarity.dissimilarity`` (``dissimilarity=``): ``"topk"`` (1 - top-k
intersection, Ghorbani et al.), ``"lens_recall"`` / ``"lens_precision"`` (1 - w-LENS-recall@k /
-precision@k, Kamath et al.), ``"topk_div"``, ``"lens_recall_div"``, ``"lens_precision_div"`` (the
same on the diversity-aware top-k sets of LENS: the attribution post-processing defence),
``"spearman"``, ``"kendall"`` (1 - rank correlation; ``nan_value`` for constant maps). The *kept
shift* is the shift of the latest state still classified ``c``. Each step earns
- ``shift``: the increase of the kept shift, so the undiscounted return's shift part telescopes to
  the kept shift at the end of the episode minus its start (0 unless a rank correlation of a
  constant map is involved) and never credits a state whose label changed;
- ``penalty``: ``label_change_penalty`` (default -1) when the step's perturbed image is classified
  differently from ``x``.
``info["rewards"]`` breaks the reward into ``shift`` and ``penalty``.

## Label-kept rule
``on_label_change=`` decides what happens when a step would change the prediction:
``"revert"`` (default) undoes the step (the state keeps the label at all times), ``"penalize"``
keeps the state (the next steps may restore the label), ``"terminate"`` keeps the state and ends
the episode. In every mode ``info["label_kept"]`` says whether the current state keeps the label,
``info["label_changes"]`` counts the steps that changed it, and ``info["kept_shift"]`` is the shift
to report for the episode (the shift of a label-kept state).

## Starting State
An image is drawn uniformly from the data source with the environment's seeded generator (or
chosen with ``reset(options={"image_index": i})``), ``δ = 0``, and ``c`` is the classifier's
prediction for it. Reset costs one classifier query and one explanation.

## Episode End
Terminated after ``budget`` steps (default 16; the budget left is observed, so the horizon is part
of the state), or at the first label change with ``on_label_change="terminate"``. Never truncated
by the environment itself.

## Info
``shift``, ``initial_shift``, ``kept_shift``, ``label_kept``, ``prediction``, ``target`` (``c``),
``label`` (ground truth), ``image_index``, ``queries`` (classifier images used in the episode,
explanations included), ``steps``, ``label_changes``, ``linf`` (``‖δ‖∞``); after a step also
``label_changed`` (this step's candidate changed the prediction), ``reverted`` and ``rewards``.

## Arguments
- ``classifier``: a ``FrozenClassifier``, a shipped name (``"shapes"``, ``"shapes_robust"``,
  ``"digits"``) or a checkpoint path. Default ``"shapes"``.
- ``data``, ``split``, ``image``, ``label``: as in the saliency-search envs (default: the
  classifier's own dataset, ``split="train"``).
- ``explainer``: an explainer name (``saliency_gym.baselines.available_explainers()``, default
  ``"gradient"``) or an ``Explainer`` bound to the same classifier; ``explainer_options``: its
  keyword arguments when given by name (e.g. ``{"n_steps": 16}`` for Integrated Gradients).
- ``map_transform``: ``"abs"`` (default; rank pixels by attribution magnitude, as Ghorbani et al.)
  or ``"none"``.
- ``dissimilarity``: see Rewards (default ``"topk"``); ``k``: top-k size (default ``H * W // 10``);
  ``w``: LENS neighbourhood / top-k-div suppression radius (default 1, 3x3 windows);
  ``nan_value``: dissimilarity used when a rank correlation is undefined (default 1.0).
- ``epsilon``: L∞ radius in pixel units (default ``8 / 255``).
- ``action_type``: ``"cell_sign"`` (default) or ``"continuous"``; ``grid``: cells per side or
  ``(rows, cols)`` (default 8); ``step_size``: pixel change per step (default ``epsilon / 4``).
- ``budget``: steps per episode (default 16).
- ``on_label_change``: ``"revert"`` (default), ``"penalize"`` or ``"terminate"``;
  ``label_change_penalty``: reward of a label-changing step (``<= 0``, default -1).
- ``device``: for a classifier given by name. ``render_mode``: ``"rgb_array"`` shows the image,
  the perturbed image, the original map and the current map side by side.

## Registered Configurations
- ``saliency_gym/AttributionAttack-v0`` (shapes classifier and data by default; every argument above)
- ``saliency_gym/AttributionAttack-Shapes-v0``: the shipped natural shapes classifier, 32x32
- ``saliency_gym/AttributionAttack-ShapesRobust-v0``: the PGD-trained ``shapes_robust`` classifier
- ``saliency_gym/AttributionAttack-Digits-v0``: the shipped digits classifier, 32x32
- ``saliency_gym/AttributionAttack-Shapes64-v0``: the shipped shapes64 classifier, 64x64
``gym.make_vec(id, num_envs=N)`` builds the native vector env: one batched classifier query and
one batched explanation per step.
"""


def build_attack_spaces(config: AttributionAttackConfig) -> tuple[spaces.Dict, spaces.Space]:
    """The single-environment observation and action spaces of a configuration."""
    c, h, w = config.classifier.input_shape
    eps = np.float32(config.epsilon)
    obs = spaces.Dict(
        {
            "image": spaces.Box(0.0, 1.0, (c, h, w), np.float32),
            "perturbation": spaces.Box(-eps, eps, (c, h, w), np.float32),
            "attribution": spaces.Box(-1.0, 1.0, (h, w), np.float32),
            "budget": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
    )
    if config.action_type == "cell_sign":
        action: spaces.Space = spaces.Discrete(2 * config.grid.num_cells)
    else:
        action = spaces.Box(-1.0, 1.0, (c, *config.grid.shape), np.float32)
    return obs, action


def _check_actions(actions: Any, n: int, config: AttributionAttackConfig) -> np.ndarray:
    arr = np.asarray(actions)
    if config.action_type == "cell_sign":
        n_actions = 2 * config.grid.num_cells
        if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
            if arr.shape == (n,) and np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"actions must be {n} integer action id(s) in [0, {n_actions - 1}], got {actions!r}")
        if arr.size and (arr.min() < 0 or arr.max() >= n_actions):
            raise ValueError(f"actions must be action ids in [0, {n_actions - 1}] (cell, then sign), got {arr.tolist()}")
        return arr.astype(np.int64)
    shape = (n, config.classifier.input_shape[0], *config.grid.shape)
    if arr.shape != shape or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"continuous actions must be real arrays of shape {shape}, got {getattr(arr, 'shape', None)} {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError("continuous actions must be finite")
    return arr.astype(np.float32)  # values outside [-1, 1] are clipped, as SB3's Box policies expect


def _reward_breakdown(outcome: AttackStepOutcome, i: int) -> dict[str, float]:
    return {"shift": float(outcome.reward_shift[i]), "penalty": float(outcome.reward_penalty[i])}


def render_attack(core: AttributionAttackCore, i: int) -> np.ndarray:
    """``rgb_array`` frame of episode ``i``: image | perturbed image | original map | current map."""
    image = _to_rgb(core.images_np[i])
    perturbed = _to_rgb(np.clip(core.images_np[i] + core.delta_np[i], 0.0, 1.0))
    gap = np.full((image.shape[0], _GAP // SCALE or 1, 3), 255, np.uint8)
    frame = np.concatenate([image, gap, perturbed, gap, _heatmap(core.original_maps[i]), gap, _heatmap(core.maps[i])], axis=1)
    return np.kron(frame, np.ones((SCALE, SCALE, 1), np.uint8))


class AttributionAttackEnv(gym.Env):
    __doc__ = _DOC
    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported; choose {self.metadata['render_modes']} or None")
        self.render_mode = render_mode
        self.config = AttributionAttackConfig.from_kwargs(**kwargs)
        self.core = AttributionAttackCore(self.config, 1)
        self.observation_space, self.action_space = build_attack_spaces(self.config)
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.core.rngs[0] = self.np_random
        self.core.advance(None, np.zeros(1, bool), np.ones(1, bool), options=options)
        self._needs_reset = False
        return self._obs(), self.core.episode_info(0)

    def step(self, action: Any):
        if self._needs_reset:
            raise RuntimeError("the episode has ended (or never started): call reset() before step()")
        arr = np.asarray(action)
        single_id = self.config.action_type == "cell_sign" and arr.ndim <= 1 and arr.size == 1
        batched = arr.reshape(1) if single_id else arr[None]
        actions = _check_actions(batched, 1, self.config)
        outcome = self.core.advance(actions, np.ones(1, bool), np.zeros(1, bool))
        terminated, truncated = bool(outcome.terminated[0]), bool(outcome.truncated[0])
        self._needs_reset = terminated or truncated
        info = self.core.episode_info(0)
        info["label_changed"] = bool(outcome.label_changed[0])
        info["reverted"] = bool(outcome.reverted[0])
        info["rewards"] = _reward_breakdown(outcome, 0)
        return self._obs(), float(outcome.rewards[0]), terminated, truncated, info

    def _obs(self) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.core.observation().items()}

    def adversarial_image(self) -> np.ndarray:
        """The current perturbed image ``x + δ``, ``(C, H, W)`` float32 in [0, 1]."""
        return self.core.adversarial_images(slice(0, 1))[0].cpu().numpy()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return render_attack(self.core, 0)


class AttributionAttackVectorEnv(BatchedVectorEnv):
    """Native vector version of :class:`AttributionAttackEnv`: ``num_envs`` attacks stepped with one
    batched classifier query and one batched explanation per step.

    Sub-environment ``i`` reset with ``seed + i`` plays exactly the episodes of a single environment
    reset with that seed (up to the explainer's batch-size round-off; SmoothGrad draws its noise per
    batch, so its maps depend on the batch). ``autoreset_mode`` is Gymnasium's ``NEXT_STEP`` (default)
    or ``SAME_STEP`` (the finished episode's final observation is in ``info["final_obs"]``; the SB3
    adapter uses this mode).
    """

    def __init__(
        self,
        num_envs: int = 1,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ) -> None:
        def build(n: int):
            config = AttributionAttackConfig.from_kwargs(**kwargs)
            return (config, AttributionAttackCore(config, n), *build_attack_spaces(config))

        self._setup(num_envs, render_mode, autoreset_mode, build)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        all_envs = self._reset_all(seed, options)
        return self.core.observation(), self._infos(all_envs)

    def step(self, actions: Any):
        self._check_started()
        actions = _check_actions(actions, self.num_envs, self.config)
        step_mask, reset_mask = self._step_masks()
        outcome = self.core.advance(actions, step_mask, reset_mask)
        done = (outcome.terminated | outcome.truncated) & step_mask
        infos = self._infos(step_mask)
        infos["label_changed"] = outcome.label_changed.copy()
        infos["reverted"] = outcome.reverted.copy()
        infos["reward_shift"] = outcome.reward_shift.copy()
        infos["reward_penalty"] = outcome.reward_penalty.copy()
        obs = self._finish_step(done, infos)
        return obs, outcome.rewards.copy(), outcome.terminated & step_mask, outcome.truncated & step_mask, infos

    def _infos(self, valid: np.ndarray) -> dict[str, Any]:
        """Gymnasium vector infos: arrays over sub-environments, with ``_key`` masks."""
        infos: dict[str, Any] = self.core.info_arrays()
        for key in list(infos):
            infos[f"_{key}"] = valid.copy()
        return infos

    def adversarial_images(self) -> np.ndarray:
        """The current perturbed images ``x + δ``, ``(num_envs, C, H, W)`` float32 in [0, 1]."""
        return self.core.adversarial_images().cpu().numpy()

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array":
            return None
        return tuple(render_attack(self.core, i) for i in range(self.num_envs))
