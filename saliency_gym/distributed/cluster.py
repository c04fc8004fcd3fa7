"""Connect to a Ray cluster, or start a local one, the same way in every command."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

__all__ = ["require_ray", "ensure_ray"]


def require_ray(feature: str = "the Ray engine") -> None:
    """Raise a clear ``ImportError`` when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise ImportError(f"{feature} needs Ray: pip install 'saliency-gym[ray]'")


def ensure_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> None:
    """Initialise Ray once per process.

    ``address`` is a running cluster's address (``ray start --head`` prints it; ``"auto"`` finds
    the local one); ``None`` uses ``RAY_ADDRESS`` when set, else starts a local instance with
    ``num_cpus`` CPUs (all of this machine's by default). A process already connected is left as
    it is, so tests and notebooks can call ``ray.init`` themselves first.
    """
    require_ray()
    import ray

    if ray.is_initialized():
        return
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
        raise ValueError(f"num_cpus must be a positive int, got {num_cpus!r}")
    address = address or os.environ.get("RAY_ADDRESS")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **kwargs}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, **options)
