"""One base for every configuration dataclass: declared fields, unknown-key errors, ``describe()``.

Environment configurations (:mod:`saliency_gym.envs`) and training configurations (classifiers,
agents, GANMEX, ID-ExpO, adversarial training) are dataclasses that derive from :class:`Options`.
The base gives them the same behaviour at the boundary:

* :meth:`Options.from_kwargs` rejects keys that are not declared fields with a ``TypeError`` that
  lists the allowed ones, builds the dataclass, and runs :meth:`Options.validate`;
* :meth:`Options.defaults` lists every field with its default (what ``default_config()`` returns);
* :meth:`Options.describe` is a JSON-friendly summary for logs, checkpoints and ``repr``.

A subclass declares its fields (with types and defaults) and overrides :meth:`validate` to check
and normalise them with the helpers of :mod:`saliency_gym.validation`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

OptionsT = TypeVar("OptionsT", bound="Options")


def check_known_keys(kwargs: Mapping[str, Any], allowed: Any, what: str = "argument") -> None:
    """Raise ``TypeError`` naming the keys of ``kwargs`` that are not in ``allowed``."""
    allowed = sorted(allowed)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(f"unknown {what}(s) {unknown}; allowed: {allowed}")


def describe_value(value: Any) -> Any:
    """A JSON-friendly stand-in for one configuration value.

    Objects with a ``describe()`` method describe themselves; objects with a ``name`` (classifiers,
    data sources, substrates, explainers) are shown by it; arrays and tuples become lists.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 16 else f"array{tuple(value.shape)}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        return [describe_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): describe_value(v) for k, v in value.items()}
    describe = getattr(value, "describe", None)
    if callable(describe):
        return describe()
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name
    return repr(value)


@dataclasses.dataclass
class Options:
    """Base of the configuration dataclasses (see the module docstring)."""

    @classmethod
    def field_names(cls) -> list[str]:
        """The declared fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls) if f.init]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every declared field with its default (``MISSING`` fields are left out)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out

    @classmethod
    def check_keys(cls, kwargs: Mapping[str, Any]) -> None:
        """Raise ``TypeError`` for keys that are not declared fields."""
        check_known_keys(kwargs, cls.field_names())

    @classmethod
    def from_kwargs(cls: type[OptionsT], **kwargs: Any) -> OptionsT:
        """Build and validate from keyword arguments; unknown keys raise ``TypeError``."""
        cls.check_keys(kwargs)
        return cls(**kwargs).validate()

    def validate(self: OptionsT) -> OptionsT:
        """Check (and normalise) the fields; raise ``TypeError``/``ValueError``; return ``self``."""
        return self

    def replace(self: OptionsT, **changes: Any) -> OptionsT:
        """A validated copy with some fields changed (unknown keys raise ``TypeError``)."""
        self.check_keys(changes)
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (values as they are)."""
        return {name: getattr(self, name) for name in self.field_names()}

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the fields (for logs, checkpoints and ``repr``)."""
        return {name: describe_value(getattr(self, name)) for name in self.field_names()}
