"""Issue 20: ``--engine ray --address HOST:PORT`` with nothing listening used to retry for ever
("Failed to connect to GCS"); now it fails within seconds, naming the address and how to start Ray.
Nothing here starts Ray."""

from __future__ import annotations

import socket
import time

import pytest

from saliency_gym.cli.main import main
from saliency_gym.distributed.cluster import check_ray_address, ensure_ray

pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture()
def dead_address() -> str:
    """``127.0.0.1:<port>`` where nothing listens (a port just freed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


def test_a_dead_address_fails_fast_with_the_way_to_start_ray(dead_address):
    port = dead_address.rsplit(":", 1)[1]
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match=rf"no Ray cluster answers at {dead_address} .*`ray start --head --port {port}`"):
        check_ray_address(dead_address, timeout=2.0)
    with pytest.raises(ConnectionError, match=f"ray://{dead_address}"):
        check_ray_address(f"ray://{dead_address}", timeout=2.0)
    assert time.perf_counter() - started < 10


def test_a_live_address_and_the_ones_ray_resolves_pass():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_ray_address(f"127.0.0.1:{server.getsockname()[1]}")
    for address in (None, "", "auto", "local"):
        check_ray_address(address)


def test_ensure_ray_checks_before_ray_init(dead_address, monkeypatch):
    import ray

    def never(*args, **kwargs):
        raise AssertionError("ray.init must not be reached with a dead address")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", never)
    with pytest.raises(ConnectionError, match=dead_address):
        ensure_ray(dead_address)
    monkeypatch.setenv("RAY_ADDRESS", dead_address)
    with pytest.raises(ConnectionError, match=dead_address):
        ensure_ray()


@pytest.mark.parametrize("command", [["explain", "--methods", "random"], ["bench", "--quick"], ["train", "--timesteps", "64"]])
def test_commands_fail_in_one_line_and_leave_no_folder(command, dead_address, tmp_path, capsys):
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main([*command, "--engine", "ray", "--address", dead_address, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"no Ray cluster answers at {dead_address}" in err and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert time.perf_counter() - started < 30
