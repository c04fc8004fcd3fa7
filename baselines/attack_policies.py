"""Attacks on attributions as policies of the attribution-attack environments, and policies as attacks.

:class:`RandomSignPolicy` (LENS's random baseline) and :class:`WhiteBoxAttackPolicy` (Ghorbani et
al.'s and the LENS-aware attack steps) act on the observations of
``saliency_gym/AttributionAttack-v0``, so the environments' returns can be compared with the
attacks of :mod:`saliency_gym.baselines.attacks` step for step. :func:`policy_attack` goes the
other way: it rolls any policy of the environment (a trained agent, the random policy) out on a
batch of images and returns the same :class:`~saliency_gym.baselines.attacks.AttackResult` as the
classical attacks, so a benchmark scores them alike.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from saliency_gym.baselines.attacks import (
    OBJECTIVES,
    AttackResult,
    WHITE_BOX_EXPLAINERS,
    center_of_mass,
    differentiable_attribution,
    load_surrogate,
    objective_value,
    transform_maps,
)
from saliency_gym.explainers import Explainer
from saliency_gym.metrics.similarity import neighbourhood_mask, topk_mask
from saliency_gym.validation import as_image_batch, check_choice, check_float, check_int

#: How :func:`policy_attack` picks the returned state of each episode.
SELECTIONS = ("best", "last")


def _batched(obs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
    single = obs["image"].ndim == 3
    return ({key: value[None] for key, value in obs.items()} if single else obs), single


class RandomSignPolicy:
    """LENS's random attack as a policy of the attack environments (either action type).

    ``"cell_sign"`` actions: a uniformly random cell and sign; ``"continuous"``: a random sign per
    cell and channel (with a full-resolution grid this is the random sign attack spread over steps).
    """

    name = "random_sign"

    def __init__(self, action_space: spaces.Space, seed: int = 0) -> None:
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise TypeError(f"action_space must be the attack env's Discrete or Box space, got {action_space}")
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def predict(self, obs: dict[str, np.ndarray], deterministic: bool = False) -> tuple[np.ndarray, None]:
        batch, single = _batched(obs)
        n = batch["image"].shape[0]
        actions: np.ndarray
        if isinstance(self.action_space, spaces.Discrete):
            actions = self.rng.integers(0, int(self.action_space.n), size=(n,))
        else:
            actions = self.rng.choice(np.array([-1.0, 1.0], np.float32), size=(n, *self.action_space.shape))
        return (actions[0] if single else actions), None


class WhiteBoxAttackPolicy:
    """Ghorbani et al.'s (or the LENS-aware) attack step as a policy of the ``"continuous"`` env.

    Reads the original image and perturbation from the observation and returns the sign of the
    objective's gradient at ``x + δ`` as the action; the environment scales it by ``step_size`` and
    projects. Needs ``grid`` equal to the image size (one action value per pixel and channel). The
    original map and target are computed on the first call for each new original image.

    Args:
        explainer: the attacked explainer (as the environment's).
        objective: ``"topk"``, ``"lens_topk"`` or ``"mass_center"``.
        k, w, map_transform: as the environment's.
        surrogate: default :func:`load_surrogate`.
    """

    name = "white_box"

    def __init__(
        self, explainer: Explainer, objective: str = "topk", k: int | None = None, w: int = 1,
        map_transform: str = "abs", surrogate: nn.Module | None = None,
    ) -> None:  # fmt: skip
        check_choice("objective", objective, OBJECTIVES)
        check_choice("explainer (white-box attacks)", getattr(explainer, "name", None), WHITE_BOX_EXPLAINERS)
        self.explainer, self.objective, self.w, self.map_transform = explainer, objective, w, map_transform
        _, h, width = explainer.classifier.input_shape
        self.k = max(1, h * width // 10) if k is None else check_int("k", k, minimum=1, maximum=h * width)
        self.surrogate = load_surrogate(explainer.classifier) if surrogate is None else surrogate
        self._cache: tuple[np.ndarray, Any] | None = None

    def _reference(self, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._cache is None or self._cache[0].shape != images.shape or not np.array_equal(self._cache[0], images):
            clf = self.explainer.classifier
            x = torch.as_tensor(images, device=clf.device)
            targets = clf.predict(x).cpu().numpy()
            maps = transform_maps(self.explainer.explain(x, targets).maps, self.map_transform)
            top = topk_mask(maps, self.k)
            region = neighbourhood_mask(top, self.w) if self.objective == "lens_topk" else top
            ref = torch.as_tensor(maps, device=clf.device)
            center = center_of_mass(ref / ref.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12))
            self._cache = (images.copy(), (torch.as_tensor(targets, device=clf.device), torch.as_tensor(region, dtype=x.dtype, device=clf.device), center))
        return self._cache[1]

    def predict(self, obs: dict[str, np.ndarray], deterministic: bool = True) -> tuple[np.ndarray, None]:
        batch, single = _batched(obs)
        targets, region, center = self._reference(batch["image"])
        device = self.explainer.classifier.device
        adv = torch.as_tensor(np.clip(batch["image"] + batch["perturbation"], 0.0, 1.0), device=device).requires_grad_(True)
        with torch.enable_grad():
            maps = differentiable_attribution(self.explainer, self.surrogate, adv, targets)
            loss = objective_value(self.objective, maps, region, center, self.map_transform).sum()
            (grad,) = torch.autograd.grad(loss, adv)
        actions = grad.sign().cpu().numpy().astype(np.float32)
        return (actions[0] if single else actions), None


class AttackPolicy(Protocol):
    """What :func:`policy_attack` rolls out: SB3's ``predict`` signature (an SB3 model or policy, a
    :class:`RandomSignPolicy`, ...), batched observations in, one action per episode out."""

    def predict(self, observation: Any, deterministic: bool = ...) -> tuple[Any, Any]: ...


def policy_attack(
    policy: AttackPolicy,
    explainer: Explainer,
    images: Any,
    epsilon: float,
    *,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    selection: str = "best",
    name: str = "policy",
) -> AttackResult:
    """Attack ``images`` by rolling ``policy`` out in the attribution-attack environment.

    One vector environment of ``len(images)`` episodes (one per image, in order) is stepped for its
    ``budget``: per step one batched classifier query and one batched explanation, as in training.
    The environment's rules hold throughout (L∞ projection, ``on_label_change``), so every state
    lies in the ε-ball. Returned per image is the label-kept state with the largest
    shift under the environment's ``dissimilarity`` (``selection="best"``; the classical attacks
    return their best label-kept iterate the same way, and the initial state, shift 0, is always a
    candidate) or the last label-kept state (``"last"``, what the episode's return measures).

    Args:
        policy: anything with SB3's ``predict(observations, deterministic)`` for this environment.
        explainer: the attacked explainer, bound to the classifier (the environment's ``explainer``).
        images: ``(N, C, H, W)`` in [0, 1].
        epsilon: L∞ radius.
        env_kwargs: the environment's other arguments (``grid``, ``step_size``, ``step_pattern``,
            ``budget``, ``dissimilarity``, ``k``, ``w``, ``observe_original``, ...), as the policy
            was trained with; ``classifier``, ``explainer``, ``data`` and ``epsilon`` are set here.
        deterministic: passed to ``predict``.
        selection: ``"best"`` or ``"last"`` (see above).
        name: the ``attack`` name of the result.

    Returns:
        An :class:`AttackResult`; ``explanations`` counts the maps computed (one per image at reset,
        one per adopted step), ``queries`` every classifier image, explanations included.
    """
    from saliency_gym.data.base import ArraySource
    from saliency_gym.envs.attack import AttributionAttackVectorEnv

    if not isinstance(explainer, Explainer):
        raise TypeError(f"explainer must be a saliency_gym Explainer, got {type(explainer).__name__}")
    if not callable(getattr(policy, "predict", None)):
        raise TypeError(f"policy must have SB3's predict(observations, deterministic), got {type(policy).__name__}")
    selection = check_choice("selection", selection, SELECTIONS)
    epsilon = check_float("epsilon", epsilon, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    kwargs = dict(env_kwargs or {})
    fixed = sorted({"classifier", "explainer", "data", "epsilon", "image", "label", "split"} & set(kwargs))
    if fixed:
        raise ValueError(f"env_kwargs may not set {fixed}: policy_attack sets the classifier, explainer, images and epsilon")
    classifier = explainer.classifier
    x = as_image_batch(images, expected_shape=classifier.input_shape, device=classifier.device)
    n = x.shape[0]
    start_q, start_t = classifier.queries, time.perf_counter()
    data = ArraySource(x.cpu().numpy(), np.zeros(n, np.int64), class_names=classifier.class_names or [str(i) for i in range(classifier.num_classes)],
                       name="attacked images", has_label=False)
    env = AttributionAttackVectorEnv(num_envs=n, classifier=classifier, explainer=explainer, data=data, epsilon=epsilon, **kwargs)
    try:
        core = env.core
        obs, info = env.reset(seed=0, options={"image_index": np.arange(n)})
        original_maps = core.original_maps.copy()
        best_delta, best_maps = np.zeros_like(core.delta_np), core.maps.copy()
        best_shift = np.zeros(n)
        explanations = n
        for _ in range(env.config.budget):
            actions, _ = policy.predict(obs, deterministic=deterministic)
            obs, _, _, _, info = env.step(np.asarray(actions))
            explanations += int((~np.asarray(info["reverted"], bool)).sum())
            kept = np.asarray(info["label_kept"], bool)
            better = kept & ((np.asarray(info["shift"]) > best_shift) if selection == "best" else True)
            best_delta[better] = core.delta_np[better]
            best_maps[better] = core.maps[better]
            best_shift[better] = np.asarray(info["shift"])[better]
        targets, predicted = core.targets.copy(), core.targets.copy()
    finally:
        env.close()
    adversarial = np.clip(x.cpu().numpy() + best_delta, 0.0, 1.0).astype(np.float32)
    adv_t = torch.as_tensor(adversarial, device=classifier.device)
    with classifier.uncounted():  # a check of the result, not part of the attack
        adv_pred = classifier.predict(adv_t).cpu().numpy()
    return AttackResult(
        images=x.cpu().numpy().astype(np.float32), adversarial=adversarial, original_maps=original_maps,
        adversarial_maps=best_maps, targets=targets, predictions=adv_pred, label_kept=adv_pred == predicted,
        changed=np.abs(best_delta).reshape(n, -1).max(axis=1) > 0, queries=classifier.queries - start_q,
        seconds=time.perf_counter() - start_t, attack=name, explanations=explanations,
    )  # fmt: skip
