"""The query-budget benchmark: explanation quality against classifier queries per image.

On a real model (by default EfficientNet-Lite0 on the held-out bundled photographs at 224x224),
every method explains the same images and is scored with RISE's insertion (blur substrate) and
deletion (zeros) AUC; what it paid is the number of classifier queries per image, counted by the
classifier itself. Methods that have a budget knob appear several times, one point each:

- RISE with ``N`` random masks (``N`` queries);
- occlusion with several windows and strides (one query per window position, plus one);
- the greedy look-ahead of :class:`~saliency_gym.agents.policies.GreedyPolicy` with look-ahead
  for the first ``m`` steps (``K + (K-1) + ... + (K-m+1)`` queries on a ``K``-cell grid);
- one-pass gradient methods (Grad-CAM, gradients; integrated gradients with its steps);
- trained agents (zero queries with order scoring, ``K + 1`` with gain scoring) when one is given;
- a random map (zero queries), the floor;
- the priors (family ``"prior"``, zero queries, :mod:`saliency_gym.benchmarks.priors`): the centre
  prior (``centre``, the same centre-out map for every image) and, for each agent, its own mean map
  over the explained images (``"<agent> (mean map)"``). An agent's row gains the paired
  differences agent − centre and agent − own mean map (per image, mean and 95% interval).

The picture is insertion and deletion AUC against queries per image (log scale), one curve per
family; the table has mean and 95% interval (Student's t) over images, queries and seconds per
image. ``--quick`` is a smoke test of the whole pipeline at CI size.

Usage: ``saliency-gym bench --dataset photos [--quick]`` or
``python -m saliency_gym.benchmarks.query_budget --help``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from saliency_gym.benchmarks.priors import (
    CENTRE,
    mean_map_label,
    mean_maps,
    paired_columns,
    paired_markdown,
)
from saliency_gym.benchmarks.suite import mean_ci, write_tables
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.metrics import deletion_curve, insertion_curve
from saliency_gym.runs import check_output_dir


@dataclass(frozen=True)
class BudgetPlan:
    """What one run of the benchmark measures."""

    rise_masks: tuple[int, ...]
    occlusion: tuple[tuple[int, int], ...]  # (window, stride) in pixels
    greedy_steps: tuple[int, ...]  # look-ahead steps m; 0 means every step
    gradients: tuple[str, ...]
    curve_step: int  # pixels per insertion/deletion step (RISE: 224 at 224x224)
    grid: int = 7


PLANS = {
    "quick": BudgetPlan(rise_masks=(50,), occlusion=((56, 56),), greedy_steps=(1,), gradients=("gradcam",), curve_step=3584),
    "full": BudgetPlan(
        rise_masks=(50, 100, 250, 500, 1000, 4000),
        occlusion=((56, 56), (32, 32), (32, 16)),
        greedy_steps=(1, 2, 3, 0),
        gradients=("gradcam", "gradient", "integrated_gradients"),
        curve_step=448,
    ),
}


@dataclass
class BudgetResult:
    family: str
    method: str
    images: int
    queries_per_image: float
    insertion_auc: float
    insertion_ci: float
    deletion_auc: float
    deletion_ci: float
    seconds_per_image: float
    # Paired differences (agents only): per image, this row minus the reference, mean and 95% CI.
    insertion_minus_centre: float | None = None
    insertion_minus_centre_ci: float | None = None
    deletion_minus_centre: float | None = None
    deletion_minus_centre_ci: float | None = None
    insertion_minus_mean_map: float | None = None
    insertion_minus_mean_map_ci: float | None = None
    deletion_minus_mean_map: float | None = None
    deletion_minus_mean_map_ci: float | None = None


#: The family of the zero-query priors (the centre prior and the agents' mean maps).
PRIOR = "prior"


def _is_agent(family: str) -> bool:
    return family.startswith("agent")


def budget_methods(classifier: FrozenClassifier, plan: BudgetPlan, agents: Sequence[str] = ()) -> list[tuple[str, str, Callable[[], Explainer]]]:
    """``(family, label, factory)`` of every method point of ``plan`` (agents by name or path)."""
    from saliency_gym.agents.policies import GreedyPolicy
    from saliency_gym.agents.policy_explainer import PolicyExplainer

    methods: list[tuple[str, str, Callable[[], Explainer]]] = [
        ("random", "random map", partial(make_explainer, "random", classifier)),
        (PRIOR, CENTRE, partial(make_explainer, "centre", classifier)),
    ]
    for n in plan.rise_masks:
        methods.append(("RISE", f"rise-{n}", partial(make_explainer, "rise", classifier, n_masks=n)))
    for window, stride in plan.occlusion:
        label = f"occlusion-{window}/{stride}"
        methods.append(("occlusion", label, partial(make_explainer, "occlusion", classifier, window=window, stride=stride)))
    for m in plan.greedy_steps:
        label = "greedy-full" if m == 0 else f"greedy-{m}"

        def greedy(m: int = m, label: str = label) -> Explainer:
            return PolicyExplainer(classifier, GreedyPolicy(None if m == 0 else m), grid=plan.grid, name=label)

        methods.append(("greedy look-ahead", label, greedy))
    for name in plan.gradients:
        methods.append(("gradients", name, partial(make_explainer, name, classifier)))
    for agent in agents:
        for scoring in ("order", "gain"):
            label = f"{Path(agent).stem}-{scoring}"
            methods.append((f"agent ({scoring} scoring)", label, partial(PolicyExplainer, classifier, agent, grid=plan.grid, scoring=scoring, name=label)))
    return methods


def run_query_budget(
    classifier: FrozenClassifier,
    data: DataSource,
    *,
    size: str = "quick",
    images: int | None = None,
    agents: Sequence[str] = (),
    families: Sequence[str] | None = None,
    out: str | Path = "bench_output/query_budget",
    progress: bool = True,
) -> list[BudgetResult]:
    """Explain the first ``images`` of ``data`` with every method of the plan ``size`` (only those
    of ``families``, e.g. ``["RISE", "agent (order scoring)"]``, when given) and write
    ``budget.md``, ``budget.csv``, ``budget.json`` and ``budget.png`` to ``out``.

    The priors come with the agents: when an agent family is kept, the ``"prior"`` family is too,
    and each agent's mean map is scored after it (see the module docstring)."""
    if size not in PLANS:
        raise ValueError(f"size={size!r} is not supported; choose one of {sorted(PLANS)}")
    plan = PLANS[size]
    out = check_output_dir(out, "out")
    n = len(data) if images is None else min(int(images), len(data))
    if n < 1:
        raise ValueError("the benchmark needs at least one image")
    batch = data.get_batch(np.arange(n))
    x = batch.images
    # The explained class is the model's top-1 prediction (as in RISE's evaluation), not the label:
    # faithfulness is about what the model does, and a wrong top-1 is still what it saw.
    targets = classifier.predict(x, count=False).cpu().numpy()
    results: list[BudgetResult] = []
    start = time.perf_counter()
    methods = budget_methods(classifier, plan, agents)
    if families is not None:
        known = sorted({family for family, _, _ in methods})
        unknown = sorted(set(families) - set(known))
        if unknown:
            raise ValueError(f"unknown method families {unknown}; this plan has {known}")
        kept = set(families) | ({PRIOR} if any(_is_agent(f) for f in families) else set())
        methods = [m for m in methods if m[0] in kept]
    per_image: dict[str, dict[str, np.ndarray]] = {}

    def score(family: str, label: str, maps_all: np.ndarray, queries: float, seconds: float) -> None:
        with classifier.uncounted():
            ins = insertion_curve(classifier, x, maps_all, targets, step=plan.curve_step)
            dele = deletion_curve(classifier, x, maps_all, targets, step=plan.curve_step)
        per_image[label] = {"insertion": ins.auc, "deletion": dele.auc}
        (ins_mean, ins_ci), (del_mean, del_ci) = mean_ci(ins.auc), mean_ci(dele.auc)
        results.append(BudgetResult(family, label, n, queries, ins_mean, ins_ci, del_mean, del_ci, seconds))

    bar = tqdm(methods, desc="query budget", unit="method", disable=not progress, dynamic_ncols=True)
    for family, label, factory in bar:
        bar.set_postfix_str(label)
        explainer = factory()
        maps, queries, seconds = [], [], []
        for i in range(n):  # one image per call: the per-image cost is what is measured
            explanation = explainer.explain(x[i : i + 1], targets[i : i + 1])
            maps.append(explanation.maps)
            queries.append(explanation.queries)
            seconds.append(explanation.seconds)
        maps_all = np.concatenate(maps)
        score(family, label, maps_all, float(np.mean(queries)), float(np.mean(seconds)))
        if _is_agent(family):  # the agent's own prior: its mean map, given to every image
            score(PRIOR, mean_map_label(label), mean_maps(maps_all), 0.0, 0.0)
    results = [replace(r, **paired_columns(r.method, per_image)) if _is_agent(r.family) else r for r in results]
    meta = {
        "classifier": classifier.name, "data": getattr(data, "name", "data"), "images": n, "size": size,
        "curve_step": plan.curve_step, "seconds": time.perf_counter() - start, "device": str(classifier.device),
    }  # fmt: skip
    write_results(results, meta, out)
    return results


def to_markdown(results: Sequence[BudgetResult]) -> str:
    """The table; the agents' paired columns (agent − centre, agent − own mean map) appear when an
    agent was benchmarked."""
    header, separator, paired = paired_markdown(results)
    lines = [
        "| family | method | queries / image | insertion AUC ↑ | deletion AUC ↓ | seconds / image |" + header,
        "|---|---|---:|---:|---:|---:|" + separator,
    ]
    for r, extra in zip(results, paired, strict=True):
        lines.append(
            f"| {r.family} | {r.method} | {r.queries_per_image:,.0f} | {r.insertion_auc:.3f} ± {r.insertion_ci:.3f} | "
            f"{r.deletion_auc:.3f} ± {r.deletion_ci:.3f} | {r.seconds_per_image:.2f} |" + extra
        )
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[BudgetResult], meta: dict[str, Any], out: Path) -> None:
    """The table as Markdown, CSV and JSON (``budget.*``), and the picture as PNG."""
    write_tables(results, out, meta, stem="budget", markdown=to_markdown(results))
    plot_budget(results, out / "budget.png", title=f"{meta['classifier']} on {meta['data']} ({meta['images']} images)")


def plot_budget(results: Sequence[BudgetResult], path: Path, title: str = "") -> Path:
    """Insertion and deletion AUC against queries per image (log scale), a line per family."""
    from saliency_gym.plotting import _figure_module

    plt = _figure_module()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    families = list(dict.fromkeys(r.family for r in results))
    colours = plt.get_cmap("tab10")
    for k, family in enumerate(families):
        rows = sorted((r for r in results if r.family == family), key=lambda r: r.queries_per_image)
        q = np.array([max(r.queries_per_image, 0.5) for r in rows])  # zero-query methods drawn at 0.5
        for ax, key in zip(axes, ("insertion", "deletion"), strict=True):
            mean = np.array([getattr(r, f"{key}_auc") for r in rows])
            ci = np.array([getattr(r, f"{key}_ci") for r in rows])
            line = "-" if len(set(q)) > 1 else "none"  # the zero-query priors are points, not a curve
            ax.errorbar(q, mean, yerr=ci, marker="o", capsize=3, label=family, color=colours(k % 10), linestyle=line)
    for ax, key, better in zip(axes, ("insertion", "deletion"), ("higher", "lower"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("classifier queries per image (log; 0 drawn at 0.5)")
        ax.set_ylabel(f"{key} AUC ({better} is better)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI size: one image, one point per family")
    parser.add_argument("--images", type=int, default=None, help="images to explain (default: all of the split)")
    parser.add_argument("--split", default="test", help="photos split (default: the held-out test photos)")
    parser.add_argument("--agents", nargs="*", default=None, help="trained agents (shipped names or checkpoint paths; default: the shipped photos agents)")
    parser.add_argument("--families", nargs="*", default=None, help="only these method families (e.g. RISE occlusion)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench_output/query_budget")
    args = parser.parse_args(argv)
    import torch

    from saliency_gym.zoo import load_classifier

    torch.set_num_threads(args.threads)
    classifier = load_classifier("efficientnet_lite0", device=args.device)
    data = load_dataset("photos", split=args.split)
    if args.agents is None:
        from saliency_gym.agents.pretrained import shipped_agents

        args.agents = [name for name in shipped_agents() if name.startswith("photos_")]
    results = run_query_budget(classifier, data, size="quick" if args.quick else "full", images=1 if args.quick and args.images is None else args.images,
                               agents=args.agents, families=args.families, out=args.out)  # fmt: skip
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
