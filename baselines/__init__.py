"""Classical explainers, counterfactual baselines and attacks (installed as ``saliency_gym.baselines``).

Every explainer implements :class:`saliency_gym.Explainer`; :func:`make_explainer` builds one by
name (:func:`available_explainers` lists them). Baseline providers (:mod:`.baseline_providers`:
MDTS, GANMEX) are substrates, accepted wherever a baseline is. Attacks on attributions live in
:mod:`.attacks`, ID-ExpO fine-tuning in :mod:`.idexpo`.
"""

from saliency_gym.baselines.adversarial_training import (
    AdversarialTrainingConfig,
    adversarial_training,
    pgd_attack,
    robust_accuracy,
)
from saliency_gym.baselines.attacks import (
    ATTACKS,
    AttackResult,
    RandomSignPolicy,
    WhiteBoxAttackPolicy,
    attribution_similarities,
    differentiable_attribution,
    fragility_attack,
    lens_topk_attack,
    load_surrogate,
    mass_center_attack,
    random_sign_attack,
    run_attack,
    topk_attack,
)
from saliency_gym.baselines.baseline_providers import (
    BASELINE_PROVIDERS,
    FixedClassSubstrate,
    GanmexSubstrate,
    MDTSSubstrate,
    make_baseline_provider,
)
from saliency_gym.baselines.differentiable_explainers import (
    DifferentiableGradCAM,
    DifferentiableGradient,
    DifferentiableInputXGradient,
    make_differentiable_explainer,
)
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
    "ATTACKS",
    "AdversarialTrainingConfig",
    "AttackResult",
    "BASELINE_PROVIDERS",
    "CaptumGradientExplainer",
    "DeepLiftExplainer",
    "DifferentiableGradCAM",
    "DifferentiableGradient",
    "DifferentiableInputXGradient",
    "FixedClassSubstrate",
    "GanmexSubstrate",
    "GradCAMExplainer",
    "GradientExplainer",
    "GradientShapExplainer",
    "InputXGradientExplainer",
    "IntegratedGradientsExplainer",
    "MDTSSubstrate",
    "OcclusionExplainer",
    "RISEExplainer",
    "RandomMapExplainer",
    "RandomSignPolicy",
    "SmoothGradExplainer",
    "WhiteBoxAttackPolicy",
    "adversarial_training",
    "attribution_similarities",
    "available_explainers",
    "differentiable_attribution",
    "explainer_class",
    "explainer_options",
    "fragility_attack",
    "generate_rise_masks",
    "lens_topk_attack",
    "load_surrogate",
    "make_baseline_provider",
    "make_differentiable_explainer",
    "make_explainer",
    "mass_center_attack",
    "pgd_attack",
    "random_sign_attack",
    "robust_accuracy",
    "run_attack",
    "topk_attack",
]
