"""Agents for the saliency-search environments (installed as ``saliency_gym.agents``).

- :mod:`~saliency_gym.agents.extractors`: :class:`SaliencyCNN`, features for our Dict observations.
- :mod:`~saliency_gym.agents.algorithms`: the algorithm registry and YAML hyperparameters.
- :mod:`~saliency_gym.agents.training`: :func:`train_agent` (``saliency-gym train``).
- :mod:`~saliency_gym.agents.policies`: random, greedy, attribution-ordered and trained policies.
- :mod:`~saliency_gym.agents.policy_explainer`: :class:`PolicyExplainer`, a rollout as a saliency map.
- :mod:`~saliency_gym.agents.pretrained`: shipped agents.
"""

from saliency_gym.agents.algorithms import ALGORITHMS, load_hyperparameters
from saliency_gym.agents.extractors import SaliencyCNN
from saliency_gym.agents.policies import (
    AgentPolicy,
    AttributionOrderPolicy,
    GreedyPolicy,
    Policy,
    RandomPolicy,
)
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.agents.pretrained import agent_explainer, load_agent_policy, shipped_agents
from saliency_gym.agents.training import TrainResult, train_agent

__all__ = [
    "ALGORITHMS",
    "AgentPolicy",
    "AttributionOrderPolicy",
    "GreedyPolicy",
    "Policy",
    "PolicyExplainer",
    "RandomPolicy",
    "SaliencyCNN",
    "TrainResult",
    "agent_explainer",
    "load_agent_policy",
    "load_hyperparameters",
    "shipped_agents",
    "train_agent",
]
