"""RISE cost on the shipped shapes classifier: seconds and queries per image against the mask count.

Prints a Markdown table. Mask generation is a one-off cost per explainer (masks are cached and
reused for every image), so it is reported in its own column and excluded from seconds/image.
Each setting explains the images ``--repeats`` times; seconds per image are the median over the
repeats with their interquartile range (:func:`saliency_gym.benchmarks.suite.seconds_summary`),
and the throughput is the median's.

    python benchmarks/bench_rise.py --images 8 --masks 1000 4000 8000 --device cpu
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import saliency_gym
from saliency_gym.baselines import RISEExplainer
from saliency_gym.benchmarks.suite import format_seconds, seconds_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=8, help="test images explained per setting")
    parser.add_argument("--masks", type=int, nargs="+", default=[1000, 4000, 8000], help="mask counts N")
    parser.add_argument("--grid-size", type=int, default=7)
    parser.add_argument("--p", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=1000, help="masked images per classifier call")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed explanations per setting (median and IQR)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    classifier = saliency_gym.load_classifier("shapes", device=args.device)
    batch = saliency_gym.load_dataset("shapes", "test").get_batch(range(args.images))
    images = torch.as_tensor(batch.images, device=classifier.device)
    targets = torch.as_tensor(batch.labels)
    classifier.probs(images[:1], count=False)  # warm-up

    device = torch.cuda.get_device_name(classifier.device) if classifier.device.type == "cuda" else "CPU"
    print(f"RISE on `shapes` (3x32x32, SmallCNN), {args.images} test images, s={args.grid_size}, "
          f"p={args.p}, batch {args.batch_size}, {args.repeats} repeats; {device}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}\n")  # fmt: skip
    print("| N masks | queries / image | seconds / image | masked images / s | mask generation (s) |")
    print("|---:|---:|---:|---:|---:|")
    for n in args.masks:
        explainer = RISEExplainer(classifier, n_masks=n, grid_size=args.grid_size, p=args.p, batch_size=args.batch_size)
        start = time.perf_counter()
        explainer.masks  # noqa: B018 - generate and cache
        if classifier.device.type == "cuda":
            torch.cuda.synchronize(classifier.device)
        generation = time.perf_counter() - start
        explanations = [explainer.explain(images, targets) for _ in range(args.repeats)]
        median, q1, q3 = seconds_summary([e.seconds_per_image for e in explanations])
        throughput = explanations[0].queries_per_image / median
        print(f"| {n} | {explanations[0].queries_per_image:.0f} | {format_seconds(median, q1, q3)} | "
              f"{throughput:,.0f} | {generation:.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
