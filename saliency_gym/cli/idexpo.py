"""``saliency-gym idexpo``: fine-tune a classifier with ID-ExpO's insertion/deletion regularisers.

Example::

    saliency-gym idexpo --classifier shapes --explainer gradcam --steps 300 --out runs/idexpo-shapes
    saliency-gym idexpo --classifier shapes --explainer gradcam --substrate random --out runs/idexpo-shapes-random
    saliency-gym idexpo --classifier breast_cancer --explainer gradient --out runs/idexpo-bc

``--classifier`` is a shipped classifier, a checkpoint path, or a tabular dataset name
(``breast_cancer``, ``wine``: a base MLP is trained first). The selected model is written to
``<out>/classifier.pt`` (load it with ``saliency_gym.load_classifier(path)`` or pass the path as an
environment's ``classifier``); ``<out>/last.pt`` lets ``--resume`` continue an interrupted run and
``<out>/tb`` holds TensorBoard logs. See :mod:`saliency_gym.baselines.idexpo`.
"""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import (
    add_device_argument,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from saliency_gym.runs import check_output_dir

NAME = "idexpo"
HELP = "fine-tune a classifier so its explanations score better on insertion/deletion (ID-ExpO)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.baselines.differentiable_explainers import DIFFERENTIABLE_EXPLAINERS
    from saliency_gym.baselines.idexpo import IDExpOConfig
    from saliency_gym.baselines.idexpo_config import FINE_TUNE_SUBSTRATES
    from saliency_gym.metrics.soft_insertion_deletion import DELETION_FORMS

    d = IDExpOConfig()
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Fine-tune a classifier with loss CE + lambda1 (soft insertion + soft deletion) + "
        "lambda2 mean(e^2) (Yoshikawa & Iwata, AISTATS 2024), select the model on validation data "
        "under an accuracy floor, and save it as a classifier checkpoint.",
    )
    parser.add_argument("--classifier", default=d.classifier,
                        help="shipped classifier, checkpoint path, or tabular dataset (breast_cancer, wine)")  # fmt: skip
    parser.add_argument("--explainer", choices=sorted(DIFFERENTIABLE_EXPLAINERS), default=d.explainer,
                        help="differentiable explainer in the regulariser")  # fmt: skip
    parser.add_argument("--lambda-ins-del", type=non_negative_float, default=d.lambda_ins_del, help="lambda1")
    parser.add_argument("--lambda-l2", type=non_negative_float, default=d.lambda_l2, help="lambda2")
    parser.add_argument("--temperature", type=positive_float, default=d.temperature, help="tau of the soft masks")
    parser.add_argument("--n-steps", type=positive_int, default=d.n_steps, help="soft-metric steps")
    parser.add_argument("--fraction", type=fraction, default=d.fraction, help="share of the steps used (the paper's K)")
    parser.add_argument("--baseline", type=float, default=d.baseline, help="value of absent features (substrate constant)")
    parser.add_argument("--substrate", choices=FINE_TUNE_SUBSTRATES, default=d.substrate,
                        help="absent pixels: constant (--baseline, black), blur (RISE's), rise (insertion from blur, deletion to "
                             "constant) or random (constant or blur per batch)")  # fmt: skip
    parser.add_argument("--tie-break", type=non_negative_float, default=d.tie_break,
                        help="weight of the hard metric's tie rule (index order) in the soft masks")  # fmt: skip
    parser.add_argument("--deletion-form", choices=DELETION_FORMS, default=d.deletion_form)
    parser.add_argument("--detach-thresholds", action="store_true",
                        help="treat the soft masks' thresholds as constants (the authors' code)")  # fmt: skip
    parser.add_argument("--lr", type=positive_float, default=d.lr)
    parser.add_argument("--steps", type=positive_int, default=d.steps, help="optimiser steps")
    parser.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    parser.add_argument("--eval-every", type=positive_int, default=d.eval_every, help="steps between validation scores")
    parser.add_argument("--val-size", type=positive_int, default=d.val_size, help="validation inputs scored")
    parser.add_argument("--accuracy-drop", type=fraction, default=d.accuracy_drop,
                        help="allowed validation-accuracy drop below the starting model (the floor)")  # fmt: skip
    parser.add_argument("--accuracy-floor", type=fraction, default=None, help="absolute validation-accuracy floor instead")
    parser.add_argument("--seed", type=non_negative_int, default=d.seed)
    parser.add_argument("--out", default=None, help="output folder (state, TensorBoard, classifier.pt); "
                        "default runs/idexpo/<classifier>_<explainer>_s<seed>")  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from saliency_gym.baselines.idexpo import IDExpOConfig, fine_tune

    config = IDExpOConfig(
        classifier=args.classifier, explainer=args.explainer, lambda_ins_del=args.lambda_ins_del,
        lambda_l2=args.lambda_l2, temperature=args.temperature, n_steps=args.n_steps, fraction=args.fraction,
        baseline=args.baseline, substrate=args.substrate, tie_break=args.tie_break, deletion_form=args.deletion_form,
        detach_thresholds=args.detach_thresholds, lr=args.lr, steps=args.steps,
        batch_size=args.batch_size, eval_every=args.eval_every, val_size=args.val_size,
        accuracy_drop=args.accuracy_drop, accuracy_floor=args.accuracy_floor, checkpoint_every=args.eval_every,
        seed=args.seed,
    )  # fmt: skip
    out = args.out or f"runs/idexpo/{Path(str(args.classifier)).stem}_{args.explainer}_s{args.seed}"
    check_output_dir(out)
    result = fine_tune(config, out, resume=args.resume, device=args.device, progress=not args.no_progress)
    start, chosen = result["start"], result["selected"]
    print(f"validation ({len(result['history'])} evaluations, floor {result['floor']:.4f}):")
    print(f"  start     acc {start['accuracy']:.4f}  insertion AUC {start['insertion_auc']:.4f}  deletion AUC {start['deletion_auc']:.4f}")
    if result["selected_step"] == 0:
        print("  selected: the unchanged start model (no fine-tuned step kept validation accuracy above the floor "
              "and improved the faithfulness score)")  # fmt: skip
    print(
        f"  step {result['selected_step']:<4} acc {chosen['accuracy']:.4f}  insertion AUC {chosen['insertion_auc']:.4f}  "
        f"deletion AUC {chosen['deletion_auc']:.4f}"
    )
    print(f"{result['steps']} steps, {result['seconds']:.0f} s -> {result['classifier_path']}")
    return 0
