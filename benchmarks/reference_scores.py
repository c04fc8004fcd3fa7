"""Reference scores of every registered saliency-search preset (random, centre, Grad-CAM, greedy).

As RL suites give each environment a random and an expert score, this command rolls out four
fixed policies in each registered ``saliency_gym/SaliencyReveal-*-v0`` /
``saliency_gym/SaliencyMask-*-v0`` preset (listed from ``gymnasium.registry``, so a preset
registered later is picked up) on its held-out images, with the preset's own settings:

- ``random``: :class:`~saliency_gym.agents.policies.RandomPolicy` (seed 0);
- ``centre``: the centre-out cell order (:class:`~saliency_gym.agents.policies.AttributionOrderPolicy`
  over the ``centre`` explainer on the preset's grid), the same for every image;
- ``gradcam``: the cells in Grad-CAM's order (``AttributionOrderPolicy`` over ``gradcam``);
- ``greedy``: the one-step look-ahead (:class:`~saliency_gym.agents.policies.GreedyPolicy`), in full
  (``K (K + 1) / 2`` queries per image on ``K`` cells) or, on large images, with a look-ahead
  budget that keeps its queries within ``--large-greedy-queries`` (stated per preset). Images
  and look-ahead per image size: :func:`plan_for`.

Each episode runs in the preset's native vector environment (``gym.make_vec``, ``split="test"``,
the first ``--images`` test images by ``image_index``, the explained class predicted), and what is
recorded is the environment's own outcome: the episode return (the default ``reward_mode="auc"``)
and the patch-level AUC the episode's scores trace (insertion for reveal, deletion for mask), with
the classifier queries it cost (the rollout's and the policy's own). Means come with 95%
Student-t intervals over images (:func:`saliency_gym.benchmarks.suite.mean_ci`).

The JSON (``--out``) holds, per id, the settings and ``references[name]`` = ``auc``, ``auc_ci``,
``return``, ``return_ci``, ``queries_per_image``; an existing file keeps the ids not measured in
this run, so one preset can be added or re-measured alone. The shipped copy is
``saliency_gym/envs/reference_scores.json``, which :mod:`saliency_gym.envs.reference` reads
(``reference_scores(env_id)``, ``normalized_score(env_id, value)``).

Usage::

    python -m saliency_gym.benchmarks.reference_scores --out saliency_gym/envs/reference_scores.json
    python -m saliency_gym.benchmarks.reference_scores --ids saliency_gym/SaliencyReveal-Shapes-v0 \\
        --images 50 --out /tmp/ref.json --table /tmp/ref.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliency_gym.agents.policies import AttributionOrderPolicy, GreedyPolicy, Policy, RandomPolicy
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.envs.reference import REFERENCES

__all__ = ["PresetPlan", "greedy_queries", "measure_preset", "plan_for", "play", "reference_policies", "run_reference_scores",
           "saliency_presets", "to_markdown", "main"]

#: The ids this command measures: a reveal or mask family with a preset name.
PRESET_PATTERN = re.compile(r"^saliency_gym/Saliency(Reveal|Mask)-[A-Za-z0-9_]+-v0$")
#: Image sizes (pixels per channel) up to which the full greedy search runs on ``--images``; up to
#: ``MEDIUM_PIXELS`` it runs on at most ``--medium-images``; above, on at most ``--large-images``
#: within a greedy query budget. Measured on this project's shared 2-core machine (one torch
#: thread, under load): the 32x32 classifiers take ~1,200 images/s, shapes64 ~300,
#: EfficientNet-Lite0 at 224x224 ~14; greedy costs 2,080 queries per image on 8x8 cells (1,225 on 7x7).
SMALL_PIXELS, MEDIUM_PIXELS = 32 * 32, 64 * 64


@dataclass(frozen=True)
class PresetPlan:
    """How one preset is measured."""

    images: int
    """Held-out images (the first of the test split; fewer when the split is smaller)."""
    greedy_lookahead: int | None
    """Look-ahead steps of the greedy reference (``None``: every step, the full greedy search)."""
    chunk: int
    """Episodes played at once (one native vector environment of this size)."""


def saliency_presets(ids: Sequence[str] | None = None) -> list[str]:
    """The registered reveal/mask preset ids (registry order), or ``ids`` checked against them."""
    import gymnasium as gym

    import saliency_gym  # noqa: F401 - registers the ids

    registered = [env_id for env_id in gym.registry if PRESET_PATTERN.match(env_id)]
    if ids is None:
        return registered
    if isinstance(ids, str):
        raise TypeError(f"ids must be a sequence of environment ids, got the str {ids!r}")
    unknown = [i for i in ids if i not in registered]
    if unknown:
        raise ValueError(f"not registered saliency-search presets: {unknown}; registered: {registered}")
    return list(dict.fromkeys(ids))


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def greedy_queries(cells: int, steps: int | None) -> int:
    """Look-ahead queries of one greedy episode on ``cells`` cells with ``steps`` look-ahead steps
    (``None``: all): ``K + (K - 1) + ... + (K - steps + 1)``."""
    steps = cells if steps is None else min(steps, cells)
    return sum(cells - k for k in range(steps))


def plan_for(image_shape: Sequence[int], cells: int, available: int, *, images: int = 200, medium_images: int = 40,
             large_images: int = 20, large_greedy_queries: int = 4000, chunk: int = 50) -> PresetPlan:  # fmt: skip
    """The plan of a preset whose images are ``(C, H, W)`` on a grid of ``cells`` cells, with
    ``available`` test images, sized to a few minutes on 2 cores:

    - up to 32x32 pixels: ``images`` images, the full greedy search;
    - up to 64x64: at most ``medium_images``, the full greedy search (a look-ahead budget would
      change the reference: on shapes64, 8 look-ahead steps reach insertion 0.93, the full search 0.96);
    - larger: at most ``large_images``, and the longest greedy look-ahead whose queries over all
      images stay within ``large_greedy_queries`` (the full search when it fits: the 3 held-out
      photos on 7x7 cells take 3 x 1,225), at least one step; chunks of at most 5 episodes.
    """
    images, medium_images, large_images, chunk, budget = (
        _positive(n, v) for n, v in (("images", images), ("medium_images", medium_images), ("large_images", large_images),
                                     ("chunk", chunk), ("large_greedy_queries", large_greedy_queries))
    )  # fmt: skip
    cells, available = _positive("cells", cells), _positive("available", available)
    h, w = image_shape[-2:]
    if h * w <= SMALL_PIXELS:
        return PresetPlan(min(images, available), None, chunk)
    if h * w <= MEDIUM_PIXELS:
        return PresetPlan(min(images, medium_images, available), None, min(chunk, 20))
    n = min(images, large_images, available)
    steps = max([1] + [m for m in range(1, cells + 1) if n * greedy_queries(cells, m) <= budget])
    return PresetPlan(n, None if steps == cells else steps, min(chunk, 5))


def reference_policies(classifier: Any, grid: tuple[int, int], lookahead: int | None) -> dict[str, Callable[[], Policy]]:
    """Factories of the :data:`~saliency_gym.envs.reference.REFERENCES` policies for one preset."""
    from saliency_gym.explainers import make_explainer

    factories: dict[str, Callable[[], Policy]] = {
        "random": lambda: RandomPolicy(0),
        "centre": lambda: AttributionOrderPolicy(make_explainer("centre", classifier, grid=grid)),
        "gradcam": lambda: AttributionOrderPolicy(make_explainer("gradcam", classifier)),
        "greedy": lambda: GreedyPolicy(lookahead),
    }
    assert tuple(factories) == REFERENCES
    return factories


def play(venv: Any, policy: Policy, indices: np.ndarray) -> dict[str, np.ndarray]:
    """One full episode per image of ``indices`` in the native vector env ``venv`` (of that many
    environments): per image the return, the patch-level AUC (trapezoid rule over the episode's
    scores ``s_0 .. s_K``, divided by ``K``) and the queries it cost."""
    env = venv.unwrapped
    core, classifier = env.core, env.config.classifier
    cells = env.config.grid.num_cells
    if env.config.budget != cells:
        raise ValueError(f"reference scores need full episodes; the preset's budget is {env.config.budget} of {cells} cells")
    start = classifier.queries
    obs, info = venv.reset(seed=0, options={"image_index": indices})
    policy.reset(core)
    previous = np.asarray(info["initial_score"], np.float64)
    returns, area = np.zeros(len(indices)), np.zeros(len(indices))
    terminated = np.zeros(len(indices), bool)
    for _ in range(cells):
        actions = policy.act(obs, venv.action_masks(), core=core)
        obs, rewards, terminated, _, info = venv.step(actions)
        score = np.asarray(info["score"], np.float64)
        returns += rewards
        area += (previous + score) / (2 * cells)
        previous = score
    if not np.all(terminated):
        raise RuntimeError(f"{policy.name}: episodes did not end after {cells} distinct cells")
    queries = np.full(len(indices), (classifier.queries - start) / len(indices))
    return {"return": returns, "auc": area, "queries": queries}


def measure_preset(env_id: str, plan: PresetPlan, *, progress: Callable[[str], object] | None = None) -> dict[str, Any]:
    """The JSON entry of one preset (see the module docstring)."""
    import gymnasium as gym

    started = time.perf_counter()
    probe = gym.make(env_id, split="test")
    config = probe.unwrapped.config  # type: ignore[attr-defined]
    n = min(plan.images, len(config.data))  # plan_for caps it already; a plan given by hand may not
    grid, mode = tuple(config.grid.shape), config.mode
    probe.close()
    values: dict[str, dict[str, list[np.ndarray]]] = {name: {"return": [], "auc": [], "queries": []} for name in REFERENCES}
    for first in range(0, n, plan.chunk):
        indices = np.arange(first, min(n, first + plan.chunk))
        venv = gym.make_vec(env_id, num_envs=len(indices), vectorization_mode="vector_entry_point", split="test")
        classifier = venv.unwrapped.config.classifier
        for name, factory in reference_policies(classifier, grid, plan.greedy_lookahead).items():
            for key, array in play(venv, factory(), indices).items():
                values[name][key].append(array)
        venv.close()
        if progress is not None:
            progress(f"{env_id}: {indices[-1] + 1}/{n} images, {time.perf_counter() - started:.0f} s")
    references = {}
    for name, parts in values.items():
        ret, ret_ci = mean_ci(np.concatenate(parts["return"]))
        auc, auc_ci = mean_ci(np.concatenate(parts["auc"]))
        references[name] = {"auc": auc, "auc_ci": auc_ci, "return": ret, "return_ci": ret_ci,
                            "queries_per_image": float(np.mean(np.concatenate(parts["queries"])))}  # fmt: skip
    return {
        "images": n, "split": "test", "metric": "insertion_auc" if mode == "reveal" else "deletion_auc",
        "better": "higher" if mode == "reveal" else "lower", "grid": list(grid), "reward_mode": config.reward_mode,
        "substrate": getattr(config.substrate, "name", str(config.substrate)), "greedy_lookahead": plan.greedy_lookahead,
        "seconds": time.perf_counter() - started, "references": references,
    }  # fmt: skip


def run_reference_scores(ids: Sequence[str] | None = None, *, images: int = 200, medium_images: int = 40,
                         large_images: int = 20, large_greedy_queries: int = 4000, chunk: int = 50, out: str | Path | None = None,
                         command: str | None = None, progress: Callable[[str], object] | None = print) -> dict[str, Any]:  # fmt: skip
    """Measure the presets ``ids`` (default: every registered one) and return the table; with
    ``out``, write it there after every preset, keeping the entries of an existing file that are
    not measured now (``command``, the command line, is recorded in the file's ``runs``).

    Without ``ids``, a registered preset that cannot be built here (its classifier is not shipped
    yet, an extra is missing) is reported and skipped; a preset named in ``ids`` must build.
    """
    import gymnasium as gym
    import torch

    env_ids = saliency_presets(ids)
    if not env_ids:
        raise ValueError("no saliency-search presets are registered")
    table: dict[str, Any] = {"scores": {}}
    if out is not None and Path(out).is_file():
        table = json.loads(Path(out).read_text())
        table.setdefault("scores", {})
    table["about"] = ("Reference scores of the saliency-search presets (saliency_gym.envs.reference): mean and 95% "
                      "Student-t interval over held-out test images of the episode return and patch-level AUC.")  # fmt: skip
    run: dict[str, Any] = {"command": command, "ids": [], "skipped": {}, "torch_threads": torch.get_num_threads(), "seconds": 0.0}
    table.setdefault("runs", []).append(run)
    for env_id in env_ids:
        try:
            probe = gym.make(env_id, split="test")
        except (ValueError, FileNotFoundError, ImportError) as exc:
            if ids is not None:
                raise
            run["skipped"][env_id] = str(exc).splitlines()[0]
            if progress is not None:
                progress(f"{env_id}: skipped ({run['skipped'][env_id]})")
            continue
        config = probe.unwrapped.config  # type: ignore[attr-defined]
        probe.close()
        plan = plan_for(config.classifier.input_shape, config.grid.num_cells, len(config.data), images=images,
                        medium_images=medium_images, large_images=large_images,
                        large_greedy_queries=large_greedy_queries, chunk=chunk)  # fmt: skip
        entry = measure_preset(env_id, plan, progress=progress)
        table["scores"][env_id] = entry
        table["scores"] = dict(sorted(table["scores"].items()))
        run["ids"].append(env_id)
        run["seconds"] += entry["seconds"]
        if out is not None:  # after every preset, so a stopped run keeps what it measured
            path = Path(out)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(table, indent=2) + "\n")
        if progress is not None:
            progress(f"{env_id}: done in {entry['seconds']:.0f} s ({entry['images']} images, greedy look-ahead "
                     f"{entry['greedy_lookahead'] or 'full'}, chunks of {plan.chunk})")  # fmt: skip
    return table


def to_markdown(scores: dict[str, Any]) -> str:
    """The reference AUCs (mean ± 95% CI) and queries per image, one row per preset."""
    lines = ["| environment | metric | images | " + " | ".join(REFERENCES) + " | greedy look-ahead | seconds |",
             "|---|---|---:|" + "---:|" * len(REFERENCES) + "---:|---:|"]  # fmt: skip
    for env_id, entry in scores.items():
        refs = entry["references"]
        cells = [f"{refs[r]['auc']:.3f} ± {refs[r]['auc_ci']:.3f} ({refs[r]['queries_per_image']:,.0f} q)" for r in REFERENCES]
        arrow = "↑" if entry["better"] == "higher" else "↓"
        lookahead = "full" if entry["greedy_lookahead"] is None else f"{entry['greedy_lookahead']} steps"
        lines.append(f"| {env_id.split('/')[-1]} | {entry['metric'].replace('_', ' ')} {arrow} | {entry['images']} | "
                     + " | ".join(cells) + f" | {lookahead} | {entry['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", nargs="+", default=None, metavar="ENV_ID", help="presets to measure (default: every registered one)")
    parser.add_argument("--images", type=int, default=200, help="held-out images per preset (default 200)")
    parser.add_argument("--medium-images", type=int, default=40,
                        help="at most this many on images larger than 32x32, up to 64x64 (default 40)")  # fmt: skip
    parser.add_argument("--large-images", type=int, default=20, help="at most this many on images larger than 64x64 (default 20)")
    parser.add_argument("--large-greedy-queries", type=int, default=4000,
                        help="greedy look-ahead queries per preset on images larger than 64x64: the longest look-ahead "
                        "within it (default 4000: the full search on the 3 held-out photos)")  # fmt: skip
    parser.add_argument("--chunk", type=int, default=50,
                        help="episodes played at once (default 50; at most 20 above 32x32, 5 above 64x64)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: on a shared machine small batches run faster on one thread)")  # fmt: skip
    parser.add_argument("--out", default="reference_scores.json", help="the JSON to write (entries of other ids in it are kept)")
    parser.add_argument("--table", default=None, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    table = run_reference_scores(args.ids, images=args.images, medium_images=args.medium_images, large_images=args.large_images,
                                 large_greedy_queries=args.large_greedy_queries, chunk=args.chunk, out=args.out,
                                 command=" ".join(["python -m saliency_gym.benchmarks.reference_scores", *(argv or sys.argv[1:])]),
                                 progress=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    measured = {k: v for k, v in table["scores"].items() if k in table["runs"][-1]["ids"]}
    markdown = to_markdown(measured)
    print(markdown)
    if args.table:
        Path(args.table).write_text(markdown)
    print(f"wrote {args.out} ({len(measured)} presets measured, {len(table['scores'])} in the file) "
          f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
