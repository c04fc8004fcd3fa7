"""SB3 policy classes that default to our :class:`~saliency_gym.agents.extractors.SaliencyCNN`.

YAML holds names, not classes. rl-baselines3-zoo resolves a dotted ``policy:`` path to a class but
passes a ``policy_kwargs`` mapping through as it is, so a zoo file cannot name a features extractor
class there. These subclasses make the extractor the default instead: a hyperparameter file (ours
or rl-zoo's) says ``policy: saliency_gym.agents.sb3_policies.SaliencyMultiInputPolicy`` and only
the extractor's plain keyword arguments, and the network is the one our own trainer builds.

| algorithm | class | base |
|---|---|---|
| ``maskable_ppo`` | :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy` | sb3-contrib ``MaskableMultiInputActorCriticPolicy`` |
| ``ppo``, ``a2c`` | :class:`SaliencyMultiInputPolicy` | SB3 ``MultiInputActorCriticPolicy`` |
| ``recurrent_ppo`` | :class:`SaliencyLstmPolicy` | sb3-contrib ``RecurrentMultiInputActorCriticPolicy`` |
| ``dqn`` | :class:`SaliencyDQNPolicy` | SB3 DQN's ``MultiInputPolicy`` |

Each has exactly its base's parameters (checkpoints of the base class load into it unchanged).
"""

from __future__ import annotations

from typing import Any

from sb3_contrib.common.recurrent.policies import RecurrentMultiInputActorCriticPolicy
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.dqn.policies import MultiInputPolicy as DQNMultiInputPolicy

from saliency_gym.agents.extractors import SaliencyCNN

__all__ = ["SaliencyMultiInputPolicy", "SaliencyLstmPolicy", "SaliencyDQNPolicy", "class_path"]


def _with_default_extractor(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("features_extractor_class", SaliencyCNN)
    return kwargs


class SaliencyMultiInputPolicy(MultiInputActorCriticPolicy):
    """PPO's and A2C's Dict-observation actor-critic with :class:`SaliencyCNN` as the extractor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_default_extractor(kwargs))


class SaliencyLstmPolicy(RecurrentMultiInputActorCriticPolicy):
    """RecurrentPPO's Dict-observation LSTM actor-critic with :class:`SaliencyCNN` as the extractor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_default_extractor(kwargs))


class SaliencyDQNPolicy(DQNMultiInputPolicy):
    """DQN's Dict-observation Q-network with :class:`SaliencyCNN` as the extractor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_default_extractor(kwargs))


def class_path(cls: type) -> str:
    """The dotted import path of ``cls`` (what a YAML ``policy:`` entry holds)."""
    return f"{cls.__module__}.{cls.__qualname__}"
