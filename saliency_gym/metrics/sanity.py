"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018).

An explanation that reflects what a model has learned must change when the model's parameters are
destroyed. The *cascading* test re-initialises the layers one at a time from the top (the output
layer first, then ever earlier layers, cumulatively), recomputes the explanation after every step
and reports how similar each randomised explanation still is to the original one, by the
Spearman rank correlation of the absolute maps and of the signed maps. A method whose maps stay
highly correlated until every layer is random (an edge detector, say) fails the check.

:func:`cascading_randomization` never touches the caller's model: it works on a deep copy, and
wraps each randomised copy in its own :class:`~saliency_gym.classifier.FrozenClassifier` so that
any :class:`~saliency_gym.explainers.Explainer` can be tested through a factory function.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers import Explainer
from saliency_gym.metrics.similarity import spearman
from saliency_gym.validation import as_image_batch, check_int

__all__ = ["SanityResult", "cascading_randomization", "randomizable_layers"]


@dataclass(frozen=True)
class SanityResult:
    """Outcome of :func:`cascading_randomization` for ``N`` images and ``L`` randomisation steps."""

    layers: tuple[str, ...]
    """Module names in the order they were re-initialised; step ``i`` has layers ``0..i`` random."""
    spearman_abs: np.ndarray
    """``(L, N)`` Spearman correlation between ``|original map|`` and ``|map after step i|``."""
    spearman_signed: np.ndarray
    """``(L, N)`` the same on the signed maps."""
    original_maps: np.ndarray
    """``(N, H, W)`` maps of the trained model."""
    randomized_maps: np.ndarray
    """``(L, N, H, W)`` maps after each cumulative step."""
    targets: np.ndarray
    """``(N,)`` the explained classes, the same at every step."""
    method: str
    """The explainer's name."""

    @property
    def mean_abs(self) -> np.ndarray:
        """``(L,)`` mean over images of :attr:`spearman_abs` (ignoring undefined ``NaN`` pairs)."""
        return _nanmean_rows(self.spearman_abs)

    @property
    def mean_signed(self) -> np.ndarray:
        """``(L,)`` mean over images of :attr:`spearman_signed` (ignoring ``NaN`` pairs)."""
        return _nanmean_rows(self.spearman_signed)


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN rows stay NaN
        return np.nanmean(values, axis=1)


def _is_randomizable(module: nn.Module) -> bool:
    has_own_parameters = next(module.parameters(recurse=False), None) is not None
    return has_own_parameters and callable(getattr(module, "reset_parameters", None))


def randomizable_layers(model: nn.Module) -> list[str]:
    """Names of the modules :func:`cascading_randomization` can re-initialise, top layer first.

    A module qualifies when it owns parameters and has ``reset_parameters()`` (convolutions,
    linear layers, normalisation layers, ...). The order is the reverse of registration order
    (:meth:`nn.Module.named_modules`), which is the forward order for sequential models such as
    the shipped :class:`~saliency_gym.models.cnn.SmallCNN`; pass ``layers=`` explicitly otherwise.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return [name for name, module in model.named_modules() if _is_randomizable(module)][::-1]


def _check_layers(model: nn.Module, layers: Sequence[str] | None) -> tuple[str, ...]:
    allowed = randomizable_layers(model)
    if layers is None:
        if not allowed:
            raise ValueError("model has no module with parameters and reset_parameters() to randomise")
        return tuple(allowed)
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of module names, got {type(layers).__name__}")
    names = tuple(layers)
    if not names:
        raise ValueError(f"layers must name at least one module; randomisable modules (top first): {allowed}")
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise ValueError(
            f"layers {unknown} are not randomisable modules of this model (a module must own parameters "
            f"and have reset_parameters()); choose from (top first): {allowed}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"layers must not repeat a module, got {list(names)}")
    return names


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def cascading_randomization(
    model: nn.Module,
    make_explainer: Callable[[FrozenClassifier], Explainer],
    images: Any,
    targets: Any = None,
    *,
    input_shape: Sequence[int],
    seed: int = 0,
    layers: Sequence[str] | None = None,
    device: torch.device | str | None = None,
) -> SanityResult:
    """Cascading model-parameter randomisation (Adebayo et al. 2018) for one explanation method.

    Steps: explain ``images`` with the trained model; then, for each module in ``layers`` (top
    first), re-initialise it with its own ``reset_parameters()`` (on top of the modules already
    re-initialised), wrap the randomised copy in a :class:`FrozenClassifier`, build the explainer
    with ``make_explainer`` and explain the same images for the same targets again. Each step's
    maps are compared with the original ones by Spearman's rank correlation, of absolute values
    (the paper's main measure) and of signed values. Re-initialising a normalisation layer resets
    its affine parameters and running statistics to their defaults, as ``reset_parameters()`` does.

    Args:
        model: the trained network (e.g. the first value of
            :func:`saliency_gym.models.zoo.load_classifier_module`). Never modified: a deep copy is used.
        make_explainer: ``classifier -> Explainer``, e.g.
            ``lambda c: OcclusionExplainer(c, window=8, stride=4)``.
        images: ``(N, C, H, W)`` floats in [0, 1].
        targets: class ids to explain; ``None`` explains the trained model's predicted classes
            (kept fixed for every randomised model, so all maps explain the same class).
        input_shape: per-image ``(C, H, W)`` the model accepts.
        seed: re-initialisation step ``i`` runs under ``torch.manual_seed`` of a seed derived
            from ``(seed, i)``; the global RNG state is restored afterwards (explainers that
            sample, such as RISE, keep using the caller's RNG).
        layers: module names to re-initialise, top layer first; ``None`` takes
            :func:`randomizable_layers`.
        device: where the classifiers run (``None``: CUDA when available).

    Returns:
        A :class:`SanityResult`; the correlation is ``NaN`` for a pair in which a map is constant.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not callable(make_explainer):
        raise TypeError(f"make_explainer must be a callable classifier -> Explainer, got {type(make_explainer).__name__}")
    seed = check_int("seed", seed, minimum=0)
    names = _check_layers(model, layers)
    input_shape = tuple(int(s) for s in input_shape)

    base = copy.deepcopy(model).cpu()

    def explain(net: nn.Module, step: str, target_ids: Any) -> tuple[np.ndarray, np.ndarray, str]:
        classifier = FrozenClassifier(copy.deepcopy(net), input_shape, device=device, name=f"randomized:{step}")
        explainer = make_explainer(classifier)
        if not isinstance(explainer, Explainer):
            raise TypeError(f"make_explainer must return an Explainer, got {type(explainer).__name__}")
        x = as_image_batch(images, expected_shape=input_shape, device=classifier.device)
        explanation = explainer.explain(x, target_ids)
        return explanation.maps.astype(np.float64), explanation.targets, explanation.method

    original, target_ids, method = explain(base, "none", targets)

    maps, corr_abs, corr_signed = [], [], []
    for step, name in enumerate(names):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_step_seed(seed, step))
            base.get_submodule(name).reset_parameters()  # type: ignore[operator]
        randomized, _, _ = explain(base, name, target_ids)
        try:
            corr_abs.append(spearman(np.abs(original), np.abs(randomized)))
            corr_signed.append(spearman(original, randomized))
        except ValueError as exc:
            raise ValueError(f"after randomising {name!r}, {method} produced unusable maps: {exc}") from exc
        maps.append(randomized)

    return SanityResult(  # ``names`` is never empty, so there is at least one step to stack
        layers=names,
        spearman_abs=np.stack(corr_abs),
        spearman_signed=np.stack(corr_signed),
        original_maps=original,
        randomized_maps=np.stack(maps),
        targets=target_ids,
        method=method,
    )
