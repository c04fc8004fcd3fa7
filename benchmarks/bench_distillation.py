"""Distilled agents against the shipped agents and the reference methods (issue 14's goals).

Each agent file is rolled out (order scoring, no classifier query) on the benchmark's held-out
images of its data set (the same 200 test images, explained for the predicted class, as
``saliency-gym bench`` / :mod:`saliency_gym.benchmarks.suite` uses) and scored by pixel-level
insertion AUC (blur) and deletion AUC (zeros), mean ± 95% CI over images (Student's t). The
reference methods' rows (Grad-CAM, occlusion, greedy look-ahead, ...) are read from
``benchmarks/results/bench.json`` (same images, same metrics), and each agent row says whether it
meets the issue's goals:

- reveal agents: insertion AUC >= every one-pass explainer's (Grad-CAM, occlusion, gradient,
  integrated gradients, random) and >= 95% of greedy's, at <= 3% of greedy's queries;
- mask agents: deletion AUC below every one-pass explainer's and <= 2x greedy's.

"training min" is the file's ``meta["train_seconds"]`` (a distilled agent's run, teacher labelling
included; in parentheses the teacher's share, ``meta["teacher_seconds"]``), in wall-clock minutes.

Usage: ``python -m saliency_gym.benchmarks.bench_distillation AGENT.pt [AGENT.pt ...]
[--images 200] [--out benchmarks/results/distillation.json]`` (``--shipped`` adds the shipped agents).
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

from saliency_gym.agents.agent_checkpoints import load_agent_payload
from saliency_gym.agents.pretrained import agent_explainer, resolve_agent_path, shipped_agents
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.data import load_dataset
from saliency_gym.metrics import deletion_curve, insertion_curve
from saliency_gym.models.zoo import load_classifier

BENCH_JSON = Path(__file__).resolve().parent / "results" / "bench.json"
#: Explainers that explain an image in one pass (no per-cell search), the goals' reference.
ONE_PASS = ("gradcam", "occlusion", "gradient", "integrated_gradients", "random")
REFERENCES = ("gradcam", "occlusion", "rise-4000", "greedy-reveal", "greedy-mask", "random-policy")


def benchmark_images(dataset: str, images: int) -> tuple[Any, np.ndarray, np.ndarray]:
    """The classifier, held-out images and predicted targets the suite scores ``dataset`` on."""
    classifier = load_classifier(dataset, device="cpu")
    source = load_dataset(classifier.meta["dataset"], "test", n=images) if dataset != "digits" else load_dataset("digits", "test")
    batch = source.get_batch(np.arange(min(images, len(source))))
    targets = classifier.predict(batch.images, count=False).cpu().numpy()
    return classifier, np.asarray(batch.images), targets


def reference_rows(path: Path = BENCH_JSON) -> list[dict[str, Any]]:
    """The reference methods' rows of the suite's results (``[]`` when the file is missing)."""
    if not path.is_file():
        return []
    return [r for r in json.loads(path.read_text())["results"] if r["method"] in REFERENCES + ONE_PASS]


def agent_dataset(info: dict[str, Any]) -> str:
    """The data set (shipped classifier name) an agent explains: its environment's classifier."""
    return str(info["config"].classifier.name)


def evaluate_agent(agent: str, images: int, cache: dict[str, Any]) -> dict[str, Any]:
    """One agent's row: insertion and deletion AUC (mean, 95% half-width), queries per image,
    training minutes (``meta["train_seconds"]`` of the file) and its mode."""
    from saliency_gym.agents.pretrained import load_agent_policy

    _, info = load_agent_policy(agent)
    dataset = agent_dataset(info)
    if dataset not in cache:
        cache[dataset] = benchmark_images(dataset, images)
    classifier, x, targets = cache[dataset]
    explainer = agent_explainer(agent, classifier)
    start = time.perf_counter()
    explanation = explainer.explain(x, targets)
    seconds = time.perf_counter() - start
    ins = insertion_curve(classifier, x, explanation.maps, targets)
    dele = deletion_curve(classifier, x, explanation.maps, targets)
    payload = load_agent_payload(resolve_agent_path(agent))
    meta = payload.get("meta", {})
    train_seconds = meta.get("train_seconds")
    (i, i_ci), (d, d_ci) = mean_ci(ins.auc), mean_ci(dele.auc)
    return {
        "dataset": dataset, "agent": str(agent), "mode": info["config"].mode, "images": len(x),
        "insertion_auc": i, "insertion_ci": i_ci, "deletion_auc": d, "deletion_ci": d_ci,
        "queries_per_image": explanation.queries / len(x), "seconds_per_image": seconds / len(x),
        "train_minutes": None if train_seconds is None else float(train_seconds) / 60.0,
        "teacher_minutes": None if meta.get("teacher_seconds") is None else float(meta["teacher_seconds"]) / 60.0,
        "distilled_from": meta.get("distilled_from"),
    }  # fmt: skip


def goals(row: dict[str, Any], references: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Whether an agent row meets the issue's goals against the references of its data set."""
    refs = {r["method"]: r for r in references if r["dataset"] == row["dataset"]}
    one_pass = [refs[m] for m in ONE_PASS if m in refs]
    out: dict[str, Any] = {}
    if row["mode"] == "reveal" and "greedy-reveal" in refs:
        greedy = refs["greedy-reveal"]
        out["beats_one_pass"] = all(row["insertion_auc"] >= r["insertion_auc"] for r in one_pass)
        out["share_of_greedy"] = row["insertion_auc"] / greedy["insertion_auc"]
        out["queries_share"] = row["queries_per_image"] / greedy["queries_per_image"]
        out["met"] = bool(out["beats_one_pass"] and out["share_of_greedy"] >= 0.95 and out["queries_share"] <= 0.03)
    elif row["mode"] == "mask" and "greedy-mask" in refs:
        greedy = refs["greedy-mask"]
        out["beats_one_pass"] = all(row["deletion_auc"] < r["deletion_auc"] for r in one_pass)
        out["times_greedy"] = row["deletion_auc"] / greedy["deletion_auc"]
        out["queries_share"] = row["queries_per_image"] / greedy["queries_per_image"]
        out["met"] = bool(out["beats_one_pass"] and out["times_greedy"] <= 2.0 and out["queries_share"] <= 0.03)
    return out


def to_markdown(rows: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]]) -> str:
    lines = ["| dataset | method | insertion AUC ↑ | deletion AUC ↓ | queries / image | training min (teacher) | goals |",
             "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for r in (r for r in rows if r["dataset"] == dataset):
            g = r.get("goals", {})
            if "share_of_greedy" in g:
                verdict = f"{'met' if g['met'] else 'not met'}: {g['share_of_greedy']:.1%} of greedy, one-pass {'beaten' if g['beats_one_pass'] else 'not beaten'}"
            elif "times_greedy" in g:
                verdict = f"{'met' if g['met'] else 'not met'}: {g['times_greedy']:.1f}x greedy, one-pass {'beaten' if g['beats_one_pass'] else 'not beaten'}"
            else:
                verdict = ""
            minutes = "" if r["train_minutes"] is None else f"{r['train_minutes']:.1f}"
            if r.get("teacher_minutes") is not None:
                minutes += f" ({r['teacher_minutes']:.1f})"
            lines.append(f"| {dataset} | {Path(r['agent']).parent.name + '/' if '/' in r['agent'] else ''}{Path(r['agent']).stem} ({r['mode']}) | "
                         f"{r['insertion_auc']:.3f} ± {r['insertion_ci']:.3f} | {r['deletion_auc']:.3f} ± {r['deletion_ci']:.3f} | "
                         f"{r['queries_per_image']:,.0f} | {minutes} | {verdict} |")  # fmt: skip
        for r in (r for r in references if r["dataset"] == dataset):
            lines.append(f"| {dataset} | {r['method']} (bench.json) | {r['insertion_auc']:.3f} ± {r['insertion_ci']:.3f} | "
                         f"{r['deletion_auc']:.3f} ± {r['deletion_ci']:.3f} | {r['queries_per_image']:,.0f} |  |  |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("agents", nargs="*", help="agent files (.pt / .zip) or shipped names")
    parser.add_argument("--shipped", action="store_true", help="also evaluate the shipped shapes/digits agents")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the rows as JSON here (e.g. benchmarks/results/distillation.json)")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error("--images must be >= 1")
    torch.set_num_threads(args.threads)
    agents = ([n for n in shipped_agents() if n.split("_")[0] in ("shapes", "digits")] if args.shipped else []) + list(args.agents)
    if not agents:
        parser.error("name at least one agent file (or --shipped)")
    cache: dict[str, Any] = {}
    rows = [evaluate_agent(agent, args.images, cache) for agent in agents]
    datasets = {r["dataset"] for r in rows}
    references = [r for r in reference_rows() if r["dataset"] in datasets]
    for row in rows:
        row["goals"] = goals(row, references)
    print(to_markdown(rows, references))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"images": args.images, "machine": "2 CPU cores, no GPU, shared with other jobs",
                                              "agents": rows, "references": references}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
