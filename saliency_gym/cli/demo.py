"""``saliency-gym demo``: the shipped classifier explained on held-out images, end to end."""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import add_device_argument, positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="evaluate a shipped classifier and explain held-out images (writes a PNG)",
        description="Load a shipped classifier, report its held-out accuracy, explain a few test "
        "images and write an overlay PNG.",
    )
    parser.add_argument("--dataset", default="shapes", help="shipped dataset/classifier name")
    parser.add_argument("--images", type=positive_int, default=6, help="images to explain")
    parser.add_argument("--out", default="demo_output", help="folder for the PNG")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from saliency_gym.baselines import OcclusionExplainer
    from saliency_gym.data import load_dataset
    from saliency_gym.plotting import save_saliency_grid
    from saliency_gym.zoo import load_classifier

    start = time.perf_counter()
    classifier = load_classifier(args.dataset, device=args.device)
    test = load_dataset(classifier.meta["dataset"], "test")
    data = test.arrays()
    accuracy = classifier.accuracy(data.images, data.labels)
    print(f"classifier {classifier.name!r} on {len(test)} held-out {test.name} images: "
          f"accuracy {accuracy:.4f} ({classifier.queries} queries)")  # fmt: skip

    batch = test.get_batch(range(min(args.images, len(test))))
    explanation = OcclusionExplainer(classifier).explain(batch.images, batch.labels)
    print(f"occlusion: {explanation.queries_per_image:.0f} queries and "
          f"{explanation.seconds_per_image:.3f} s per image")  # fmt: skip
    if batch.masks is not None:
        # Share of positive saliency that falls on the ground-truth shape (energy pointing game).
        positive = explanation.maps.clip(min=0)
        inside = (positive * batch.masks).sum(axis=(1, 2)) / positive.sum(axis=(1, 2)).clip(min=1e-12)
        print(f"occlusion saliency mass on the evidence mask: {inside.mean():.3f} "
              f"(the mask covers {batch.masks.mean():.3f} of the pixels)")  # fmt: skip
    names = [test.class_names[y] for y in batch.labels]
    path = save_saliency_grid(
        batch.images, {"occlusion": explanation.maps}, Path(args.out) / f"{args.dataset}_demo.png",
        row_titles=names, masks=batch.masks, title=f"{classifier.name}: occlusion saliency",
    )  # fmt: skip
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0
