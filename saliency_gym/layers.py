"""Which layer of a model holds its spatial evidence: the layer Grad-CAM explains and the layer
whose activations the saliency-search environments can observe (``observe_features``).

A choice both need, so it lives in the core: the model's ``target_layer`` property when it has one,
else the last convolutional block (``layer4`` of a ResNet, ``_conv_head`` of EfficientNet-Lite,
the last ``Conv2d`` of a plain ``Sequential``), or a layer named by its dotted path.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

__all__ = ["last_conv_block", "resolve_layer", "resolve_named_layer"]

logger = logging.getLogger(__name__)


def resolve_layer(
    module: nn.Module, layer: nn.Module | str | None, owner: str = "model"
) -> nn.Module:
    """The layer Grad-CAM explains: ``layer`` itself, the submodule of that dotted name, or (for
    ``None``) the model's ``target_layer`` property, else the last convolutional block (see
    :func:`resolve_named_layer`, which also returns the layer's name).

    ``owner`` names ``module`` in the error messages.
    """
    return resolve_named_layer(module, layer, owner)[1]


def resolve_named_layer(
    module: nn.Module, layer: nn.Module | str | None, owner: str = "model"
) -> tuple[str, nn.Module]:
    """``(dotted name, layer)`` of the layer Grad-CAM explains in ``module``.

    ``layer=None`` picks, in this order: the model's ``target_layer`` property (SmallCNN, the
    shipped ImageNet models), else :func:`last_conv_block` (``layer4`` of a ResNet, ``_conv_head``
    of EfficientNet, the last ``Conv2d`` of a plain ``Sequential``). The choice is logged at INFO
    level. Raises ``ValueError`` when nothing fits (a model without convolutions: pass ``layer=``)
    and ``TypeError`` for a TorchScript module, which does not accept the forward hooks Grad-CAM
    needs.
    """
    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError(
            "Grad-CAM needs forward hooks on a layer, which TorchScript modules do not support; "
            "save the model with torch.export (.pt2) or load it as 'module:factory' with its weights, "
            "or use a method without layers (occlusion, rise, gradient, integrated_gradients)"
        )
    if layer is None:
        target = getattr(module, "target_layer", None)
        if isinstance(target, nn.Module):
            layer = target
        else:
            name, found = last_conv_block(module)
            logger.info(
                "evidence layer (Grad-CAM, observe_features): %s (%s, the last convolutional block)", name, type(found).__name__
            )
            return name, found
    elif isinstance(layer, str):
        try:
            layer = module.get_submodule(layer)
        except AttributeError:
            names = [name for name, _ in module.named_modules() if name]
            raise ValueError(
                f"{type(module).__name__} has no submodule {layer!r}; submodules: {names}"
            ) from None
    elif not isinstance(layer, nn.Module):
        raise TypeError(
            f"layer must be an nn.Module, a submodule name or None, got {type(layer).__name__}"
        )
    found_name = next((n for n, m in module.named_modules() if m is layer), None)
    if found_name is None:
        raise ValueError(f"layer must be a submodule of {owner}")
    return found_name, layer


#: aten operators that mark a convolution / a classifier head in the graph of a module unflattened
#: from a ``torch.export`` archive (whose layers are ``InterpreterModule``s, not ``nn.Conv2d``).
_CONV_OPS = ("conv2d", "convolution", "_convolution")
_HEAD_OPS = (
    "linear",
    "addmm",
    "flatten",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "_adaptive_avg_pool2d",
)
_HEAD_MODULES = (nn.Linear, nn.Flatten, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _graph_ops(module: nn.Module) -> set[str]:
    """Names of the aten operators a graph-backed module (fx / ``torch.export``) calls itself."""
    graph = getattr(module, "graph", None)
    nodes = getattr(graph, "nodes", None)
    if nodes is None or isinstance(module, torch.jit.ScriptModule):
        return set()
    ops = set()
    for node in nodes:
        if getattr(node, "op", None) == "call_function":
            packet = getattr(node.target, "_opname", None) or getattr(node.target, "__name__", "")
            ops.add(str(packet).split(".")[0])
    return ops


def _is_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d) or bool(_graph_ops(module) & set(_CONV_OPS))


def _is_head(module: nn.Module) -> bool:
    return isinstance(module, _HEAD_MODULES) or bool(_graph_ops(module) & set(_HEAD_OPS))


def last_conv_block(module: nn.Module) -> tuple[str, nn.Module]:
    """``(dotted name, block)``: the last child (in registration order) that holds a convolution,
    descending while that child still holds the classifier head (a ``Linear``, ``Flatten`` or
    adaptive pooling: a wrapper, or a plain ``Sequential`` CNN whose children are single layers).

    This is the usual Grad-CAM choice: ``layer4`` for a ResNet, ``features`` for VGG/MobileNet,
    ``_conv_head`` for EfficientNet(-Lite), the last ``Conv2d`` of a flat ``Sequential``. Raises
    ``ValueError`` when the model has no ``Conv2d`` (a ViT, an MLP): pass ``layer=``.
    """
    if not any(_is_conv(m) for m in module.modules()):
        raise ValueError(
            f"{type(module).__name__} has no target_layer property and no convolutional layer for Grad-CAM "
            "to explain (a transformer or an MLP?); pass layer= (a submodule or its dotted name whose "
            "output is (N, C, h, w))"
        )
    name, current = "", module
    while not _is_conv(current):
        candidates = [
            (n, c) for n, c in current.named_children() if any(_is_conv(m) for m in c.modules())
        ]
        if not candidates:
            break
        child_name, current = candidates[-1]
        name = f"{name}.{child_name}" if name else child_name
        if not any(_is_head(m) for m in current.modules()):
            break
    if not name:
        raise ValueError(
            f"{type(module).__name__} is itself a convolution; wrap it in a model or pass layer="
        )
    return name, current
