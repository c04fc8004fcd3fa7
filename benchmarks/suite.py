"""The policy-comparison suite behind ``saliency-gym bench``.

For each dataset it explains the same held-out images with every method (trained agents,
heuristic policies, classical explainers), all through the one ``Explainer`` protocol, and
scores the maps with the same metrics:

- insertion AUC (blur substrate) and deletion AUC (zeros), RISE's definitions, pixel level;
- pointing game on the ground-truth evidence masks (where the dataset has them);
- classifier queries per image and seconds per image (measured, in chunks of images).

Every number is a mean over images with a 95% confidence interval (Student's t with ``n - 1``
degrees of freedom, ``scipy.stats.t``; seconds are measured per chunk of images). Results are written as
Markdown, CSV and JSON, with PNGs of the mean insertion/deletion curves per method and a grid of
saliency overlays.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from saliency_gym.agents.policies import GreedyPolicy, RandomPolicy
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.agents.pretrained import agent_explainer, shipped_agents
from saliency_gym.baselines import make_explainer
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.explainers import Explainer
from saliency_gym.metrics import (
    deletion_curve,
    insertion_curve,
    plot_insertion_deletion_curves,
    pointing_game,
)
from saliency_gym.plotting import save_saliency_grid
from saliency_gym.zoo import load_classifier


@dataclass(frozen=True)
class SuiteSize:
    images: int
    rise_masks: int
    chunk: int
    greedy: bool


SIZES = {"quick": SuiteSize(images=8, rise_masks=500, chunk=4, greedy=True),
         "full": SuiteSize(images=200, rise_masks=4000, chunk=20, greedy=True)}  # fmt: skip


@dataclass
class MethodResult:
    dataset: str
    method: str
    images: int
    insertion_auc: float
    insertion_ci: float
    deletion_auc: float
    deletion_ci: float
    pointing_game: float | None
    pointing_ci: float | None
    queries_per_image: float
    queries_ci: float
    seconds_per_image: float
    seconds_ci: float


def mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t, ``scipy.stats.t``)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    if len(values) == 1 or np.ptp(values) == 0:
        return float(values.mean()), 0.0
    half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
    return float(values.mean()), float(half)


def default_methods(classifier: FrozenClassifier, dataset: str, size: SuiteSize) -> dict[str, Callable[[], Explainer]]:
    """Factories of every method compared on ``dataset`` (agents only where one is shipped)."""
    methods: dict[str, Callable[[], Explainer]] = {}
    for mode in ("reveal", "mask"):
        name = f"{dataset}_{mode}"
        if name in shipped_agents():
            methods[f"agent-{mode}"] = lambda name=name: agent_explainer(name, classifier)
    if size.greedy:
        methods["greedy-reveal"] = lambda: PolicyExplainer(classifier, GreedyPolicy(), mode="reveal", name="greedy-reveal")
        methods["greedy-mask"] = lambda: PolicyExplainer(classifier, GreedyPolicy(), mode="mask", name="greedy-mask")
    methods["random-policy"] = lambda: PolicyExplainer(classifier, RandomPolicy(), name="random-policy")
    methods[f"rise-{size.rise_masks}"] = lambda: make_explainer("rise", classifier, n_masks=size.rise_masks)
    for name in ("occlusion", "gradcam", "integrated_gradients", "gradient", "random"):
        methods[name] = lambda name=name: make_explainer(name, classifier)
    return methods


def run_dataset(dataset: str, size: SuiteSize, out: Path, *, device: str | None = None,
                methods: dict[str, Callable[[], Explainer]] | None = None, progress: bool = True,
                classifier: FrozenClassifier | None = None, source: DataSource | None = None) -> list[MethodResult]:  # fmt: skip
    """Explain ``size.images`` test images with every method and score them.

    ``dataset`` names a shipped classifier and its test data; or pass your own ``classifier`` and
    ``source`` (the rows are then labelled ``<classifier>/<source>``). Maps explain the predicted
    class. A method that cannot run on the classifier (Grad-CAM on a TorchScript model, say) is
    skipped with a message. ``progress`` shows a bar over the methods (named as they run) on
    standard error."""
    if classifier is None:
        classifier = load_classifier(dataset, device=device)
        source = load_dataset(classifier.meta["dataset"], "test", n=size.images) if dataset != "digits" else load_dataset("digits", "test")
    elif source is None:
        raise ValueError("pass source= (the images) with classifier=")
    else:
        dataset = f"{classifier.name}/{source.name}"
    assert source is not None
    batch = source.get_batch(np.arange(min(size.images, len(source))))
    images, masks = batch.images, batch.masks
    targets = classifier.predict(images, count=False).cpu().numpy()
    methods = methods or default_methods(classifier, dataset, size)
    results, curves, overlay_maps = [], {}, {}
    bar = tqdm(methods.items(), desc=dataset, unit="method", disable=not progress, dynamic_ncols=True)
    for method, factory in bar:
        bar.set_postfix_str(method)
        try:
            explainer = factory()
        except (TypeError, ValueError) as exc:  # e.g. Grad-CAM on a TorchScript model: skip, say why
            tqdm.write(f"{dataset}: skipping {method}: {exc}")
            continue
        explainer.explain(images[:1], targets[:1])  # warm-up: first-call set-up is not timed
        maps, queries, seconds = [], [], []
        for start in range(0, len(images), size.chunk):
            chunk = slice(start, start + size.chunk)
            explanation = explainer.explain(images[chunk], targets[chunk])
            n = len(explanation.maps)
            maps.append(explanation.maps)
            queries += [explanation.queries / n] * n
            seconds.append(explanation.seconds / n)
        maps_all = np.concatenate(maps)
        ins = insertion_curve(classifier, images, maps_all, targets)
        dele = deletion_curve(classifier, images, maps_all, targets)
        curves[method] = (ins, dele)
        overlay_maps[method] = maps_all[:4]
        pg = pointing_game(maps_all, masks) if masks is not None else None
        results.append(MethodResult(
            dataset, method, len(images), *mean_ci(ins.auc), *mean_ci(dele.auc),
            *(mean_ci(pg) if pg is not None else (None, None)), *mean_ci(np.array(queries)), *mean_ci(np.array(seconds)),
        ))  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    stem = dataset.replace("/", "_")
    names = classifier.class_names or source.class_names
    plot_insertion_deletion_curves(curves, out / f"curves_{stem}.png", title=f"{dataset}: insertion / deletion")
    save_saliency_grid(images[:4], overlay_maps, out / f"overlays_{stem}.png",
                       row_titles=[names[int(t)] for t in targets[:4]],
                       masks=None if masks is None else masks[:4], title=f"{dataset}: saliency maps")  # fmt: skip
    return results


def _fmt(mean: float | None, ci: float | None, digits: int = 3) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def to_markdown(results: list[MethodResult]) -> str:
    lines = ["| dataset | method | insertion AUC ↑ | deletion AUC ↓ | pointing game ↑ | queries / image | seconds / image |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r.dataset} | {r.method} | {_fmt(r.insertion_auc, r.insertion_ci)} | {_fmt(r.deletion_auc, r.deletion_ci)} | "
            f"{_fmt(r.pointing_game, r.pointing_ci)} | {r.queries_per_image:,.0f} | {_fmt(r.seconds_per_image, r.seconds_ci, 4)} |"
        )
    return "\n".join(lines) + "\n"


def run_suite(size: str = "quick", datasets: tuple[str, ...] = ("shapes", "digits"), out: str | Path = "bench_output",
              *, device: str | None = None, images: int | None = None, progress: bool = True) -> list[MethodResult]:  # fmt: skip
    """Run the suite and write ``results.md``, ``results.csv``, ``results.json`` and PNGs to ``out``."""
    if size not in SIZES:
        raise ValueError(f"size={size!r} is not supported; choose one of {sorted(SIZES)}")
    chosen = SIZES[size] if images is None else SuiteSize(images, SIZES[size].rise_masks, SIZES[size].chunk, SIZES[size].greedy)
    out = Path(out)
    start = time.perf_counter()
    results: list[MethodResult] = []
    for dataset in datasets:
        results += run_dataset(dataset, chosen, out, device=device, progress=progress)
    meta: dict[str, Any] = {"size": size, "images": chosen.images, "rise_masks": chosen.rise_masks,
                            "datasets": list(datasets), "seconds": time.perf_counter() - start}  # fmt: skip
    write_results(results, out, meta)
    return results


def write_results(results: list[MethodResult], out: Path, meta: dict[str, Any]) -> None:
    """``results.md``, ``results.csv`` and ``results.json`` (with ``meta``) in ``out``."""
    write_tables(results, out, meta, stem="results", markdown=to_markdown(results))


def write_tables(rows: Sequence[Any], out: Path, meta: dict[str, Any], *, stem: str, markdown: str) -> None:
    """A benchmark's rows (dataclasses) as ``<stem>.md`` (the given Markdown), ``<stem>.csv`` and
    ``<stem>.json`` (with ``meta``) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    dicts = [asdict(r) for r in rows]
    with open(out / f"{stem}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(dicts[0]))
        writer.writeheader()
        writer.writerows(dicts)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "results": dicts}, indent=2))
