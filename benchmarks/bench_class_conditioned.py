"""What a class-conditioned agent buys: explaining the predicted class and another class.

An agent trained with ``observe_class=True, target="random"`` sees which class it explains; the
shipped ``shapes_reveal`` agent does not (it always orders cells for the predicted class). On the
same held-out images, each explains (a) the classifier's top-1 class and (b) its runner-up class,
and is scored by the insertion AUC of the explained class (RISE's blur substrate). Grad-CAM (one
backward pass, class-specific by construction) and a random map are the references.

Usage: ``python -m saliency_gym.benchmarks.bench_class_conditioned --agent RUN/final.pt [--images 200]``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from saliency_gym.agents.pretrained import agent_explainer
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.data import load_dataset
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.metrics import insertion_curve
from saliency_gym.models.zoo import load_classifier


def class_conditioned_table(agent: str, images: int = 200, classifier_name: str = "shapes") -> list[dict[str, object]]:
    """Rows of (method, explained class, insertion AUC mean and 95% half-width)."""
    classifier = load_classifier(classifier_name, device="cpu")
    x = load_dataset(classifier.meta["dataset"], "test", n=images).arrays().images
    ranked = classifier.probs(x, count=False).argsort(dim=1, descending=True).cpu().numpy()
    classes = {"top-1": ranked[:, 0], "runner-up": ranked[:, 1]}
    methods: dict[str, Explainer] = {
        "class-conditioned agent": agent_explainer(agent, classifier),
        "shipped agent (not conditioned)": agent_explainer("shapes_reveal", classifier),
        "gradcam": make_explainer("gradcam", classifier),
        "random": make_explainer("random", classifier),
    }
    rows: list[dict[str, object]] = []
    for which, targets in classes.items():
        for method, explainer in methods.items():
            maps = explainer.explain(x, targets).maps
            mean, ci = mean_ci(insertion_curve(classifier, x, maps, targets).auc)
            rows.append({"explained": which, "method": method, "insertion_auc": mean, "insertion_ci": ci, "images": len(x)})
    return rows


def to_markdown(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| explained class | method | insertion AUC ↑ |", "|---|---|---:|"]
    lines += [f"| {r['explained']} | {r['method']} | {r['insertion_auc']:.3f} ± {r['insertion_ci']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", required=True, help="a class-conditioned agent (checkpoint path or shipped name)")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = class_conditioned_table(args.agent, args.images)
    print(to_markdown(rows))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"agent": str(args.agent), "images": args.images, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
