"""Attribution attacks, classical and learned: how far does each move the maps, at what cost?

For each dataset (``shapes``, ``digits``) and model (the natural classifier, and for shapes the
PGD-trained ``shapes_robust``), each explainer (vanilla ``gradient``, ``gradcam``, and the
gradient-free ``rise`` with 64 masks), each ε and each attack, the same held-out test images are
attacked and the script reports:

* the attribution shift, as similarities between the original and the attacked map (all in
  [0, 1], 1 = unchanged, **lower is a stronger attack**): top-k intersection, w-LENS-recall@k and
  top-k-div intersection (``k = H*W // 10``, ``w = 1``: 3x3 windows; maps by magnitude), over the
  images whose label was kept;
* ``label kept``: the share of attacked images still classified as before (every attack here
  returns a label-kept state or the image itself, except ``random`` sign, which takes no choice);
* ``found``: the share of images the attack changed at all; ``max L∞``: the largest perturbation
  (in 1/255), which must not exceed ε;
* the cost: explainer evaluations (maps computed, the original included) and classifier queries
  (every image through the classifier, explanations included) per image, and seconds.

The attacks:

* ``random``: one random-sign perturbation of size ε (LENS's baseline; 2 maps);
* ``topk``, ``mass_center``, ``lens_topk``: Ghorbani et al.'s and the LENS-aware white-box attacks
  (8 signed steps through the softplus surrogate; 9 maps), only for explainers they can
  differentiate (gradient, Grad-CAM);
* ``pattern_start``: the fixed prior, the agent environment's start state alone (the same
  random-sign perturbation for every image; 2 maps), what the agent's episodes begin from;
* ``random_policy``: uniformly random actions in the agent's own environment (the same steps,
  budget and best-state selection as the agent: what the agent has to beat to have learnt anything);
* ``agent``: the shipped attack agent trained against this explainer on this dataset's natural
  model (``saliency_gym/agents/pretrained/attacks/<dataset>_<explainer>.zip``; on ``shapes_robust``
  it is the same agent, unseen model). It needs the map only, never its gradient.

``--methods policy`` adds the shipped RExL reveal agent's own maps (``<dataset>_reveal``) as an
explainer to attack; an attack agent for it is used where one is found (``--agent-dir``, or shipped
as ``<dataset>_policy``), otherwise its rows are the classical black-box ones.

Paired differences (per image, agent minus another attack, top-k intersection, mean and 95%
interval) say whether the agent is stronger (negative) with an interval that excludes zero.

Writes ``attacks.md``, ``attacks.csv``, ``attacks.json``, ``attacks.png`` (each metric versus ε) and
``attack_examples.png`` (four images: the original map, the map after Ghorbani's top-k attack and
after the agent, and both perturbations magnified) under ``--out``::

    python -m saliency_gym.benchmarks.bench_attacks --images 100 --out benchmarks/results
    saliency-gym bench --attacks --images 100        # the same
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_gym.agents.attack_agents import AttackAgent, load_attack_agent, shipped_attack_agents
from saliency_gym.agents.attack_rollout import policy_attack
from saliency_gym.baselines.attack_policies import RandomSignPolicy
from saliency_gym.baselines.attacks import (
    ATTACKS,
    WHITE_BOX_EXPLAINERS,
    AttackResult,
    attribution_similarities,
    load_surrogate,
    run_attack,
)
from saliency_gym.benchmarks.priors import paired_difference
from saliency_gym.data import load_dataset
from saliency_gym.explainers import Explainer, make_explainer
from saliency_gym.models.zoo import load_classifier

METRICS = ("topk", "lens_recall", "topk_div")
#: Models attacked per dataset (an agent trained on the first is also run on the others).
MODELS = {"shapes": ("shapes", "shapes_robust"), "digits": ("digits",)}
#: Explainer options by name (RISE with few masks: the gradient-free explainer).
EXPLAINER_OPTIONS: dict[str, dict[str, Any]] = {"rise": {"n_masks": 64}, "integrated_gradients": {"n_steps": 8}, "smoothgrad": {"nt_samples": 8}}
LEARNED = ("pattern_start", "random_policy", "agent")
ALL_ATTACKS = (*ATTACKS, *LEARNED)
#: Attacks the agent is compared with, per image.
PAIRED_WITH = ("random", "topk", "pattern_start", "random_policy")
#: One result row (a CSV line).
Row = dict[str, Any]


def explainer_options(method: str, dataset: str) -> dict[str, Any]:
    """The options the benchmark builds ``method`` with on ``dataset`` (``policy``: the shipped
    reveal agent of the dataset, an RExL map)."""
    if method == "policy":
        return {"policy": f"{dataset}_reveal"}
    return dict(EXPLAINER_OPTIONS.get(method, {}))


def method_label(method: str, dataset: str = "shapes") -> str:
    if method == "rise":
        return f"rise-{EXPLAINER_OPTIONS['rise']['n_masks']}"
    return f"{dataset}_reveal map" if method == "policy" else method


def _agent_for(dataset: str, method: str, agent_dir: Path | None) -> AttackAgent | None:
    name = f"{dataset}_{method}"
    if agent_dir is not None and (agent_dir / name).is_dir():
        return load_attack_agent(agent_dir / name)
    return load_attack_agent(name) if name in shipped_attack_agents() else None


def _attack(
    attack: str, explainer: Explainer, images: np.ndarray, eps: float, agent: AttackAgent | None, surrogate: Any, args: argparse.Namespace, k: int
) -> AttackResult | None:
    """One attack's result, or ``None`` where it does not apply (white-box on RISE, no agent)."""
    if attack == "random":
        return run_attack("random", explainer, images, eps, seed=args.seed)
    if attack in ATTACKS:
        if explainer.name not in WHITE_BOX_EXPLAINERS:
            return None
        return run_attack(attack, explainer, images, eps, surrogate=surrogate, steps=args.steps, k=k)
    if agent is None:
        return None
    if attack == "agent":
        return agent.attack(explainer, images, eps)
    # The agent's own environment: its start state alone (no step), or uniformly random actions.
    policy = RandomSignPolicy(agent.policy.action_space, seed=args.seed)
    steps = 0 if attack == "pattern_start" else None
    return policy_attack(policy, explainer, images, eps, env_kwargs=agent.episode_kwargs(eps), deterministic=False,
                         steps=steps, name=attack)  # fmt: skip


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    """Every (dataset, model, explainer, ε, attack) row, and the examples of the figure."""
    rows: list[Row] = []
    examples: dict[str, Any] = {}
    agent_dir = Path(args.agent_dir) if args.agent_dir else None
    for dataset in args.datasets:
        images = load_dataset(dataset, "test", n=args.images).arrays().images
        for model in MODELS[dataset]:
            if args.models and model not in args.models:
                continue
            classifier = load_classifier(model, device=args.device)
            surrogate = load_surrogate(classifier)
            _, h, w = classifier.input_shape
            k = h * w // 10
            for method in args.methods:
                explainer = make_explainer(method, classifier, **explainer_options(method, dataset))
                agent = _agent_for(dataset, method, agent_dir)
                for eps255 in args.eps:
                    per_image: dict[str, np.ndarray] = {}
                    group: list[Row] = []
                    for attack in args.attacks:
                        result = _attack(attack, explainer, images, eps255 / 255, agent, surrogate, args, k)
                        if result is None:
                            continue
                        kept = result.label_kept
                        sims = attribution_similarities(result.original_maps, result.adversarial_maps, k=k, w=1)
                        per_image[attack] = np.where(kept, sims["topk"], np.nan)
                        row: Row = {
                            "dataset": dataset, "model": model, "method": method_label(method, dataset), "attack": attack,
                            "eps_255": eps255, "images": len(kept), "label_kept": float(kept.mean()),
                            "found": float(result.changed.mean()),
                            "max_linf_255": float(np.abs(result.perturbation).max() * 255),
                        }  # fmt: skip
                        for name in METRICS:
                            row[name] = float(sims[name][kept].mean()) if kept.any() else float("nan")
                        row["explanations"] = result.explanations / len(kept)
                        row["queries"] = result.queries / len(kept)
                        row["seconds"] = result.seconds
                        group.append(row)
                        if (dataset, model, method, eps255) == (args.datasets[0], MODELS[dataset][0], args.methods[0], max(args.eps)):
                            examples[attack] = result
                        print(f"{model:>13} {method_label(method, dataset):>9} {attack:>13} eps={eps255:g}/255 kept={row['label_kept']:.2f} "
                              + " ".join(f"{n}={row[n]:.3f}" for n in METRICS)
                              + f" maps/img={row['explanations']:.1f} ({result.seconds:.1f} s)", flush=True)  # fmt: skip
                    _add_paired(group, per_image)
                    rows += group
    return rows, examples


def _add_paired(group: list[Row], per_image: dict[str, np.ndarray]) -> None:
    """Agent minus each of :data:`PAIRED_WITH` (top-k intersection per image, both label-kept)."""
    mine = per_image.get("agent")
    for row in group:
        for other in PAIRED_WITH:
            key = f"agent_minus_{other}"
            row[key], row[f"{key}_ci"] = float("nan"), float("nan")
            if row["attack"] != "agent" or mine is None or other not in per_image:
                continue
            both = np.isfinite(mine) & np.isfinite(per_image[other])
            if both.any():
                row[key], row[f"{key}_ci"] = paired_difference(mine[both], per_image[other][both])


def _fmt(value: float, digits: int = 3) -> str:
    return "—" if not np.isfinite(value) else f"{value:.{digits}f}"


def markdown(rows: Sequence[Row], header: str) -> str:
    """The results table, the agent's paired comparisons and the LENS observations."""
    lines = [header, "",
             "| dataset | model | explainer | attack | ε (/255) | label kept | max L∞ (/255) | top-k ∩ | LENS recall@k | top-k-div ∩ | maps / img | queries / img | s |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | {r['attack']} | {r['eps_255']:g} | {r['label_kept']:.2f} | "
                     f"{r['max_linf_255']:.2f} | {_fmt(r['topk'])} | {_fmt(r['lens_recall'])} | {_fmt(r['topk_div'])} | "
                     f"{r['explanations']:.1f} | {r['queries']:.0f} | {r['seconds']:.1f} |")  # fmt: skip
    agent_rows = [r for r in rows if r["attack"] == "agent"]
    if agent_rows:
        lines += ["", "The agent minus another attack, top-k intersection per image (mean ± 95% interval; "
                  "negative: the agent moved the map further; **bold**: the interval excludes zero):", "",
                  "| dataset | model | explainer | ε (/255) | − random sign | − Ghorbani top-k | − pattern start | − random policy |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in agent_rows:
            cells = []
            for other in PAIRED_WITH:
                mean, half = r[f"agent_minus_{other}"], r[f"agent_minus_{other}_ci"]
                text = "—" if not np.isfinite(mean) else f"{mean:+.3f} ± {half:.3f}"
                cells.append(f"**{text}**" if np.isfinite(mean) and abs(mean) > half else text)
            lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | {r['eps_255']:g} | " + " | ".join(cells) + " |")
    random_rows = [r for r in rows if r["attack"] == "random"]
    if random_rows:
        lines += ["", "Random sign perturbations, mean over explainers, models and ε: "
                  f"top-k intersection {np.mean([r['topk'] for r in random_rows]):.3f}, "
                  f"LENS recall@k {np.mean([r['lens_recall'] for r in random_rows]):.3f}, "
                  f"top-k-div intersection {np.mean([r['topk_div'] for r in random_rows]):.3f}; "
                  f"LENS recall exceeds top-k intersection in {sum(r['lens_recall'] > r['topk'] for r in random_rows)}"
                  f" of {len(random_rows)} settings."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: Path) -> None:
    """Each metric versus ε, one panel per (model, explainer), one line per attack."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["method"]) for r in rows})
    fig, axes = plt.subplots(len(METRICS), len(panels), figsize=(2.8 * len(panels), 2.5 * len(METRICS)), squeeze=False, sharey=True)
    for col, (model, method) in enumerate(panels):
        for row_i, metric in enumerate(METRICS):
            ax = axes[row_i][col]
            for attack in ALL_ATTACKS:
                pts = sorted((r["eps_255"], r[metric]) for r in rows if (r["model"], r["method"], r["attack"]) == (model, method, attack))
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=attack, linewidth=2.2 if attack == "agent" else 1.0)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{model} / {method}", fontsize=8)
            ax.set_xlabel("ε (/255)", fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{metric} (lower: stronger)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_examples(examples: dict[str, AttackResult], path: Path, n: int = 4) -> Path | None:
    """For ``n`` images: the image, its map, the map after Ghorbani's top-k and after the agent,
    and both perturbations magnified to the full colour range (mid-grey is zero)."""
    if "agent" not in examples or "topk" not in examples:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ghorbani, agent = examples["topk"], examples["agent"]
    n = min(n, len(agent.images))
    eps = max(float(np.abs(ghorbani.perturbation).max()), float(np.abs(agent.perturbation).max()), 1e-12)
    columns = ("image", "original map", "after Ghorbani top-k", "after agent", "Ghorbani δ (magnified)", "agent δ (magnified)")
    fig, axes = plt.subplots(n, len(columns), figsize=(1.7 * len(columns), 1.8 * n), squeeze=False)
    for i in range(n):
        image = agent.images[i].transpose(1, 2, 0)
        panels = [
            image.squeeze(-1) if image.shape[-1] == 1 else image,
            agent.original_maps[i], ghorbani.adversarial_maps[i], agent.adversarial_maps[i],
            (ghorbani.perturbation[i].mean(axis=0) / eps + 1) / 2, (agent.perturbation[i].mean(axis=0) / eps + 1) / 2,
        ]  # fmt: skip
        for j, panel in enumerate(panels):
            ax = axes[i][j]
            cmap = "gray" if j in (0, 4, 5) else "inferno"
            ax.imshow(panel, cmap=cmap, vmin=0 if j >= 4 else None, vmax=1 if j >= 4 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--models", nargs="+", default=None, help="only these models (default: all of each dataset)")
    parser.add_argument("--methods", nargs="+", default=["gradient", "gradcam", "rise"], help="explainers attacked")
    parser.add_argument("--attacks", nargs="+", default=list(ALL_ATTACKS), choices=ALL_ATTACKS)
    parser.add_argument("--eps", nargs="+", type=float, default=[2.0, 4.0, 8.0], help="ε values in units of 1/255")
    parser.add_argument("--images", type=int, default=100, help="held-out test images per dataset")
    parser.add_argument("--steps", type=int, default=8, help="iterations of the white-box attacks")
    parser.add_argument("--agent-dir", default=None, help="a folder of run folders <dataset>_<explainer> (default: the shipped agents)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    parser.add_argument("--out", default="benchmark_output/attacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows, examples = run(args)
    if not rows:
        raise SystemExit("no attack applied to the chosen settings")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "attacks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = (f"{args.images} test images per dataset, k = H*W/10, w = 1, white-box steps {args.steps}, "
              f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; "
              f"total {time.perf_counter() - start:.0f} s")  # fmt: skip
    (out / "attacks.json").write_text(json.dumps({"settings": header, "rows": rows}, indent=1))
    text = markdown(rows, header)
    (out / "attacks.md").write_text(text)
    plot(rows, out / "attacks.png")
    figure = plot_examples(examples, out / "attack_examples.png")
    print(text)
    print(f"wrote {out / 'attacks.md'}, .csv, .json, attacks.png" + (f", {figure}" if figure else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
