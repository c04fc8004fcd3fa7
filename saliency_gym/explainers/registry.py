"""Explainers by name: ``make_explainer("rise", classifier, n_masks=2000)``.

Benchmarks, the ``saliency-gym`` commands, the attack environments and configuration files refer
to explanation methods by name. The registry lives in the core; methods enter it in two ways:

* **entry points** of the group ``saliency_gym.explainers`` (``name = "package.module:Class"``),
  which is how the methods of ``saliency_gym.baselines`` and ``saliency_gym.agents`` (and a
  third-party package's) are found. Only the module of the method asked for is imported, so
  ``make_explainer("gradient", ...)`` does not load RISE, GANMEX or the agents;
* :func:`register_explainer`, for a class defined at run time (a notebook, a test).
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers.base import Explainer

#: The entry-point group plugins declare their explainers in.
ENTRY_POINT_GROUP = "saliency_gym.explainers"

ExplainerT = TypeVar("ExplainerT", bound=type[Explainer])

_REGISTERED: dict[str, type[Explainer]] = {}


@functools.lru_cache(maxsize=1)
def _declared() -> dict[str, EntryPoint]:
    """The explainers declared as entry points, by name, in declaration order."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register_explainer(cls: ExplainerT, *, name: str | None = None, replace: bool = False) -> ExplainerT:
    """Add an :class:`Explainer` subclass to the registry under ``name`` (default ``cls.name``).

    Usable as a decorator. A name that is taken by another class raises ``ValueError`` unless
    ``replace=True``.
    """
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise TypeError(f"only Explainer subclasses can be registered, got {cls!r}")
    key = cls.name if name is None else name
    if not isinstance(key, str) or not key:
        raise ValueError(f"an explainer needs a non-empty name, got {key!r}")
    current = _REGISTERED.get(key)
    if current is not None and current is not cls and not replace:
        raise ValueError(f"explainer name {key!r} is taken by {current.__qualname__}; pass replace=True")
    _REGISTERED[key] = cls
    return cls


def available_explainers() -> list[str]:
    """Names :func:`make_explainer` accepts: declared entry points first, then run-time ones."""
    names = list(_declared())
    return names + [name for name in _REGISTERED if name not in names]


def explainer_class(name: str) -> type[Explainer]:
    """The :class:`~saliency_gym.Explainer` subclass registered as ``name`` (imports its module)."""
    if not isinstance(name, str):
        raise TypeError(f"explainer name must be a string, got {type(name).__name__}")
    if name in _REGISTERED:
        return _REGISTERED[name]
    entry = _declared().get(name)
    if entry is None:
        raise ValueError(f"unknown explainer {name!r}; choose one of {available_explainers()}")
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise TypeError(f"entry point {entry.value!r} for explainer {name!r} is not an Explainer subclass")
    return register_explainer(cls, name=name)


def explainer_options(name: str) -> list[str]:
    """The keyword options the explainer ``name`` accepts (its constructor's arguments, less the
    classifier and the raw module's ``input_shape`` every explainer shares)."""
    parameters = inspect.signature(explainer_class(name).__init__).parameters
    shared = ("self", "classifier", "input_shape")
    return [p for p, spec in parameters.items() if p not in shared and spec.kind is not spec.VAR_KEYWORD]


def make_explainer(name: str, classifier: FrozenClassifier, **options: Any) -> Explainer:
    """Build the explainer registered as ``name`` for ``classifier``.

    Args:
        name: one of :func:`available_explainers` (``"rise"``, ``"occlusion"``, ``"random"``,
            ``"gradient"``, ``"integrated_gradients"``, ``"smoothgrad"``, ``"gradient_shap"``,
            ``"deeplift"``, ``"input_x_gradient"``, ``"gradcam"``, ``"policy"``, ...).
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
