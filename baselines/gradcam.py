"""Grad-CAM (Selvaraju et al. 2017) on Captum's ``LayerGradCam``, and the layer resolver it shares
with the differentiable Grad-CAM of ID-ExpO."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.layers import last_conv_block, resolve_layer, resolve_named_layer
from saliency_gym.validation import check_choice

# The layer resolver lives in the core (the environments' feature observations use it too).
__all__ = ["GradCAMExplainer", "last_conv_block", "resolve_layer", "resolve_named_layer"]


class GradCAMExplainer(Explainer):
    """Grad-CAM (Selvaraju et al. 2017), Captum's ``LayerGradCam``, upsampled to the image.

    The layer's activation maps are weighted by their spatially averaged gradients and summed;
    negative evidence is cut by a ReLU (the paper's choice), and the coarse map is upsampled
    bilinearly to the input size with ``LayerAttribution.interpolate``.

    Args:
        classifier: the model to explain (must wrap an ``nn.Module``).
        layer: the convolutional layer to explain: a submodule of ``classifier.module`` or its
            dotted name (``"features.12"``). ``None`` uses the model's ``target_layer`` property
            (:class:`~saliency_gym.models.cnn.SmallCNN`: the last convolutional block), else the last
            convolutional block found in the module (see :func:`last_conv_block`; its name is
            :attr:`layer_name` and is logged at INFO level).
        relu: apply the ReLU to the map (``False`` keeps negative evidence).
        interpolate_mode: upsampling mode for ``torch.nn.functional.interpolate``.

    Cost: one query per image.
    """

    name = "gradcam"
    needs_gradients = True

    def __init__(
        self,
        classifier: ClassifierLike,
        layer: nn.Module | str | None = None,
        relu: bool = True,
        interpolate_mode: str = "bilinear",
        *,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__(classifier, input_shape=input_shape)
        #: the dotted name of the explained layer (``"layer4"``), chosen automatically for ``layer=None``
        self.layer_name, self.layer = resolve_named_layer(
            self.classifier.module, layer, owner="classifier.module"
        )
        self.relu = bool(relu)
        self.interpolate_mode = check_choice(
            "interpolate_mode", interpolate_mode, ("bilinear", "bicubic", "nearest", "area")
        )

    def expected_queries(self) -> int:
        return 1

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import LayerAttribution, LayerGradCam

        gradcam = LayerGradCam(self.classifier.logits, self.layer)
        coarse = gradcam.attribute(
            images.detach().requires_grad_(True),
            target=targets.to(images.device).long(),
            relu_attributions=self.relu,
        )
        if coarse.ndim != 4:
            raise ValueError(
                f"Grad-CAM needs a convolutional layer with (N, C, h, w) output; the chosen layer gives {tuple(coarse.shape)}"
            )
        upsampled = LayerAttribution.interpolate(
            coarse.detach(), tuple(images.shape[-2:]), interpolate_mode=self.interpolate_mode
        )
        return upsampled[:, 0]

    def __repr__(self) -> str:
        return f"GradCAMExplainer(classifier={self.classifier.name!r}, layer={self.layer_name!r}, relu={self.relu})"
