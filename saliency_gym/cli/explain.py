"""``saliency-gym explain``: several explainers side by side on held-out images (writes a PNG).

Example::

    saliency-gym explain --classifier shapes --methods rise gradcam integrated_gradients \\
        --images 4 --out explain_output
    saliency-gym explain --model my_model.pt2 --normalize imagenet --data my_photos/ \\
        --methods gradcam occlusion --out explain_output

``--model`` (alias ``--classifier``) takes anything :func:`saliency_gym.model_files.load_model`
reads, and ``--data`` a dataset name or a folder of images; images without labels (a flat
folder) are explained for the model's predicted class.

Each method is built by name with :func:`saliency_gym.explainers.make_explainer`, explains the same
test images for their true labels, and reports what it cost (classifier queries and seconds per
image). When the dataset has ground-truth evidence masks, their contours are drawn on the images
and the share of each map's positive mass that falls on them is printed.

``--engine ray`` explains every image of ``--data`` (a folder, or a dataset name) on Ray Data
instead, writing ``<out>/maps/<method>/<image>.npy`` and ``<out>/overlays/<method>/<image>.png``;
images whose maps exist are skipped, so a stopped run picks up where it was. (Locally, ``--images``
larger than the data explains all of it, and says so; the PNG shows at most 16 of the images, evenly
spaced; to keep every map as an array, use ``--engine ray``.)::

    saliency-gym explain --engine ray --model my_model.pt2 --normalize imagenet --data my_photos/ \\
        --methods rise gradcam --out maps_output
"""

from __future__ import annotations

import argparse

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

DEFAULT_METHODS = ("rise", "gradcam", "integrated_gradients")
#: Most images drawn in the PNG (evenly spaced over those explained): drawing is slow, a figure of
#: hundreds of rows unreadable, and every explained image is still scored in the printed table.
FIGURE_IMAGES = 16


NAME = "explain"
HELP = "explain held-out images with several methods (writes a PNG, prints their cost)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.explainers import available_explainers

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Explain test images of a shipped classifier with several explainers, write a "
        "PNG of the images beside each method's map and print queries and seconds per image. ",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--methods", nargs="+", default=list(DEFAULT_METHODS), metavar="METHOD",
        help=f"explainers to run, from the registry: {', '.join(available_explainers())} "
        f"(default: {' '.join(DEFAULT_METHODS)})",
    )  # fmt: skip
    parser.add_argument(
        "--agent",
        default=None,
        help="trained agent (shipped name or checkpoint) for the 'policy' method",
    )
    parser.add_argument("--images", type=positive_int, default=None,
                        help=f"test images to explain (default: 4, at most all of --data; the PNG draws at most "
                        f"{FIGURE_IMAGES} of them; with --engine ray, all of --data)")  # fmt: skip
    parser.add_argument("--out", default="explain_output",
                        help="folder for the PNG (with --engine ray: maps/ and overlays/ per method)")  # fmt: skip
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the stochastic explainers"
    )
    parser.add_argument(
        "--rise-masks",
        type=positive_int,
        default=None,
        help="RISE masks per image (default: RISE's)",
    )
    add_device_argument(parser)
    add_engine_arguments(parser)
    ray_group = parser.add_argument_group("batch explanation (--engine ray)")
    ray_group.add_argument("--actors", type=positive_int, default=None,
                           help="explainer actors, each loading the model once (default: the cluster's CPUs, "
                           "or one per GPU)")  # fmt: skip
    ray_group.add_argument("--batch-size", type=positive_int, default=8,
                           help="images per batch handed to an actor (default: 8)")  # fmt: skip
    ray_group.add_argument("--no-overlays", action="store_true", help="write only the maps (.npy)")
    ray_group.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run_ray(args: argparse.Namespace) -> int:
    """``explain --engine ray``: every image of ``--data`` through the methods on Ray Data, one
    ``.npy`` map and one overlay PNG per image and method (:mod:`saliency_gym.distributed.data_explain`)."""
    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain

    report = run_ray_explain(
        ModelSpec.from_args(args), list(dict.fromkeys(args.methods)), args.out, seed=args.seed,
        rise_masks=args.rise_masks, agent=args.agent, device=args.device, images=args.images,
        actors=args.actors, batch_size=args.batch_size, overlays=not args.no_overlays,
        address=args.address, num_cpus=args.num_cpus, progress=not args.no_progress,
    )  # fmt: skip
    print(f"{report.written} images explained with {', '.join(report.methods)} "
          f"({report.skipped} already done) in {report.seconds:.1f} s: {report.images_per_second:.2f} images/s; "
          f"maps in {report.out / 'maps'}" + ("" if args.no_overlays else f", overlays in {report.out / 'overlays'}"))  # fmt: skip
    return 0


def explainer_kwargs(method: str, *, seed: int = 0, rise_masks: int | None = None,
                     agent: str | None = None) -> dict[str, object]:  # fmt: skip
    """Keyword arguments of :func:`make_explainer` for ``method`` from the command's options
    (the seed where the method takes one, RISE's masks, the agent of the 'policy' method); shared
    by the local run and Ray Data explanation so both build the same explainers."""
    from saliency_gym.explainers import explainer_options

    options: dict[str, object] = {}
    if "seed" in explainer_options(method):
        options["seed"] = seed
    if method == "rise" and rise_masks is not None:
        options["n_masks"] = rise_masks
    if method == "policy":
        if agent is None:
            raise ValueError(
                "the 'policy' method needs --agent (a shipped agent name or a checkpoint path)"
            )
        options["policy"] = agent
    return options


def figure_sample(n: int, most: int = FIGURE_IMAGES) -> list[int]:
    """At most ``most`` indices of ``n`` images, evenly spaced from the first to the last."""
    import numpy as np

    if n <= most:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, most).round()})


def run(args: argparse.Namespace) -> int:
    check_engine_arguments(args)  # Ray options without --engine ray, Ray missing, a dead --address
    if args.engine == "ray":
        return run_ray(args)
    if args.images is None:
        args.images = 4
    check_output_dir(args.out)  # fail now, not after the work
    import time
    from pathlib import Path

    import numpy as np

    from saliency_gym.explainers import Explainer, explainer_class, make_explainer
    from saliency_gym.plotting import save_saliency_grid

    for method in args.methods:  # fail before loading anything
        explainer_class(method)
    methods = list(dict.fromkeys(args.methods))

    import captum.attr  # noqa: F401 - imported up front so no method's timing includes it

    start = time.perf_counter()
    classifier, test = build_model_and_data(args)
    if args.images > len(test):
        print(f"--images {args.images}: the {test.name} data holds {len(test)} images; explaining all {len(test)}")
    batch = test.get_batch(range(min(args.images, len(test))))
    n = len(batch.labels)
    if test.has_label:
        targets, what = batch.labels, "their labels"
    else:
        targets, what = (
            classifier.predict(batch.images, count=False).cpu().numpy(),
            "the predicted class",
        )

    explainers: dict[str, Explainer] = {}
    for (
        method
    ) in methods:  # all built before any runs: a method that cannot explain this model fails now
        options = explainer_kwargs(method, seed=args.seed, rise_masks=args.rise_masks, agent=args.agent)
        explainers[method] = make_explainer(method, classifier, **options)
        layer_name = getattr(explainers[method], "layer_name", None)
        if method == "gradcam" and layer_name is not None:
            print(f"Grad-CAM layer: {layer_name}")

    maps: dict[str, np.ndarray] = {}
    print(f"{classifier.name}: {n} {test.name} images, explained for {what}")
    header = f"{'method':<22} {'queries/image':>14} {'seconds/image':>14}"
    if batch.masks is not None:
        header += f" {'mass on mask':>13}"
    print(header)
    for method, explainer in explainers.items():
        explanation = explainer.explain(batch.images, targets)
        maps[method] = explanation.maps
        line = f"{method:<22} {explanation.queries_per_image:>14.1f} {explanation.seconds_per_image:>14.4f}"
        if batch.masks is not None:
            # Energy-based pointing game: share of the positive saliency on the evidence mask.
            positive = explanation.maps.clip(min=0)
            inside = (positive * batch.masks).sum(axis=(1, 2)) / positive.sum(axis=(1, 2)).clip(
                min=1e-12
            )
            line += f" {inside.mean():>13.3f}"
        print(line)
    if batch.masks is not None:
        print(f"(the evidence masks cover {batch.masks.mean():.3f} of the pixels)")

    shown = figure_sample(n)
    names = [
        test.class_names[y] if test.has_label else f"predicted {test.class_names[y]}"
        for y in targets[shown]
    ]
    path = save_saliency_grid(
        batch.images[shown], {m: v[shown] for m, v in maps.items()}, Path(args.out) / f"explain_{classifier.name}.png",
        row_titles=names, masks=None if batch.masks is None else batch.masks[shown],
        title=f"{classifier.name}: {', '.join(methods)}",
    )  # fmt: skip
    drawn = "" if len(shown) == n else f" (the figure shows {len(shown)} of the {n} images, evenly spaced)"
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s{drawn}")
    return 0
