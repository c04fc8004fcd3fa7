"""Connect to a Ray cluster, or start a local one, the same way in every command.

Two checks come before Ray is touched, so a mistake is one clear line instead of a hang:
:func:`require_ray` (the ``[ray]`` extra is installed) and :func:`check_ray_address` (something
answers at a cluster address within a few seconds; ``ray.init`` itself retries a dead address for
minutes, logging "Failed to connect to GCS").
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from typing import Any

__all__ = ["ADDRESS_TIMEOUT_S", "check_ray_address", "ensure_ray", "require_ray"]

#: Seconds :func:`check_ray_address` waits for a cluster address to accept a connection.
ADDRESS_TIMEOUT_S = 3.0


def require_ray(feature: str = "the Ray engine") -> None:
    """Raise a clear ``ImportError`` when Ray is not installed."""
    if importlib.util.find_spec("ray") is None:
        raise ImportError(f"{feature} needs Ray: pip install 'saliency-gym[ray]'")


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port``, ``[v6]:port`` or ``ray://host:port``; ``None`` for the
    addresses Ray resolves itself (``auto``, ``local``) and for anything else it may accept."""
    text = address.strip()
    for scheme in ("ray://", "http://", "https://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("/", 1)[0]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def check_ray_address(address: str | None, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """Raise ``ConnectionError`` naming ``address`` and how to start Ray when nothing accepts a TCP
    connection there within ``timeout`` seconds (``None``, ``"auto"`` and ``"local"`` are left to Ray).

    ``ray.init(address=...)`` on a dead address retries for minutes; this check makes that a
    bounded, one-line error (an ``OSError``: the CLI prints it and exits 2).
    """
    if not address:
        return
    target = _host_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ConnectionError(
            f"no Ray cluster answers at {address} ({reason} within {timeout:g} s); start one on that machine with "
            f"`ray start --head --port {port}` and pass its address, or leave out --address (and RAY_ADDRESS) "
            "to start Ray on this machine"
        ) from None


def ensure_ray(address: str | None = None, num_cpus: int | None = None, **kwargs: Any) -> None:
    """Initialise Ray once per process.

    ``address`` is a running cluster's address (``ray start --head`` prints it; ``"auto"`` finds
    the local one); ``None`` uses ``RAY_ADDRESS`` when set, else starts a local instance with
    ``num_cpus`` CPUs (all of this machine's by default). A process already connected is left as
    it is, so tests and notebooks can call ``ray.init`` themselves first. An address nothing
    answers at raises ``ConnectionError`` within seconds (:func:`check_ray_address`).
    """
    require_ray()
    import ray

    if ray.is_initialized():
        return
    if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
        raise ValueError(f"num_cpus must be a positive int, got {num_cpus!r}")
    address = address or os.environ.get("RAY_ADDRESS")
    # The driver's INFO/WARNING lines (start-up, token notices) are nothing a user acts on; Ray's
    # errors still print. Workers' logs stay in Ray's session folder (log_to_driver=False).
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR, **kwargs}
    if address:
        check_ray_address(address)
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, **options)
