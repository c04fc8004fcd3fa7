"""``saliency-gym bench``: compare agents, heuristic policies and explainers (tables + PNGs).

``--datasets`` runs the shipped classifier of each dataset on its test images (the default:
shapes and digits). ``--model`` with ``--data`` (the shared model arguments of
:func:`saliency_gym.cli.common.add_model_arguments`) adds your own classifier and images as one
more row group, named after the data (an image folder's base name; ``<data> (model <model>)`` when
it has a shipped dataset's name); given alone, only that pair is benchmarked.

``--seeds`` runs every method once per seed (per-image values are averaged over seeds).

``--agents`` runs the policy benchmark instead (:mod:`saliency_gym.benchmarks.policy_benchmark`):
it trains every algorithm (``--algos``) over ``--seeds`` on the reveal and mask presets and writes
learning curves (PNG) and a table of final held-out insertion/deletion AUC with 95% intervals over
seeds; ``--quick`` is its CI size.
``--engine ray`` shards the same grid (row group x method x seed x chunk of images) over a Ray
cluster (:mod:`saliency_gym.distributed.ray_bench`) and writes the same tables and PNGs; a
stopped sweep run again computes only the shards it had not finished.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from saliency_gym.cli.common import (
    add_device_argument,
    add_engine_arguments,
    add_model_arguments,
    build_model_and_data,
    check_engine_arguments,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_output_dir

NAME = "bench"
HELP = "compare trained agents, heuristic policies and explainers on held-out images"
DEFAULT_DATASETS = ("shapes", "digits")
PHOTOS = "photos"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Insertion/deletion AUC, pointing game, queries and seconds per image with 95% "
        "confidence intervals, for every method on the same images; writes results.md/.csv/.json, "
        "curve plots and saliency overlays to --out.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="8 images per dataset and RISE with 500 masks (a smoke test of the full suite)",
    )
    parser.add_argument(
        "--images", type=positive_int, default=None, help="override the number of images"
    )
    parser.add_argument("--datasets", "--dataset", nargs="+", default=None, choices=["shapes", "digits", "shapes64", "shapes_cluttered", PHOTOS],
                        help=f"shipped classifier/dataset pairs (default: {' '.join(DEFAULT_DATASETS)}; none with --model); "
                        "'photos' runs the query-budget benchmark of EfficientNet-Lite0 on the held-out photographs "
                        "(insertion/deletion AUC against classifier queries per image; needs the imagenet extra)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=None, metavar="SEED",
                        help="seeds of the stochastic methods (RISE, random policy, random map); every method "
                        "runs once per seed and per-image values are averaged over seeds (default: 0); with "
                        "--agents, the training seeds (default: 0 1 2, --quick 0 1)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                        help="run only these of the suite's methods, e.g. rise-500 gradcam (default: all)")  # fmt: skip
    agents = parser.add_argument_group("policy benchmark (--agents)")
    agents.add_argument("--agents", action="store_true",
                        help="train and compare RL algorithms over seeds: learning curves and a results table")  # fmt: skip
    agents.add_argument("--algos", nargs="+", default=None, metavar="ALGO",
                        help="algorithms (default: all five; --quick: maskable_ppo ppo)")  # fmt: skip
    agents.add_argument("--envs", nargs="+", default=None, metavar="ENV_ID",
                        help="environment ids (default: the shapes and digits reveal and mask presets)")  # fmt: skip
    agents.add_argument("--timesteps", type=positive_int, default=None,
                        help="training steps per run (default: 64000; --quick: 512)")  # fmt: skip
    attacks = parser.add_argument_group("attack benchmark (--attacks)")
    attacks.add_argument("--attacks", action="store_true",
                         help="attribution attacks: the trained attack agents against random sign, Ghorbani et al.'s "
                         "and the LENS-aware attacks and a random policy, per explainer x model x epsilon "
                         "(benchmarks/bench_attacks.py; --datasets shapes digits, --methods gradient gradcam rise, --images)")  # fmt: skip
    parser.add_argument("--out", default="bench_output")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    add_model_arguments(parser, default_model=None, classifier_alias=False,
                        data_help="images of the --model row: a dataset name or a folder of images")  # fmt: skip
    add_device_argument(parser)
    add_engine_arguments(parser)
    ray_group = parser.add_argument_group("ray sweep (--engine ray)")
    ray_group.add_argument("--workers", type=positive_int, default=None,
                           help="worker processes, each loading a classifier once (default: the cluster's CPUs)")  # fmt: skip
    ray_group.add_argument("--max-retries", type=non_negative_int, default=2,
                           help="retries of a failed shard (default: 2)")  # fmt: skip
    parser.set_defaults(func=run)


def run_attacks(args: argparse.Namespace) -> int:
    """``--attacks``: :mod:`saliency_gym.benchmarks.bench_attacks` with this command's options."""
    from saliency_gym.benchmarks import bench_attacks

    if args.engine == "ray" or args.model is not None:
        raise ValueError("--attacks runs the shipped classifiers here: --engine ray and --model are not supported with it")
    unknown = sorted(set(args.datasets or ()) - set(bench_attacks.MODELS))
    if unknown:
        raise ValueError(f"--attacks covers the datasets {sorted(bench_attacks.MODELS)}, not {unknown}")
    argv = ["--out", str(Path(args.out) / "attacks")]
    if args.datasets:
        argv += ["--datasets", *args.datasets]
    if args.methods:
        argv += ["--methods", *args.methods]
    if args.images is not None:
        argv += ["--images", str(args.images)]
    elif args.quick:
        argv += ["--images", "8", "--eps", "8"]
    if args.device:
        argv += ["--device", args.device]
    return bench_attacks.main(argv)


def run(args: argparse.Namespace) -> int:
    check_engine_arguments(args)  # Ray options without --engine ray, Ray missing, a dead --address
    check_output_dir(args.out)  # fail now, not after the work; refuses the package's folders
    if args.agents and args.attacks:
        raise ValueError("--agents and --attacks are two benchmarks: pass one of them")
    if args.agents:
        return run_agents(args)
    if args.attacks:
        return run_attacks(args)
    from saliency_gym.benchmarks.suite import (
        SIZES,
        SuiteSize,
        dataset_labels,
        run_dataset,
        to_markdown,
        write_results,
    )

    size = "quick" if args.quick else "full"
    if args.model is None and (args.data is not None or args.weights is not None):
        raise ValueError(
            "--data and --weights give the images and weights of a --model row: pass --model too"
        )
    pair = (
        build_model_and_data(args) if args.model is not None else None
    )  # fail before the long runs
    datasets = list(args.datasets or (() if pair else DEFAULT_DATASETS))
    base = SIZES[size]
    chosen = (
        base
        if args.images is None
        else SuiteSize(args.images, base.rise_masks, base.chunk, base.greedy)
    )
    out = Path(args.out)
    start = time.perf_counter()
    results: list[Any] = []
    seeds = list(dict.fromkeys(args.seeds or [0]))
    meta_extra: dict[str, object] = {}
    if args.engine == "ray":
        from saliency_gym.distributed.ray_bench import DatasetSpec, run_ray_bench

        specs = [DatasetSpec(d) for d in datasets if d != PHOTOS]
        if pair is not None:
            specs.append(DatasetSpec.from_args(args))
        if specs:
            results, sweep = run_ray_bench(
                specs, chosen, out, seeds=seeds, only=args.methods, device=args.device, workers=args.workers,
                max_retries=args.max_retries, address=args.address, num_cpus=args.num_cpus,
                progress=not args.no_progress,
            )  # fmt: skip
            meta_extra = {"engine": "ray", "workers": sweep.workers, "shards_computed": sweep.computed,
                          "shards_resumed": sweep.resumed}  # fmt: skip
    else:
        for dataset in datasets:
            if dataset == PHOTOS:
                continue  # its own benchmark, below
            results += run_dataset(
                dataset, chosen, out, device=args.device, progress=not args.no_progress, seeds=seeds,
                only=args.methods,
            )  # fmt: skip
        if pair is not None:
            classifier, source = pair
            results += run_dataset(
                "", chosen, out, classifier=classifier, source=source, progress=not args.no_progress,
                seeds=seeds, only=args.methods,
            )  # fmt: skip
    if results:
        write_results(results, out, {"size": size, "images": chosen.images, "rise_masks": chosen.rise_masks,
                                     "datasets": dataset_labels(results), "seeds": seeds,
                                     "seconds": time.perf_counter() - start, **meta_extra})  # fmt: skip
        print(to_markdown(results))
        print(f"wrote {out / 'results.md'}, results.csv, results.json and PNGs")
    if PHOTOS in datasets:
        if args.engine == "ray":
            print("photos: the query-budget benchmark runs in this process (it is not sharded over Ray)")
        run_photos(args, size)
    return 0


def run_photos(args: argparse.Namespace, size: str) -> None:
    """The query-budget benchmark on the held-out object photos, with localisation on the masked
    photos (:mod:`saliency_gym.benchmarks.query_budget`); maps are cached, so it resumes."""
    from saliency_gym.benchmarks.query_budget import (
        photo_sets,
        run_query_budget,
        shipped_photo_agents,
    )
    from saliency_gym.zoo import load_classifier

    classifier = load_classifier("efficientnet_lite0", device=args.device)
    data, masked = photo_sets()
    images = args.images if args.images is not None else (1 if size == "quick" else None)
    out = Path(args.out) / "query_budget"
    run_query_budget(classifier, data, size=size, images=images, agents=shipped_photo_agents(),
                     localisation=masked, out=out, progress=not args.no_progress)  # fmt: skip
    print((out / "budget.md").read_text())  # the table and the best method within each query budget
    print(f"wrote {out / 'budget.md'}, budget.csv, budget.json and budget.png (maps cached in {out / 'maps'})")


def run_agents(args: argparse.Namespace) -> int:
    """The policy benchmark (``--agents``)."""
    if args.engine != "local":
        raise ValueError("--agents runs locally; train on Ray with `saliency-gym train --engine ray`")
    from saliency_gym.benchmarks.policy_benchmark import run_policy_benchmark, to_markdown

    rows = run_policy_benchmark(
        "quick" if args.quick else "full", args.out, algos=args.algos, seeds=args.seeds, envs=args.envs,
        timesteps=args.timesteps, device=args.device or "auto", progress=not args.no_progress,
    )  # fmt: skip
    print(to_markdown(rows))
    print(f"wrote {Path(args.out) / 'policy_bench.md'}, .csv, .json and learning_curves.png")
    return 0
