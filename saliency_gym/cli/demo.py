"""``saliency-gym demo``: the RExL claim on held-out images, end to end.

Loads the shipped shapes classifier and the shipped reveal agent, explains held-out test images
with the agent (a deterministic rollout; the shipped agents read the classifier's features of the
image: one query per image) and with RISE, and prints for both
the insertion and deletion AUC (RISE's definitions), classifier queries and seconds per image,
then writes an overlay PNG of the maps.
"""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import add_device_argument, positive_int
from saliency_gym.runs import check_output_dir

NAME = "demo"
HELP = "explain held-out images with the shipped agent and with RISE (AUCs, queries, PNG)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Report the shipped classifier's held-out accuracy, explain held-out images with "
        "the pretrained agent and with RISE, compare insertion/deletion AUC, queries and seconds, "
        "and write an overlay PNG.",
    )
    parser.add_argument("--dataset", default="shapes", help="shipped classifier/dataset name")
    parser.add_argument("--agent", default=None, help="agent name or checkpoint (default: <dataset>_reveal)")
    parser.add_argument("--images", type=positive_int, default=32, help="held-out images to explain")
    parser.add_argument("--rise-masks", type=positive_int, default=4000, help="RISE masks per image")
    parser.add_argument("--out", default="demo_output", help="folder for the PNG")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)  # fail now, not after the work
    import time
    from pathlib import Path

    import numpy as np

    from saliency_gym.agents.pretrained import agent_explainer
    from saliency_gym.baselines import RISEExplainer
    from saliency_gym.data import load_dataset
    from saliency_gym.metrics import deletion_curve, insertion_curve
    from saliency_gym.models.zoo import load_classifier
    from saliency_gym.plotting import save_saliency_grid

    start = time.perf_counter()
    classifier = load_classifier(args.dataset, device=args.device)
    test = load_dataset(classifier.meta["dataset"], "test")
    data = test.arrays()
    accuracy = classifier.accuracy(data.images, data.labels)
    print(f"classifier {classifier.name!r}: accuracy {accuracy:.4f} on {len(test)} held-out {test.name} images")

    batch = test.get_batch(np.arange(min(args.images, len(test))))
    targets = classifier.predict(batch.images, count=False).cpu().numpy()
    methods = {
        "agent": agent_explainer(args.agent or f"{args.dataset}_reveal", classifier),
        f"RISE ({args.rise_masks} masks)": RISEExplainer(classifier, n_masks=args.rise_masks),
    }
    maps = {}
    print(f"\n{len(batch.images)} held-out images, predicted class explained:")
    print(f"{'method':<20} {'insertion AUC':>14} {'deletion AUC':>13} {'queries/image':>14} {'seconds/image':>14}")
    from tqdm.auto import tqdm

    for name, explainer in tqdm(methods.items(), desc="explaining", unit="method", leave=False, disable=args.no_progress):
        explainer.explain(batch.images[:1], targets[:1])  # warm-up (first-call set-up is not timed)
        explanation = explainer.explain(batch.images, targets)
        ins = insertion_curve(classifier, batch.images, explanation.maps, targets)
        dele = deletion_curve(classifier, batch.images, explanation.maps, targets)
        maps[name] = explanation.maps
        print(f"{name:<20} {ins.auc.mean():>14.4f} {dele.auc.mean():>13.4f} "
              f"{explanation.queries_per_image:>14,.0f} {explanation.seconds_per_image:>14.4f}")  # fmt: skip
    shown = slice(0, min(6, len(batch.images)))
    path = save_saliency_grid(
        batch.images[shown], {_column_title(k): v[shown] for k, v in maps.items()}, Path(args.out) / f"{args.dataset}_demo.png",
        row_titles=[test.class_names[y] for y in batch.labels[shown]],
        masks=None if batch.masks is None else batch.masks[shown], title=f"{classifier.name}: agent vs RISE",
    )  # fmt: skip
    print(f"\nwrote {path} in {time.perf_counter() - start:.1f} s")
    return 0


def _column_title(method: str) -> str:
    """The figure's column title of a method: the agent's map is the order it revealed the cells in."""
    return "agent: cells in reveal order (bright = first)" if method == "agent" else method
