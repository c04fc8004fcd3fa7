"""``saliency-gym train-classifier``: regenerate a shipped classifier from a seed."""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import non_negative_int, positive_int
from saliency_gym.runs import check_output_file

NAME = "train-classifier"
HELP = "train a small CNN on a shipped dataset (reproducible from --seed)"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.classifier_training import TRAINABLE, ClassifierTrainingConfig

    defaults = ClassifierTrainingConfig()
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train the SmallCNN on a shipped dataset and write a weights-only checkpoint to a "
        "run folder (shipped checkpoints are read-only: load the new one by its path).",
    )
    parser.add_argument("--dataset", choices=TRAINABLE, default="shapes")
    parser.add_argument("--seed", type=non_negative_int, default=defaults.seed)
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--width", type=positive_int, default=defaults.width)
    parser.add_argument("--out", default=None, help="checkpoint path (default runs/classifiers/<dataset>_s<seed>/<dataset>.pt)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency_gym.classifier_training import (
        ClassifierTrainingConfig,
        default_checkpoint_path,
        train_classifier,
    )

    config = ClassifierTrainingConfig(
        dataset=args.dataset, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, width=args.width,
    )  # fmt: skip
    out = args.out or default_checkpoint_path(config)
    check_output_file(out)
    result = train_classifier(config, out=out, progress=not args.no_progress)
    print(
        f"{result['dataset']}: val accuracy {result['val_accuracy']:.4f}, test accuracy "
        f"{result['test_accuracy']:.4f}, {result['seconds']:.0f} s -> {result['path']}"
    )
    return 0
