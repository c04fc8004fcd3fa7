"""Fault injection for the training loops: a signal sent from inside a step."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any


def sigterm_on_call(function: Callable[..., Any], call: int) -> Callable[..., Any]:
    """``function``, sending SIGTERM to this process during its ``call``-th call (1-based), the
    way a scheduler stops a job mid-step; the loop's handler sees it before the step ends."""
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            os.kill(os.getpid(), signal.SIGTERM)
        return function(*args, **kwargs)

    return wrapped
