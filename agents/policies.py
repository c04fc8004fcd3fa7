"""Explanation policies under one interface: observation (+ action mask) -> action.

A :class:`Policy` chooses, for a batch of saliency-search episodes, the next cell of each. It sees
the observations and the action masks; heuristic policies that need more (the classifier for the
greedy look-ahead, the images and targets for attribution ordering) read it from the batched
engine (:class:`~saliency_gym.envs.core.SaliencySearchCore`) the rollout passes as ``core``.

- :class:`RandomPolicy`: a uniformly random allowed cell (no queries).
- :class:`GreedyPolicy`: one query per candidate cell per step; takes the cell with the largest
  evidence gain (the strong, costly reference).
- :class:`AttributionOrderPolicy`: cells in the order an :class:`~saliency_gym.Explainer` ranks them
  (the explainer's queries, once per episode).
- :class:`AgentPolicy`: a trained SB3 policy, acting deterministically through masked logits or
  Q-values, so even algorithms without native masking never pick a used cell.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from saliency_gym.envs.core import SaliencySearchCore
    from saliency_gym.explainers import Explainer

#: One batch of observations, as the saliency-search environments give them (key -> ``(N, ...)``).
Observation = dict[str, np.ndarray]


class Policy(ABC):
    """Chooses one allowed cell per episode of a batch."""

    name: str = "policy"
    #: True when the policy reads ``obs["score"]``, so the rollout must query the classifier.
    needs_scores: bool = False

    def reset(self, core: SaliencySearchCore) -> None:  # noqa: B027 - optional hook
        """Called when the episodes of ``core`` start (all of them, at once)."""

    @abstractmethod
    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        """Return ``(N,)`` cell ids, each allowed by its row of ``action_masks (N, cells)``."""

    def expected_queries(self, num_cells: int, budget: int) -> float | None:
        """Classifier queries the policy itself makes for one episode of ``budget`` steps on a grid
        of ``num_cells`` cells (the rollout's own scoring not included); ``None`` if unknown."""
        return 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _require_core(policy: Policy, core: SaliencySearchCore | None) -> SaliencySearchCore:
    if core is None:
        raise ValueError(f"{policy.name} needs the rollout's engine (pass core=...) to reach the classifier")
    return core


class RandomPolicy(Policy):
    """A uniformly random allowed cell, from a seeded generator."""

    name = "random_policy"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def reset(self, core: SaliencySearchCore) -> None:
        self.rng = np.random.default_rng(self.seed)

    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        noise = self.rng.random(action_masks.shape)
        return np.argmax(np.where(action_masks, noise, -1.0), axis=1)


class GreedyPolicy(Policy):
    """One-step look-ahead: score every allowed cell's canvas, take the best gain.

    Costs one classifier query per candidate cell per step: ``K + (K-1) + ... + 1`` for a full
    episode of ``K`` cells, all candidates of all episodes in one batched query per step.
    """

    name = "greedy"

    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        core = _require_core(self, core)
        n = action_masks.shape[0]
        env_idx, cell_idx = np.nonzero(action_masks)
        chosen = core.chosen[env_idx].copy()
        chosen[np.arange(len(env_idx)), cell_idx] = True
        probs = core.cfg.classifier.probs(core.canvases_for(env_idx, chosen), validate=False)
        score, _ = core.scores_of(probs, env_idx)
        value = score if core.reveal else -score
        best = np.full(n, -np.inf)
        actions = np.zeros(n, np.int64)
        np.maximum.at(best, env_idx, value)
        # First candidate (lowest cell id) reaching each episode's best value.
        hit = value >= best[env_idx]
        for e, c in zip(env_idx[hit][::-1], cell_idx[hit][::-1], strict=True):
            actions[e] = c
        return actions

    def expected_queries(self, num_cells: int, budget: int) -> int:
        # The k-th step scores the K - k + 1 cells still allowed.
        return sum(num_cells - step for step in range(budget))


class AttributionOrderPolicy(Policy):
    """Cells in the order an explainer ranks them (mean saliency per cell, ties by cell id)."""

    def __init__(self, explainer: Explainer) -> None:
        self.explainer = explainer
        self.name = f"{explainer.name}_order"
        self._ranking: np.ndarray | None = None

    def reset(self, core: SaliencySearchCore) -> None:
        maps = self.explainer.explain(core.images, core.targets).maps
        self._ranking = core.cfg.grid.cell_order(maps)

    def expected_queries(self, num_cells: int, budget: int) -> float | None:
        return self.explainer.expected_queries()

    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        if self._ranking is None:
            raise RuntimeError("reset(core) must be called before act()")
        allowed = np.take_along_axis(action_masks, self._ranking, axis=1)
        first = np.argmax(allowed, axis=1)
        return self._ranking[np.arange(len(first)), first]


class AgentPolicy(Policy):
    """A trained SB3 policy acting deterministically on the allowed cells.

    Works for MaskablePPO (native masks), PPO, A2C and RecurrentPPO (masked action logits) and DQN
    (masked Q-values): the arg-max is taken over allowed cells only.

    Args:
        policy: the SB3 policy object (``model.policy``).
        name: label used in tables.
        observe_score: whether the agent observes ``"score"`` (then rollouts query the classifier).
    """

    def __init__(self, policy: Any, name: str = "agent", observe_score: bool = False) -> None:
        self.policy = policy
        self.name = name
        self.needs_scores = bool(observe_score)
        self._recurrent = hasattr(policy, "lstm_actor")
        self._state: Any = None

    def reset(self, core: SaliencySearchCore) -> None:
        self._state = None

    @torch.no_grad()
    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        self.policy.set_training_mode(False)
        obs_t, _ = self.policy.obs_to_tensor(obs)
        if hasattr(self.policy, "q_net"):  # DQN
            scores = self.policy.q_net(obs_t)
        elif self._recurrent:
            from sb3_contrib.common.recurrent.type_aliases import RNNStates

            n = action_masks.shape[0]
            if self._state is None:
                shape = (self.policy.lstm_actor.num_layers, n, self.policy.lstm_actor.hidden_size)
                zeros = torch.zeros(shape, device=self.policy.device)
                self._state = RNNStates((zeros, zeros.clone()), (zeros.clone(), zeros.clone()))
                starts = torch.ones(n, device=self.policy.device)
            else:
                starts = torch.zeros(n, device=self.policy.device)
            dist, actor_state = self.policy.get_distribution(obs_t, self._state.pi, starts)
            self._state = RNNStates(actor_state, self._state.vf)
            scores = dist.distribution.logits
        else:
            scores = self.policy.get_distribution(obs_t).distribution.logits
        scores = scores.masked_fill(~torch.as_tensor(action_masks, device=scores.device), -torch.inf)
        return scores.argmax(dim=1).cpu().numpy()
