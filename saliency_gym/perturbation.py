"""The L-infinity ball every attribution attack stays in.

Shared by the attribution-attack environments (:mod:`saliency_gym.envs`) and the white-box attacks
and adversarial training of ``saliency_gym.baselines``, so both project perturbations identically.
"""

from __future__ import annotations

import torch


def project_perturbation(delta: torch.Tensor, images: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Project ``delta`` onto ``{δ : ‖δ‖∞ ≤ ε, 0 ≤ x + δ ≤ 1}`` (elementwise clipping, exact).

    The bounds are ``max(-ε, -x) ≤ δ ≤ min(ε, 1 - x)``; clipping ``δ`` itself (rather than ``x + δ``)
    keeps ``|δ| ≤ ε`` exact in floating point.
    """
    low = torch.clamp(-images, min=-epsilon)
    high = torch.clamp(1.0 - images, max=epsilon)
    return torch.maximum(torch.minimum(delta, high), low)
