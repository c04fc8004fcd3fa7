"""Attribution attacks: perturb images within an L∞ ball, keep the label, move the attribution map.

Ghorbani, Abid & Zou ("Interpretation of Neural Networks is Fragile", AAAI 2019) showed that small
perturbations that keep a network's prediction can move its saliency maps far; Kamath et al.
("Rethinking Robustness of Model Attributions", LENS, AAAI 2024) showed that top-k intersection
over-states that fragility, because it punishes top pixels that merely moved to a neighbour. The
attacks here are the baselines of both papers, batched:

* :func:`random_sign_attack`: ``x + ε · sign(u)``, ``u`` uniform noise (LENS's "random" baseline,
  Ghorbani et al.'s random sign perturbation).
* :func:`topk_attack`: Ghorbani et al.'s iterative top-k attack: signed gradient steps that
  decrease the (normalised) attribution mass on the original top-k pixels.
* :func:`mass_center_attack`: Ghorbani et al.'s mass-centre attack: steps that move the
  attribution's centre of mass away from the original's.
* :func:`lens_topk_attack`: the LENS-aware top-k attack: the top-k objective on the
  neighbourhood-dilated top-k set ``N_w(T_k)``, so the mass must leave the neighbourhood, not just
  the pixels.

The white-box attacks differentiate the attribution map itself, which for a ReLU network has zero
second derivatives almost everywhere; as Ghorbani et al. do, the gradient is taken on a *surrogate*
(the same weights with softplus activations: :func:`load_surrogate`), while every iterate is
evaluated with the real classifier and the real :class:`~saliency_gym.Explainer`. Each iteration
is projected onto the ε-ball and [0, 1]; the returned image is, per input, the iterate with the
largest dissimilarity (``select_by``) among those whose prediction is unchanged, or the original
image when none is (so the label-kept constraint is never silently violated: ``label_kept`` and
``changed`` report it).

:mod:`saliency_gym.baselines.attack_policies` has the same attacks as policies of the
``saliency_gym/AttributionAttack-v0`` environments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from saliency_gym.baselines.captum_base import reduce_channels
from saliency_gym.baselines.gradcam import GradCAMExplainer
from saliency_gym.baselines.gradient_methods import (
    GradientExplainer,
    InputXGradientExplainer,
    IntegratedGradientsExplainer,
    SmoothGradExplainer,
)
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers import Explainer
from saliency_gym.metrics.similarity import (
    SIMILARITY_NAMES,
    dissimilarity,
    neighbourhood_mask,
    similarity,
    topk_mask,
)
from saliency_gym.perturbation import project_perturbation
from saliency_gym.validation import (
    as_image_batch,
    as_label_array,
    check_choice,
    check_float,
    check_int,
)

__all__ = [
    "ATTACKS",
    "AttackResult",
    "WHITE_BOX_EXPLAINERS",
    "attribution_similarities",
    "differentiable_attribution",
    "fragility_attack",
    "lens_topk_attack",
    "load_surrogate",
    "mass_center_attack",
    "random_sign_attack",
    "run_attack",
    "topk_attack",
]

#: Attack names accepted by :func:`run_attack`.
ATTACKS: tuple[str, ...] = ("random", "topk", "mass_center", "lens_topk")
#: Explainers the white-box attacks can differentiate (through the surrogate).
WHITE_BOX_EXPLAINERS: tuple[str, ...] = ("gradient", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradcam")
OBJECTIVES = ("topk", "mass_center", "lens_topk")
_DEFAULT_SELECT = {"topk": "topk", "mass_center": "topk", "lens_topk": "lens_recall"}


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns for a batch of ``N`` images."""

    images: np.ndarray
    """``float32 (N, C, H, W)``: the original images."""
    adversarial: np.ndarray
    """``float32 (N, C, H, W)`` in [0, 1], within ``epsilon`` of the images in L∞."""
    original_maps: np.ndarray
    """``float32 (N, H, W)``: the explainer's maps of the images (after ``map_transform``)."""
    adversarial_maps: np.ndarray
    """``float32 (N, H, W)``: the explainer's maps of the adversarial images, same targets."""
    targets: np.ndarray
    """``int64 (N,)``: the explained classes (the original predictions unless given)."""
    predictions: np.ndarray
    """``int64 (N,)``: the classifier's predictions for the adversarial images."""
    label_kept: np.ndarray
    """``bool (N,)``: prediction of the adversarial image equals the original prediction."""
    changed: np.ndarray
    """``bool (N,)``: the adversarial image differs from the original (an attack was found)."""
    queries: int
    """Classifier images the attack used (predictions and explanations, surrogate excluded)."""
    seconds: float
    attack: str
    explanations: int = 0
    """Attribution maps the attack had computed (the original maps included), over all images."""

    @property
    def perturbation(self) -> np.ndarray:
        """``adversarial - images``."""
        return self.adversarial - self.images


def transform_maps(maps: np.ndarray, how: str) -> np.ndarray:
    return np.abs(maps) if how == "abs" else maps


def attribution_similarities(original_maps: Any, maps: Any, k: int, w: int = 1) -> dict[str, np.ndarray]:
    """Top-k intersection, LENS recall@k and top-k-div intersection of each pair (the benchmark's metrics)."""
    return {
        "topk": similarity("topk", original_maps, maps, k=k),
        "lens_recall": similarity("lens_recall", original_maps, maps, k=k, w=w),
        "topk_div": similarity("topk_div", original_maps, maps, k=k, w=w),
    }


def load_surrogate(classifier: FrozenClassifier, activation: str = "softplus") -> nn.Module:
    """The classifier's weights with a smooth ``activation`` (frozen, eval mode, on its device).

    Needs a classifier loaded from a checkpoint (``load_classifier``), whose path is in ``meta``.
    """
    from saliency_gym.models.zoo import load_classifier_module

    meta = getattr(classifier, "meta", None) or {}
    if "path" not in meta:
        raise ValueError("load_surrogate needs a classifier loaded with load_classifier (it reloads the checkpoint); pass surrogate= yourself")
    module, _ = load_classifier_module(meta["path"], activation=activation)
    module = module.to(classifier.device).eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


# --------------------------------------------------------------------------- differentiable maps
def _logit_gradient(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``d logit_t / d inputs`` with the graph kept (second derivatives flow back to ``inputs``)."""
    logits = model(inputs)
    (grad,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), inputs, create_graph=True)
    return grad


def _gradcam_surrogate_layer(explainer: GradCAMExplainer, surrogate: nn.Module) -> nn.Module:
    names = {id(m): name for name, m in explainer.classifier.module.named_modules()}
    return surrogate.get_submodule(names[id(explainer.layer)])


def differentiable_attribution(explainer: Explainer, surrogate: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The explainer's map computed on ``surrogate``, differentiable w.r.t. ``images`` (``(N, H, W)``).

    Mirrors the explainer's options: channel reduction and ``abs`` (gradient, SmoothGrad), baseline
    and ``n_steps`` (Integrated Gradients, midpoint Riemann rule), noise (SmoothGrad, a fixed
    seeded draw), layer (Grad-CAM, bilinear upsampling).
    """
    check_choice("explainer (white-box attacks)", explainer.name, WHITE_BOX_EXPLAINERS)
    x = images
    if isinstance(explainer, InputXGradientExplainer):
        grad = _logit_gradient(surrogate, x, targets)
        return reduce_channels(x * grad, explainer.channel_reduction)
    if isinstance(explainer, GradientExplainer):
        grad = _logit_gradient(surrogate, x, targets)
        return reduce_channels(grad.abs() if explainer.abs else grad, explainer.channel_reduction)
    if isinstance(explainer, IntegratedGradientsExplainer):
        baseline = explainer.baselines(x.detach(), targets)
        n = explainer.n_steps
        alphas = (torch.arange(n, device=x.device, dtype=x.dtype) + 0.5) / n
        path = baseline[None] + alphas.view(n, 1, 1, 1, 1) * (x - baseline)[None]
        grads = _logit_gradient(surrogate, path.reshape(-1, *x.shape[1:]), targets.repeat(n)).reshape(n, *x.shape)
        return reduce_channels((x - baseline) * grads.mean(dim=0), explainer.channel_reduction)
    if isinstance(explainer, SmoothGradExplainer):
        m = explainer.nt_samples
        generator = torch.Generator(device="cpu").manual_seed(explainer.seed)
        noise = torch.randn((m, *x.shape), generator=generator).to(x.device) * explainer.stdevs
        noisy = (x[None] + noise).reshape(-1, *x.shape[1:])
        grads = _logit_gradient(surrogate, noisy, targets.repeat(m)).reshape(m, *x.shape)
        grads = grads.abs() if explainer.abs else grads
        return reduce_channels(grads.mean(dim=0), explainer.channel_reduction)
    if not isinstance(explainer, GradCAMExplainer):
        raise TypeError(f"no differentiable map for {type(explainer).__name__} (named {explainer.name!r})")
    # Grad-CAM on the surrogate's matching layer.
    layer = _gradcam_surrogate_layer(explainer, surrogate)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = surrogate(x)
    finally:
        handle.remove()
    activations = captured[0]
    (grads,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), activations, create_graph=True)
    cam = (grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1, keepdim=True)
    if explainer.relu:
        cam = F.relu(cam)
    return F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]


def objective_value(kind: str, maps: torch.Tensor, region: torch.Tensor, reference_center: torch.Tensor, transform: str) -> torch.Tensor:
    """Per-image objective to *increase*: minus the normalised mass on ``region`` (top-k, LENS), or
    the distance of the centre of mass from the original's (mass centre)."""
    m = maps.abs() if transform == "abs" else F.relu(maps)
    m = m / m.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12)
    if kind in ("topk", "lens_topk"):
        return -(m * region).sum(dim=(1, 2))
    return (center_of_mass(m) - reference_center).norm(dim=1)


def center_of_mass(m: torch.Tensor) -> torch.Tensor:
    h, w = m.shape[-2:]
    rows = torch.arange(h, dtype=m.dtype, device=m.device).view(1, h, 1)
    cols = torch.arange(w, dtype=m.dtype, device=m.device).view(1, 1, w)
    total = m.sum(dim=(1, 2)).clamp_min(1e-12)
    return torch.stack([(m * rows).sum(dim=(1, 2)) / total, (m * cols).sum(dim=(1, 2)) / total], dim=1)


# --------------------------------------------------------------------------- attacks
def _check_explainer(explainer: Any) -> Explainer:
    if not isinstance(explainer, Explainer):
        raise TypeError(f"explainer must be a saliency_gym Explainer, got {type(explainer).__name__}")
    return explainer


def _prepare(explainer: Explainer, images: Any, targets: Any) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Validated images, original predictions and explained targets."""
    _check_explainer(explainer)
    clf = explainer.classifier
    x = as_image_batch(images, expected_shape=clf.input_shape, device=clf.device)
    predicted = clf.predict(x).cpu().numpy()
    tgt = predicted if targets is None else as_label_array(targets, n=x.shape[0], num_classes=clf.num_classes, name="targets")
    return x, predicted, tgt


def _finish(
    name: str, explainer: Explainer, x: torch.Tensor, adv: torch.Tensor, original_maps: np.ndarray, adv_maps: np.ndarray,
    targets: np.ndarray, predicted: np.ndarray, adv_pred: np.ndarray, start_q: int, start_t: float, explanations: int,
) -> AttackResult:  # fmt: skip
    return AttackResult(
        images=x.cpu().numpy().astype(np.float32), adversarial=adv.cpu().numpy().astype(np.float32), original_maps=original_maps, adversarial_maps=adv_maps,
        targets=targets, predictions=adv_pred, label_kept=adv_pred == predicted,
        changed=(adv != x).flatten(1).any(dim=1).cpu().numpy(), queries=explainer.classifier.queries - start_q,
        seconds=time.perf_counter() - start_t, attack=name, explanations=explanations,
    )  # fmt: skip


def random_sign_attack(
    explainer: Explainer,
    images: Any,
    epsilon: float,
    *,
    targets: Any = None,
    seed: int = 0,
    map_transform: str = "abs",
) -> AttackResult:
    """``x + ε · sign(u)`` with ``u ~ U(-1, 1)`` per pixel and channel, clipped to [0, 1].

    The random baseline of Ghorbani et al. (2019) and LENS (2024). No selection: a perturbation that
    changes the label is returned as it is and reported by ``label_kept``.
    """
    _check_explainer(explainer)
    epsilon = check_float("epsilon", epsilon, minimum=0.0, maximum=1.0)
    check_choice("map_transform", map_transform, ("abs", "none"))
    start_q, start_t = explainer.classifier.queries, time.perf_counter()
    x, predicted, tgt = _prepare(explainer, images, targets)
    generator = torch.Generator(device="cpu").manual_seed(check_int("seed", seed, minimum=0))
    signs = (torch.rand(x.shape, generator=generator) * 2 - 1).sign().to(x.device)
    adv = (x + project_perturbation(epsilon * signs, x, epsilon)).clamp(0.0, 1.0)
    original_maps = transform_maps(explainer.explain(x, tgt).maps, map_transform)
    adv_maps = transform_maps(explainer.explain(adv, tgt).maps, map_transform)
    adv_pred = explainer.classifier.predict(adv).cpu().numpy()
    return _finish("random", explainer, x, adv, original_maps, adv_maps, tgt, predicted, adv_pred, start_q, start_t, 2 * len(tgt))


def fragility_attack(
    explainer: Explainer,
    images: Any,
    epsilon: float,
    *,
    objective: str = "topk",
    surrogate: nn.Module | None = None,
    k: int | None = None,
    w: int = 1,
    steps: int = 10,
    step_size: float | None = None,
    select_by: str | None = None,
    targets: Any = None,
    map_transform: str = "abs",
) -> AttackResult:
    """Ghorbani et al.'s iterative attacks (and the LENS-aware variant) on a batch.

    Each of ``steps`` iterations takes ``x' ← Π(x' + step_size · sign(∇ objective))`` on the
    surrogate's differentiable map, evaluates the iterate with the real classifier and explainer, and
    keeps, per image, the label-kept iterate with the largest ``dissimilarity(select_by)`` to the
    original map.

    Args:
        explainer: the attacked explainer (one of :data:`WHITE_BOX_EXPLAINERS`), bound to the classifier.
        images: ``(N, C, H, W)`` in [0, 1].
        epsilon: L∞ radius.
        objective: ``"topk"`` (mass on ``T_k`` of the original map), ``"lens_topk"`` (mass on
            ``N_w(T_k)``) or ``"mass_center"`` (centre-of-mass displacement).
        surrogate: the differentiable model (default :func:`load_surrogate`: softplus weights).
        k: top-k size (default ``H * W // 10``); ``w``: LENS neighbourhood radius.
        steps: iterations; ``step_size``: per-iteration step (default ``epsilon / 4``).
        select_by: the dissimilarity that picks the returned iterate (default ``"topk"``, or
            ``"lens_recall"`` for the LENS attack); one of ``SIMILARITY_NAMES``.
        targets: explained classes (default the original predictions).
        map_transform: ``"abs"`` (rank by magnitude, Ghorbani et al.) or ``"none"``.
    """
    check_choice("objective", objective, OBJECTIVES)
    epsilon = check_float("epsilon", epsilon, minimum=0.0, maximum=1.0)
    steps = check_int("steps", steps, minimum=1)
    alpha = epsilon / 4 if step_size is None else check_float("step_size", step_size, minimum=0.0, exclusive_minimum=True)
    w = check_int("w", w, minimum=0)
    check_choice("map_transform", map_transform, ("abs", "none"))
    select_by = check_choice("select_by", _DEFAULT_SELECT[objective] if select_by is None else select_by, SIMILARITY_NAMES)
    check_choice("explainer (white-box attacks)", getattr(explainer, "name", None), WHITE_BOX_EXPLAINERS)
    start_q, start_t = explainer.classifier.queries, time.perf_counter()
    x, predicted, tgt = _prepare(explainer, images, targets)
    _, h, width = explainer.classifier.input_shape
    k = max(1, h * width // 10) if k is None else check_int("k", k, minimum=1, maximum=h * width)
    surrogate = load_surrogate(explainer.classifier) if surrogate is None else surrogate
    target_t = torch.as_tensor(tgt, device=x.device)

    original_maps = transform_maps(explainer.explain(x, tgt).maps, map_transform)
    top = topk_mask(original_maps, k)
    region = neighbourhood_mask(top, w) if objective == "lens_topk" else top
    region_t = torch.as_tensor(region, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        ref = torch.as_tensor(original_maps, device=x.device)
        ref = ref.abs() if map_transform == "abs" else F.relu(ref)
        reference_center = center_of_mass(ref / ref.sum(dim=(1, 2), keepdim=True).clamp_min(1e-12))

    best = x.clone()
    best_maps = original_maps.copy()
    best_score = np.full(len(tgt), -np.inf)
    adv = x.clone()
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        with torch.enable_grad():
            maps = differentiable_attribution(explainer, surrogate, adv, target_t)
            loss = objective_value(objective, maps, region_t, reference_center, map_transform).sum()
            (grad,) = torch.autograd.grad(loss, adv)
        adv = (x + project_perturbation(adv.detach() + alpha * grad.sign() - x, x, epsilon)).clamp(0.0, 1.0)
        kept = explainer.classifier.predict(adv).cpu().numpy() == predicted
        maps_now = transform_maps(explainer.explain(adv, tgt).maps, map_transform)
        score = dissimilarity(select_by, original_maps, maps_now, k=k, w=w, nan_value=1.0)
        better = kept & (score > best_score)
        if better.any():
            idx = torch.as_tensor(np.flatnonzero(better), device=x.device)
            best[idx] = adv[idx]
            best_maps[better] = maps_now[better]
            best_score[better] = score[better]
    adv_pred = explainer.classifier.predict(best).cpu().numpy()
    explanations = (1 + steps) * len(tgt)
    return _finish(objective, explainer, x, best, original_maps, best_maps, tgt, predicted, adv_pred, start_q, start_t, explanations)


def topk_attack(explainer: Explainer, images: Any, epsilon: float, **options: Any) -> AttackResult:
    """Ghorbani et al.'s top-k attack (see :func:`fragility_attack`)."""
    return fragility_attack(explainer, images, epsilon, objective="topk", **options)


def mass_center_attack(explainer: Explainer, images: Any, epsilon: float, **options: Any) -> AttackResult:
    """Ghorbani et al.'s mass-centre attack (see :func:`fragility_attack`)."""
    return fragility_attack(explainer, images, epsilon, objective="mass_center", **options)


def lens_topk_attack(explainer: Explainer, images: Any, epsilon: float, **options: Any) -> AttackResult:
    """The LENS-aware top-k attack: the top-k objective on ``N_w(T_k)`` (see :func:`fragility_attack`)."""
    return fragility_attack(explainer, images, epsilon, objective="lens_topk", **options)


def run_attack(name: str, explainer: Explainer, images: Any, epsilon: float, **options: Any) -> AttackResult:
    """Run the attack ``name`` (one of :data:`ATTACKS`) with its keyword ``options``."""
    check_choice("attack", name, ATTACKS)
    if name == "random":
        return random_sign_attack(explainer, images, epsilon, **options)
    return fragility_attack(explainer, images, epsilon, objective=name, **options)
