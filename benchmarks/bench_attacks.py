"""Attribution attacks × attribution methods × models × ε: how far do maps move, by which metric?

For each model (the natural ``shapes`` classifier and the PGD-trained ``shapes_robust``), each
attribution method, each attack (``random`` sign, Ghorbani et al.'s ``topk`` and ``mass_center``,
the LENS-aware ``lens_topk``) and each ε, the script attacks the same held-out images and reports,
over the images whose label the attack kept: top-k intersection, w-LENS-recall@k and top-k-div
intersection between the original and the attacked map (all in [0, 1], 1 = unchanged), plus the
label-kept rate (the white-box attacks only return label-kept iterates, or the image itself, so
their rate is 1 by construction; ``found`` is the share of images where they changed the image).
Maps are compared by magnitude (``abs``), with ``k = H*W // 10`` and ``w = 1`` (3x3 windows).

It writes ``attacks.md`` (Markdown table), ``attacks.csv`` and ``attacks.png`` (each metric versus ε,
one panel per model and method) under ``--out``, and prints the Markdown. The LENS paper's
observation is checked in the last section: the gap between LENS recall@k and top-k intersection
under random perturbations.

    python benchmarks/bench_attacks.py [--images 16] [--methods gradient integrated_gradients gradcam]
"""

from __future__ import annotations

import argparse
import csv
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_gym.baselines.attacks import (
    ATTACKS,
    attribution_similarities,
    load_surrogate,
    run_attack,
)
from saliency_gym.data import load_dataset
from saliency_gym.explainers import make_explainer
from saliency_gym.models.zoo import load_classifier

METRICS = ("topk", "lens_recall", "topk_div")
#: One result row (a CSV line): model, method and attack names, numbers for the rest.
Row = dict[str, Any]
EXPLAINER_OPTIONS = {"integrated_gradients": {"n_steps": 8}, "smoothgrad": {"nt_samples": 8}}


def run(args: argparse.Namespace) -> list[Row]:
    data = load_dataset("shapes", "test", n=args.images).arrays()
    rows: list[Row] = []
    for model in args.models:
        classifier = load_classifier(model, device=args.device)
        surrogate = load_surrogate(classifier)
        _, h, w = classifier.input_shape
        k = h * w // 10
        for method in args.methods:
            explainer = make_explainer(method, classifier, **EXPLAINER_OPTIONS.get(method, {}))
            for attack in args.attacks:
                for eps255 in args.eps:
                    eps = eps255 / 255
                    options = {"seed": args.seed} if attack == "random" else {"surrogate": surrogate, "steps": args.steps, "k": k}
                    start = time.perf_counter()
                    result = run_attack(attack, explainer, data.images, eps, **options)
                    seconds = time.perf_counter() - start
                    kept = result.label_kept
                    sims = attribution_similarities(result.original_maps, result.adversarial_maps, k=k, w=1)
                    row: Row = {
                        "model": model, "method": method, "attack": attack, "eps_255": eps255,
                        "images": len(kept), "label_kept": float(kept.mean()), "found": float(result.changed.mean()),
                    }  # fmt: skip
                    for name in METRICS:
                        row[name] = float(sims[name][kept].mean()) if kept.any() else float("nan")
                    row["seconds"] = seconds
                    rows.append(row)
                    print(f"{model:>13} {method:>20} {attack:>11} eps={eps255:>4}/255 kept={row['label_kept']:.2f} "
                          + " ".join(f"{n}={row[n]:.3f}" for n in METRICS) + f" ({seconds:.1f} s)", flush=True)  # fmt: skip
    return rows


def markdown(rows: list[Row], header: str) -> str:
    lines = [header, "", "| model | method | attack | ε (/255) | label kept | found | top-k ∩ | LENS recall@k | top-k-div ∩ | s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        lines.append(f"| {r['model']} | {r['method']} | {r['attack']} | {r['eps_255']:g} | {r['label_kept']:.2f} | {r['found']:.2f} | "
                     f"{r['topk']:.3f} | {r['lens_recall']:.3f} | {r['topk_div']:.3f} | {r['seconds']:.1f} |")  # fmt: skip
    random_rows = [r for r in rows if r["attack"] == "random"]
    if random_rows:
        lines += ["", "Random sign perturbations, mean over methods, models and ε: "
                  f"top-k intersection {np.mean([r['topk'] for r in random_rows]):.3f}, "
                  f"LENS recall@k {np.mean([r['lens_recall'] for r in random_rows]):.3f}, "
                  f"top-k-div intersection {np.mean([r['topk_div'] for r in random_rows]):.3f}; "
                  f"LENS recall exceeds top-k intersection in {sum(r['lens_recall'] > r['topk'] for r in random_rows)}"
                  f" of {len(random_rows)} settings."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["method"]) for r in rows})
    fig, axes = plt.subplots(len(METRICS), len(panels), figsize=(3.2 * len(panels), 2.6 * len(METRICS)), squeeze=False, sharey=True)
    for col, (model, method) in enumerate(panels):
        for row_i, metric in enumerate(METRICS):
            ax = axes[row_i][col]
            for attack in ATTACKS:
                pts = sorted((r["eps_255"], r[metric]) for r in rows if (r["model"], r["method"], r["attack"]) == (model, method, attack))
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", label=attack)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{model} / {method}", fontsize=8)
            ax.set_xlabel("ε (/255)", fontsize=8)
            if col == 0:
                ax.set_ylabel(metric, fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["shapes", "shapes_robust"])
    parser.add_argument("--methods", nargs="+", default=["gradient", "integrated_gradients", "gradcam"])
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS)
    parser.add_argument("--eps", nargs="+", type=float, default=[2.0, 4.0, 8.0, 16.0], help="ε values in units of 1/255")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="iterations of the white-box attacks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmark_output/attacks")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    rows = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "attacks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    header = (f"{args.images} shapes test images, k = H*W/10, w = 1, white-box steps {args.steps}, "
              f"torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()}; "
              f"total {time.perf_counter() - start:.0f} s")  # fmt: skip
    text = markdown(rows, header)
    (out / "attacks.md").write_text(text)
    plot(rows, out / "attacks.png")
    print(text)
    print(f"wrote {out / 'attacks.md'}, {out / 'attacks.csv'}, {out / 'attacks.png'}")


if __name__ == "__main__":
    main()
