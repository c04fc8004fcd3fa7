"""The policy explainer (RExL inference): a deterministic rollout of a policy is a saliency map.

:class:`PolicyExplainer` runs one saliency-search episode per image, all images in one batch (one
environment engine of ``N`` episodes), and turns each episode into a map:

- ``scoring="gain"`` (RExL): each cell is scored by the evidence gain it brought when chosen.
  This needs the score at the start and after every step: ``B + 1`` classifier queries per image
  for an episode of ``B`` cells (``B = K``, every cell, by default), in both modes (reveal: the
  substrate, then each step; mask: the image, then each step).
- ``scoring="order"``: each cell is scored by how early it was chosen, ``(K - rank) / K``. A
  policy that needs no classifier feedback (it sees the image, the canvas and the chosen cells)
  then explains an image with **no classifier query at all**.

Queries and seconds are measured by :meth:`Explainer.explain` like every other explainer, so the
policy's own queries (the greedy look-ahead's, an attribution order's explainer) are counted too;
:meth:`PolicyExplainer.expected_queries` states them in advance.

The explainer is registered as ``"policy"`` (an entry point), so
``make_explainer("policy", classifier, policy="shapes_reveal")`` rolls out a shipped agent (a name
or a checkpoint path, loaded by :mod:`saliency_gym.agents.pretrained`) with its training settings;
a run folder of ``saliency-gym train --engine ray`` (or its ``final/``) is loaded by
:func:`saliency_gym.distributed.rllib_policy.load_rllib_policy` (the ``[ray]`` extra).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

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


def _is_rllib_run(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by ``saliency-gym train --engine ray`` (checked without
    importing Ray; a missing ``[ray]`` extra only matters when such a folder is given)."""
    from saliency_gym.distributed.rllib_policy import is_rllib_policy_path

    return is_rllib_policy_path(path)


class PolicyExplainer(Explainer):
    """Saliency maps from deterministic rollouts of ``policy`` in a saliency-search episode.

    Args:
        classifier: the model to explain.
        policy: the policy that orders the cells, or the name or path of a trained agent (see
            :func:`~saliency_gym.agents.pretrained.shipped_agents`), loaded on the classifier's
            device; an agent's training settings are then the defaults of ``mode``, ``grid``,
            ``substrate`` and ``observe_score``.
        mode: ``"reveal"`` (insertion, the default) or ``"mask"`` (deletion) episodes.
        grid: cells per side or ``(rows, cols)``, as the environments take it (default 8).
        substrate: what hidden/masked cells show (default as the environments: blur / zeros).
        scoring: ``"order"`` or ``"gain"`` (see the module docstring).
        budget: cells per episode (default all); cells never chosen rank last.
        observe_score: whether the policy observes the score (default: what the policy needs).
        name: label used in tables (default: the policy's name).
    """

    name: ClassVar[str] = "policy"  # the registry's name; instances carry the policy's label

    def __init__(
        self,
        classifier: FrozenClassifier,
        policy: Policy | str | os.PathLike[str],
        *,
        mode: str | None = None,
        grid: int | tuple[int, int] | None = None,
        substrate: Any = None,
        scoring: str = "order",
        budget: int | None = None,
        observe_score: bool | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(classifier)
        if isinstance(policy, (str, os.PathLike)) and _is_rllib_run(policy):
            # A folder of `saliency-gym train --engine ray`: Ray is imported only here.
            from saliency_gym.distributed.rllib_policy import load_rllib_policy

            policy, settings = load_rllib_policy(policy, device=str(classifier.device))
            mode = settings["mode"] if mode is None else mode
            grid = settings["grid"] if grid is None else grid
            substrate = settings["substrate"] if substrate is None else substrate
            observe_score = settings["observe_score"] if observe_score is None else observe_score
        elif isinstance(policy, (str, os.PathLike)):
            from saliency_gym.agents.pretrained import load_agent_policy  # SB3 is loaded only here

            policy, info = load_agent_policy(policy, device=str(classifier.device))
            trained = info["config"]
            mode = trained.mode if mode is None else mode
            grid = trained.grid.shape if grid is None else grid
            substrate = trained.substrate if substrate is None else substrate
            observe_score = trained.observe_score if observe_score is None else observe_score
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a saliency_gym.agents.Policy or an agent's name, got {type(policy).__name__}")
        self.policy = policy
        self.mode = check_choice("mode", "reveal" if mode is None else mode, ("reveal", "mask"))
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        self.grid = 8 if grid is None else grid
        self.substrate, self.budget = substrate, budget
        self.observe_score = policy.needs_scores if observe_score is None else bool(observe_score)
        self.name = name or f"{policy.name}"  # type: ignore[misc]
        # Validate the settings once, on a dummy image, so errors surface at construction.
        self._dummy = self._config(np.zeros((1, *classifier.input_shape), np.float32), np.zeros(1, np.int64))

    def _config(self, images: np.ndarray, targets: np.ndarray) -> SaliencySearchConfig:
        names = self.classifier.class_names or tuple(str(i) for i in range(self.classifier.num_classes))
        data = ArraySource(images, targets, class_names=names, name="explained")
        return SaliencySearchConfig.from_kwargs(
            self.mode, classifier=self.classifier, data=data, grid=self.grid, substrate=self.substrate,
            budget=self.budget, target="label", observe_score=self.observe_score,
            observe_class=self.policy.needs_class,
        )  # fmt: skip

    @property
    def needs_queries(self) -> bool:
        """Whether the rollout itself asks the classifier (gain scoring or a score-observing policy)."""
        return self.scoring == "gain" or self.policy.needs_scores

    def expected_queries(self) -> float | None:
        """Queries per image: ``B + 1`` for a scored rollout of ``B`` cells (gain scoring or a
        score-observing policy), 0 otherwise, plus the policy's own (``None`` if unknown)."""
        cells, budget = self._dummy.grid.num_cells, self._dummy.budget
        own = self.policy.expected_queries(cells, budget)
        if own is None:
            return None
        return (budget + 1 if self.needs_queries else 0) + own

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

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
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
