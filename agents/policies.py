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
    #: True when the policy reads ``obs["target"]`` (the explained class), so rollouts observe it.
    needs_class: bool = False
    #: Which of the classifier's pooled features the policy reads (the environments'
    #: ``observe_features``): ``"none"``, ``"image"``, ``"canvas"`` or ``"both"``.
    observe_features: str = "none"

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

    Args:
        lookahead_steps: look ahead for the first ``m`` steps only (``None``: every step). Later
            steps take the remaining cells in the order of the gains the last look-ahead measured
            for them, at no further query, so ``m`` sets the query budget
            (``K + (K-1) + ... + (K-m+1)``) while the episode still orders every cell: ``m = 1``
            ranks all cells by what revealing (or masking) each alone does, ``m = K`` is the
            full greedy search.
    """

    name = "greedy"

    def __init__(self, lookahead_steps: int | None = None) -> None:
        if lookahead_steps is not None:
            if isinstance(lookahead_steps, bool) or not isinstance(lookahead_steps, (int, np.integer)):
                raise TypeError(f"lookahead_steps must be a positive int or None, got {type(lookahead_steps).__name__}")
            if lookahead_steps < 1:
                raise ValueError(f"lookahead_steps must be >= 1 (or None for every step), got {lookahead_steps}")
            self.name = f"greedy-{int(lookahead_steps)}"
        self.lookahead_steps = None if lookahead_steps is None else int(lookahead_steps)
        self._last_values: np.ndarray | None = None

    def reset(self, core: SaliencySearchCore) -> None:
        self._last_values = None

    def act(self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        core = _require_core(self, core)
        n = action_masks.shape[0]
        if self._last_values is None or self._last_values.shape != action_masks.shape:
            self._last_values = np.full(action_masks.shape, -np.inf)
        looking = np.ones(n, bool) if self.lookahead_steps is None else np.asarray(core.steps[:n]) < self.lookahead_steps
        actions = np.zeros(n, np.int64)
        env_idx, cell_idx = np.nonzero(action_masks & looking[:, None])
        if len(env_idx):
            chosen = core.chosen[env_idx].copy()
            chosen[np.arange(len(env_idx)), cell_idx] = True
            probs = core.cfg.classifier.probs(core.canvases_for(env_idx, chosen), validate=False)
            score, _ = core.scores_of(probs, env_idx)
            value = np.asarray(score if core.reveal else -score, np.float64)
            self._last_values[looking] = -np.inf
            self._last_values[env_idx, cell_idx] = value
        # Every episode takes its best allowed cell by the latest look-ahead values; the first
        # (lowest cell id) among equal values, so the order is deterministic.
        values = np.where(action_masks, self._last_values, -np.inf)
        for e in range(n):
            allowed = np.flatnonzero(action_masks[e])
            if len(allowed):
                actions[e] = allowed[np.argmax(values[e, allowed])]
        return actions

    def expected_queries(self, num_cells: int, budget: int) -> int:
        # The k-th look-ahead step scores the K - k + 1 cells still allowed.
        steps = budget if self.lookahead_steps is None else min(budget, self.lookahead_steps)
        return sum(num_cells - step for step in range(steps))

    def __repr__(self) -> str:
        return f"GreedyPolicy(lookahead_steps={self.lookahead_steps})"


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


def _observed_features(spaces: Any) -> str:
    """``observe_features`` of an observation space: which feature keys it holds."""
    image, canvas = "image_features" in spaces, "canvas_features" in spaces
    return {(False, False): "none", (True, False): "image", (False, True): "canvas", (True, True): "both"}[(image, canvas)]


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
        spaces = getattr(getattr(policy, "observation_space", None), "spaces", {})
        #: True when the agent was trained with ``observe_class`` (its observation holds ``"target"``).
        self.needs_class = "target" in spaces
        #: Which of the classifier's features the agent observes (``observe_features``): ``"none"``,
        #: ``"image"`` (open loop: one query per image), ``"canvas"`` or ``"both"``.
        self.observe_features = _observed_features(spaces)
        # The canvas's features come from the query that scores it: such an agent needs scored steps.
        self.needs_scores = bool(observe_score) or self.observe_features in ("canvas", "both")
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
