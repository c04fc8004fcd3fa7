"""One local Ray instance (2 CPUs) for every Ray test, started and shut down here.

Every test module in this folder sets ``pytestmark = pytest.mark.xdist_group("ray")`` so that,
under ``pytest -n 2 --dist loadgroup``, all Ray tests run in one worker and share this instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

ray = pytest.importorskip("ray", reason="the Ray tests need the [ray] extra")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
