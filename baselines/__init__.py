"""Classical explainers, counterfactual baselines and attacks (installed as ``saliency_gym.baselines``).

Every explainer implements :class:`saliency_gym.Explainer` and is declared as an entry point, so
the core's :func:`saliency_gym.explainers.make_explainer` builds it by name. Baseline providers
(:mod:`.baseline_providers`: MDTS, GANMEX) are substrates, accepted wherever a baseline is.
Attacks on attributions live in :mod:`.attacks` (as environment policies in
:mod:`.attack_policies`), PGD adversarial training in :mod:`.adversarial_training`, GANMEX
generator training in :mod:`.ganmex_training`, and ID-ExpO fine-tuning in :mod:`.idexpo`
(recipe :mod:`.idexpo_config`, task and tabular base models :mod:`.tabular_training`, loss and
model selection :mod:`.idexpo_objective`). The training runs share the core's
:mod:`saliency_gym.runs` scaffolding.

Names are imported lazily (PEP 562): ``from saliency_gym.baselines import RISEExplainer`` loads
:mod:`.rise` alone, so using one method never loads GANMEX, ID-ExpO or adversarial training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saliency_gym.explainers.registry import available_explainers as available_explainers
from saliency_gym.explainers.registry import explainer_class as explainer_class
from saliency_gym.explainers.registry import explainer_options as explainer_options
from saliency_gym.explainers.registry import make_explainer as make_explainer
from saliency_gym.explainers.registry import register_explainer as register_explainer
from saliency_gym.lazy import lazy_exports

#: Public name -> the submodule that defines it.
_LAZY: dict[str, str] = {
    # explainers
    "RISEExplainer": "rise",
    "generate_rise_masks": "rise",
    "OcclusionExplainer": "occlusion",
    "RandomMapExplainer": "random_map",
    "CentrePriorExplainer": "centre",
    "centre_distances": "centre",
    "CaptumGradientExplainer": "captum_base",
    "GradientExplainer": "gradient_methods",
    "InputXGradientExplainer": "gradient_methods",
    "IntegratedGradientsExplainer": "gradient_methods",
    "SmoothGradExplainer": "gradient_methods",
    "GradientShapExplainer": "gradient_methods",
    "DeepLiftExplainer": "gradient_methods",
    "GradCAMExplainer": "gradcam",
    "DifferentiableGradCAM": "differentiable_explainers",
    "DifferentiableGradient": "differentiable_explainers",
    "DifferentiableInputXGradient": "differentiable_explainers",
    "make_differentiable_explainer": "differentiable_explainers",
    # baseline providers
    "BASELINE_PROVIDERS": "baseline_providers",
    "FixedClassSubstrate": "baseline_providers",
    "GanmexSubstrate": "baseline_providers",
    "MDTSSubstrate": "baseline_providers",
    "make_baseline_provider": "baseline_providers",
    # attacks and adversarial training
    "ATTACKS": "attacks",
    "AttackResult": "attacks",
    "attribution_similarities": "attacks",
    "differentiable_attribution": "attacks",
    "fragility_attack": "attacks",
    "lens_topk_attack": "attacks",
    "load_surrogate": "attacks",
    "mass_center_attack": "attacks",
    "random_sign_attack": "attacks",
    "run_attack": "attacks",
    "topk_attack": "attacks",
    "RandomSignPolicy": "attack_policies",
    "WhiteBoxAttackPolicy": "attack_policies",
    "AdversarialTrainingConfig": "adversarial_training",
    "adversarial_training": "adversarial_training",
    "pgd_attack": "adversarial_training",
    "robust_accuracy": "adversarial_training",
    # training recipes (GANMEX generators, ID-ExpO fine-tuning)
    "GanmexTrainingConfig": "ganmex_training",
    "train_ganmex": "ganmex_training",
    "IDExpOConfig": "idexpo_config",
    "IDExpOTask": "tabular_training",
    "load_task": "tabular_training",
    "train_tabular_classifier": "tabular_training",
    "evaluate_faithfulness": "idexpo_objective",
    "select_best": "idexpo_objective",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


if TYPE_CHECKING:  # what static checkers and editors see
    from saliency_gym.baselines.adversarial_training import (  # noqa: F401
        AdversarialTrainingConfig,
        adversarial_training,
        pgd_attack,
        robust_accuracy,
    )
    from saliency_gym.baselines.attack_policies import RandomSignPolicy, WhiteBoxAttackPolicy  # noqa: F401
    from saliency_gym.baselines.attacks import (  # noqa: F401
        ATTACKS,
        AttackResult,
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
    from saliency_gym.baselines.baseline_providers import (  # noqa: F401
        BASELINE_PROVIDERS,
        FixedClassSubstrate,
        GanmexSubstrate,
        MDTSSubstrate,
        make_baseline_provider,
    )
    from saliency_gym.baselines.captum_base import CaptumGradientExplainer  # noqa: F401
    from saliency_gym.baselines.centre import CentrePriorExplainer, centre_distances  # noqa: F401
    from saliency_gym.baselines.differentiable_explainers import (  # noqa: F401
        DifferentiableGradCAM,
        DifferentiableGradient,
        DifferentiableInputXGradient,
        make_differentiable_explainer,
    )
    from saliency_gym.baselines.ganmex_training import GanmexTrainingConfig, train_ganmex  # noqa: F401
    from saliency_gym.baselines.gradcam import GradCAMExplainer  # noqa: F401
    from saliency_gym.baselines.gradient_methods import (  # noqa: F401
        DeepLiftExplainer,
        GradientExplainer,
        GradientShapExplainer,
        InputXGradientExplainer,
        IntegratedGradientsExplainer,
        SmoothGradExplainer,
    )
    from saliency_gym.baselines.idexpo_config import IDExpOConfig  # noqa: F401
    from saliency_gym.baselines.idexpo_objective import evaluate_faithfulness, select_best  # noqa: F401
    from saliency_gym.baselines.occlusion import OcclusionExplainer  # noqa: F401
    from saliency_gym.baselines.random_map import RandomMapExplainer  # noqa: F401
    from saliency_gym.baselines.rise import RISEExplainer, generate_rise_masks  # noqa: F401
    from saliency_gym.baselines.tabular_training import (  # noqa: F401
        IDExpOTask,
        load_task,
        train_tabular_classifier,
    )

__all__ = sorted(
    [*_LAZY, "available_explainers", "explainer_class", "explainer_options", "make_explainer", "register_explainer"]
)
