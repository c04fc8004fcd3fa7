"""Do the agents search? Trained agents against the priors, Grad-CAM and greedy, per preset.

For each agent (a shipped name, a ``.pt``/``.zip`` file or a run folder) it explains the held-out
test images of the agent's own data set (the explained class is the classifier's prediction) in
every mode the agent offers:

- **open loop** (an agent that reads only the image's features, or a pixel agent): its cell order,
  1 query per image (0 for a pixel agent);
- **closed loop** (an agent that reads the canvas's features and the score): its cell order and,
  as RExL scores it, each step's evidence gain, one query per step;

and scores every map with an independent metric: the RISE insertion (blur) or deletion (zeros)
curve over pixels, ``H * W / 32`` pixels per step (so 33 points), for the agent's own mode only
(reveal agents by insertion, mask agents by deletion; both are reported). Beside it, on the same
images: the **centre prior** (the same map for every image), the agent's **own mean map** (its
maps averaged over the images), **Grad-CAM** (1 query), a **random** map and, with ``--greedy``,
the **greedy look-ahead** (``K (K + 1) / 2`` queries for ``K`` cells). Each row gets the paired
difference against the centre prior, its own mean map and Grad-CAM (mean and 95% t-interval over
images), and the greedy ratio. Markdown, CSV and JSON go to ``--out``.

``python -m saliency_gym.benchmarks.bench_evidence_agents --agents shapes_reveal digits_reveal --images 200 --greedy``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_gym.benchmarks.priors import mean_maps, paired_difference
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.runs import check_output_dir

__all__ = ["evaluate_agent", "main"]

#: Pixels per step of the independent metric: ``H * W // CURVE_STEPS``.
CURVE_STEPS = 32
REFERENCES = ("centre", "mean map", "gradcam")


def _dataset_of(config: Any) -> str:
    """The named data set an agent was trained on (its test split is explained)."""
    name = str(config.data.name)
    from saliency_gym.data import available_datasets

    for candidate in sorted(available_datasets(), key=len, reverse=True):
        if name == candidate or name.startswith(candidate):
            return candidate
    raise ValueError(f"the agent's data {name!r} is not a shipped data set; this benchmark explains shipped test splits")


def _scores(classifier: FrozenClassifier, images: np.ndarray, maps: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    step = max(1, images.shape[-1] * images.shape[-2] // CURVE_STEPS)
    return {
        "insertion": np.asarray(insertion_curve(classifier, images, maps, targets, step=step).auc, np.float64),
        "deletion": np.asarray(deletion_curve(classifier, images, maps, targets, step=step).auc, np.float64),
    }


def evaluate_agent(agent: str, images: int = 200, *, greedy: bool = False, device: str | None = None) -> dict[str, Any]:
    """Rows (method, queries per image, per-image insertion and deletion AUCs) for one agent."""
    from saliency_gym.agents.policies import GreedyPolicy
    from saliency_gym.agents.policy_explainer import PolicyExplainer, open_agent
    from saliency_gym.baselines.centre import CentrePriorExplainer
    from saliency_gym.baselines.gradcam import GradCAMExplainer
    from saliency_gym.data import load_dataset

    policy, info = open_agent(agent, device=device)
    config = info["config"]
    classifier = config.classifier
    dataset = _dataset_of(config)
    source = load_dataset(dataset, split="test")
    count = min(images, len(source))
    x = np.asarray(source.get_batch(np.arange(count)).images, np.float32)
    targets = classifier.predict(x, count=False).cpu().numpy()
    rows: dict[str, dict[str, Any]] = {}

    def add(name: str, maps: np.ndarray, queries: float, seconds: float) -> None:
        rows[name] = {"queries": float(queries), "seconds": seconds / count, **_scores(classifier, x, maps, targets)}

    scorings = ["order", "gain"] if policy.needs_scores else ["order"]
    first = None
    for scoring in scorings:
        explainer = PolicyExplainer(classifier, agent, scoring=scoring)
        start = time.perf_counter()
        explanation = explainer.explain(x, targets)
        label = f"agent, {explainer.loop} loop ({scoring})"
        add(label, np.asarray(explanation.maps), explanation.queries_per_image, time.perf_counter() - start)
        if first is None:
            first = (label, np.asarray(explanation.maps))
    assert first is not None
    rows["agent (mean map)"] = {"queries": 0.0, "seconds": 0.0, **_scores(classifier, x, mean_maps(first[1]), targets)}
    for name, explainer_ in (("centre", CentrePriorExplainer(classifier)), ("gradcam", GradCAMExplainer(classifier))):
        start = time.perf_counter()
        explanation = explainer_.explain(x, targets)
        add(name, np.asarray(explanation.maps), explanation.queries_per_image, time.perf_counter() - start)
    rng = np.random.default_rng(0)
    add("random", rng.random((count, *x.shape[-2:])).astype(np.float32), 0, 0.0)
    if greedy:
        explainer = PolicyExplainer(classifier, GreedyPolicy(), mode=config.mode, grid=config.grid.shape, substrate=config.substrate)
        start = time.perf_counter()
        explanation = explainer.explain(x, targets)
        add("greedy look-ahead", np.asarray(explanation.maps), explanation.queries_per_image, time.perf_counter() - start)
    return {"agent": str(agent), "mode": config.mode, "dataset": dataset, "images": count, "grid": list(config.grid.shape),
            "observe_features": policy.observe_features, "rows": rows, "first_agent_row": first[0]}  # fmt: skip


def summarise(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows: means, intervals and paired differences against the references."""
    rows, out = result["rows"], []
    metric = "insertion" if result["mode"] == "reveal" else "deletion"
    greedy = rows.get("greedy look-ahead")
    random_row = rows["random"]
    for name, row in rows.items():
        entry: dict[str, Any] = {"agent": result["agent"], "dataset": result["dataset"], "mode": result["mode"], "method": name,
                                 "queries": row["queries"], "seconds": row["seconds"]}  # fmt: skip
        for key in ("insertion", "deletion"):
            entry[key], entry[f"{key}_ci"] = mean_ci(row[key])
        reference_rows = {"centre": rows["centre"], "mean map": rows["agent (mean map)"], "gradcam": rows["gradcam"]}
        for ref, ref_row in reference_rows.items():
            if ref_row is not row:
                entry[f"minus {ref}"], entry[f"minus {ref} ci"] = paired_difference(row[metric], ref_row[metric])
        if greedy is not None:
            entry["of greedy"] = float(np.mean(row[metric]) / np.mean(greedy[metric]))
            spread = float(np.mean(greedy[metric]) - np.mean(random_row[metric]))
            entry["normalised"] = float((np.mean(row[metric]) - np.mean(random_row[metric])) / spread) if spread else None
        out.append(entry)
    return out


def to_markdown(entries: Sequence[dict[str, Any]]) -> str:
    def pm(entry: dict[str, Any], key: str) -> str:
        value = entry.get(key)
        return "" if value is None else f"{value:+.3f} ± {entry[key + ' ci']:.3f}"

    lines = ["| data | agent mode | method | queries / image | insertion ↑ | deletion ↓ | − centre | − own mean map | − Grad-CAM | × greedy |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for e in entries:
        greedy = "" if e.get("of greedy") is None else f"{e['of greedy']:.3f}"
        lines.append(
            f"| {e['dataset']} | {e['mode']} | {e['method']} | {e['queries']:,.0f} | {e['insertion']:.3f} ± {e['insertion_ci']:.3f} | "
            f"{e['deletion']:.3f} ± {e['deletion_ci']:.3f} | {pm(e, 'minus centre')} | {pm(e, 'minus mean map')} | "
            f"{pm(e, 'minus gradcam')} | {greedy} |"
        )
    return "\n".join(lines) + "\n"


def save_figure(agent: str, path: str | Path, images: int = 6, *, start: int = 0) -> Path:
    """A PNG of ``images`` held-out images of the agent's data set: the image (its evidence mask as
    a contour), the agent's map, Grad-CAM's and the centre prior's, one colour bar."""
    from saliency_gym.agents.policy_explainer import PolicyExplainer, open_agent
    from saliency_gym.baselines.centre import CentrePriorExplainer
    from saliency_gym.baselines.gradcam import GradCAMExplainer
    from saliency_gym.data import load_dataset
    from saliency_gym.plotting import save_saliency_grid

    policy, info = open_agent(agent)
    config = info["config"]
    classifier = config.classifier
    batch = load_dataset(_dataset_of(config), split="test").get_batch(np.arange(start, start + images))
    x = np.asarray(batch.images, np.float32)
    targets = classifier.predict(x, count=False).cpu().numpy()
    explainer = PolicyExplainer(classifier, agent)
    maps = {
        f"agent ({explainer.loop} loop, {explainer.expected_queries():.0f} query)": explainer.explain(x, targets).maps,
        "Grad-CAM (1 query)": GradCAMExplainer(classifier).explain(x, targets).maps,
        "centre prior (0 queries)": CentrePriorExplainer(classifier).explain(x, targets).maps,
    }
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    return save_saliency_grid(
        x, {k: np.asarray(v) for k, v in maps.items()}, path, row_titles=[names[t] for t in targets],
        masks=None if batch.masks is None else np.asarray(batch.masks), title=f"{Path(str(agent)).name}: held-out test images",
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", nargs="+", required=True, help="shipped agent names, agent files or run folders")
    parser.add_argument("--images", type=int, default=200, help="held-out test images per agent")
    parser.add_argument("--greedy", action="store_true", help="add the greedy look-ahead row (K(K+1)/2 queries per image)")
    parser.add_argument("--out", default="benchmark_output/evidence_agents", help="folder for the tables")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--figure", type=int, default=0, metavar="N",
                        help="also draw N test images per agent: image, agent map, Grad-CAM, centre prior (PNG)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = check_output_dir(args.out)
    start = time.perf_counter()
    entries: list[dict[str, Any]] = []
    for agent in args.agents:
        result = evaluate_agent(agent, args.images, greedy=args.greedy)
        entries.extend(summarise(result))
        print(to_markdown([e for e in entries if e["agent"] == str(agent)]), flush=True)
        if args.figure:
            save_figure(agent, out / f"maps_{Path(str(agent)).name}.png", args.figure)
    (out / "evidence_agents.md").write_text(to_markdown(entries))
    (out / "evidence_agents.json").write_text(json.dumps({"rows": entries, "seconds": time.perf_counter() - start,
                                                         "threads": torch.get_num_threads()}, indent=1))  # fmt: skip
    print(f"{time.perf_counter() - start:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
