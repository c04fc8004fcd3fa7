"""Explainers by name: ``make_explainer("rise", classifier, n_masks=2000)``.

Benchmarks, the ``saliency-gym explain`` command and configuration files refer to explanation
methods by these names, so a method added here is available everywhere at once.
"""

from __future__ import annotations

import inspect
from typing import Any

from saliency_gym.baselines.gradients import (
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
from saliency_gym.baselines.rise import RISEExplainer
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainer import Explainer

EXPLAINERS: dict[str, type[Explainer]] = {
    cls.name: cls
    for cls in (
        RISEExplainer,
        OcclusionExplainer,
        RandomMapExplainer,
        GradientExplainer,
        IntegratedGradientsExplainer,
        SmoothGradExplainer,
        GradientShapExplainer,
        DeepLiftExplainer,
        InputXGradientExplainer,
        GradCAMExplainer,
    )
}


def available_explainers() -> list[str]:
    """Names :func:`make_explainer` accepts, in registration order."""
    return list(EXPLAINERS)


def explainer_class(name: str) -> type[Explainer]:
    """The :class:`~saliency_gym.Explainer` subclass registered as ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"explainer name must be a string, got {type(name).__name__}")
    try:
        return EXPLAINERS[name]
    except KeyError:
        raise ValueError(f"unknown explainer {name!r}; choose one of {available_explainers()}") from None


def explainer_options(name: str) -> list[str]:
    """The keyword options the explainer ``name`` accepts (its constructor's arguments)."""
    parameters = inspect.signature(explainer_class(name).__init__).parameters
    return [p for p in parameters if p not in ("self", "classifier")]


def make_explainer(name: str, classifier: FrozenClassifier, **options: Any) -> Explainer:
    """Build the explainer registered as ``name`` for ``classifier``.

    Args:
        name: one of :func:`available_explainers` (``"rise"``, ``"occlusion"``, ``"random"``,
            ``"gradient"``, ``"integrated_gradients"``, ``"smoothgrad"``, ``"gradient_shap"``,
            ``"deeplift"``, ``"input_x_gradient"``, ``"gradcam"``).
        classifier: the model to explain.
        **options: the explainer's keyword arguments (e.g. ``n_masks=2000`` for RISE); an
            option the explainer does not take raises a ``TypeError`` listing those it does.
    """
    cls = explainer_class(name)
    accepted = explainer_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"explainer {name!r} does not take option(s) {unknown}; it accepts {accepted}")
    return cls(classifier, **options)
