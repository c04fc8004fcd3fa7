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
"""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import (
    add_device_argument,
    add_model_arguments,
    build_model_and_data,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_output_dir

DEFAULT_METHODS = ("rise", "gradcam", "integrated_gradients")


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
    parser.add_argument("--images", type=positive_int, default=4, help="test images to explain")
    parser.add_argument("--out", default="explain_output", help="folder for the PNG")
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)  # fail now, not after the work
    import time
    from pathlib import Path

    import numpy as np

    from saliency_gym.explainers import (
        Explainer,
        explainer_class,
        explainer_options,
        make_explainer,
    )
    from saliency_gym.plotting import save_saliency_grid

    for method in args.methods:  # fail before loading anything
        explainer_class(method)
    methods = list(dict.fromkeys(args.methods))

    import captum.attr  # noqa: F401 - imported up front so no method's timing includes it

    start = time.perf_counter()
    classifier, test = build_model_and_data(args)
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
        options: dict[str, object] = {}
        accepted = explainer_options(method)
        if "seed" in accepted:
            options["seed"] = args.seed
        if method == "rise" and args.rise_masks is not None:
            options["n_masks"] = args.rise_masks
        if method == "policy":
            if args.agent is None:
                raise ValueError(
                    "the 'policy' method needs --agent (a shipped agent name or a checkpoint path)"
                )
            options["policy"] = args.agent
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

    names = [
        test.class_names[y] if test.has_label else f"predicted {test.class_names[y]}"
        for y in targets
    ]
    path = save_saliency_grid(
        batch.images, maps, Path(args.out) / f"explain_{classifier.name}.png",
        row_titles=names, masks=batch.masks, title=f"{classifier.name}: {', '.join(methods)}",
    )  # fmt: skip
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0
