"""The policy-comparison suite behind ``saliency-gym bench``.

For each dataset it explains the same held-out images with every method (trained agents,
heuristic policies, classical explainers), all through the one ``Explainer`` protocol, and
scores the maps with the same metrics:

- insertion AUC (blur substrate) and deletion AUC (zeros), RISE's definitions, pixel level;
- pointing game on the ground-truth evidence masks (where the dataset has them);
- classifier queries per image and seconds per image (measured, in chunks of images).

Honest baselines (issue 21, :mod:`saliency_gym.benchmarks.priors`): the centre prior (``centre``,
the same centre-out map for every image, 0 queries) is always a row, and every trained agent
``agent-<mode>`` comes with its own mean map, ``agent-<mode> (mean map)`` (the mean of its maps
over the evaluated images, the same for every image). An agent's row gains the paired differences
agent − centre and agent − own mean map (insertion and deletion, per image, mean and 95% interval):
an agent that does not beat them has learned a prior, not a search.

Every score is a mean over images with a 95% confidence interval (Student's t with ``n - 1``
degrees of freedom, ``scipy.stats.t``). Seconds per image are measured per chunk of images and
reported as the median over chunks with its interquartile range (:func:`seconds_summary`,
:func:`format_seconds`): a handful of timings on a shared machine is skewed by the load, so a
t-interval of them means little (two chunks gave ``1.5298 ± 2.2791``). Results are written as
Markdown, CSV and JSON, with PNGs of the mean insertion/deletion curves per method and a grid of
saliency overlays.

The work is done chunk by chunk (:func:`explain_chunk`: a fresh explainer per chunk of
``SuiteSize.chunk`` images, curves per chunk) and merged by :func:`merge_dataset`; a Ray sweep
(``bench --engine ray``, :mod:`saliency_gym.distributed.ray_bench`) runs the same chunks on other
processes and merges them with the same function, so both give the same numbers. With several
seeds, every method runs once per seed and per-image values are averaged over seeds.
"""

from __future__ import annotations

import csv
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from saliency_gym.agents.policies import GreedyPolicy, RandomPolicy
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.agents.pretrained import agent_explainer, shipped_agents
from saliency_gym.baselines import make_explainer
from saliency_gym.benchmarks.priors import (
    CENTRE,
    mean_map_explainer,
    mean_map_label,
    paired_columns,
    paired_markdown,
)
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.explainers import Explainer, explainer_options
from saliency_gym.metrics import (
    CurveResult,
    deletion_curve,
    insertion_curve,
    plot_insertion_deletion_curves,
    pointing_game,
)
from saliency_gym.models.zoo import load_classifier
from saliency_gym.plotting import save_saliency_grid


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
    """The median over chunks of a chunk's seconds per image (:func:`seconds_summary`)."""
    seconds_q1: float
    """First quartile of the chunks' seconds per image."""
    seconds_q3: float
    """Third quartile of the chunks' seconds per image."""
    # Paired differences (per image, this row minus the reference, mean and 95% CI) for the rows of
    # learned methods that have a mean-map row (:func:`saliency_gym.benchmarks.priors.paired_columns`).
    insertion_minus_centre: float | None = None
    insertion_minus_centre_ci: float | None = None
    deletion_minus_centre: float | None = None
    deletion_minus_centre_ci: float | None = None
    insertion_minus_mean_map: float | None = None
    insertion_minus_mean_map_ci: float | None = None
    deletion_minus_mean_map: float | None = None
    deletion_minus_mean_map_ci: float | None = None


#: The timing columns of :class:`MethodResult`: they differ from run to run, so comparisons of two
#: runs' numbers (a Ray sweep against the local run) leave them out.
TIMING_FIELDS = ("seconds_per_image", "seconds_q1", "seconds_q3")


def seconds_summary(values: Any) -> tuple[float, float, float]:
    """``(median, q1, q3)`` of timings in seconds (the finite ones; NaN for none).

    Why not a mean with a t-interval: timings on a shared machine are few and skewed (the load only
    ever adds time), so two chunks gave ``1.5298 ± 2.2791`` and equal timings ``± 0.0000``. The
    median and the interquartile range (NumPy's linear percentiles) stay inside the measured values
    and say how spread they are. One value gives ``(v, v, v)``.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    return float(median), float(q1), float(q3)


def _decimals(value: float, digits: int) -> int:
    """Decimals that show ``value`` with ``digits`` significant digits (none past the point for
    values of ``10 ** digits`` and more)."""
    if value == 0 or not np.isfinite(value):
        return digits - 1
    return max(0, digits - 1 - int(np.floor(np.log10(abs(value)))))


def format_seconds(median: float, q1: float, q3: float, *, digits: int = 3) -> str:
    """``"0.153 s (IQR 0.141–0.170)"``: a :func:`seconds_summary` for a table cell.

    The median has ``digits`` significant digits and the quartiles as many decimals as the
    median, so the three read on one scale (``"12.4 s (IQR 11.9–13.0)"``,
    ``"0.00153 s (IQR 0.00141–0.00170)"``). When the quartiles are equal (one timing, or equal
    ones) there is no spread to show and the cell is the median alone; NaN is ``"n/a"``.
    """
    if not np.isfinite(median):
        return "n/a"
    decimals = _decimals(median, digits)
    text = f"{median:,.{decimals}f} s"
    if np.isfinite(q1) and np.isfinite(q3) and f"{q1:.{decimals}f}" != f"{q3:.{decimals}f}":
        text += f" (IQR {q1:,.{decimals}f}–{q3:,.{decimals}f})"
    return text


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


#: Images whose maps the overlay PNG shows (the first ones of the dataset).
OVERLAY_IMAGES = 4


def default_methods(classifier: FrozenClassifier, dataset: str, size: SuiteSize, seed: int = 0, *,
                    images: np.ndarray | None = None, targets: np.ndarray | None = None) -> dict[str, Callable[[], Explainer]]:  # fmt: skip
    """Factories of every method compared on ``dataset`` (agents only where one is shipped).

    ``seed`` seeds the stochastic methods (RISE's masks, the random policy, the random map, the
    stochastic baselines of Captum methods); deterministic ones ignore it. The centre prior is
    always there; each agent ``agent-<mode>`` is followed by its mean map over ``images`` (the
    evaluated images, explained for ``targets``; by default the first ``size.images`` test images
    of the shipped ``dataset`` and the predicted classes, what :func:`prepare_dataset` loads)."""
    methods: dict[str, Callable[[], Explainer]] = {}

    def evaluated() -> tuple[np.ndarray, np.ndarray]:
        if images is not None:
            return images, (classifier.predict(images, count=False).cpu().numpy() if targets is None else targets)
        batch = _test_images(dataset, classifier, size)
        return batch, classifier.predict(batch, count=False).cpu().numpy()

    for mode in ("reveal", "mask"):
        name = f"{dataset}_{mode}"
        if name in shipped_agents():
            agent = _shared(functools.partial(agent_explainer, name, classifier))
            methods[f"agent-{mode}"] = agent
            label = mean_map_label(f"agent-{mode}")
            methods[label] = _shared(functools.partial(_mean_map_of, agent, evaluated, label))
    methods[CENTRE] = lambda: make_explainer("centre", classifier)
    if size.greedy:
        methods["greedy-reveal"] = lambda: PolicyExplainer(classifier, GreedyPolicy(), mode="reveal", name="greedy-reveal")
        methods["greedy-mask"] = lambda: PolicyExplainer(classifier, GreedyPolicy(), mode="mask", name="greedy-mask")
    methods["random-policy"] = lambda: PolicyExplainer(classifier, RandomPolicy(seed), name="random-policy")
    methods[f"rise-{size.rise_masks}"] = lambda: make_explainer("rise", classifier, n_masks=size.rise_masks, seed=seed)
    for name in ("occlusion", "gradcam", "integrated_gradients", "gradient", "random"):
        options = {"seed": seed} if "seed" in explainer_options(name) else {}
        methods[name] = functools.partial(make_explainer, name, classifier, **options)
    return methods


def _mean_map_of(factory: Callable[[], Explainer], evaluated: Callable[[], tuple[np.ndarray, np.ndarray]], label: str) -> Explainer:
    """The mean-map row ``label`` of the explainer ``factory`` builds, over the ``evaluated()``
    images and targets (:func:`saliency_gym.benchmarks.priors.mean_map_explainer`)."""
    images, targets = evaluated()
    return mean_map_explainer(factory(), images, targets, name=label)


def _shared(factory: Callable[[], Explainer]) -> Callable[[], Explainer]:
    """``factory`` built once and its explainer shared by every call: for deterministic explainers
    that are costly to build (a trained agent's checkpoint takes about a second to load), whose
    maps do not depend on earlier calls, so sharing changes no number."""
    built: list[Explainer] = []

    def make() -> Explainer:
        if not built:
            built.append(factory())
        return built[0]

    return make


@dataclass
class DatasetContext:
    """One row group of the suite: the classifier, its first ``images`` test images, their
    evidence masks (or ``None``) and the explained (predicted) classes.

    The local run and every Ray worker build it with :func:`prepare_dataset`, so both explain the
    same images for the same targets."""

    label: str
    classifier: FrozenClassifier
    source: DataSource
    images: np.ndarray
    masks: np.ndarray | None
    targets: np.ndarray

    @property
    def stem(self) -> str:
        """The label as a file-name part (``shapes (model MyNet)`` -> ``shapes_model_MyNet``)."""
        return "_".join("".join(c if c.isalnum() or c in "-_." else " " for c in self.label).split())


def prepare_dataset(dataset: str, size: SuiteSize, *, device: str | None = None,
                    classifier: FrozenClassifier | None = None, source: DataSource | None = None) -> DatasetContext:  # fmt: skip
    """Load ``dataset``'s shipped classifier and test images (or take ``classifier`` and
    ``source``, labelled by :func:`data_label`) and predict the classes to explain."""
    if classifier is None:
        classifier = load_classifier(dataset, device=device)
        source = _test_source(dataset, classifier, size)
    elif source is None:
        raise ValueError("pass source= (the images) with classifier=")
    else:
        dataset = data_label(classifier, source)
    assert source is not None
    batch = source.get_batch(np.arange(min(size.images, len(source))))
    targets = classifier.predict(batch.images, count=False).cpu().numpy()
    return DatasetContext(dataset, classifier, source, batch.images, batch.masks, targets)


def data_label(classifier: FrozenClassifier, source: DataSource) -> str:
    """The dataset column of your own model's rows: the data's own name (an image folder's base
    name: ``--data build/my_photos`` is ``my_photos``).

    ``<model>/<data>`` read as a path (``build/my_photos`` for the model ``build`` of
    ``module:build``), so the model is no longer in the label; only when the data has the name of
    a shipped dataset (whose own rows the same table may hold, run with the shipped classifier)
    is the model added: ``shapes (model MyNet)``.
    """
    from saliency_gym.data import available_datasets

    name = source.name
    return f"{name} (model {classifier.name})" if name in available_datasets() else name


def _test_source(dataset: str, classifier: FrozenClassifier, size: SuiteSize) -> DataSource:
    """The held-out test images of the shipped ``dataset`` (at most ``size.images`` drawn)."""
    return load_dataset(classifier.meta["dataset"], "test", n=size.images) if dataset != "digits" else load_dataset("digits", "test")


def _test_images(dataset: str, classifier: FrozenClassifier, size: SuiteSize) -> np.ndarray:
    """The images :func:`prepare_dataset` explains for the shipped ``dataset``."""
    source = _test_source(dataset, classifier, size)
    return source.get_batch(np.arange(min(size.images, len(source)))).images


def chunk_starts(n_images: int, chunk: int) -> list[int]:
    """First image of every chunk: the unit of work of the local run and of a Ray shard."""
    if n_images < 0 or chunk < 1:
        raise ValueError(f"need n_images >= 0 and chunk >= 1, got {n_images} and {chunk}")
    return list(range(0, n_images, chunk))


@dataclass
class ChunkValues:
    """The raw per-image values of one method with one seed on one chunk of images.

    This is what a Ray shard computes and saves; :func:`merge_method` turns the chunks of a method
    into its table row exactly as the local run does (the local run is the same chunks in order).
    ``skipped`` holds the reason when the method cannot run on this classifier (then the arrays
    are empty)."""

    method: str
    seed: int
    start: int
    insertion: CurveResult | None
    deletion: CurveResult | None
    pointing: np.ndarray | None
    queries: np.ndarray
    seconds: float
    overlay_maps: np.ndarray
    skipped: str | None = None


def explain_chunk(ctx: DatasetContext, factory: Callable[[], Explainer], method: str, seed: int,
                  start: int, chunk: int) -> ChunkValues:  # fmt: skip
    """Explain images ``start:start + chunk`` of ``ctx`` with a fresh explainer and score them.

    A fresh explainer per chunk (warmed up on the chunk's first image, which is not timed) makes a
    chunk's maps independent of which chunks ran before it in the same process, so sharding the
    images over workers gives the numbers of the local run exactly (the random-map explainer,
    say, draws successive maps from one generator). Curves are computed per chunk for the same
    reason (the classifier's batches then hold the same images in both runs)."""
    try:
        explainer = factory()
    except (TypeError, ValueError) as exc:  # e.g. Grad-CAM on a TorchScript model: skip, say why
        empty = np.zeros(0)
        return ChunkValues(method, seed, start, None, None, None, empty, float("nan"), empty, skipped=str(exc))
    part = slice(start, start + chunk)
    images, targets = ctx.images[part], ctx.targets[part]
    explainer.explain(images[:1], targets[:1])  # warm-up: first-call set-up is not timed
    explanation = explainer.explain(images, targets)
    maps, n = explanation.maps, len(explanation.maps)
    ins = insertion_curve(ctx.classifier, images, maps, targets)
    dele = deletion_curve(ctx.classifier, images, maps, targets)
    pg = pointing_game(maps, ctx.masks[part]) if ctx.masks is not None else None
    return ChunkValues(method, seed, start, ins, dele, pg, np.full(n, explanation.queries / n),
                       explanation.seconds / n, np.asarray(maps[: max(0, OVERLAY_IMAGES - start)]))  # fmt: skip


def concat_curves(parts: Sequence[CurveResult]) -> CurveResult:
    """Curves of several image batches (same mode and steps) as one :class:`CurveResult`."""
    if not parts:
        raise ValueError("concat_curves needs at least one CurveResult")
    first = parts[0]
    return replace(
        first, curves=np.concatenate([p.curves for p in parts]), auc=np.concatenate([p.auc for p in parts]),
        targets=np.concatenate([p.targets for p in parts]), queries=sum(p.queries for p in parts),
        foils=None if first.foils is None else np.concatenate([p.foils for p in parts if p.foils is not None]),
    )  # fmt: skip


def merge_method(label: str, n_images: int, chunks: Sequence[ChunkValues]) -> tuple[MethodResult, tuple[CurveResult, CurveResult], np.ndarray]:  # fmt: skip
    """One method's table row, its curves (for the plot) and its overlay maps from its chunks.

    Per-image values are averaged over seeds, then each number is a mean over images with its 95%
    CI (so with one seed, the values of the images themselves); seconds per image are the median
    and quartiles over all chunks of all seeds (:func:`seconds_summary`)."""
    seeds = sorted({c.seed for c in chunks})
    by_seed = _by_seed(chunks)
    for s, parts in zip(seeds, by_seed, strict=True):
        if sum(len(c.queries) for c in parts) != n_images:
            raise ValueError(f"{label} {chunks[0].method} seed {s}: chunks cover "
                             f"{sum(len(c.queries) for c in parts)} of {n_images} images")  # fmt: skip
    ins, dele = _seed_curves(by_seed)
    per_image = lambda arrays: np.mean(np.stack(arrays), axis=0)  # noqa: E731 - mean over seeds
    queries = per_image([np.concatenate([c.queries for c in parts]) for parts in by_seed])
    seconds = np.array([c.seconds for parts in by_seed for c in parts])
    pg = None
    if by_seed[0][0].pointing is not None:
        pg = per_image([np.concatenate([c.pointing for c in parts if c.pointing is not None]) for parts in by_seed])
    (ins_mean, ins_ci), (del_mean, del_ci) = mean_ci(per_image([r.auc for r in ins])), mean_ci(per_image([r.auc for r in dele]))
    pg_mean, pg_ci = mean_ci(pg) if pg is not None else (None, None)
    row = MethodResult(label, chunks[0].method, n_images, ins_mean, ins_ci, del_mean, del_ci, pg_mean, pg_ci,
                       *mean_ci(queries), *seconds_summary(seconds))  # fmt: skip
    overlay = np.concatenate([c.overlay_maps for c in by_seed[0]])
    return row, (concat_curves(ins), concat_curves(dele)), overlay


def _by_seed(chunks: Sequence[ChunkValues]) -> list[list[ChunkValues]]:
    """The chunks of one method grouped by seed (seeds ascending), each group by first image."""
    seeds = sorted({c.seed for c in chunks})
    return [sorted((c for c in chunks if c.seed == s), key=lambda c: c.start) for s in seeds]


def _seed_curves(by_seed: Sequence[Sequence[ChunkValues]]) -> tuple[list[CurveResult], list[CurveResult]]:
    """Insertion and deletion curves of all images, one :class:`CurveResult` per seed."""
    ins = [concat_curves([c.insertion for c in parts if c.insertion is not None]) for parts in by_seed]
    dele = [concat_curves([c.deletion for c in parts if c.deletion is not None]) for parts in by_seed]
    return ins, dele


def per_image_aucs(chunks: Sequence[ChunkValues]) -> dict[str, np.ndarray]:
    """One method's per-image insertion and deletion AUC (means over seeds), images in order:
    the values the paired differences of :mod:`saliency_gym.benchmarks.priors` pair."""
    ins, dele = _seed_curves(_by_seed(chunks))
    return {"insertion": np.mean([r.auc for r in ins], axis=0), "deletion": np.mean([r.auc for r in dele], axis=0)}


def merge_dataset(ctx: DatasetContext, methods: Sequence[str], chunks: Sequence[ChunkValues], out: Path,
                  *, report: Callable[[str], object] = print) -> list[MethodResult]:  # fmt: skip
    """Rows of every method (in ``methods`` order) and the dataset's curve and overlay PNGs in ``out``.

    Skipped methods are reported once through ``report`` and left out, as in the local run. A
    method with a mean-map row (``"M (mean map)"``) gets the paired differences M − centre and
    M − its mean map (:func:`saliency_gym.benchmarks.priors.paired_columns`)."""
    results, curves, overlay_maps = [], {}, {}
    per_image: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        mine = [c for c in chunks if c.method == method]
        skipped = next((c.skipped for c in mine if c.skipped is not None), None)
        if skipped is not None:
            report(f"{ctx.label}: skipping {method}: {skipped}")
            continue
        row, curves[method], overlay_maps[method] = merge_method(ctx.label, len(ctx.images), mine)
        per_image[method] = per_image_aucs(mine)
        results.append(row)
    for i, row in enumerate(results):
        if mean_map_label(row.method) in per_image:
            results[i] = replace(row, **paired_columns(row.method, per_image, centre=CENTRE))
    out.mkdir(parents=True, exist_ok=True)
    names = ctx.classifier.class_names or ctx.source.class_names
    k = OVERLAY_IMAGES
    plot_insertion_deletion_curves(curves, out / f"curves_{ctx.stem}.png", title=f"{ctx.label}: insertion / deletion")
    save_saliency_grid(ctx.images[:k], overlay_maps, out / f"overlays_{ctx.stem}.png",
                       row_titles=[names[int(t)] for t in ctx.targets[:k]],
                       masks=None if ctx.masks is None else ctx.masks[:k], title=f"{ctx.label}: saliency maps")  # fmt: skip
    return results


def select_methods(methods: dict[str, Callable[[], Explainer]], names: Sequence[str] | None) -> dict[str, Callable[[], Explainer]]:  # fmt: skip
    """The factories of ``names`` (in the suite's order), all of them for ``None``; a name the
    suite does not have on this dataset is a ``ValueError`` listing those it has.

    A learned method (one with a mean-map row) brings its priors along: the centre prior and its
    own mean map are kept whenever it is, so its paired differences are always in the table."""
    if names is None:
        return methods
    if isinstance(names, str):
        raise TypeError(f"method names must be a sequence of str, got the str {names!r}")
    unknown = [n for n in names if n not in methods]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; this suite has {list(methods)}")
    keep = set(names)
    for name in names:
        if mean_map_label(name) in methods:
            keep |= {mean_map_label(name)} | ({CENTRE} if CENTRE in methods else set())
    return {n: f for n, f in methods.items() if n in keep}


def run_dataset(dataset: str, size: SuiteSize, out: Path, *, device: str | None = None,
                methods: dict[str, Callable[[], Explainer]] | None = None, progress: bool = True,
                classifier: FrozenClassifier | None = None, source: DataSource | None = None,
                seeds: Sequence[int] = (0,), only: Sequence[str] | None = None) -> list[MethodResult]:  # fmt: skip
    """Explain ``size.images`` test images with every method and score them.

    ``dataset`` names a shipped classifier and its test data; or pass your own ``classifier`` and
    ``source`` (the rows are then labelled by :func:`data_label`: the data's name). Maps explain the predicted
    class. Every method runs once per seed in ``seeds`` (per-image values are averaged over seeds;
    ``methods`` given here are the same for every seed; ``only`` keeps some of the default
    methods, by name, e.g. ``["rise-500", "gradcam"]``). Images are explained in chunks of
    ``size.chunk`` (:func:`explain_chunk`), the unit a Ray sweep shards
    (:mod:`saliency_gym.distributed.ray_bench`), which gives the same numbers. A method that
    cannot run on the classifier (Grad-CAM on a TorchScript model, say) is skipped with a message.
    ``progress`` shows a bar over the methods (named as they run) and, below it, one over the
    running method's image chunks, on standard error."""
    seeds = check_seeds(seeds)
    ctx = prepare_dataset(dataset, size, device=device, classifier=classifier, source=source)
    per_seed = {s: methods or select_methods(default_methods(ctx.classifier, ctx.label, size, seed=s, images=ctx.images,
                                                             targets=ctx.targets), only) for s in seeds}  # fmt: skip
    names = list(per_seed[seeds[0]])
    chunks: list[ChunkValues] = []
    bar = tqdm(names, desc=ctx.label, unit="method", disable=not progress, dynamic_ncols=True)
    for method in bar:
        bar.set_postfix_str(method)
        for s in seeds:
            starts = list(chunk_starts(len(ctx.images), size.chunk))
            # a bar per method over its image chunks, so a slow method (RISE) shows it is moving
            for start in tqdm(starts, desc=method, unit="chunk", leave=False, disable=not progress or len(starts) < 2):
                chunks.append(explain_chunk(ctx, per_seed[s][method], method, s, start, size.chunk))
                if chunks[-1].skipped is not None:
                    break
            if chunks[-1].skipped is not None:
                break
    return merge_dataset(ctx, names, chunks, out, report=tqdm.write)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """``seeds`` as a list of distinct non-negative ints (a clear error otherwise)."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise TypeError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    out = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds must be non-negative ints, got {s!r}")
        out.append(int(s))
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {list(seeds)}")
    return out


def _fmt(mean: float | None, ci: float | None, digits: int = 3) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {ci:.{digits}f}"


def to_markdown(results: list[MethodResult]) -> str:
    """The table: one row per method; the paired columns (agent − centre, agent − own mean map,
    per image with 95% CIs) appear when some row has them."""
    header, separator, paired = paired_markdown(results)
    lines = ["| dataset | method | insertion AUC ↑ | deletion AUC ↓ | pointing game ↑ | queries / image | seconds / image |" + header,
             "|---|---|---:|---:|---:|---:|---:|" + separator]  # fmt: skip
    for r, extra in zip(results, paired, strict=True):
        lines.append(
            f"| {r.dataset} | {r.method} | {_fmt(r.insertion_auc, r.insertion_ci)} | {_fmt(r.deletion_auc, r.deletion_ci)} | "
            f"{_fmt(r.pointing_game, r.pointing_ci)} | {r.queries_per_image:,.0f} | "
            f"{format_seconds(r.seconds_per_image, r.seconds_q1, r.seconds_q3)} |" + extra
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
                            "datasets": dataset_labels(results), "seconds": time.perf_counter() - start}  # fmt: skip
    write_results(results, out, meta)
    return results


def write_results(results: list[MethodResult], out: Path, meta: dict[str, Any]) -> None:
    """``results.md``, ``results.csv`` and ``results.json`` (with ``meta``) in ``out``.

    ``meta["datasets"]``, when given, is written with each dataset once, in order (a list of
    every row's dataset would repeat one dataset per method)."""
    if "datasets" in meta:
        meta = {**meta, "datasets": list(dict.fromkeys(meta["datasets"]))}
    write_tables(results, out, meta, stem="results", markdown=to_markdown(results))


def dataset_labels(results: Sequence[MethodResult]) -> list[str]:
    """The datasets of ``results``, each once, in the order of the rows: what ``meta.datasets``
    lists."""
    return list(dict.fromkeys(r.dataset for r in results))


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
