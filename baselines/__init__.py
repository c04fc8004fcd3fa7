"""Classical explainers, counterfactual baselines and attacks (installed as ``saliency_gym.baselines``)."""

from saliency_gym.baselines.occlusion import OcclusionExplainer

__all__ = ["OcclusionExplainer"]
