"""The policy benchmark: every algorithm, several seeds, learning curves and a final table.

For each environment id, algorithm and seed this trains an agent with :func:`train_agent` (the
same trainer and shipped rl-zoo hyperparameters as ``saliency-gym train``), evaluating held-out
insertion and deletion AUC every ``eval_every`` steps. After training, each agent explains the
benchmark's held-out test images (deterministic rollout, no classifier query) and is scored with
the pixel metrics of ``bench`` (RISE's definitions). Grad-CAM, a one-pass explainer, is scored on
the same images as the reference line.

Honest baselines (issue 21, :mod:`saliency_gym.benchmarks.priors`): every environment also has the
centre prior's row (``centre``: the centre-out order of the environment's cells, 0 queries), and
every algorithm its agents' mean-map row (``"<algo> (mean map)"``: each trained agent's mean map
over the test images, given to every image, averaged over seeds). An algorithm's row gains the
paired differences agent − centre and agent − own mean map (per image, averaged over seeds; mean
and 95% interval over images). Each row also has the environment's own metric, the patch-level AUC
of the row's cell order (``env AUC``: insertion for reveal ids, deletion for mask ids), and, for an
unmodified preset (no ``env_kwargs``) with shipped reference scores, its normalised score
``(AUC - random) / (greedy - random)`` (:func:`saliency_gym.envs.reference.normalized_score`).

Written to ``--out``, like rl-baselines3-zoo's benchmark page:

- ``policy_bench.md`` / ``.csv`` / ``.json``: per environment and algorithm, the final insertion
  and deletion AUC (mean over seeds and its 95% interval, Student's t over seeds), training minutes,
  classifier queries per explanation, the environment's AUC and normalised score, the paired
  differences with the priors, and the rows of the mean maps, the centre prior and Grad-CAM;
- ``learning_curves.png``: the environment's metric (insertion for reveal, deletion for mask)
  against environment steps and against training minutes, mean and 95% band over seeds;
- ``runs/<env>/<algo>_s<seed>/``: each run's folder (TensorBoard logs, ``final.pt``/``final.zip``)
  and ``result.json``; a run whose ``result.json`` exists is not trained again, so a stopped
  benchmark resumes where it was.

Usage::

    saliency-gym bench --agents --quick          # CI size: 2 algorithms x 2 seeds, a 4x4 grid
    python -m saliency_gym.benchmarks.policy_benchmark --algos maskable_ppo ppo a2c dqn recurrent_ppo \\
        --seeds 0 1 2 --timesteps 64000 --out policy_bench
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from saliency_gym.agents.algorithms import ALGORITHMS, algorithm_spec
from saliency_gym.agents.pretrained import agent_explainer
from saliency_gym.benchmarks.priors import (
    CENTRE,
    mean_map_label,
    mean_maps,
    paired_columns,
    paired_markdown,
)
from saliency_gym.benchmarks.suite import mean_ci, write_tables
from saliency_gym.checkpoint import atomic_write
from saliency_gym.runs import check_output_dir

__all__ = ["PolicyBenchSize", "SIZES", "run_policy_benchmark", "main"]

REVEAL_PRESETS = ("saliency_gym/SaliencyReveal-Shapes-v0", "saliency_gym/SaliencyReveal-Digits-v0")
MASK_PRESETS = ("saliency_gym/SaliencyMask-Shapes-v0", "saliency_gym/SaliencyMask-Digits-v0")


@dataclass(frozen=True)
class PolicyBenchSize:
    """How much the benchmark trains and evaluates.

    ``hyperparameters`` (per algorithm) are layered over the shipped rl-zoo files, and
    ``env_kwargs`` over each environment's; both empty at full size, so the agents are trained as
    the shipped ones are.
    """

    envs: tuple[str, ...]
    algos: tuple[str, ...]
    seeds: tuple[int, ...]
    timesteps: int
    eval_every: int
    eval_images: int
    test_images: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)


_QUICK_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "maskable_ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2},
    "ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2},
    "a2c": {"n_envs": 4, "n_steps": 8},
    "recurrent_ppo": {"n_envs": 4, "n_steps": 32, "batch_size": 64, "n_epochs": 2},
    "dqn": {"n_envs": 4, "learning_starts": 64, "buffer_size": 2048, "batch_size": 32, "target_update_interval": 128},
}

SIZES: dict[str, PolicyBenchSize] = {
    "quick": PolicyBenchSize(envs=REVEAL_PRESETS[:1], algos=("maskable_ppo", "ppo"), seeds=(0, 1),
                             timesteps=512, eval_every=256, eval_images=8, test_images=16,
                             env_kwargs={"grid": 4}, hyperparameters=_QUICK_HYPERPARAMETERS),
    "full": PolicyBenchSize(envs=REVEAL_PRESETS + MASK_PRESETS, algos=tuple(ALGORITHMS), seeds=(0, 1, 2),
                            timesteps=64_000, eval_every=8_000, eval_images=32, test_images=200),
}  # fmt: skip


def _slug(env_id: str) -> str:
    return env_id.replace("/", "-")


def _metric(env_id: str) -> str:
    """The metric an environment's agents optimise: deletion for mask ids, else insertion."""
    return "deletion_auc" if "Mask" in env_id else "insertion_auc"


@dataclass(frozen=True)
class TestSet:
    """An environment's classifier, held-out test images, explained (predicted) classes and
    resolved configuration (its grid, substrate and mode give the environment's own metric)."""

    classifier: Any
    images: np.ndarray
    targets: np.ndarray
    config: Any


def _test_batch(env_id: str, n: int, env_kwargs: dict[str, Any]) -> TestSet:
    """The environment's classifier and its first ``n`` held-out test images with predicted classes."""
    import gymnasium as gym

    from saliency_gym.data import load_dataset

    env = gym.make(env_id, **env_kwargs)
    config = env.unwrapped.config  # type: ignore[attr-defined]
    env.close()
    images = load_dataset(config.data.name, "test", n=n).arrays().images  # the held-out images bench uses
    targets = config.classifier.predict(images, count=False).cpu().numpy()
    return TestSet(config.classifier, images, targets, config)


def _score_maps(test: TestSet, maps: np.ndarray) -> dict[str, list[float]]:
    """Per-image pixel insertion and deletion AUC of ``maps`` and the environment's own metric
    (``env_auc``: the patch-level AUC of the maps' cell order on the environment's grid and
    substrate, what an episode playing that order scores)."""
    from saliency_gym.metrics import deletion_curve, insertion_curve
    from saliency_gym.metrics.patch_curves import patch_deletion_curve, patch_insertion_curve

    classifier, images, targets, config = test.classifier, test.images, test.targets, test.config
    patch_curve = patch_insertion_curve if config.mode == "reveal" else patch_deletion_curve
    with classifier.uncounted():  # scoring queries are not the explainer's
        ins = insertion_curve(classifier, images, maps, targets).auc
        dele = deletion_curve(classifier, images, maps, targets).auc
        env = patch_curve(classifier, images, config.grid.cell_order(maps), config.grid, targets, substrate=config.substrate).auc
    return {"insertion": ins.tolist(), "deletion": dele.tolist(), "env_auc": env.tolist()}


def _score(test: TestSet, explainer: Any, *, mean_map: bool = False) -> dict[str, Any]:
    """Means and per-image values (``per_image``) of an explainer's maps on ``test``; with
    ``mean_map``, also those of its mean map (``mean_map``, :func:`~saliency_gym.benchmarks.priors.mean_maps`)."""
    explanation = explainer.explain(test.images, test.targets)  # counts the explainer's own queries
    per_image = _score_maps(test, explanation.maps)
    record = {"insertion_auc": float(np.mean(per_image["insertion"])), "deletion_auc": float(np.mean(per_image["deletion"])),
              "env_auc": float(np.mean(per_image["env_auc"])), "queries_per_image": explanation.queries / len(test.images),
              "per_image": per_image}  # fmt: skip
    if mean_map:
        record["mean_map"] = _score_maps(test, mean_maps(explanation.maps))
    return record


def _write_config(size: PolicyBenchSize, out: Path) -> Path | None:
    """The size's hyperparameters as a YAML layered over the shipped files (``None`` when empty)."""
    if not size.hyperparameters:
        return None
    path = out / "hyperparameters.yml"
    text = yaml.safe_dump({"default": size.hyperparameters}, sort_keys=True)
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def train_and_score(env_id: str, algo: str, seed: int, size: PolicyBenchSize, out: Path, config: Path | None,
                    test: TestSet, device: str) -> dict[str, Any]:  # fmt: skip
    """One run (or its saved ``result.json``): learning curve, training time, final test scores
    (per image too, with those of the agent's mean map)."""
    from saliency_gym.agents.agent_training import train_agent

    run = out / "runs" / _slug(env_id) / f"{algo}_s{seed}"
    saved = run / "result.json"
    if saved.is_file():
        return dict(json.loads(saved.read_text()))
    started = time.perf_counter()
    result = train_agent(env_id, algo, size.timesteps, seed, out=run, config=config, env_kwargs=size.env_kwargs or None,
                         checkpoint_every=0, eval_every=size.eval_every, eval_images=size.eval_images,
                         progress=False, device=device)  # fmt: skip
    wall = time.perf_counter() - started
    scores = _score(test, agent_explainer(result.final_path, test.classifier, device="cpu"), mean_map=True)
    record = {"env_id": env_id, "algo": algo, "seed": seed, "timesteps": result.num_timesteps,
              "train_minutes": (result.evaluations[-1]["seconds"] if result.evaluations else result.seconds) / 60,
              "wall_minutes": wall / 60, "curve": result.evaluations, **scores}  # fmt: skip
    text = json.dumps(record, indent=2)
    atomic_write(saved, lambda tmp: tmp.write_text(text))
    return record


@dataclass
class PolicyRow:
    env_id: str
    method: str
    seeds: int
    insertion_auc: float
    insertion_ci: float
    deletion_auc: float
    deletion_ci: float
    train_minutes: float
    queries_per_image: float
    test_images: int
    # The environment's own metric (patch-level AUC of the row's cell order; mean and 95% CI over
    # seeds) and its normalised score (None for a modified preset or one without reference scores).
    env_auc: float | None = None
    env_auc_ci: float | None = None
    normalized_score: float | None = None
    normalized_ci: float | None = None
    # Paired differences with the priors (learned methods only; per image, 95% CI over images).
    insertion_minus_centre: float | None = None
    insertion_minus_centre_ci: float | None = None
    deletion_minus_centre: float | None = None
    deletion_minus_centre_ci: float | None = None
    insertion_minus_mean_map: float | None = None
    insertion_minus_mean_map_ci: float | None = None
    deletion_minus_mean_map: float | None = None
    deletion_minus_mean_map_ci: float | None = None


def _normalized(env_id: str, env_auc: float, env_auc_ci: float, modified: bool) -> tuple[float | None, float | None]:
    """The normalised score of an environment AUC and its CI (the references held fixed), or
    ``(None, None)`` when the preset was modified or has no reference scores."""
    from saliency_gym.envs.reference import normalized_score, reference_ids, reference_scores

    if modified or env_id not in reference_ids():
        return None, None
    refs = reference_scores(env_id)["references"]
    scale = abs(refs["greedy"]["auc"] - refs["random"]["auc"])
    return normalized_score(env_id, env_auc), env_auc_ci / scale


def summarise(records: Sequence[dict[str, Any]], env_id: str, method: str, test_images: int, *,
              modified: bool = False) -> PolicyRow:  # fmt: skip
    """Mean and 95% interval over seeds of one (environment, method)'s final scores (and its
    normalised score unless the preset was ``modified`` by ``env_kwargs``)."""
    ins, ins_ci = mean_ci(np.array([r["insertion_auc"] for r in records]))
    dele, dele_ci = mean_ci(np.array([r["deletion_auc"] for r in records]))
    minutes = float(np.mean([r.get("train_minutes", 0.0) for r in records]))
    queries = float(np.mean([r["queries_per_image"] for r in records]))
    row = PolicyRow(env_id, method, len(records), ins, ins_ci, dele, dele_ci, minutes, queries, test_images)
    if all("env_auc" in r for r in records):
        env, env_ci = mean_ci(np.array([r["env_auc"] for r in records]))
        row = replace(row, env_auc=env, env_auc_ci=env_ci)
        row.normalized_score, row.normalized_ci = _normalized(env_id, env, env_ci, modified)
    return row


def _seed_mean(records: Sequence[dict[str, Any]], key: str) -> dict[str, np.ndarray] | None:
    """Per-image values of ``records[*][key]`` averaged over seeds (``None`` if a run lacks them,
    e.g. a ``result.json`` written before they were recorded)."""
    parts = [r.get(key) for r in records]
    if not parts or any(p is None for p in parts):
        return None
    return {metric: np.mean([np.asarray(p[metric]) for p in parts if p is not None], axis=0) for metric in ("insertion", "deletion")}


def mean_map_row(records: Sequence[dict[str, Any]], env_id: str, algo: str, test_images: int, *,
                 modified: bool = False) -> PolicyRow | None:  # fmt: skip
    """The row ``"<algo> (mean map)"``: each run's mean map scored on the test images, mean and
    95% interval over seeds (``None`` when a run has no mean-map scores)."""
    if not records or any("mean_map" not in r for r in records):
        return None
    as_records = [{"insertion_auc": float(np.mean(r["mean_map"]["insertion"])), "deletion_auc": float(np.mean(r["mean_map"]["deletion"])),
                   "env_auc": float(np.mean(r["mean_map"]["env_auc"])), "queries_per_image": 0.0} for r in records]  # fmt: skip
    return summarise(as_records, env_id, mean_map_label(algo), test_images, modified=modified)


def with_paired(row: PolicyRow, records: Sequence[dict[str, Any]], centre: dict[str, Any]) -> PolicyRow:
    """``row`` (an algorithm's) with its paired differences: the per-image metrics of its runs
    (averaged over seeds) minus the centre prior's and minus the runs' mean maps'."""
    per_image: dict[str, dict[str, np.ndarray]] = {CENTRE: {k: np.asarray(v) for k, v in centre["per_image"].items()}}
    for key, label in (("per_image", row.method), ("mean_map", mean_map_label(row.method))):
        values = _seed_mean(records, key)
        if values is not None:
            per_image[label] = values
    return replace(row, **paired_columns(row.method, per_image))


def _fmt(mean: float | None, ci: float | None) -> str:
    return "" if mean is None or ci is None else f"{mean:.3f} ± {ci:.3f}"


def to_markdown(rows: Sequence[PolicyRow]) -> str:
    """The table; ``env AUC`` is the environment's own metric (insertion for reveal ids, deletion
    for mask ids) and ``normalised`` its score between random (0) and greedy (1)."""
    header, separator, paired = paired_markdown(rows)
    lines = ["| environment | method | seeds | insertion AUC ↑ | deletion AUC ↓ | training min | queries / image | env AUC | normalised ↑ |"
             + header, "|---|---|---:|---:|---:|---:|---:|---:|---:|" + separator]  # fmt: skip
    for r, extra in zip(rows, paired, strict=True):
        lines.append(f"| {r.env_id.split('/')[-1]} | {r.method} | {r.seeds} | {r.insertion_auc:.3f} ± {r.insertion_ci:.3f} "
                     f"| {r.deletion_auc:.3f} ± {r.deletion_ci:.3f} | {r.train_minutes:.1f} | {r.queries_per_image:.0f} "
                     f"| {_fmt(r.env_auc, r.env_auc_ci)} | {_fmt(r.normalized_score, r.normalized_ci)} |" + extra)  # fmt: skip
    return "\n".join(lines) + "\n"


def _band(curves: Sequence[Sequence[dict[str, float]]], key: str, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% half-width over seeds at each evaluation (seeds share evaluation steps; the
    final evaluation replaces a periodic one taken at the same step)."""
    curves = [list({int(p["step"]): p for p in c}.values()) for c in curves]
    n = min(len(c) for c in curves)
    xs = np.array([[c[i][x] for i in range(n)] for c in curves]).mean(axis=0)
    stats = [mean_ci(np.array([c[i][key] for c in curves])) for i in range(n)]
    return xs, np.array([m for m, _ in stats]), np.array([h for _, h in stats])


def plot_learning_curves(records: Sequence[dict[str, Any]], references: dict[str, float], path: Path) -> Path:
    """One row per environment: its metric against env steps (left) and training minutes (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env_id"] for r in records})
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 3.2 * len(envs)), squeeze=False)
    for row, env_id in zip(axes, envs, strict=True):
        key = _metric(env_id)
        for algo in sorted({r["algo"] for r in records if r["env_id"] == env_id}):
            curves = [r["curve"] for r in records if r["env_id"] == env_id and r["algo"] == algo and r["curve"]]
            if not curves:
                continue
            for ax, x, scale in ((row[0], "step", 1.0), (row[1], "seconds", 1 / 60)):
                xs, mean, half = _band(curves, key, x)
                (line,) = ax.plot(xs * scale, mean, marker="o", ms=3, label=f"{algo} ({len(curves)} seeds)")
                ax.fill_between(xs * scale, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        for ax, xlabel in ((row[0], "environment steps"), (row[1], "training minutes")):
            if env_id in references:
                ax.axhline(references[env_id], color="k", ls="--", lw=1, label="Grad-CAM (test images)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(key.replace("_", " ") + (" ↓" if key == "deletion_auc" else " ↑"))
            ax.set_title(env_id.split("/")[-1], fontsize=10)
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    check_output_dir(path.parent)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_policy_benchmark(size: str | PolicyBenchSize = "quick", out: str | Path = "policy_bench", *,
                         algos: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                         envs: Sequence[str] | None = None, timesteps: int | None = None,
                         device: str = "auto", progress: bool = True) -> list[PolicyRow]:  # fmt: skip
    """Train, evaluate and tabulate (see the module docstring); returns the table's rows."""
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
        size = SIZES[size]
    for algo in algos or ():
        algorithm_spec(algo)
    if timesteps is not None and (not isinstance(timesteps, int) or timesteps < 1):
        raise ValueError(f"timesteps must be a positive int, got {timesteps!r}")
    # an overridden budget keeps the size's number of points on each learning curve
    eval_every = max(1, size.eval_every * timesteps // size.timesteps) if timesteps else size.eval_every
    size = replace(size, algos=tuple(algos or size.algos), seeds=tuple(seeds if seeds is not None else size.seeds),
                   envs=tuple(envs or size.envs), timesteps=timesteps or size.timesteps, eval_every=eval_every)  # fmt: skip
    if not size.seeds:
        raise ValueError("seeds must name at least one seed")
    from saliency_gym.agents.agent_training import SALIENCY_ENV_PREFIX
    from saliency_gym.validation import check_env_id

    for env_id in size.envs:
        check_env_id(env_id, SALIENCY_ENV_PREFIX, "saliency-search environment")
    out = check_output_dir(out)
    config = _write_config(size, out)
    from tqdm import tqdm

    from saliency_gym.explainers import make_explainer

    jobs = [(e, a, s) for e in size.envs for a in size.algos for s in size.seeds]
    records: list[dict[str, Any]] = []
    rows: list[PolicyRow] = []
    references: dict[str, float] = {}
    tests = {e: _test_batch(e, size.test_images, size.env_kwargs) for e in size.envs}
    with tqdm(total=len(jobs), desc="policy bench", unit="run", disable=not progress) as bar:
        for env_id, algo, seed in jobs:
            bar.set_postfix_str(f"{env_id.split('/')[-1]} {algo} s{seed}")
            records.append(train_and_score(env_id, algo, seed, size, out, config, tests[env_id], device))
            bar.update()
    modified = bool(size.env_kwargs)
    for env_id in size.envs:
        test = tests[env_id]
        n = len(test.images)
        centre = _score(test, make_explainer("centre", test.classifier, grid=tuple(test.config.grid.shape)))
        for algo in size.algos:
            runs = [r for r in records if r["env_id"] == env_id and r["algo"] == algo]
            rows.append(with_paired(summarise(runs, env_id, algo, n, modified=modified), runs, centre))
            prior = mean_map_row(runs, env_id, algo, n, modified=modified)
            if prior is not None:
                rows.append(prior)
        rows.append(summarise([centre], env_id, CENTRE, n, modified=modified))
        gradcam = _score(test, make_explainer("gradcam", test.classifier))
        references[env_id] = gradcam[_metric(env_id)]
        rows.append(summarise([gradcam], env_id, "gradcam (one pass)", n, modified=modified))
    meta = {"size": {k: v for k, v in asdict(size).items()}, "torch_threads": torch.get_num_threads()}
    write_tables(rows, out, meta, stem="policy_bench", markdown=to_markdown(rows))
    plot_learning_curves(records, references, out / "learning_curves.png")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI size (2 algorithms x 2 seeds, 512 steps, a 4x4 grid)")
    parser.add_argument("--algos", nargs="+", choices=sorted(ALGORITHMS), default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--envs", nargs="+", default=None, help="environment ids (default: the size's)")
    parser.add_argument("--timesteps", type=int, default=None, help="training steps per run (default: the size's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="policy_bench")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run_policy_benchmark("quick" if args.quick else "full", args.out, algos=args.algos, seeds=args.seeds,
                                envs=args.envs, timesteps=args.timesteps, device=args.device)  # fmt: skip
    print(to_markdown(rows))
    print(f"wrote {Path(args.out) / 'policy_bench.md'} and {Path(args.out) / 'learning_curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
