"""Transfer of the shipped shapes agents to other classifiers of the same images, without retraining.

The agents ``shapes_reveal`` / ``shapes_mask`` were trained against the ``shapes`` CNN. The same
images are classified by ``shapes_robust`` (PGD adversarial fine-tuning) and ``shapes_idexpo``
(ID-ExpO fine-tuning), whose evidence may sit elsewhere. This script explains the same held-out
images for each classifier with the agent (zero queries, order scoring) and, as references, with
Grad-CAM (one backward pass) and a random map, and prints insertion AUC (reveal agent; RISE's blur)
and deletion AUC (mask agent; zeros) with 95% intervals over images (Student's t).

With ``--finetune STEPS`` each shipped agent is also fine-tuned against every other classifier
for ``STEPS`` environment steps (``train_agent(..., init_from=agent, env_kwargs={"classifier":
name})``, the shipped hyperparameters; run folders under ``--runs``) and scored as the row
``agent (fine-tuned)``, with its training seconds.

Usage: ``python -m saliency_gym.benchmarks.bench_transfer [--images 200] [--finetune 8192]
[--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from saliency_gym.agents.pretrained import agent_explainer
from saliency_gym.benchmarks.suite import mean_ci
from saliency_gym.data import load_dataset
from saliency_gym.explainers import make_explainer
from saliency_gym.metrics import deletion_curve, insertion_curve
from saliency_gym.models.zoo import load_classifier

CLASSIFIERS = ("shapes", "shapes_robust", "shapes_idexpo")
AGENTS = {"reveal": ("shapes_reveal", "saliency_gym/SaliencyReveal-Shapes-v0"),
          "mask": ("shapes_mask", "saliency_gym/SaliencyMask-Shapes-v0")}  # fmt: skip


def finetune_agents(classifier: str, steps: int, runs: str | os.PathLike[str], seed: int = 0) -> dict[str, tuple[Path, float]]:
    """The shipped reveal and mask agents fine-tuned against ``classifier`` for ``steps`` steps:
    ``{mode: (final agent file, training seconds)}``; a run whose ``final.pt`` exists is reused."""
    from saliency_gym.agents.agent_checkpoints import load_agent_payload
    from saliency_gym.agents.agent_training import train_agent

    out: dict[str, tuple[Path, float]] = {}
    for mode, (agent, env_id) in AGENTS.items():
        run = Path(runs) / f"{agent}_to_{classifier}_{steps}"
        final = run / "final.pt"
        if not final.is_file():
            train_agent(env_id, "maskable_ppo", steps, seed, out=run, env_kwargs={"classifier": classifier},
                        init_from=agent, checkpoint_every=0, eval_every=0, progress=False)  # fmt: skip
        out[mode] = (final, float(load_agent_payload(final)["meta"]["train_seconds"]))
    return out


def transfer_table(images: int = 200, classifiers: Sequence[str] = CLASSIFIERS, *, finetune: int = 0,
                   runs: str | os.PathLike[str] = "transfer_runs") -> list[dict[str, object]]:  # fmt: skip
    """One row per (classifier, method): insertion and deletion AUC, mean and 95% half-width (and,
    with ``finetune`` steps, the fine-tuned agents' row for every classifier but ``shapes``)."""
    batch = load_dataset("shapes", "test", n=images).arrays()
    rows: list[dict[str, object]] = []
    for name in classifiers:
        classifier = load_classifier(name, device="cpu")
        targets = classifier.predict(batch.images, count=False).cpu().numpy()
        methods = {
            "agent": (agent_explainer("shapes_reveal", classifier), agent_explainer("shapes_mask", classifier)),
            "gradcam": (make_explainer("gradcam", classifier),) * 2,
            "random": (make_explainer("random", classifier),) * 2,
        }
        seconds = None
        if finetune and name != "shapes":
            tuned = finetune_agents(name, finetune, runs)
            methods["agent (fine-tuned)"] = (agent_explainer(tuned["reveal"][0], classifier),
                                             agent_explainer(tuned["mask"][0], classifier))  # fmt: skip
            seconds = tuned["reveal"][1] + tuned["mask"][1]
        for method, (reveal, mask) in methods.items():
            ins = insertion_curve(classifier, batch.images, reveal.explain(batch.images, targets).maps, targets)
            dele = deletion_curve(classifier, batch.images, mask.explain(batch.images, targets).maps, targets)
            (i, i_ci), (d, d_ci) = mean_ci(ins.auc), mean_ci(dele.auc)
            row: dict[str, object] = {"classifier": name, "method": method, "insertion_auc": i, "insertion_ci": i_ci,
                                      "deletion_auc": d, "deletion_ci": d_ci, "images": len(targets)}  # fmt: skip
            if method == "agent (fine-tuned)":
                row.update(finetune_steps=finetune, finetune_seconds=seconds)
            rows.append(row)
    return rows


def to_markdown(rows: Sequence[dict[str, object]]) -> str:
    lines = ["| classifier | method | insertion AUC ↑ (reveal agent) | deletion AUC ↓ (mask agent) |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['classifier']} | {r['method']} | {r['insertion_auc']:.3f} ± {r['insertion_ci']:.3f} | {r['deletion_auc']:.3f} ± {r['deletion_ci']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--finetune", type=int, default=0, help="also fine-tune the agents this many steps per classifier")
    parser.add_argument("--runs", default="transfer_runs", help="run folder of the fine-tuned agents")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.finetune < 0:
        parser.error("--finetune must be >= 0")
    torch.set_num_threads(args.threads)
    rows = transfer_table(args.images, finetune=args.finetune, runs=args.runs)
    print(to_markdown(rows))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"images": args.images, "finetune_steps": args.finetune, "rows": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
