"""``saliency-gym bench --engine ray``: the benchmark suite sharded over a Ray cluster.

The grid is dataset x method x seed x image chunk, the same chunks the local run
(:func:`saliency_gym.benchmarks.suite.run_dataset`) walks through in order. Each shard runs
:func:`~saliency_gym.benchmarks.suite.explain_chunk` on a worker and comes back as raw per-image
values (AUCs, curves, pointing game, queries, seconds); the driver merges them with
:func:`~saliency_gym.benchmarks.suite.merge_dataset` into the very tables, confidence intervals
and PNGs of the local run. Nothing is recomputed differently: on the same device, the numbers are
equal to the local run's (seconds per image aside, which are timings).

Where things run:

- **driver** (the process that runs ``saliency-gym bench``): loads each dataset's classifier and
  images once to list the methods and draw the PNGs, schedules shards, writes every finished
  shard to ``<out>/shards/`` and, at the end, the tables and PNGs;
- **workers**: ``workers`` Ray actors (1 CPU each, and ``1 / workers_per_gpu`` of a GPU when the
  cluster has GPUs), each loading a dataset's classifier and images once and keeping them for all
  the shards it is given.

Shards are handed out one at a time to whichever worker is free, so slow methods (the greedy
policies) do not hold up a static split. Why Ray actors and not one Tune trial per shard: a
Tune trial costs seconds of bookkeeping (measured on this project's 2-core machine under load:
20 trials of 0.2 s each, 2 at a time with ``reuse_actors=True``, took 170 s in ``Tuner.fit``),
more than most shards of ``bench --quick`` cost, while a free actor takes its next shard in
milliseconds. Ray's own fault tolerance does what Tune's
``FailureConfig`` would: a failed shard is retried ``max_retries`` times (an exception, or the
worker's process dying: the actor is restarted). A shard that still fails is reported at the end;
the others are kept.

Resume: every finished shard is saved atomically as ``<out>/shards/<settings>/<dataset>/
<method>/seed<S>_start<I>.npz`` (``<settings>`` is a digest of the suite size, so other settings
never mix in). A sweep that is stopped (Ctrl-C, a lost cluster) and run again with the same
command computes only the missing shards.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from saliency_gym.distributed.cluster import ensure_ray, require_ray
from saliency_gym.specs import ModelDataSpec

if TYPE_CHECKING:
    from saliency_gym.benchmarks.suite import ChunkValues, DatasetContext, MethodResult, SuiteSize

__all__ = ["DatasetSpec", "Shard", "SweepReport", "run_ray_bench", "save_chunk", "load_chunk"]

@dataclass(frozen=True)
class DatasetSpec:
    """A row group a worker can rebuild on its own: a shipped dataset ``name``, or a
    ``--model/--data`` pair given as a :class:`~saliency_gym.specs.ModelDataSpec` (paths must be
    readable at the same place on every node)."""

    name: str = ""
    model: ModelDataSpec | None = None

    @classmethod
    def from_args(cls, args: Any) -> DatasetSpec:
        """The ``--model/--data`` row of a parsed ``bench`` command line (any object with the model
        arguments as attributes: :meth:`ModelDataSpec.from_attributes`)."""
        return cls("", ModelDataSpec.from_attributes(args))

    def build(self, size: SuiteSize, device: str | None) -> DatasetContext:
        """The classifier, images and targets of this row (:func:`suite.prepare_dataset`)."""
        from saliency_gym.benchmarks.suite import prepare_dataset

        if self.model is None:
            return prepare_dataset(self.name, size, device=device)
        classifier, source = self.model.build(device)
        return prepare_dataset("", size, classifier=classifier, source=source)


@dataclass(frozen=True)
class Shard:
    """One unit of the grid: images ``start:start + chunk`` of a row group, one method, one seed."""

    group: int
    label: str
    method: str
    seed: int
    start: int

    def path(self, root: Path) -> Path:
        """Where the finished shard is saved under the sweep's settings folder ``root``."""
        safe = self.label.replace("/", "_")
        return root / safe / self.method / f"seed{self.seed}_start{self.start}.npz"


@dataclass
class SweepReport:
    """What a sweep did: shards computed now, found finished on disk, and failed (with errors)."""

    computed: int = 0
    resumed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 0


# ------------------------------------------------------------------------------ shard files
_CURVE_FIELDS = ("curves", "auc", "fractions", "targets")


def save_chunk(path: Path, values: ChunkValues) -> None:
    """Save a shard's values atomically as ``.npz`` (no pickles: plain arrays and strings)."""
    from saliency_gym.checkpoint import atomic_write

    arrays: dict[str, Any] = {
        "method": np.array(values.method), "seed": np.array(values.seed), "start": np.array(values.start),
        "queries": values.queries, "seconds": np.array(values.seconds), "overlay_maps": values.overlay_maps,
        "skipped": np.array("" if values.skipped is None else values.skipped),
    }  # fmt: skip
    if values.pointing is not None:
        arrays["pointing"] = values.pointing
    for key, curve in (("insertion", values.insertion), ("deletion", values.deletion)):
        if curve is None:
            continue
        if curve.foils is not None:
            raise ValueError("the suite's curves have no foils; cannot save contrastive curves")
        for name in _CURVE_FIELDS:
            arrays[f"{key}_{name}"] = getattr(curve, name)
        arrays[f"{key}_meta"] = np.array(json.dumps(
            {"mode": curve.mode, "queries": int(curve.queries), "substrate": curve.substrate, "total_steps": int(curve.total_steps)}
        ))  # fmt: skip

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    atomic_write(path, write)


def load_chunk(path: Path) -> ChunkValues:
    """A shard saved by :func:`save_chunk`."""
    from saliency_gym.benchmarks.suite import ChunkValues
    from saliency_gym.metrics import CurveResult

    with np.load(path, allow_pickle=False) as data:
        files = set(data.files)

        def curve(key: str) -> CurveResult | None:
            if f"{key}_meta" not in files:
                return None
            meta = json.loads(str(data[f"{key}_meta"]))
            return CurveResult(mode=meta["mode"], curves=data[f"{key}_curves"], auc=data[f"{key}_auc"],
                               fractions=data[f"{key}_fractions"], targets=data[f"{key}_targets"], foils=None,
                               queries=meta["queries"], substrate=meta["substrate"], total_steps=meta["total_steps"])  # fmt: skip

        skipped = str(data["skipped"])
        return ChunkValues(
            str(data["method"]), int(data["seed"]), int(data["start"]), curve("insertion"), curve("deletion"),
            data["pointing"] if "pointing" in files else None, data["queries"], float(data["seconds"]),
            data["overlay_maps"], skipped=skipped or None,
        )  # fmt: skip


def settings_digest(size: SuiteSize, device: str | None) -> str:
    """A short digest of everything that changes a shard's numbers besides its own key."""
    text = json.dumps({"size": asdict(size), "device": device or "auto", "version": 1}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------ workers
class _BenchWorker:
    """A Ray actor: loads each row group's classifier and images once, then explains shards."""

    def __init__(self, size: SuiteSize, specs: Sequence[DatasetSpec], device: str | None) -> None:
        self.size, self.specs, self.device = size, list(specs), device
        self.contexts: dict[int, DatasetContext] = {}
        self.factories: dict[tuple[int, int], dict[str, Callable[[], Any]]] = {}

    def _context(self, group: int) -> DatasetContext:
        if group not in self.contexts:
            self.contexts[group] = self.specs[group].build(self.size, self._device())
        return self.contexts[group]

    def _device(self) -> str | None:
        import ray

        if self.device is None and ray.get_gpu_ids():
            return "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU
        return self.device

    def run(self, shard: Shard) -> ChunkValues:
        """Explain and score one shard (the same :func:`suite.explain_chunk` as the local run)."""
        from saliency_gym.benchmarks.suite import default_methods, explain_chunk

        ctx = self._context(shard.group)
        key = (shard.group, shard.seed)
        if key not in self.factories:
            self.factories[key] = default_methods(ctx.classifier, ctx.label, self.size, seed=shard.seed)
        return explain_chunk(ctx, self.factories[key][shard.method], shard.method, shard.seed, shard.start, self.size.chunk)


def _worker_count(workers: int | None) -> int:
    import ray

    if workers is None:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    return workers


def run_ray_bench(
    specs: Sequence[DatasetSpec],
    size: SuiteSize,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    only: Sequence[str] | None = None,
    device: str | None = None,
    workers: int | None = None,
    max_retries: int = 2,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    report: Callable[[str], object] = print,
) -> tuple[list[MethodResult], SweepReport]:
    """Run the suite for every row group in ``specs`` on Ray and merge it as the local run does.

    Args:
        specs: the row groups (shipped datasets, or ``--model/--data`` pairs).
        size: images, RISE masks, chunk (= shard) size and whether the greedy policies run.
        out: the run folder: shards go to ``out/shards/``; the PNGs of each row group to ``out``
            (the caller writes the tables with :func:`suite.write_results`).
        seeds: seeds of the stochastic methods; every method runs once per seed.
        only: names of the suite's methods to run (default: all of them).
        device: torch device of the workers; ``None``: a worker's GPU when Ray gave it one, else CPU.
        workers: number of worker actors (default: the cluster's CPUs).
        max_retries: retries of a failed shard (an exception or a dead worker).
        address, num_cpus: where Ray runs (:func:`saliency_gym.distributed.cluster.ensure_ray`).
        progress: show a bar over shards on standard error.
        report: where messages (skipped methods, failed shards) go.

    Returns:
        The table rows (in the local run's order) and a :class:`SweepReport`. Raises
        ``RuntimeError`` after saving every shard that finished when some shards failed for good
        (run the same command again to retry only those).
    """
    require_ray("bench --engine ray")
    from saliency_gym.benchmarks.suite import (
        check_seeds,
        chunk_starts,
        default_methods,
        merge_dataset,
        select_methods,
    )

    seeds = check_seeds(seeds)
    if not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
    if not specs:
        raise ValueError("pass at least one dataset or --model/--data row to benchmark")
    started = time.perf_counter()
    ensure_ray(address, num_cpus)
    import ray
    from tqdm.auto import tqdm

    out = Path(out)
    root = out / "shards" / settings_digest(size, device)
    contexts = [spec.build(size, device) for spec in specs]  # the driver's copy: method list, PNGs
    grid: list[Shard] = []
    method_names: list[list[str]] = []
    for group, ctx in enumerate(contexts):
        names = list(select_methods(default_methods(ctx.classifier, ctx.label, size, seed=seeds[0]), only))
        method_names.append(names)
        grid += [Shard(group, ctx.label, m, s, start) for m in names for s in seeds
                 for start in chunk_starts(len(ctx.images), size.chunk)]  # fmt: skip
    sweep = SweepReport()
    todo = [shard for shard in grid if not shard.path(root).is_file()]
    sweep.resumed = len(grid) - len(todo)
    if sweep.resumed:
        report(f"resuming: {sweep.resumed} of {len(grid)} shards already in {root}")
    if todo:
        n_workers = min(_worker_count(workers), len(todo))
        sweep.workers = n_workers
        gpus = float(ray.cluster_resources().get("GPU", 0))
        use_gpu = gpus > 0 and (device is None or device.startswith("cuda"))
        per_gpu = min(1.0, gpus / n_workers) if use_gpu else 0.0
        actor_cls = ray.remote(_BenchWorker).options(
            num_cpus=1, num_gpus=per_gpu, max_restarts=max_retries, max_task_retries=max_retries,
        )  # fmt: skip
        actors: list[Any] = [actor_cls.remote(size, list(specs), device) for _ in range(n_workers)]
        queue = list(todo)
        running: dict[Any, tuple[Any, Shard]] = {}

        def submit(actor: Any) -> None:
            shard = queue.pop(0)
            ref = actor.run.options(retry_exceptions=True).remote(shard)
            running[ref] = (actor, shard)

        bar = tqdm(total=len(grid), initial=sweep.resumed, desc="bench shards", unit="shard",
                   disable=not progress, dynamic_ncols=True)  # fmt: skip
        try:
            for actor in actors:
                if queue:
                    submit(actor)
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                actor, shard = running.pop(done[0])
                try:
                    save_chunk(shard.path(root), ray.get(done[0]))
                    sweep.computed += 1
                except (ray.exceptions.RayError, ValueError) as exc:
                    sweep.failed[f"{shard.label} {shard.method} seed {shard.seed} images {shard.start}+"] = str(exc).splitlines()[0]
                bar.update(1)
                if queue:
                    submit(actor)
        finally:
            bar.close()
            for actor in actors:
                ray.kill(actor)
    sweep.seconds = time.perf_counter() - started
    if sweep.failed:
        lines = "\n".join(f"  {key}: {error}" for key, error in sweep.failed.items())
        raise RuntimeError(f"{len(sweep.failed)} shards failed after {max_retries} retries (the other "
                           f"{sweep.computed + sweep.resumed} are saved; run again to retry):\n{lines}")  # fmt: skip
    results: list[MethodResult] = []
    for group, ctx in enumerate(contexts):
        chunks = [load_chunk(shard.path(root)) for shard in grid if shard.group == group]
        results += merge_dataset(ctx, method_names[group], chunks, out, report=report)
    return results, sweep
