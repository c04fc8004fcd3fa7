"""Transfer of the shipped shapes agents to other classifiers of the same images, without retraining.

The agents ``shapes_reveal`` / ``shapes_mask`` were trained against the ``shapes`` CNN. The same
images are classified by ``shapes_robust`` (PGD adversarial fine-tuning) and ``shapes_idexpo``
(ID-ExpO fine-tuning), whose evidence may sit elsewhere. This script explains the same held-out
images for each classifier with the agent (zero queries, order scoring) and, as references, with
Grad-CAM (one backward pass) and a random map, and prints insertion AUC (reveal agent; RISE's blur)
and deletion AUC (mask agent; zeros) with 95% intervals over images (Student's t).

Usage: ``python -m saliency_gym.benchmarks.bench_transfer [--images 200] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from saliency_gym.agents.pretrained import agent_explainer
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.data import load_dataset
from saliency_gym.explainers import make_explainer
from saliency_gym.metrics import deletion_curve, insertion_curve
from saliency_gym.zoo import load_classifier

CLASSIFIERS = ("shapes", "shapes_robust", "shapes_idexpo")


def transfer_table(images: int = 200, classifiers: Sequence[str] = CLASSIFIERS) -> list[dict[str, object]]:
    """One row per (classifier, method): insertion and deletion AUC, mean and 95% half-width."""
    batch = load_dataset("shapes", "test", n=images).arrays()
    rows: list[dict[str, object]] = []
    for name in classifiers:
        classifier = load_classifier(name, device="cpu")
        targets = classifier.predict(batch.images, count=False).cpu().numpy()
        methods = {
            "agent": (agent_explainer("shapes_reveal", classifier), agent_explainer("shapes_mask", classifier)),
            "gradcam": (make_explainer("gradcam", classifier),) * 2,
            "random": (make_explainer("random", classifier),) * 2,
        }
        for method, (reveal, mask) in methods.items():
            ins = insertion_curve(classifier, batch.images, reveal.explain(batch.images, targets).maps, targets)
            dele = deletion_curve(classifier, batch.images, mask.explain(batch.images, targets).maps, targets)
            (i, i_ci), (d, d_ci) = mean_ci(ins.auc), mean_ci(dele.auc)
            rows.append({"classifier": name, "method": method, "insertion_auc": i, "insertion_ci": i_ci,
                         "deletion_auc": d, "deletion_ci": d_ci, "images": len(targets)})  # fmt: skip
    return rows


def to_markdown(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| classifier | method | insertion AUC ↑ (reveal agent) | deletion AUC ↓ (mask agent) |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['classifier']} | {r['method']} | {r['insertion_auc']:.3f} ± {r['insertion_ci']:.3f} | {r['deletion_auc']:.3f} ± {r['deletion_ci']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = transfer_table(args.images)
    print(to_markdown(rows))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"images": args.images, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
