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
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_gym.benchmarks.priors import (
    CENTRE,
    mean_map_label,
    mean_maps,
    paired_columns,
    paired_difference,
    paired_markdown,
)
from saliency_gym.benchmarks.suite import format_seconds, mean_ci, seconds_summary, write_tables
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.metrics import (
    deletion_curve,
    energy_pointing_game,
    insertion_curve,
    pointing_game,
)
from saliency_gym.runs import check_output_dir


@dataclass(frozen=True)
class BudgetPlan:
    """What one run of the benchmark measures."""

    rise_masks: tuple[int, ...]
    occlusion: tuple[tuple[int, int], ...]  # (window, stride) in pixels
    greedy_steps: tuple[int, ...]  # look-ahead steps m; 0 means every step
    gradients: tuple[str, ...]
    curve_step: int  # pixels per insertion/deletion step (RExL: 1,792 at 224x224, 28 steps)
    grid: int = 7
    #: Methods explained on the first ``n`` images only (their rows pair with the others on those
    #: images): RISE-4,000 costs ~100 s per photo on 2 CPU cores.
    image_limits: tuple[tuple[str, int], ...] = ()


PLANS = {
    "quick": BudgetPlan(rise_masks=(50,), occlusion=((56, 56),), greedy_steps=(1,), gradients=("gradcam",), curve_step=3584),
    "full": BudgetPlan(
        rise_masks=(50, 500, 4000),
        occlusion=((56, 56), (32, 16)),
        greedy_steps=(1, 2, 3),
        gradients=("gradcam", "gradient", "input_x_gradient", "integrated_gradients"),
        curve_step=1792,
        image_limits=(("rise-4000", 20),),
    ),
}

#: The row every other row is paired with (per image, same photos): the usual one-pass baseline.
REFERENCE = "gradcam"


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
    seconds_median: float
    seconds_q1: float
    seconds_q3: float
    # Paired with Grad-CAM (every row but Grad-CAM's): per image, this row minus Grad-CAM.
    insertion_minus_gradcam: float | None = None
    insertion_minus_gradcam_ci: float | None = None
    deletion_minus_gradcam: float | None = None
    deletion_minus_gradcam_ci: float | None = None
    # Localisation on the masked photos (mean and 95% CI over them), when they were given.
    localisation_images: int = 0
    pointing_game: float | None = None
    pointing_game_ci: float | None = None
    energy_pointing_game: float | None = None
    energy_pointing_game_ci: float | None = None
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
    for name in plan.gradients:
        methods.append(("gradients", name, partial(make_explainer, name, classifier)))
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
    for agent in agents:
        for scoring in ("order", "gain"):
            label = f"{Path(agent).stem}-{scoring}"
            methods.append((f"agent ({scoring} scoring)", label, partial(PolicyExplainer, classifier, agent, grid=plan.grid, scoring=scoring, name=label)))
    return methods


class MapCache:
    """Each method's maps, queries and seconds per image in ``<folder>/<method>.npz``, so a stopped
    run resumes where it was (RISE-4,000 on 60 photos is most of an hour on 2 cores).

    ``fingerprint`` (classifier, data, explained classes) is written beside the maps; a folder
    whose fingerprint differs is refused rather than mixed. Partial results are saved at most
    every ``every`` seconds (atomically: a temporary file renamed over the old one)."""

    def __init__(self, folder: Path, fingerprint: dict[str, Any], every: float = 20.0) -> None:
        self.folder, self.every = folder, every
        folder.mkdir(parents=True, exist_ok=True)
        stamp = folder / "fingerprint.json"
        if stamp.exists():
            if json.loads(stamp.read_text()) != fingerprint:
                raise ValueError(
                    f"{folder} holds the maps of another benchmark run (other model, photos or classes); "
                    "pass another --out, or delete that folder to start again"
                )
        else:
            stamp.write_text(json.dumps(fingerprint))

    def _path(self, label: str) -> Path:
        return self.folder / (label.replace("/", "_").replace(" ", "_") + ".npz")

    def load(self, label: str) -> dict[str, np.ndarray]:
        path = self._path(label)
        if not path.exists():
            return {"maps": np.zeros((0,)), "queries": np.zeros(0), "seconds": np.zeros(0)}
        with np.load(path) as saved:
            return {key: saved[key] for key in ("maps", "queries", "seconds")}

    def scores(self, label: str, key: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Per-image scores of ``label``'s cached maps under ``key`` (e.g. the curve step), computed
        once by ``compute`` and kept beside the maps."""
        path = self._path(label).with_suffix(f".{key}.npz")
        if path.exists():
            with np.load(path) as saved:
                return {name: saved[name] for name in saved.files}
        values = compute()
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **values)  # type: ignore[arg-type]  # numpy's stub types **kwds as its `allow_pickle`
        os.replace(tmp, path)
        return values

    def save(self, label: str, maps: list[np.ndarray], queries: list[float], seconds: list[float]) -> None:
        path = self._path(label)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, maps=np.concatenate(maps), queries=np.asarray(queries), seconds=np.asarray(seconds))
        os.replace(tmp, path)


def explain_each(
    explainer: Explainer, x: np.ndarray, targets: np.ndarray, cache: MapCache, label: str, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``maps (N, H, W)``, queries and seconds per image: one ``explain`` call per image (the
    per-image cost is what is measured), resuming from the cache."""
    saved = cache.load(label)
    done = len(saved["queries"])
    maps = [saved["maps"]] if done else []
    queries, seconds = list(saved["queries"]), list(saved["seconds"])
    last = time.monotonic()
    for i in tqdm(range(done, len(x)), desc=label, unit="image", leave=False, disable=not progress or done == len(x)):
        explanation = explainer.explain(x[i : i + 1], targets[i : i + 1])
        maps.append(np.asarray(explanation.maps, np.float32))
        queries.append(float(explanation.queries))
        seconds.append(float(explanation.seconds))
        if time.monotonic() - last > cache.every or i == len(x) - 1:
            cache.save(label, maps, queries, seconds)
            last = time.monotonic()
    return np.concatenate(maps)[: len(x)], np.asarray(queries[: len(x)]), np.asarray(seconds[: len(x)])


def _fingerprint(classifier: FrozenClassifier, data: DataSource, n: int, targets: np.ndarray) -> dict[str, Any]:
    return {"classifier": classifier.name, "data": repr(data), "images": n, "targets": [int(t) for t in targets]}


def run_query_budget(
    classifier: FrozenClassifier,
    data: DataSource,
    *,
    size: str = "quick",
    images: int | None = None,
    agents: Sequence[str] = (),
    families: Sequence[str] | None = None,
    localisation: DataSource | None = None,
    localisation_max_queries: int = 1000,
    out: str | Path = "bench_output/query_budget",
    progress: bool = True,
) -> list[BudgetResult]:
    """Explain the first ``images`` of ``data`` (and of ``localisation``, photos with evidence
    masks; methods that cost more than ``localisation_max_queries`` per image skip them) with
    every method of the plan ``size`` (only those of ``families``, e.g.
    ``["RISE", "agent (order scoring)"]``, when given) and write ``budget.md``, ``budget.csv``,
    ``budget.json`` and ``budget.png`` to ``out``; maps are cached in ``out/maps*`` so a stopped
    run resumes.

    On ``data`` the explained class is the model's top-1 (RISE's evaluation: faithfulness is about
    what the model does); on ``localisation`` it is the label (the mask shows the labelled object).
    The priors come with the agents: when an agent family is kept, the ``"prior"`` family is too,
    and each agent's mean map is scored after it (see the module docstring)."""
    if size not in PLANS:
        raise ValueError(f"size={size!r} is not supported; choose one of {sorted(PLANS)}")
    plan = PLANS[size]
    out = check_output_dir(out, "out")
    n = len(data) if images is None else min(int(images), len(data))
    if n < 1:
        raise ValueError("the benchmark needs at least one image")
    if localisation is not None and not localisation.has_masks:
        raise ValueError(f"localisation data must have evidence masks; {localisation!r} has none")
    x = data.get_batch(np.arange(n)).images
    targets = classifier.predict(x, count=False).cpu().numpy()
    cache = MapCache(out / "maps", _fingerprint(classifier, data, n, targets))
    loc: tuple[np.ndarray, np.ndarray, np.ndarray, MapCache] | None = None
    if localisation is not None:
        m = len(localisation) if images is None else min(int(images), len(localisation))
        batch = localisation.get_batch(np.arange(m))
        assert batch.masks is not None
        loc_targets = np.asarray(batch.labels, np.int64)
        loc = (batch.images, loc_targets, batch.masks, MapCache(out / "maps_masked", _fingerprint(classifier, localisation, m, loc_targets)))
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
    limits = {label: min(k, n) for label, k in plan.image_limits}

    def curves(maps_all: np.ndarray) -> dict[str, np.ndarray]:
        k = len(maps_all)  # a limited method's maps cover the first k images
        with classifier.uncounted():
            ins = insertion_curve(classifier, x[:k], maps_all, targets[:k], step=plan.curve_step)
            dele = deletion_curve(classifier, x[:k], maps_all, targets[:k], step=plan.curve_step)
        return {"insertion": ins.auc, "deletion": dele.auc}

    def score(family: str, label: str, maps_all: np.ndarray, queries: np.ndarray, seconds: np.ndarray, loc_maps: np.ndarray | None) -> None:
        aucs = cache.scores(label, f"step{plan.curve_step}_n{len(maps_all)}", partial(curves, maps_all))
        per_image[label] = aucs
        (ins_mean, ins_ci), (del_mean, del_ci) = mean_ci(aucs["insertion"]), mean_ci(aucs["deletion"])
        median, q1, q3 = seconds_summary(seconds)
        row = BudgetResult(family, label, len(maps_all), float(np.mean(queries)), ins_mean, ins_ci, del_mean, del_ci, median, q1, q3)
        if loc is not None and loc_maps is not None:
            masks = loc[2]
            (row.pointing_game, row.pointing_game_ci) = mean_ci(pointing_game(loc_maps, masks))
            (row.energy_pointing_game, row.energy_pointing_game_ci) = mean_ci(energy_pointing_game(loc_maps, masks))
            row.localisation_images = len(masks)
        results.append(row)

    bar = tqdm(methods, desc="query budget", unit="method", disable=not progress, dynamic_ncols=True)
    for family, label, factory in bar:
        bar.set_postfix_str(label)
        explainer = factory()
        k = limits.get(label, n)
        maps_all, queries, seconds = explain_each(explainer, x[:k], targets[:k], cache, label, progress)
        localise = loc is not None and explainer.expected_queries() <= localisation_max_queries
        loc_maps = explain_each(explainer, loc[0], loc[1], loc[3], label, progress)[0] if localise and loc is not None else None
        score(family, label, maps_all, queries, seconds, loc_maps)
        if _is_agent(family):  # the agent's own prior: its mean map, given to every image
            zero = np.zeros(len(maps_all))
            score(PRIOR, mean_map_label(label), mean_maps(maps_all), zero, zero, None if loc_maps is None else mean_maps(loc_maps))
    results = [_with_pairs(r, per_image) for r in results]
    meta: dict[str, Any] = {
        "classifier": classifier.name, "data": repr(data), "images": n, "size": size,
        "localisation": None if localisation is None else repr(localisation),
        "localisation_max_queries": localisation_max_queries,
        "curve_step": plan.curve_step, "insertion_substrate": "blur", "deletion_substrate": "zeros",
        "explained_class": "top-1 prediction (localisation: the label)", "reference": REFERENCE,
        "seconds": time.perf_counter() - start, "device": str(classifier.device), "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    meta["best_within_budget"] = best_within_budget(results, per_image)
    write_results(results, meta, out)
    return results


#: Query budgets at which the best method is reported against the most expensive RISE row.
BUDGETS = (50, 100)


def best_within_budget(results: Sequence[BudgetResult], per_image: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """For each budget of :data:`BUDGETS`: the explainer with the highest mean insertion among
    those costing at most that many queries per image (priors and the random map excluded: they
    explain nothing), and its paired insertion difference (per image, mean and 95% CI) with
    Grad-CAM and with the RISE row of the most masks, each on the images both rows explained."""
    rise = max((r for r in results if r.family == "RISE"), key=lambda r: r.queries_per_image, default=None)
    out = []
    for budget in BUDGETS:
        candidates = [r for r in results if r.queries_per_image <= budget and r.family not in (PRIOR, "random")]
        if not candidates:
            continue
        best = max(candidates, key=lambda r: r.insertion_auc)
        entry: dict[str, Any] = {"budget": budget, "method": best.method, "queries_per_image": best.queries_per_image,
                                 "insertion_auc": best.insertion_auc}  # fmt: skip
        for name, reference in (("gradcam", REFERENCE), ("rise", None if rise is None else rise.method)):
            if reference is None or reference == best.method or reference not in per_image:
                continue
            mine, ref = per_image[best.method]["insertion"], per_image[reference]["insertion"]
            k = min(len(mine), len(ref))
            mean, ci = paired_difference(mine[:k], ref[:k])
            entry[f"minus_{name}"] = {"reference": reference, "images": k, "mean": mean, "ci": ci}
        out.append(entry)
    return out


def summary_markdown(best: Sequence[dict[str, Any]]) -> str:
    """The lines under the table: the best method within each budget against Grad-CAM and RISE."""
    lines = []
    for entry in best:
        parts = [f"**≤ {entry['budget']} queries per image**: {entry['method']} ({entry['queries_per_image']:,.0f} queries), insertion {entry['insertion_auc']:.3f}"]
        for key in ("minus_gradcam", "minus_rise"):
            if key in entry:
                pair = entry[key]
                verdict = "higher" if pair["mean"] - pair["ci"] > 0 else "lower" if pair["mean"] + pair["ci"] < 0 else "not different"
                parts.append(f"− {pair['reference']}: {pair['mean']:+.3f} ± {pair['ci']:.3f} over {pair['images']} photos ({verdict})")
        lines.append("- " + "; ".join(parts))
    return "\n".join(lines) + ("\n" if lines else "")


def _with_pairs(row: BudgetResult, per_image: dict[str, dict[str, np.ndarray]]) -> BudgetResult:
    """``row`` with its paired columns: against Grad-CAM for every row, and against the centre
    prior and its own mean map for the agents."""
    changes: dict[str, Any] = paired_columns(row.method, per_image) if _is_agent(row.family) else {}
    reference = per_image.get(REFERENCE)
    if reference is not None and row.method != REFERENCE:
        for metric in ("insertion", "deletion"):
            mine = per_image[row.method][metric]
            mean, ci = paired_difference(mine, reference[metric][: len(mine)])  # a limited row: its images
            changes[f"{metric}_minus_gradcam"], changes[f"{metric}_minus_gradcam_ci"] = mean, ci
    return replace(row, **changes)


def _seconds_cell(r: BudgetResult) -> str:
    """Median seconds per image and the interquartile range (:func:`format_seconds`): the first
    image of a method pays one-off set-up, so a mean ± t-interval would mislead."""
    return format_seconds(r.seconds_median, r.seconds_q1, r.seconds_q3)


def _pm(mean: float | None, ci: float | None, signed: bool = False) -> str:
    if mean is None or not np.isfinite(mean):
        return ""
    return f"{mean:+.3f} ± {ci:.3f}" if signed else f"{mean:.3f} ± {ci:.3f}"


def to_markdown(results: Sequence[BudgetResult]) -> str:
    """The table: insertion and deletion (mean ± 95% CI over photos), each paired with Grad-CAM
    (per photo, mean ± 95% CI), the pointing games on the masked photos, queries and seconds per
    image; the agents' paired columns (agent − centre, agent − own mean map) appear when an agent
    was benchmarked."""
    header, separator, paired = paired_markdown(results)
    localised = any(r.localisation_images for r in results)
    loc_header = " pointing game ↑ | energy pointing game ↑ |" if localised else ""
    lines = [
        "| family | method | queries / image | insertion AUC ↑ | insertion − Grad-CAM ↑ | deletion AUC ↓ | "
        "deletion − Grad-CAM ↓ |" + loc_header + " seconds / image, median (IQR) |" + header,
        "|---|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if localised else "") + "---:|" + separator,
    ]
    for r, extra in zip(results, paired, strict=True):
        loc_cells = f" {_pm(r.pointing_game, r.pointing_game_ci)} | {_pm(r.energy_pointing_game, r.energy_pointing_game_ci)} |" if localised else ""
        lines.append(
            f"| {r.family} | {r.method} | {r.queries_per_image:,.0f} | {_pm(r.insertion_auc, r.insertion_ci)} | "
            f"{_pm(r.insertion_minus_gradcam, r.insertion_minus_gradcam_ci, True)} | {_pm(r.deletion_auc, r.deletion_ci)} | "
            f"{_pm(r.deletion_minus_gradcam, r.deletion_minus_gradcam_ci, True)} |{loc_cells} {_seconds_cell(r)} |" + extra
        )
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[BudgetResult], meta: dict[str, Any], out: Path) -> None:
    """The table as Markdown, CSV and JSON (``budget.*``), and the picture as PNG."""
    write_tables(results, out, meta, stem="budget", markdown=to_markdown(results) + "\n" + summary_markdown(meta.get("best_within_budget", [])))
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


def photo_sets(split: str = "test") -> tuple[DataSource, DataSource]:
    """The benchmark's photos: the ``objects`` collection's ``split`` (60 held-out photos) and the
    29 masked cat photos for localisation."""
    return load_dataset("photos", split=split), load_dataset("photos", split="test", collection="masked")


def shipped_photo_agents() -> list[str]:
    """The shipped agents trained on photos (their names start with ``photos_``)."""
    from saliency_gym.agents.pretrained import shipped_agents

    return [name for name in shipped_agents() if name.startswith("photos_")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI size: one image, one point per family")
    parser.add_argument("--images", type=int, default=None, help="images to explain (default: all of the split)")
    parser.add_argument("--split", default="test", help="split of the object photos (default: the 60 held-out ones)")
    parser.add_argument("--agents", nargs="*", default=None, help="trained agents (shipped names or checkpoint paths; default: the shipped photos agents)")
    parser.add_argument("--families", nargs="*", default=None, help="only these method families (e.g. RISE occlusion)")
    parser.add_argument("--no-localisation", action="store_true", help="skip the masked photos (pointing game)")
    parser.add_argument("--image-limit", action="append", default=[], metavar="METHOD=N",
                        help="explain METHOD on the first N photos only (repeatable; the full plan limits rise-4000 to 20; "
                             "a larger N resumes from the cached maps)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench_output/query_budget")
    args = parser.parse_args(argv)
    from saliency_gym.zoo import load_classifier

    torch.set_num_threads(args.threads)
    size = "quick" if args.quick else "full"
    if args.image_limit:
        limits = dict(PLANS[size].image_limits)
        for item in args.image_limit:
            method, _, count = item.partition("=")
            if not method or not count.isdigit() or int(count) < 1:
                parser.error(f"--image-limit takes METHOD=N with N >= 1, got {item!r}")
            limits[method] = int(count)
        PLANS[size] = replace(PLANS[size], image_limits=tuple(limits.items()))
    classifier = load_classifier("efficientnet_lite0", device=args.device)
    data, masked = photo_sets(args.split)
    agents = shipped_photo_agents() if args.agents is None else args.agents
    run_query_budget(classifier, data, size=size, images=1 if args.quick and args.images is None else args.images,
                               agents=agents, families=args.families, localisation=None if args.no_localisation else masked,
                               out=args.out)  # fmt: skip
    print((Path(args.out) / "budget.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
