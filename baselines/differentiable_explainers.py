"""Explainers whose maps are differentiable in the model's parameters (ID-ExpO's regularisers).

ID-ExpO (Yoshikawa & Iwata, AISTATS 2024) trains a predictor so that its post-hoc explanations do
well on insertion and deletion. The loss needs the explanation ``e(theta)`` as a function of the
parameters ``theta``: gradients of the soft metrics reach ``theta`` both through the model's
predictions on the soft inputs and through ``e``. The explainers here compute the same maps as the
Captum-backed ones in :mod:`saliency_gym.baselines.gradients` (checked in the tests on a frozen
copy), but on a *trainable* ``nn.Module`` and with ``torch.autograd.grad(..., create_graph=True)``
so the map keeps its graph:

* :class:`DifferentiableGradient`: ``|d logit_y / d x|`` reduced over channels by ``max_abs``
  (Simonyan et al. 2014), as :class:`~saliency_gym.baselines.gradients.GradientExplainer`;
* :class:`DifferentiableInputXGradient`: ``x * d logit_y / d x`` summed over channels (Shrikumar
  et al. 2016), as :class:`~saliency_gym.baselines.gradients.InputXGradientExplainer`;
* :class:`DifferentiableGradCAM`: ReLU of the gradient-weighted sum of a convolutional layer's
  activations, upsampled bilinearly to the input (Selvaraju et al. 2017), as
  :class:`~saliency_gym.baselines.gradients.GradCAMExplainer` (ID-ExpO's published code supports
  Grad-CAM only, upsampled by repetition; here bilinear, like Captum's).

Gradient and Input x Gradient also take table rows ``(N, F)`` (the map is then ``(N, F)``).

Use the model in eval mode (batch norm with running statistics): in train mode batch norm couples
the inputs of a batch, so a gradient of the batch's summed logits would mix inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliency_gym.baselines.captum_base import CHANNEL_REDUCTIONS, reduce_channels
from saliency_gym.baselines.gradcam import resolve_layer
from saliency_gym.validation import as_label_array, check_choice

__all__ = [
    "DIFFERENTIABLE_EXPLAINERS",
    "DifferentiableExplainer",
    "DifferentiableGradCAM",
    "DifferentiableGradient",
    "DifferentiableInputXGradient",
    "make_differentiable_explainer",
]


class DifferentiableExplainer(ABC):
    """Maps of a trainable ``model`` that stay differentiable in its parameters.

    Args:
        model: the ``nn.Module`` being trained (maps ``(N, ...)`` inputs to ``(N, K)`` logits).
        create_graph: keep the graph of the input gradient (needed to train through the map);
            ``False`` gives detached maps at the cost of one backward pass.
    """

    name: str = "differentiable"

    def __init__(self, model: nn.Module, create_graph: bool = True) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = model
        self.create_graph = bool(create_graph)

    def _targets(self, targets: Any, n: int, num_classes: int, device: torch.device) -> torch.Tensor:
        if isinstance(targets, torch.Tensor):
            targets = targets.detach().cpu()
        return torch.as_tensor(as_label_array(targets, n=n, num_classes=num_classes, name="targets"), device=device)

    def _check_inputs(self, inputs: Any) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor) or not torch.is_floating_point(inputs):
            raise TypeError(f"inputs must be a floating torch tensor, got {type(inputs).__name__}")
        if inputs.ndim not in (2, 4) or inputs.shape[0] == 0:
            raise ValueError(f"inputs must be non-empty images (N, C, H, W) or table rows (N, F), got shape {tuple(inputs.shape)}")
        return inputs

    def input_gradient(self, inputs: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, d logit_y / d x)`` with the graph kept when :attr:`create_graph` is set."""
        x = self._check_inputs(inputs).detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(x)
            y = self._targets(targets, x.shape[0], logits.shape[1], x.device)
            selected = logits.gather(1, y[:, None]).sum()
            (grad,) = torch.autograd.grad(selected, x, create_graph=self.create_graph)
        return x, grad

    @abstractmethod
    def __call__(self, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        """Maps ``(N, H, W)`` for images ``(N, C, H, W)``, ``(N, F)`` for rows ``(N, F)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__}, create_graph={self.create_graph})"


class DifferentiableGradient(DifferentiableExplainer):
    """Vanilla gradient saliency, differentiable (see the module docstring).

    Args:
        model: the trainable model.
        abs: the gradient's magnitude (Captum's ``Saliency`` default) or signed gradients.
        channel_reduction: one of :data:`~saliency_gym.baselines.gradients.CHANNEL_REDUCTIONS`;
            default ``"max_abs"`` with ``abs=True``, ``"sum"`` otherwise (as ``GradientExplainer``).
        create_graph: see :class:`DifferentiableExplainer`.
    """

    name = "gradient"

    def __init__(self, model: nn.Module, abs: bool = True, channel_reduction: str | None = None, create_graph: bool = True) -> None:
        super().__init__(model, create_graph)
        self.abs = bool(abs)
        default = "max_abs" if self.abs else "sum"
        self.channel_reduction = check_choice("channel_reduction", default if channel_reduction is None else channel_reduction, CHANNEL_REDUCTIONS)

    def __call__(self, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        _, grad = self.input_gradient(inputs, targets)
        if self.abs:
            grad = grad.abs()
        return grad if grad.ndim == 2 else reduce_channels(grad, self.channel_reduction)


class DifferentiableInputXGradient(DifferentiableExplainer):
    """Input x Gradient, differentiable; channels summed by default (as ``InputXGradientExplainer``)."""

    name = "input_x_gradient"

    def __init__(self, model: nn.Module, channel_reduction: str = "sum", create_graph: bool = True) -> None:
        super().__init__(model, create_graph)
        self.channel_reduction = check_choice("channel_reduction", channel_reduction, CHANNEL_REDUCTIONS)

    def __call__(self, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        x, grad = self.input_gradient(inputs, targets)
        attributions = x.detach() * grad
        return attributions if attributions.ndim == 2 else reduce_channels(attributions, self.channel_reduction)


class DifferentiableGradCAM(DifferentiableExplainer):
    """Grad-CAM, differentiable in the parameters through the activations and their gradients.

    Args:
        model: the trainable CNN.
        layer: the convolutional layer (a submodule or its dotted name); ``None`` uses the model's
            ``target_layer`` (:class:`~saliency_gym.models.cnn.SmallCNN`: the last block).
        relu: cut negative evidence (the paper's choice).
        interpolate_mode: ``"bilinear"`` (Captum's default, used by ``GradCAMExplainer``) or
            ``"nearest"``.
        create_graph: see :class:`DifferentiableExplainer`.
    """

    name = "gradcam"

    def __init__(
        self,
        model: nn.Module,
        layer: nn.Module | str | None = None,
        relu: bool = True,
        interpolate_mode: str = "bilinear",
        create_graph: bool = True,
    ) -> None:
        super().__init__(model, create_graph)
        self.layer: nn.Module = resolve_layer(model, layer)
        self.relu = bool(relu)
        self.interpolate_mode = check_choice("interpolate_mode", interpolate_mode, ("bilinear", "nearest"))

    def __call__(self, inputs: torch.Tensor, targets: Any) -> torch.Tensor:
        x = self._check_inputs(inputs)
        if x.ndim != 4:
            raise ValueError(f"Grad-CAM needs images (N, C, H, W), got shape {tuple(x.shape)}")
        captured: list[torch.Tensor] = []
        handle = self.layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            with torch.enable_grad():
                logits = self.model(x.detach())
        finally:
            handle.remove()
        if len(captured) != 1 or captured[0].ndim != 4:
            raise ValueError("Grad-CAM needs a convolutional layer used once in the forward pass, with (N, C, h, w) output")
        activations = captured[0]
        y = self._targets(targets, x.shape[0], logits.shape[1], x.device)
        with torch.enable_grad():
            (grads,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), activations, create_graph=self.create_graph)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = (weights * activations).sum(dim=1, keepdim=True)
        if self.relu:
            cam = F.relu(cam)
        if not self.create_graph:
            cam = cam.detach()
        kwargs = {"align_corners": False} if self.interpolate_mode == "bilinear" else {}
        return F.interpolate(cam, size=tuple(x.shape[-2:]), mode=self.interpolate_mode, **kwargs)[:, 0]


DIFFERENTIABLE_EXPLAINERS: dict[str, type[DifferentiableExplainer]] = {
    cls.name: cls for cls in (DifferentiableGradCAM, DifferentiableGradient, DifferentiableInputXGradient)
}


def make_differentiable_explainer(name: str, model: nn.Module, **options: Any) -> DifferentiableExplainer:
    """Build a differentiable explainer by name: ``"gradcam"``, ``"gradient"`` or ``"input_x_gradient"``."""
    if not isinstance(name, str):
        raise TypeError(f"explainer name must be a string, got {type(name).__name__}")
    check_choice("explainer", name, DIFFERENTIABLE_EXPLAINERS)
    return DIFFERENTIABLE_EXPLAINERS[name](model, **options)
