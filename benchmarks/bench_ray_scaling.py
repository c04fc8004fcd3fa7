"""Past one machine, measured on this one (issue 15): Ray against the single-process path.

Prints a Markdown table and writes ``benchmarks/results/ray_scaling.json`` (``--out``) with:

(a) **Benchmark sweep**: the ``bench --quick`` grid (every method of ``--datasets`` on the quick
    suite's images) run locally, in this process, against the same grid sharded over a local Ray
    instance with ``--workers`` worker actors (:mod:`saliency_gym.distributed.ray_bench`). The Ray
    time is the whole command: starting Ray, starting the workers (each loads its classifiers
    once), the shards and the merge. Both runs' tables are compared (``equal`` is true when every
    number but the timings is identical). Target on 2 cores: Ray with 2 workers at most 60% of
    the local time.
(b) **Batch explanation**: a folder of ``--images`` seeded PNGs through ``--method`` on Ray Data
    (:mod:`saliency_gym.distributed.data_explain`) with 1 actor, then with 2; images per second
    over the whole call (Ray Data start-up, actors loading the model, explaining, writing maps and
    overlays). Target: 2 actors at least 1.6x one.

Run on a quiet machine for figures worth quoting; the load average before and after is recorded
(other processes on a 2-core machine change every timing here). The defaults finish in a few
minutes on two cores::

    python benchmarks/bench_ray_scaling.py                      # shapes grid, 48 images
    python benchmarks/bench_ray_scaling.py --datasets shapes digits --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from saliency_gym.benchmarks.suite import TIMING_FIELDS as TIMINGS

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "ray_scaling.json"


def _rows(results: list[Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if k not in TIMINGS} for r in results]


def sweep(datasets: list[str], workers: int, work: Path, progress: bool) -> dict[str, Any]:
    """(a): the quick grid locally, then on Ray with ``workers`` workers (Ray started inside)."""
    import ray

    from saliency_gym.benchmarks.suite import SIZES, run_dataset
    from saliency_gym.distributed.ray_bench import DatasetSpec, run_ray_bench

    size = SIZES["quick"]
    start = time.perf_counter()
    local: list[Any] = []
    for dataset in datasets:
        local += run_dataset(dataset, size, work / "local", device="cpu", progress=progress)
    local_s = time.perf_counter() - start

    start = time.perf_counter()
    remote, report = run_ray_bench([DatasetSpec(d) for d in datasets], size, work / "ray", device="cpu",
                                   workers=workers, num_cpus=os.cpu_count(), progress=progress)  # fmt: skip
    ray_s = time.perf_counter() - start
    ray.shutdown()
    return {
        "datasets": datasets, "images": size.images, "rise_masks": size.rise_masks, "chunk": size.chunk,
        "methods": len(local), "shards": report.computed, "workers": workers,
        "local_s": local_s, "ray_s": ray_s, "ray_over_local": ray_s / local_s, "target": 0.6,
        "equal": _rows(local) == _rows(remote), "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip


def batch_explain(n_images: int, method: str, rise_masks: int, batch_size: int, work: Path) -> dict[str, Any]:
    """(b): Ray Data explanation of a folder of PNGs with 1 actor, then 2 (one Ray instance)."""
    import ray
    from PIL import Image

    from saliency_gym.distributed.cluster import ensure_ray
    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain

    folder = work / "images"
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    ensure_ray(num_cpus=os.cpu_count())
    spec = ModelSpec.of("shapes", folder)
    runs = {}
    for actors in (1, 2):
        out = work / f"explain_{actors}"
        report = run_ray_explain(spec, [method], out, rise_masks=rise_masks, device="cpu", actors=actors,
                                 batch_size=batch_size, progress=False)  # fmt: skip
        runs[actors] = {"seconds": report.seconds, "images_per_s": report.images_per_second,
                        "steady_images_per_s": steady_rate(report.arrivals)}  # fmt: skip
    ray.shutdown()
    return {
        "images": n_images, "method": method, "rise_masks": rise_masks, "batch_size": batch_size,
        "model": "shapes (64x64)", "actors_1": runs[1], "actors_2": runs[2],
        "speedup": runs[2]["images_per_s"] / runs[1]["images_per_s"],
        "steady_speedup": runs[2]["steady_images_per_s"] / runs[1]["steady_images_per_s"], "target": 1.6,
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip


def steady_rate(arrivals: list[tuple[float, int]]) -> float:
    """Images per second over the second half of the batches (every actor is running by then):
    the rate once Ray and the actors have started, which a long folder is explained at."""
    if len(arrivals) < 3:
        return float("nan")
    half = arrivals[len(arrivals) // 2 - 1:]
    return sum(n for _, n in half[1:]) / (half[-1][0] - half[0][0])


def to_markdown(result: dict[str, Any]) -> str:
    lines = ["| measurement | 1 (local / 1 actor) | 2 workers / actors | ratio | target | reached |",
             "|---|---:|---:|---:|---:|---|"]  # fmt: skip
    if "sweep" in result:
        s = result["sweep"]
        lines.append(f"| bench --quick grid ({' + '.join(s['datasets'])}, {s['shards']} shards), wall s | "
                     f"{s['local_s']:.1f} | {s['ray_s']:.1f} | {s['ray_over_local']:.2f} | <= 0.60 | "
                     f"{'yes' if s['ray_over_local'] <= 0.6 else 'no'} (tables equal: {s['equal']}) |")  # fmt: skip
    if "explain" in result:
        e = result["explain"]
        lines.append(f"| Ray Data explain ({e['images']} images, {e['method']}), images/s, whole call | "
                     f"{e['actors_1']['images_per_s']:.2f} | {e['actors_2']['images_per_s']:.2f} | "
                     f"{e['speedup']:.2f} | >= 1.6 | {'yes' if e['speedup'] >= 1.6 else 'no'} |")  # fmt: skip
        lines.append(f"| Ray Data explain, images/s, second half of the batches (actors started) | "
                     f"{e['actors_1']['steady_images_per_s']:.2f} | {e['actors_2']['steady_images_per_s']:.2f} | "
                     f"{e['steady_speedup']:.2f} | >= 1.6 | {'yes' if e['steady_speedup'] >= 1.6 else 'no'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["shapes"], choices=["shapes", "digits", "shapes64"],
                        help="datasets of the bench --quick grid (default: shapes)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, help="Ray workers of the sweep (default: 2)")
    parser.add_argument("--images", type=int, default=48, help="images of the explanation folder (default: 48)")
    parser.add_argument("--method", default="rise", help="explainer of (b) (default: rise)")
    parser.add_argument("--rise-masks", type=int, default=1000, help="RISE masks in (b) (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per Ray Data batch (default: 4)")
    parser.add_argument("--skip", choices=["sweep", "explain"], default=None,
                        help="leave out one measurement (its figures from an earlier run in --out are kept, marked)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file (default: {DEFAULT_OUT})")
    parser.add_argument("--progress", action="store_true", help="show the runs' progress bars")
    args = parser.parse_args()
    if args.workers < 1 or args.images < 1 or args.rise_masks < 1 or args.batch_size < 1:
        parser.error("--workers, --images, --rise-masks and --batch-size must be positive")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import torch

    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, no GPU" if not torch.cuda.is_available()
        else f"{os.cpu_count()} CPU cores, {torch.cuda.get_device_name()}",
        "torch_threads_local": torch.get_num_threads(), "load_average_before": list(os.getloadavg()),
    }  # fmt: skip
    if args.skip is not None and args.out.is_file():  # keep the other measurement of an earlier run
        previous = json.loads(args.out.read_text())
        kept = {"sweep": "sweep", "explain": "explain"}[args.skip]
        if kept in previous:
            result[kept] = previous[kept] | {"from_earlier_run": True}
    work = Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    try:
        if args.skip != "sweep":
            result["sweep"] = sweep(args.datasets, args.workers, work / "sweep", args.progress)
        if args.skip != "explain":
            result["explain"] = batch_explain(args.images, args.method, args.rise_masks, args.batch_size, work / "explain")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_after"] = list(os.getloadavg())
    print(to_markdown(result))
    print(f"load average before {result['load_average_before'][0]:.2f}, after {result['load_average_after'][0]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
