"""``bench --engine ray``: the sharded sweep gives the local run's numbers, tables and PNGs, and a
stopped sweep resumes without recomputing finished shards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saliency_gym.benchmarks import suite
from saliency_gym.cli.main import main

pytestmark = pytest.mark.xdist_group("ray")

#: 4 images in chunks of 2, so the sweep shards images as well as methods and seeds.
SMALL = suite.SuiteSize(images=4, rise_masks=50, chunk=2, greedy=False)
# rise (seeded masks) and random (a generator whose draws follow the calls): both depend on seeds
# and on which chunks ran before, the cases where a careless sharding would change numbers.
ARGS = ["bench", "--quick", "--datasets", "shapes", "--methods", "rise-50", "random", "--seeds", "0", "1",
        "--no-progress", "--device", "cpu"]  # fmt: skip
TIMINGS = suite.TIMING_FIELDS


def rows(out):
    data = json.loads((out / "results.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in data["results"]], data["meta"]


def test_ray_sweep_equals_local_bench_and_resumes(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(suite.SIZES, "quick", SMALL)
    local, remote = tmp_path / "local", tmp_path / "ray"
    assert main([*ARGS, "--out", str(local)]) == 0, capsys.readouterr().err
    assert main([*ARGS, "--out", str(remote), "--engine", "ray", "--workers", "2"]) == 0, capsys.readouterr().err
    local_rows, _ = rows(local)
    ray_rows, meta = rows(remote)
    assert [r["method"] for r in local_rows] == ["rise-50", "random"]
    assert ray_rows == local_rows  # exactly equal: AUCs, CIs, pointing game, queries
    assert meta["engine"] == "ray" and meta["seeds"] == [0, 1]
    assert meta["shards_computed"] == 2 * 2 * 2 and meta["shards_resumed"] == 0  # methods x seeds x chunks
    assert (remote / "results.md").read_text().splitlines()[2].split("|")[3] == \
        (local / "results.md").read_text().splitlines()[2].split("|")[3]  # fmt: skip
    for png in ("curves_shapes.png", "overlays_shapes.png"):
        assert (remote / png).read_bytes()[:4] == b"\x89PNG"

    shards = sorted((remote / "shards").rglob("*.npz"))
    assert len(shards) == 8
    shards[3].unlink()  # as if the sweep had been stopped before this shard finished
    assert main([*ARGS, "--out", str(remote), "--engine", "ray", "--workers", "2"]) == 0
    again, meta = rows(remote)
    assert meta["shards_computed"] == 1 and meta["shards_resumed"] == 7
    assert again == local_rows


def test_shard_files_round_trip(tmp_path):
    from saliency_gym.distributed.ray_bench import load_chunk, save_chunk
    from saliency_gym.metrics import CurveResult

    curve = CurveResult("insertion", np.random.rand(2, 5), np.random.rand(2), np.linspace(0, 1, 5),
                        np.array([1, 2]), None, 10, "blur", 4)  # fmt: skip
    values = suite.ChunkValues("rise-50", 3, 2, curve, curve, np.array([1.0, 0.0]), np.array([50.0, 50.0]),
                               0.25, np.zeros((1, 3, 3), np.float32))  # fmt: skip
    save_chunk(tmp_path / "a" / "s.npz", values)
    back = load_chunk(tmp_path / "a" / "s.npz")
    assert (back.method, back.seed, back.start, back.seconds, back.skipped) == ("rise-50", 3, 2, 0.25, None)
    assert np.array_equal(back.insertion.curves, curve.curves) and back.insertion.substrate == "blur"
    assert np.array_equal(back.pointing, values.pointing) and back.overlay_maps.shape == (1, 3, 3)
    skipped = suite.ChunkValues("gradcam", 0, 0, None, None, None, np.zeros(0), float("nan"), np.zeros(0), "no conv layer")
    save_chunk(tmp_path / "b.npz", skipped)
    assert load_chunk(tmp_path / "b.npz").skipped == "no conv layer"


def test_bad_arguments_fail_before_any_work(tmp_path):
    from saliency_gym.distributed.ray_bench import DatasetSpec, run_ray_bench

    with pytest.raises(ValueError, match="at least one"):
        run_ray_bench([], SMALL, tmp_path)
    with pytest.raises(ValueError, match="non-negative"):
        run_ray_bench([DatasetSpec("shapes")], SMALL, tmp_path, seeds=[-1])
    with pytest.raises(ValueError, match="unknown methods"):
        suite.select_methods({"rise-50": lambda: None}, ["rise-4000"])
