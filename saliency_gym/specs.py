"""Specs that rebuild a run's objects from plain values: a model and its data, an explainer's options.

The command line (:mod:`saliency_gym.cli`) and the Ray engines (:mod:`saliency_gym.distributed`)
both need to build "the classifier and the images of ``--model ... --data ...``" and "the
explainers of ``--methods ... --seed ... --rise-masks ...``", and a Ray actor has to rebuild them
on another process from values it can pickle. Both live here, in the core, as functions of typed
arguments: the CLI converts its ``argparse`` namespace into a :class:`ModelDataSpec` and calls
:meth:`ModelDataSpec.build`; Ray ships the frozen spec to its actors and calls the same method. So
imports point one way (cli -> distributed -> core) and a local run and a Ray run build exactly the
same objects.

Example::

    >>> from saliency_gym.specs import ModelDataSpec, explainer_kwargs
    >>> spec = ModelDataSpec("shapes")            # a shipped classifier and its own test images
    >>> classifier, data = spec.build(device="cpu")  # doctest: +SKIP
    >>> explainer_kwargs("rise", seed=3, rise_masks=500)
    {'seed': 3, 'n_masks': 500}
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.data import DataSource

__all__ = ["ModelDataSpec", "explainer_kwargs"]


def _text(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.fspath(value)


@dataclass(frozen=True)
class ModelDataSpec:
    """A classifier and the data it explains, as plain (hashable, picklable) values.

    Every field mirrors an option of :func:`saliency_gym.models.model_files.load_model` or
    :func:`saliency_gym.data.resolve.resolve_data_spec`, so a spec says no more and no less than a
    command line's "model and data" group.

    Args:
        model: a shipped classifier name, a checkpoint, a TorchScript or ``.pt2`` file, or
            ``"module:factory"``.
        data: a dataset name or a folder of images; ``None``: the classifier's own dataset
            (shipped classifiers only).
        weights: the state-dict file of a ``module:factory`` model.
        random_weights: explain a ``module:factory`` model with the weights its factory draws.
        model_kwargs: keyword arguments of the factory, as a JSON object string.
        input_shape: ``(C, H, W)`` the model takes (inferred from ``.pt2`` archives and named data).
        class_names: a file of class names (one a line, or a JSON list).
        normalize: what the model expects of its inputs (:func:`saliency_gym.models.model_files.parse_normalize`).
        class_map: for a folder of class sub-folders, the file mapping folders to classes.
    """

    model: str
    data: str | None = None
    weights: str | None = None
    random_weights: bool = False
    model_kwargs: str | None = None
    input_shape: tuple[int, int, int] | None = None
    class_names: str | None = None
    normalize: tuple[str, ...] | None = None
    class_map: str | None = None

    def __post_init__(self) -> None:
        # Lists and paths become tuples and strings, so a spec is hashable and compares by value.
        if not isinstance(self.model, (str, os.PathLike)) or not os.fspath(self.model):
            raise TypeError(
                f"model must be a non-empty spec string (a shipped name, a checkpoint, a "
                f"TorchScript/.pt2 file or module:factory), got {self.model!r}"
            )
        for name in ("model", "data", "weights", "class_names", "class_map", "model_kwargs"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"{name} must be a string or a path, got {type(value).__name__}")
            object.__setattr__(self, name, _text(value))
        if self.input_shape is not None:
            shape = tuple(self.input_shape)
            if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
                raise ValueError(f"input_shape must be three positive ints (C, H, W), got {self.input_shape!r}")
            object.__setattr__(self, "input_shape", shape)
        if self.normalize is not None:
            values = (self.normalize,) if isinstance(self.normalize, str) else tuple(self.normalize)
            object.__setattr__(self, "normalize", tuple(str(v) for v in values))
        object.__setattr__(self, "random_weights", bool(self.random_weights))

    @classmethod
    def of(cls, model: str, data: str | os.PathLike[str] | None = None, **options: Any) -> ModelDataSpec:
        """A spec from a model spec and a data name or folder; ``options`` are the other fields
        (``TypeError`` naming the allowed ones for any other keyword)."""
        allowed = [f.name for f in fields(cls) if f.name not in ("model", "data")]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise TypeError(f"unknown model arguments {unknown}; choose from {allowed}")
        return cls(model, _text(data), **options)

    @classmethod
    def from_attributes(cls, options: Any) -> ModelDataSpec:
        """A spec from any object with the fields as attributes (a parsed command line's namespace;
        missing ones take their defaults). ``ValueError`` when ``options.model`` is not set."""
        if getattr(options, "model", None) is None:
            raise ValueError(
                "pass --model (a shipped name, a checkpoint, a TorchScript/.pt2 file or module:factory)"
            )
        values = {f.name: getattr(options, f.name) for f in fields(cls) if getattr(options, f.name, None) is not None}
        return cls(**values)

    def with_data(self, data: str | os.PathLike[str] | None) -> ModelDataSpec:
        """The same model with other data."""
        return replace(self, data=_text(data))

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-friendly values (tuples as lists), e.g. for a manifest."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    def build(self, device: str | None = None, *, split: str = "test") -> tuple[FrozenClassifier, DataSource]:
        """The classifier and the data source this spec names.

        Without ``input_shape``, a model that cannot tell its own input size takes the image size
        of a named dataset. Without ``data``, the classifier's own dataset is used (its ``split``).
        Raises ``ValueError`` when the data is missing for a model without a dataset of its own, or
        when the images' shape differs from the model's input shape.
        """
        from saliency_gym.data import available_datasets, load_dataset
        from saliency_gym.data.resolve import resolve_data_spec
        from saliency_gym.models.model_files import load_model

        fallback = None
        if self.input_shape is None and self.data in available_datasets():
            fallback = load_dataset(self.data, split=split).image_shape  # a model that cannot tell its input size
        classifier = load_model(
            self.model, weights=self.weights, input_shape=self.input_shape, fallback_input_shape=fallback,
            class_names=self.class_names, normalize=None if self.normalize is None else list(self.normalize),
            model_kwargs=self.model_kwargs, device=device, random_weights=self.random_weights,
        )  # fmt: skip
        data = self.data if self.data is not None else classifier.meta.get("dataset")
        if data is None:
            raise ValueError(
                f"pass --data (a dataset name or a folder of images) for the model {classifier.name!r}"
            )
        source = resolve_data_spec(data, classifier, split=split, class_map=self.class_map)
        if tuple(source.image_shape) != tuple(classifier.input_shape):
            raise ValueError(
                f"the {source.name} images have shape {tuple(source.image_shape)}, but the model takes "
                f"{tuple(classifier.input_shape)}; pass an image folder (resized to the model) or a matching model"
            )
        return classifier, source


def explainer_kwargs(
    method: str, *, seed: int = 0, rise_masks: int | None = None, agent: str | os.PathLike[str] | None = None
) -> dict[str, object]:
    """Keyword arguments of :func:`saliency_gym.explainers.make_explainer` for ``method``.

    The seed goes to every method that takes one, ``rise_masks`` to RISE (``n_masks``), ``agent``
    to the ``policy`` method (which needs it: ``ValueError`` otherwise). The local ``explain``
    command and Ray Data explanation both call this, so both build the same explainers.
    """
    from saliency_gym.explainers import explainer_options

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if rise_masks is not None and (isinstance(rise_masks, bool) or not isinstance(rise_masks, int) or rise_masks < 1):
        raise ValueError(f"rise_masks must be a positive int, got {rise_masks!r}")
    options: dict[str, object] = {}
    if "seed" in explainer_options(method):
        options["seed"] = seed
    if method == "rise" and rise_masks is not None:
        options["n_masks"] = rise_masks
    if method == "policy":
        if agent is None:
            raise ValueError(
                "the 'policy' method needs an agent (--agent: a shipped agent name or a checkpoint path)"
            )
        options["policy"] = os.fspath(agent)
    return options


def unique_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` without repeats, in order, each a registered explainer (``ValueError`` naming
    the unknown one and the choices) that can name an output folder."""
    from saliency_gym.explainers import explainer_class

    unique = list(dict.fromkeys(methods))
    if not unique:
        raise ValueError("pass at least one method")
    for method in unique:
        explainer_class(method)
        if "/" in method or "\\" in method or method.startswith("."):
            raise ValueError(f"method name {method!r} cannot name an output folder")
    return unique
