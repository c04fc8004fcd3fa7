"""``saliency-gym bench``: compare agents, heuristic policies and explainers (tables + PNGs)."""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import add_device_argument, positive_int
from saliency_gym.runs import check_output_dir

NAME = "bench"
HELP = "compare trained agents, heuristic policies and explainers on held-out images"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Insertion/deletion AUC, pointing game, queries and seconds per image with 95% "
        "confidence intervals, for every method on the same images; writes results.md/.csv/.json, "
        "curve plots and saliency overlays to --out.",
    )
    parser.add_argument("--quick", action="store_true", help="8 images per dataset and RISE with 500 masks (a smoke test of the full suite)")
    parser.add_argument("--images", type=positive_int, default=None, help="override the number of images")
    parser.add_argument("--datasets", nargs="+", default=["shapes", "digits"], choices=["shapes", "digits", "shapes64"])
    parser.add_argument("--out", default="bench_output")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)  # fail now, not after the work
    from pathlib import Path

    from saliency_gym.benchmarks.suite import run_suite, to_markdown

    results = run_suite("quick" if args.quick else "full", tuple(args.datasets), args.out, device=args.device, images=args.images,
                        progress=not args.no_progress)  # fmt: skip
    print(to_markdown(results))
    print(f"wrote {Path(args.out) / 'results.md'}, results.csv, results.json and PNGs")
    return 0
