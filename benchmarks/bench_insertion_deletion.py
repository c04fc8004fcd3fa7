"""Batched insertion/deletion evaluation vs the plain per-image, per-step loop of the same definition.

Both paths compute RISE's insertion and deletion curves for the same images, maps and targets on
the shipped shapes classifier: :func:`saliency_gym.metrics.insertion_deletion.insertion_curve` /
``deletion_curve`` build many masked images per classifier call, while
``insertion_deletion_loop`` scores one masked image per call, as RISE's ``CausalMetric`` does. The
script prints a Markdown table with the seconds per image of each (every image costing
``ceil(H*W/step) + 1`` classifier queries; the median over ``--repeats`` interleaved runs with its
interquartile range, :func:`saliency_gym.benchmarks.suite.seconds_summary`), the speed-up (ratio of
the medians) and the largest absolute difference between the AUCs (and curves) the two paths give.

Maps are occlusion-free so that only the metric is timed: ``blob`` draws a Gaussian blob at a
random position per image, ``random`` draws uniform noise.

Example::

    python benchmarks/bench_insertion_deletion.py --images 64 --step 32
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np
import torch

import saliency_gym
from saliency_gym.benchmarks.suite import format_seconds, seconds_summary
from saliency_gym.metrics.insertion_deletion import (
    deletion_curve,
    insertion_curve,
    insertion_deletion_loop,
)


def make_maps(kind: str, n: int, height: int, width: int, seed: int) -> np.ndarray:
    """``(n, height, width)`` saliency maps: a Gaussian blob per image, or uniform noise."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.random((n, height, width))
    yy, xx = np.mgrid[0:height, 0:width]
    cy = rng.uniform(0, height, size=(n, 1, 1))
    cx = rng.uniform(0, width, size=(n, 1, 1))
    sigma = rng.uniform(2.0, max(3.0, min(height, width) / 4), size=(n, 1, 1))
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))


def interleaved_times(repeats: int, runs: dict[str, tuple[Any, tuple[Any, ...], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Run each ``name: (fn, args, kwargs)`` ``repeats`` times, interleaved; return the (deterministic)
    results and each one's wall times.

    Interleaving spreads a shared machine's drifting load over both paths alike.
    """
    results: dict[str, Any] = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (fn, fn_args, fn_kwargs) in runs.items():
            start = time.perf_counter()
            results[name] = fn(*fn_args, **fn_kwargs)
            times[name].append(time.perf_counter() - start)
    return results, times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64, help="test images to evaluate (default 64)")
    parser.add_argument("--step", type=int, default=32, help="pixels changed per step (default 32: one row)")
    parser.add_argument("--maps", choices=("blob", "random"), default="blob", help="saliency maps to score")
    parser.add_argument(
        "--max-batch", type=int, default=None, help="(image, step) pairs per classifier call (default: the metric's, 64 on CPU)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path (median and IQR)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.images, args.step, args.repeats, args.threads) < 1 or (args.max_batch is not None and args.max_batch < 1):
        parser.error("--images, --step, --repeats, --max-batch and --threads must be >= 1")

    torch.set_num_threads(args.threads)
    classifier = saliency_gym.load_classifier("shapes", device="cpu")
    data = saliency_gym.load_dataset("shapes", "test", n=args.images)
    batch = data.arrays()
    _, _, h, w = batch.images.shape
    maps = make_maps(args.maps, args.images, h, w, args.seed)
    points = -(-(h * w) // args.step) + 1

    # warm-up (first calls allocate and pick kernels)
    insertion_curve(classifier, batch.images[:2], maps[:2], batch.labels[:2], step=args.step)
    insertion_deletion_loop(classifier, batch.images[:1], maps[:1], batch.labels[:1], mode="insertion", step=args.step)

    rows = []
    common = (classifier, batch.images, maps, batch.labels)
    for mode, fast_fn in (("insertion", insertion_curve), ("deletion", deletion_curve)):
        results, seconds = interleaved_times(
            args.repeats,
            {
                "batched": (fast_fn, common, {"step": args.step, "max_batch": args.max_batch}),
                "loop": (insertion_deletion_loop, common, {"mode": mode, "step": args.step}),
            },
        )
        fast, slow = results["batched"], results["loop"]
        if not fast.queries == slow.queries == args.images * points:
            raise RuntimeError(f"query counts disagree: batched {fast.queries}, loop {slow.queries}")
        per_image = {name: seconds_summary(np.asarray(times) / args.images) for name, times in seconds.items()}
        rows.append(
            (
                mode,
                fast.substrate,
                format_seconds(*per_image["batched"]),
                format_seconds(*per_image["loop"]),
                per_image["loop"][0] / per_image["batched"][0],
                float(np.abs(fast.auc - slow.auc).max()),
                float(np.abs(fast.curves - slow.curves).max()),
                fast.mean_auc,
            )
        )

    print(
        f"shapes classifier, {args.images} test images 3x{h}x{w}, {args.maps} maps, step {args.step} "
        f"({points} points = queries per image), max_batch {args.max_batch or 'default'}, median (IQR) of {args.repeats} interleaved runs; "
        f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs ({platform.machine()}), device {classifier.device}\n"
    )
    print("| metric | substrate | batched (s / image) | loop (s / image) | speed-up | max abs ΔAUC | max abs Δcurve | mean AUC |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for mode, sub, fast_s, slow_s, speedup, d_auc, d_curve, mean_auc in rows:
        print(
            f"| {mode} | {sub} | {fast_s} | {slow_s} | {speedup:.1f}x | {d_auc:.1e} | {d_curve:.1e} | {mean_auc:.4f} |"
        )


if __name__ == "__main__":
    main()
