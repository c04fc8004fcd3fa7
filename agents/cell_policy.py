"""A translation-equivariant actor: the per-cell scores of :class:`SaliencyCNN` are the logits.

A standard SB3 actor maps the feature vector to one logit per cell with a dense layer, so what it
learns about "a cell on the object" at one position does not transfer to another. Here the
extractor scores every cell with the same 1x1 convolution over its (neighbourhood-aware) features
and the policy uses those scores as logits directly; the critic still reads the global features.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Protocol, cast

import torch
from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from saliency_gym.agents.extractors import SaliencyCNN


class CellLogits(nn.Module):
    """The first ``num_cells`` features, which :class:`SaliencyCNN` fills with per-cell scores."""

    def __init__(self, num_cells: int) -> None:
        super().__init__()
        self.num_cells = num_cells

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return latent[:, : self.num_cells]


class _CellScoring(Protocol):
    """What the policy reads from a features extractor built with ``cell_scores=True``."""

    num_cells: int
    cell_head: nn.Module


class CellMaskablePolicy(MaskableMultiInputActorCriticPolicy):
    """MaskablePPO's Dict-observation policy with per-cell logits (see the module docstring).

    Needs a cell-scoring extractor, ``features_extractor_class=SaliencyCNN`` (default) or
    :class:`~saliency_gym.agents.extractors.EvidenceCNN` (``cell_scores`` is switched on here), and an
    empty actor MLP (``net_arch=dict(pi=[], vf=[...])``), so that the actor's latent is the
    extractor's output itself.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("features_extractor_class", SaliencyCNN)
        extractor = kwargs["features_extractor_class"]
        if not (extractor is SaliencyCNN or getattr(extractor, "supports_cell_scores", False)):
            raise ValueError(
                "CellMaskablePolicy needs a features extractor that scores cells (SaliencyCNN, EvidenceCNN), "
                f"got {getattr(extractor, '__name__', extractor)}"
            )
        kwargs["features_extractor_kwargs"] = {**(kwargs.get("features_extractor_kwargs") or {}), "cell_scores": True}
        net_arch = kwargs.get("net_arch") or {"pi": [], "vf": [128]}
        if not isinstance(net_arch, dict) or net_arch.get("pi"):
            raise ValueError("CellMaskablePolicy needs net_arch=dict(pi=[], vf=[...]): the actor has no MLP")
        kwargs["net_arch"] = net_arch
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        # __init__ checked that the extractor scores cells (and built it with cell_scores=True).
        extractor = cast(
            _CellScoring,
            self.pi_features_extractor if not self.share_features_extractor else self.features_extractor,
        )
        self.action_net = CellLogits(extractor.num_cells)
        # Near-uniform first policy, as SB3 does for its action layer (gain 0.01).
        extractor.cell_head.apply(partial(self.init_weights, gain=0.01))
        # As SB3's own _build: optimizer_class is typed as torch's abstract Optimizer, whose
        # __init__ takes no lr (every concrete optimizer does).
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
