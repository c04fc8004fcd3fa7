"""What the configurations of every environment family share: the arguments that pick the
classifier, the data and the grid, their resolution, and the base of the resolved configurations.

A family declares its user-facing keyword arguments as a dataclass deriving from
:class:`EnvOptions` (fields with types and defaults: ``default_config()`` is
``Options.defaults()``), and its resolved, validated settings as a dataclass deriving from
:class:`EnvConfig`. Unknown keyword arguments raise the ``TypeError`` of
:func:`saliency_gym.options.check_known_keys`, and ``describe()`` is the one of
:class:`saliency_gym.options.Options`, for every family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import ArraySource, DataSource, load_dataset
from saliency_gym.grid import PatchGrid
from saliency_gym.options import Options
from saliency_gym.types import Image
from saliency_gym.validation import check_int

#: A classifier as environments accept it: an instance, a shipped name or a checkpoint path.
ClassifierSpec = FrozenClassifier | str | os.PathLike[str]
#: A grid as environments accept it: cells per side or ``(rows, cols)``.
GridSpec = int | tuple[int, int]


@dataclass
class EnvOptions(Options):
    """The keyword arguments every environment family takes (see the environment docstrings)."""

    classifier: ClassifierSpec = "shapes"
    """A ``FrozenClassifier``, a shipped name or a checkpoint path."""
    data: DataSource | str | None = None
    """A ``DataSource`` or a dataset name; default: the classifier's own dataset."""
    split: str = "train"
    """The split of a named dataset."""
    image: Image | None = None
    """One fixed ``(C, H, W)`` image to use instead of a data source."""
    label: int | None = None
    """The label of the fixed ``image``."""
    grid: GridSpec = 8
    """Cells per side, or ``(rows, cols)``."""
    device: str | torch.device | None = None
    """Device of a classifier given by name."""
    observe_action_mask: bool = False
    """Add ``"action_mask"`` (1.0 for each allowed action, one per action) to the observation, for
    learners that read the mask from the observation rather than calling ``action_masks()``
    (RLlib's action-masking modules, :mod:`saliency_gym.distributed.rllib_module`)."""


@dataclass
class EnvConfig(Options):
    """Base of the resolved environment configurations: every one has a classifier, data, a grid
    and a budget (of steps or cells per episode)."""

    classifier: FrozenClassifier
    data: DataSource
    grid: PatchGrid
    budget: int

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (for logs and ``repr``): data with its size, the grid by its shape."""
        out = super().describe()
        out["data"] = f"{self.data.name} ({len(self.data)} images)"
        out["grid"] = self.grid.shape
        return out


def check_flag(name: str, value: object) -> bool:
    """``value`` as a bool, or ``TypeError`` (``observe_*`` switches must be real booleans)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def action_mask_space(num_actions: int) -> spaces.Box:
    """The ``"action_mask"`` observation entry of ``num_actions`` discrete actions:
    ``Box(0, 1, (num_actions,), float32)``, 1.0 where the action is allowed (the space RLlib's
    action-masking example reads)."""
    return spaces.Box(0.0, 1.0, (int(num_actions),), np.float32)


def resolve_classifier_and_data(options: EnvOptions) -> tuple[FrozenClassifier, DataSource]:
    """The classifier and the data source of a configuration, checked to fit each other."""
    classifier = resolve_classifier(options.classifier, options.device)
    data = resolve_data(options, classifier)
    if tuple(data.image_shape) != tuple(classifier.input_shape):
        raise ValueError(
            f"data images have shape {tuple(data.image_shape)} but the classifier expects {classifier.input_shape}"
        )
    if data.num_classes != classifier.num_classes:
        raise ValueError(f"data has {data.num_classes} classes but the classifier has {classifier.num_classes}")
    return classifier, data


def resolve_classifier(spec: object, device: str | torch.device | None) -> FrozenClassifier:
    """A classifier from an instance, a shipped name or a checkpoint path."""
    if isinstance(spec, FrozenClassifier):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        from saliency_gym.models.zoo import load_classifier

        return load_classifier(spec, device=device)
    raise TypeError(
        f"classifier must be a FrozenClassifier, a shipped name or a checkpoint path, got {type(spec).__name__}"
    )


def resolve_data(options: EnvOptions, classifier: FrozenClassifier) -> DataSource:
    """The data source: a fixed ``image`` (with its ``label``), a ``DataSource`` or a dataset name."""
    if options.image is not None:
        if options.data is not None:
            raise ValueError("pass either `image` (a fixed image) or `data`, not both")
        image = options.image
        array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
        if array.shape != tuple(classifier.input_shape):
            raise ValueError(f"image must have the classifier's shape {classifier.input_shape}, got {array.shape}")
        label = options.label
        labels = [0 if label is None else check_int("label", label, minimum=0, maximum=classifier.num_classes - 1)]
        return ArraySource(array[None], labels, class_names=classifier.class_names, name="image", has_label=label is not None)
    if options.label is not None:
        raise ValueError("`label` goes with a fixed `image`; data sources carry their own labels")
    data = options.data
    if data is None:
        data = classifier.meta.get("dataset")
        if data is None:
            raise ValueError("pass `data` (a DataSource or a dataset name) or `image` for a custom classifier")
    if isinstance(data, str):
        return load_dataset(data, split=options.split)
    if isinstance(data, DataSource):
        if len(data) == 0:
            raise ValueError("data source is empty")
        return data
    raise TypeError(f"data must be a DataSource or a dataset name, got {type(data).__name__}")


def resolve_grid(spec: object, image_shape: tuple[int, ...]) -> PatchGrid:
    """A :class:`PatchGrid` over ``image_shape`` from cells per side or ``(rows, cols)``."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        return PatchGrid.for_shape(image_shape, spec[0], spec[1])
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return PatchGrid.for_shape(image_shape, int(spec))
    raise TypeError(f"grid must be an int (cells per side) or a (rows, cols) pair, got {spec!r}")
