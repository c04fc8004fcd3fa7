"""Agents for the saliency-search environments (installed as ``saliency_gym.agents``).

- :mod:`~saliency_gym.agents.extractors`: :class:`SaliencyCNN`, features for our Dict observations.
- :mod:`~saliency_gym.agents.cell_policy`: :class:`CellMaskablePolicy`, per-cell actor logits.
- :mod:`~saliency_gym.agents.algorithms`: the algorithm registry and YAML hyperparameters.
- :mod:`~saliency_gym.agents.agent_checkpoints`: weights-only agent checkpoints.
- :mod:`~saliency_gym.agents.agent_training`: :func:`train_agent` (``saliency-gym train``).
- :mod:`~saliency_gym.agents.policies`: random, greedy, attribution-ordered and trained policies.
- :mod:`~saliency_gym.agents.policy_explainer`: :class:`PolicyExplainer`, a rollout as a saliency
  map (the ``"policy"`` explainer of :func:`saliency_gym.explainers.make_explainer`).
- :mod:`~saliency_gym.agents.pretrained`: shipped agents.

Names are imported lazily (PEP 562): ``from saliency_gym.agents import PolicyExplainer`` loads
the policies and the explainer alone, so explaining with a heuristic policy never loads
Stable-Baselines3; training, checkpoints and shipped agents load it when they are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saliency_gym.lazy import lazy_exports

#: Public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    "ALGORITHMS": "algorithms",
    "load_hyperparameters": "algorithms",
    "SaliencyCNN": "extractors",
    "AgentPolicy": "policies",
    "AttributionOrderPolicy": "policies",
    "GreedyPolicy": "policies",
    "Policy": "policies",
    "RandomPolicy": "policies",
    "PolicyExplainer": "policy_explainer",
    "agent_explainer": "pretrained",
    "load_agent_policy": "pretrained",
    "shipped_agents": "pretrained",
    "AgentTrainingConfig": "agent_training",
    "TrainResult": "agent_training",
    "train_agent": "agent_training",
    "train_with_config": "agent_training",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # what static checkers and editors see
    from saliency_gym.agents.agent_training import (  # noqa: F401
        AgentTrainingConfig,
        TrainResult,
        train_agent,
        train_with_config,
    )
    from saliency_gym.agents.algorithms import ALGORITHMS, load_hyperparameters  # noqa: F401
    from saliency_gym.agents.extractors import SaliencyCNN  # noqa: F401
    from saliency_gym.agents.policies import (  # noqa: F401
        AgentPolicy,
        AttributionOrderPolicy,
        GreedyPolicy,
        Policy,
        RandomPolicy,
    )
    from saliency_gym.agents.policy_explainer import PolicyExplainer  # noqa: F401
    from saliency_gym.agents.pretrained import agent_explainer, load_agent_policy, shipped_agents  # noqa: F401

__all__ = sorted(_LAZY)
