"""The policy explainer (RExL inference): a deterministic rollout of a policy is a saliency map.

:class:`PolicyExplainer` runs one saliency-search episode per image, all images in one batch (one
environment engine of ``N`` episodes), and turns each episode into a map:

- ``scoring="gain"`` (RExL): each cell is scored by the evidence gain it brought when chosen.
  This needs the score after every step: ``K + 1`` classifier queries per image (reveal) or
  ``K + 1`` (mask: the image, then each step).
- ``scoring="order"``: each cell is scored by how early it was chosen, ``(K - rank) / K``. A
  policy that needs no classifier feedback (it sees the image, the canvas and the chosen cells)
  then explains an image with **no classifier query at all**.

Queries and seconds are measured by :meth:`Explainer.explain` like every other explainer, so the
policy's own queries (the greedy look-ahead's, an attribution order's explainer) are counted too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saliency_gym.agents.policies import Policy
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import ArraySource
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore
from saliency_gym.explainers import Explainer
from saliency_gym.validation import check_choice

SCORINGS = ("order", "gain")


class PolicyExplainer(Explainer):
    """Saliency maps from deterministic rollouts of ``policy`` in a saliency-search episode.

    Args:
        classifier: the model to explain.
        policy: the policy that orders the cells.
        mode: ``"reveal"`` (insertion) or ``"mask"`` (deletion) episodes.
        grid: cells per side or ``(rows, cols)``, as the environments take it.
        substrate: what hidden/masked cells show (default as the environments: blur / zeros).
        scoring: ``"order"`` or ``"gain"`` (see the module docstring).
        budget: cells per episode (default all); cells never chosen rank last.
        name: label used in tables (default: the policy's name).
    """

    def __init__(
        self,
        classifier: FrozenClassifier,
        policy: Policy,
        *,
        mode: str = "reveal",
        grid: int | tuple[int, int] = 8,
        substrate: Any = None,
        scoring: str = "order",
        budget: int | None = None,
        observe_score: bool | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(classifier)
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a saliency_gym.agents.Policy, got {type(policy).__name__}")
        self.policy = policy
        self.mode = check_choice("mode", mode, ("reveal", "mask"))
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        self.grid, self.substrate, self.budget = grid, substrate, budget
        self.observe_score = policy.needs_scores if observe_score is None else bool(observe_score)
        self.name = name or f"{policy.name}"
        # Validate the settings once, on a dummy image, so errors surface at construction.
        self._config(np.zeros((1, *classifier.input_shape), np.float32), np.zeros(1, np.int64))

    def _config(self, images: np.ndarray, targets: np.ndarray) -> SaliencySearchConfig:
        names = self.classifier.class_names or tuple(str(i) for i in range(self.classifier.num_classes))
        data = ArraySource(images, targets, class_names=names, name="explained")
        return SaliencySearchConfig.from_kwargs(
            self.mode, classifier=self.classifier, data=data, grid=self.grid, substrate=self.substrate,
            budget=self.budget, target="label", observe_score=self.observe_score,
        )  # fmt: skip

    @property
    def needs_queries(self) -> bool:
        """Whether the rollout itself asks the classifier (gain scoring or a score-observing policy)."""
        return self.scoring == "gain" or self.policy.needs_scores

    def rollout(self, images: torch.Tensor, targets: torch.Tensor) -> SaliencySearchCore:
        """Play one episode per image to its end and return the engine holding the episodes."""
        n = images.shape[0]
        cfg = self._config(images.detach().cpu().numpy(), targets.cpu().numpy())
        core = SaliencySearchCore(cfg, n)
        score = self.needs_queries
        everyone, nobody = np.ones(n, bool), np.zeros(n, bool)
        core.advance(None, nobody, everyone, options={"image_index": np.arange(n)}, score=score)
        self.policy.reset(core)
        for _ in range(cfg.budget):
            actions = np.asarray(self.policy.act(core.observation(), core.action_masks(), core=core), dtype=np.int64)
            if not core.action_masks()[np.arange(n), actions].all():
                raise RuntimeError(f"policy {self.policy.name} chose a cell it was not allowed to")
            core.advance(actions, everyone, nobody, score=score)
        return core

    def attribute(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        core = self.rollout(images, targets)
        k = core.num_cells
        maps = np.empty((images.shape[0], *images.shape[2:]), np.float32)
        for i in range(images.shape[0]):
            if self.scoring == "gain":
                maps[i] = core.saliency_map(i)
            else:
                chosen = int(core.n_chosen[i])
                values = np.full(k, -1.0 / k)  # never chosen: below every chosen cell
                values[core.order[i, :chosen]] = (k - np.arange(chosen)) / k
                maps[i] = core.cfg.grid.to_pixels(values)
        return torch.from_numpy(maps)
