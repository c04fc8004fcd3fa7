"""Attribution attacks (LENS) as Gymnasium environments.

``AttributionAttackEnv`` is the single environment and ``AttributionAttackVectorEnv`` its native
vector version (what ``gym.make_vec`` builds). Both are the shared skeletons
(:class:`~saliency_gym.envs.base.BatchedEngineEnv`,
:class:`~saliency_gym.envs.vector_base.BatchedVectorEnv`) over one batched engine,
:class:`~saliency_gym.envs.attack_core.AttributionAttackCore`, with ``N = 1`` or ``N = num_envs``;
this module holds the family: its spaces, its action check and the documentation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from saliency_gym.envs.attack_config import AttributionAttackConfig
from saliency_gym.envs.attack_core import AttributionAttackCore
from saliency_gym.envs.base import BatchedEngineEnv, EnvFamily
from saliency_gym.envs.common_config import action_mask_space
from saliency_gym.envs.engine import check_box_actions, check_discrete_actions
from saliency_gym.envs.render import render_attack
from saliency_gym.envs.vector_base import BatchedVectorEnv

__all__ = [
    "ATTACK_FAMILY",
    "AttributionAttackEnv",
    "AttributionAttackVectorEnv",
    "build_attack_spaces",
    "check_attack_actions",
    "render_attack",
]


def build_attack_spaces(config: AttributionAttackConfig) -> tuple[spaces.Dict, spaces.Space[Any]]:
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
    if config.observe_original:
        obs["original_attribution"] = spaces.Box(-1.0, 1.0, (h, w), np.float32)
    if config.observe_action_mask:  # cell_sign only (checked by the configuration)
        obs["action_mask"] = action_mask_space(2 * config.grid.num_cells)
    if config.action_type == "cell_sign":
        action: spaces.Space[Any] = spaces.Discrete(2 * config.grid.num_cells)
    else:
        action = spaces.Box(-1.0, 1.0, (c, *config.grid.shape), np.float32)
    return obs, action


def check_attack_actions(actions: Any, n: int, config: AttributionAttackConfig) -> np.ndarray:
    """``n`` actions of the configured ``action_type``: action ids in ``[0, 2 * cells)``, or real,
    finite ``(n, C, rows, cols)`` directions (clipped to [-1, 1] by the engine); else ``ValueError``."""
    if config.action_type == "cell_sign":
        return check_discrete_actions(actions, n, 2 * config.grid.num_cells, noun="action id", hint=" (cell, then sign)")
    return check_box_actions(actions, (n, config.classifier.input_shape[0], *config.grid.shape))


#: The attribution-attack family: configuration, engine, spaces and action check.
ATTACK_FAMILY: EnvFamily[AttributionAttackConfig, AttributionAttackCore] = EnvFamily(
    make_config=AttributionAttackConfig.from_kwargs,
    make_engine=AttributionAttackCore,
    build_spaces=build_attack_spaces,
    check_actions=check_attack_actions,
)


class AttributionAttackEnv(BatchedEngineEnv[AttributionAttackConfig, AttributionAttackCore]):
    """Perturb an image, within an L∞ budget and without changing its label, to move its attribution map.

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
      takes (Ghorbani et al.'s iterations are signed steps too). With ``step_pattern="noise"`` each
      pixel and channel of the cell moves by ``step_size`` times a fixed random sign (seeded by
      ``pattern_seed``, the same in every episode): a local random-sign patch, the perturbation that
      moves gradient maps most for its size, and still one learnable action per cell and sign.
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
    - ``"original_attribution"`` (only with ``observe_original=True``): ``Box(-1, 1, (H, W), float32)``,
      the map ``m(x)`` of the original image, scaled as ``"attribution"`` (constant in an episode), so
      a policy sees how far the map has moved.
    - ``"action_mask"`` (only with ``observe_action_mask=True``, ``"cell_sign"`` actions):
      ``Box(0, 1, (2 * cells,), float32)``, all ones (every signed cell step is always allowed; it
      is ``action_masks()``), so action-masking learners (RLlib) run on attacks too.

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
    With ``reward="best"`` the ``shift`` part is instead the increase of the *best* kept shift of the
    episode so far (``info["best_shift"]``), so the return is the best label-kept state's shift minus
    the start's: the objective of an attack that returns its best iterate (Ghorbani et al.'s, and
    ``policy_attack(selection="best")``), under which trying a step that turns out worse costs
    nothing.
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
    prediction for it. Reset costs one classifier query and one explanation. With
    ``start="pattern"`` the episode then moves to ``δ = epsilon * s`` (``s`` the step pattern's signs
    in every cell, projected onto [0, 1]): a random-sign start, as PGD's random start, whose shift is
    the ``initial_shift`` (so the return counts what the steps add to it); it costs one more query
    and one more explanation, and is skipped (``δ`` stays 0) where it would change the label.

    ## Episode End
    Terminated after ``budget`` steps (default 16; the budget left is observed, so the horizon is part
    of the state), or at the first label change with ``on_label_change="terminate"``. Never truncated
    by the environment itself.

    ## Info
    ``shift``, ``initial_shift``, ``kept_shift``, ``best_shift``, ``label_kept``, ``prediction``, ``target`` (``c``),
    ``label`` (ground truth), ``image_index``, ``queries`` (classifier images used in the episode,
    explanations included), ``explanations`` (maps computed in the episode), ``steps``, ``label_changes``, ``linf`` (``‖δ‖∞``); after a step also
    ``label_changed`` (this step's candidate changed the prediction), ``reverted`` and ``rewards``.

    ## Arguments
    - ``classifier``: a ``FrozenClassifier``, a shipped name (``"shapes"``, ``"shapes_robust"``,
      ``"digits"``) or a checkpoint path. Default ``"shapes"``.
    - ``data``, ``split``, ``image``, ``label``: as in the saliency-search envs (default: the
      classifier's own dataset, ``split="train"``).
    - ``explainer``: an explainer name (``saliency_gym.explainers.available_explainers()``, default
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
    - ``step_pattern``: ``"uniform"`` (default) or ``"noise"`` cell steps (``"cell_sign"`` only; see
      Action Space); ``pattern_seed``: seed of the ``"noise"`` signs (default 0).
    - ``start``: ``"zero"`` (default: ``δ = 0``) or ``"pattern"`` (see Starting State).
    - ``reward``: ``"kept"`` (default) or ``"best"`` (see Rewards).
    - ``observe_original``: add ``"original_attribution"`` to the observation (default False).
    - ``budget``: steps per episode (default 16).
    - ``on_label_change``: ``"revert"`` (default), ``"penalize"`` or ``"terminate"``;
      ``label_change_penalty``: reward of a label-changing step (``<= 0``, default -1).
    - ``observe_action_mask``: add ``"action_mask"`` to the observation (default False; needs
      ``action_type="cell_sign"``).
    - ``device``: for a classifier given by name. ``render_mode``: ``"rgb_array"`` returns labelled
      frames (the image, the perturbed image, the original map and the current map side by side);
      ``"human"`` shows them in a matplotlib window (needs a GUI backend).

    ## Registered Configurations
    - ``saliency_gym/AttributionAttack-v0`` (shapes classifier and data by default; every argument above)
    - ``saliency_gym/AttributionAttack-Shapes-v0``: the shipped natural shapes classifier, 32x32
    - ``saliency_gym/AttributionAttack-ShapesRobust-v0``: the PGD-trained ``shapes_robust`` classifier
    - ``saliency_gym/AttributionAttack-Digits-v0``: the shipped digits classifier, 32x32
    - ``saliency_gym/AttributionAttack-Shapes64-v0``: the shipped shapes64 classifier, 64x64
    - ``saliency_gym/AttributionAttack-ShapesCluttered-v0``: the shipped shapes_cluttered classifier, 64x64
    ``gym.make_vec(id, num_envs=N)`` builds the native vector env: one batched classifier query and
    one batched explanation per step.
    """

    family = ATTACK_FAMILY

    def action_masks(self) -> np.ndarray:
        """Boolean ``(2 * cells,)``, all True (``"cell_sign"`` actions; ``ValueError`` for continuous ones)."""
        return self.core.action_masks()[0].copy()

    def adversarial_image(self) -> np.ndarray:
        """The current perturbed image ``x + δ``, ``(C, H, W)`` float32 in [0, 1]."""
        return self.core.adversarial_images(slice(0, 1))[0].cpu().numpy()


class AttributionAttackVectorEnv(BatchedVectorEnv[AttributionAttackConfig, AttributionAttackCore]):
    """Native vector version of :class:`AttributionAttackEnv`: ``num_envs`` attacks stepped with one
    batched classifier query and one batched explanation per step.

    Seeding and ``autoreset_mode`` (``NEXT_STEP`` or ``SAME_STEP``) are those of
    :class:`~saliency_gym.envs.vector_base.BatchedVectorEnv`; a sub-environment replays the episodes
    of the single environment seeded alike up to the explainer's batch-size round-off (SmoothGrad
    draws its noise per batch, so its maps depend on the batch). The ``info`` arrays are those of the
    single environment (``shift``, ``kept_shift``, ``label_kept``, ...), batched, plus
    ``label_changed``, ``reverted``, ``reward_shift`` and ``reward_penalty`` after a step.
    """

    family = ATTACK_FAMILY

    def action_masks(self) -> np.ndarray:
        """Boolean ``(num_envs, 2 * cells)``, all True (``"cell_sign"`` actions only)."""
        return self.core.action_masks().copy()

    def adversarial_images(self) -> np.ndarray:
        """The current perturbed images ``x + δ``, ``(num_envs, C, H, W)`` float32 in [0, 1]."""
        return self.core.adversarial_images().cpu().numpy()
