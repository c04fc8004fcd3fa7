"""Classical explainers, counterfactual baselines and attacks (installed as ``saliency_gym.baselines``).

Every explainer implements :class:`saliency_gym.Explainer`; :func:`make_explainer` builds one by
name (:func:`available_explainers` lists them).
"""

from saliency_gym.baselines.gradients import (
    CaptumGradientExplainer,
    DeepLiftExplainer,
    GradCAMExplainer,
    GradientExplainer,
    GradientShapExplainer,
    InputXGradientExplainer,
    IntegratedGradientsExplainer,
    SmoothGradExplainer,
)
from saliency_gym.baselines.occlusion import OcclusionExplainer
from saliency_gym.baselines.random_map import RandomMapExplainer
from saliency_gym.baselines.registry import (
    available_explainers,
    explainer_class,
    explainer_options,
    make_explainer,
)
from saliency_gym.baselines.rise import RISEExplainer, generate_rise_masks

__all__ = [
    "CaptumGradientExplainer",
    "DeepLiftExplainer",
    "GradCAMExplainer",
    "GradientExplainer",
    "GradientShapExplainer",
    "InputXGradientExplainer",
    "IntegratedGradientsExplainer",
    "OcclusionExplainer",
    "RISEExplainer",
    "RandomMapExplainer",
    "SmoothGradExplainer",
    "available_explainers",
    "explainer_class",
    "explainer_options",
    "generate_rise_masks",
    "make_explainer",
]
