"""Attacks on attributions as policies of the attribution-attack environments.

:class:`RandomSignPolicy` (LENS's random baseline) and :class:`WhiteBoxAttackPolicy` (Ghorbani et
al.'s and the LENS-aware attack steps) act on the observations of
``saliency_gym/AttributionAttack-v0``, so the environments' returns can be compared with the
attacks of :mod:`saliency_gym.baselines.attacks` step for step
(:func:`saliency_gym.agents.attack_rollout.policy_attack` rolls any such policy out as an attack).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from saliency_gym.baselines.attacks import (
    OBJECTIVES,
    WHITE_BOX_EXPLAINERS,
    center_of_mass,
    differentiable_attribution,
    load_surrogate,
    objective_value,
    transform_maps,
)
from saliency_gym.explainers import Explainer
from saliency_gym.metrics.similarity import neighbourhood_mask, topk_mask
from saliency_gym.validation import check_choice, check_int


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

