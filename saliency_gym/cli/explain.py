"""``saliency-gym explain``: explainers side by side on every image of the data: maps, a manifest, a figure.

Example::

    saliency-gym explain --classifier shapes --methods rise gradcam integrated_gradients --out explain_output
    saliency-gym explain --model my_model.pt2 --normalize imagenet --data my_photos/ \\
        --methods gradcam occlusion --format pdf --out explain_output

``--model`` (alias ``--classifier``) takes anything :func:`saliency_gym.models.model_files.load_model`
reads, and ``--data`` a dataset name or a folder of images; images without labels (a flat
folder) are explained for the model's predicted class.

Each method is built by name with :func:`saliency_gym.explainers.make_explainer` (options from
:func:`saliency_gym.specs.explainer_kwargs`) and explains every image of ``--data`` (``--images N``:
the first N), ``--batch-size`` images at a time, with a progress bar. Written to ``--out``, on
either engine (:mod:`saliency_gym.explain_outputs`)::

    maps/<method>/<image>.npy        each map as an array (H, W) float32
    overlays/<method>/<image>.png    each map over the photo at its own size, with a colour bar
    manifest.json                    image, class, method, queries and seconds of every map
    explain_<model>.<png|pdf|svg>    a figure of at most 16 images (evenly spaced), --format, --dpi

Images whose maps all exist are skipped, so a stopped run picks up where it was. The command prints
each method's classifier queries and seconds per image; when the dataset has ground-truth evidence
masks, their contours are drawn on the images and the share of each map's positive mass that falls
on them is printed. Figures draw signed maps (Integrated Gradients, DeepLIFT, ...) with a diverging
colour map centred at zero and unsigned ones with a sequential one, clip outliers at the 99th
percentile and put a colour bar on every map (:mod:`saliency_gym.plotting`).

``--engine ray`` runs the same explainers on Ray Data (:mod:`saliency_gym.distributed.data_explain`)
and writes the same files (no figure)::

    saliency-gym explain --engine ray --model my_model.pt2 --normalize imagenet --data my_photos/ \\
        --methods rise gradcam --out maps_output
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from saliency_gym.cli.common import (
    add_device_argument,
    add_engine_arguments,
    add_figure_arguments,
    add_model_arguments,
    check_engine_arguments,
    model_data_spec,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_output_dir

if TYPE_CHECKING:
    import numpy as np

DEFAULT_METHODS = ("rise", "gradcam", "integrated_gradients")
#: Most images drawn in the figure (evenly spaced over those explained): drawing is slow, a figure of
#: hundreds of rows unreadable, and every explained image is still written and scored.
FIGURE_IMAGES = 16


NAME = "explain"
HELP = "explain images with several methods (writes maps, a manifest and a figure; prints their cost)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.explainers import available_explainers

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Explain the images of --data with several explainers: write every map as an array "
        "(maps/<method>/<image>.npy), an overlay per map, a manifest (image, class, method, queries, seconds) "
        "and a figure of a sample of the images beside each method's map; print queries and seconds per image.",
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
                        help=f"explain only the first N images (default: all of --data; the figure draws at most "
                        f"{FIGURE_IMAGES} of them)")  # fmt: skip
    parser.add_argument("--out", default="explain_output",
                        help="output folder: maps/, overlays/, manifest.json and the figure")  # fmt: skip
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the stochastic explainers"
    )
    parser.add_argument(
        "--rise-masks",
        type=positive_int,
        default=None,
        help="RISE masks per image (default: RISE's)",
    )
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="images explained at once (default: 8; with --engine ray, per actor batch)")  # fmt: skip
    parser.add_argument("--no-overlays", action="store_true", help="write only the maps (.npy), no overlay PNGs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_figure_arguments(parser)
    add_device_argument(parser)
    add_engine_arguments(parser)
    ray_group = parser.add_argument_group("batch explanation (--engine ray)")
    ray_group.add_argument("--actors", type=positive_int, default=None,
                           help="explainer actors, each loading the model once (default: the cluster's CPUs, "
                           "or one per GPU)")  # fmt: skip
    parser.set_defaults(func=run)


def run_ray(args: argparse.Namespace) -> int:
    """``explain --engine ray``: every image of ``--data`` through the methods on Ray Data, one
    ``.npy`` map and one overlay PNG per image and method (:mod:`saliency_gym.distributed.data_explain`)."""
    from saliency_gym.distributed.data_explain import run_ray_explain

    report = run_ray_explain(
        model_data_spec(args), list(dict.fromkeys(args.methods)), args.out, seed=args.seed,
        rise_masks=args.rise_masks, agent=args.agent, device=args.device, images=args.images,
        actors=args.actors, batch_size=args.batch_size, overlays=not args.no_overlays,
        address=args.address, num_cpus=args.num_cpus, progress=not args.no_progress,
    )  # fmt: skip
    print(f"{report.written} images explained with {', '.join(report.methods)} "
          f"({report.skipped} already done) in {report.seconds:.1f} s: {report.images_per_second:.2f} images/s; "
          f"maps in {report.out / 'maps'}" + ("" if args.no_overlays else f", overlays in {report.out / 'overlays'}"))  # fmt: skip
    return 0


def figure_sample(n: int, most: int = FIGURE_IMAGES) -> list[int]:
    """At most ``most`` indices of ``n`` images, evenly spaced from the first to the last."""
    import numpy as np

    if n <= most:
        return list(range(n))
    return sorted({int(i) for i in np.linspace(0, n - 1, most).round()})


class _Cost:
    """What one method spent over the images explained in this run (and its mass on the masks)."""

    def __init__(self) -> None:
        self.images, self.queries, self.seconds = 0, 0.0, 0.0
        self.inside: list[float] = []

    def add(self, n: int, queries: int, seconds: float, maps: np.ndarray, masks: np.ndarray | None) -> None:
        self.images += n
        self.queries += queries
        self.seconds += seconds
        if masks is not None:
            # Energy-based pointing game: share of the positive saliency on the evidence mask.
            positive = maps.clip(min=0)
            inside = (positive * masks).sum(axis=(1, 2)) / positive.sum(axis=(1, 2)).clip(min=1e-12)
            self.inside += [float(v) for v in inside]


def run(args: argparse.Namespace) -> int:
    check_engine_arguments(args)  # Ray options without --engine ray, Ray missing, a dead --address
    if args.engine == "ray":
        return run_ray(args)
    check_output_dir(args.out)  # fail now, not after the work
    import time
    from pathlib import Path

    import numpy as np
    from tqdm.auto import tqdm

    from saliency_gym import plotting
    from saliency_gym.explain_outputs import (
        MapWriter,
        explain_settings,
        explained_classes,
        image_names,
        overlay_png,
        photo_at_own_size,
    )
    from saliency_gym.explainers import Explainer, make_explainer
    from saliency_gym.specs import explainer_kwargs, unique_methods

    methods = unique_methods(args.methods)  # fail before loading anything
    options = {m: explainer_kwargs(m, seed=args.seed, rise_masks=args.rise_masks, agent=args.agent) for m in methods}
    spec = model_data_spec(args)
    out = Path(args.out)

    import captum.attr  # noqa: F401 - imported up front so no method's timing includes it

    start = time.perf_counter()
    classifier, source = spec.build(args.device)
    if args.images is not None and args.images > len(source):
        print(f"--images {args.images}: the {source.name} data holds {len(source)} images; explaining all {len(source)}")
    names = image_names(source)[: args.images]
    n = len(names)
    what = "their labels" if source.has_label else "the predicted class"

    explainers: dict[str, Explainer] = {}
    for method in methods:  # all built before any runs: a method that cannot explain this model fails now
        explainers[method] = make_explainer(method, classifier, **options[method])
        layer_name = getattr(explainers[method], "layer_name", None)
        if method == "gradcam" and layer_name is not None:
            print(f"Grad-CAM layer: {layer_name}")

    class_names = list(classifier.class_names or source.class_names)
    settings = explain_settings(classifier.name, spec.with_data(spec.data or source.name), options, engine="local")
    writer = MapWriter(out, methods, names, class_names, settings)
    todo = writer.todo()
    print(f"{classifier.name}: {n} {source.name} images, explained for {what}")
    if len(todo) < n:
        print(f"resuming: {n - len(todo)} of the {n} images already have their maps in {out / 'maps'}")
    shown = figure_sample(n)
    kept: dict[str, dict[int, np.ndarray]] = {m: {} for m in methods}
    costs = {m: _Cost() for m in methods}
    has_masks = False
    bar = tqdm(total=n, initial=n - len(todo), desc="explain", unit="image", disable=args.no_progress, dynamic_ncols=True)
    try:
        for begin in range(0, len(todo), args.batch_size):
            chunk = todo[begin : begin + args.batch_size]
            batch = source.get_batch(chunk)
            has_masks = has_masks or batch.masks is not None
            targets = explained_classes(classifier, source, batch.labels, batch.images)
            photos = [] if args.no_overlays else [photo_at_own_size(source, i, x) for i, x in zip(chunk, batch.images, strict=True)]
            for method, explainer in explainers.items():
                explanation = explainer.explain(batch.images, targets)
                costs[method].add(len(chunk), explanation.queries, explanation.seconds, explanation.maps, batch.masks)
                for row, index in enumerate(chunk):
                    saliency = explanation.maps[row]
                    writer.write(
                        index, int(targets[row]), method, saliency, queries=explanation.queries_per_image,
                        seconds=explanation.seconds_per_image,
                        overlay=None if args.no_overlays else overlay_png(photos[row], saliency),
                    )  # fmt: skip
                    if index in shown:
                        kept[method][index] = saliency
            bar.update(len(chunk))
    finally:
        bar.close()
        writer.write_manifest()  # also when stopped: the rows of every finished image

    header = f"{'method':<22} {'queries/image':>14} {'seconds/image':>14}"
    if has_masks:
        header += f" {'mass on mask':>13}"
    if todo:
        print(header)
    for method, cost in costs.items():
        if not cost.images:
            continue
        line = f"{method:<22} {cost.queries / cost.images:>14.1f} {cost.seconds / cost.images:>14.4f}"
        if cost.inside:
            line += f" {np.mean(cost.inside):>13.3f}"
        print(line)
    masked = source.get_batch(todo[:64]).masks if has_masks and todo else None
    if masked is not None:
        print(f"(the evidence masks cover {masked.mean():.3f} of the pixels)")
    print(f"wrote {len(todo) * len(methods)} maps to {out / 'maps'} and the manifest {out / 'manifest.json'}")

    shown_batch = source.get_batch(shown)
    shown_targets = [writer.targets[names[i]] for i in shown]
    titles = [class_names[t] if source.has_label else f"predicted {class_names[t]}" for t in shown_targets]
    maps = {m: np.stack([kept[m][i] if i in kept[m] else writer.load_map(m, i) for i in shown]) for m in methods}
    path = plotting.save_saliency_grid(
        shown_batch.images, maps, out / f"explain_{classifier.name}.{args.figure_format}",
        row_titles=titles, masks=shown_batch.masks, title=f"{classifier.name}: {', '.join(methods)}", dpi=args.dpi,
    )  # fmt: skip
    drawn = "" if len(shown) == n else f" (the figure shows {len(shown)} of the {n} images, evenly spaced)"
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s{drawn}")
    return 0
