"""Lazy package attributes (PEP 562), shared by the plugin packages.

``saliency_gym.baselines`` and ``saliency_gym.agents`` export many names from many submodules;
importing them all would load Captum, GANMEX, Stable-Baselines3... for a user who needs one
explainer. :func:`lazy_exports` gives a package a module-level ``__getattr__``/``__dir__`` that
import the defining submodule on first access and cache the value.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose public ``name`` lives in submodule
    ``table[name]``; ``namespace`` is the package's ``globals()`` (values are cached there)."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
