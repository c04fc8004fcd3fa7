"""``saliency-gym distill``: distil a teacher's cell orders into an agent.

Behaviour cloning on the greedy look-ahead's orders, optional DAgger rounds on the student's own
states and an optional short MaskablePPO fine-tune (see :mod:`saliency_gym.agents.distillation`).
The result, ``<out>/final.pt`` (and ``final.zip``), is a normal agent file: ``saliency-gym explain
--agent``, ``saliency-gym bench`` and ``PolicyExplainer`` load it as they load a trained agent.
"""

from __future__ import annotations

import argparse
import sys

from saliency_gym.cli.common import (
    add_run_arguments,
    non_negative_int,
    positive_float,
    positive_int,
    start_run,
)

NAME = "distill"
HELP = "distil the greedy look-ahead's cell orders into an agent (behaviour cloning, DAgger, RL fine-tuning)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Label the first N training images with the teacher's cell orders (cached in "
        "<out>/teacher_orders.pt), train the agent's policy network to predict the teacher's next "
        "cell (cross-entropy over the cells still allowed), optionally run DAgger rounds (the "
        "student's states labelled with the teacher's one-step greedy choice) and a short "
        "MaskablePPO fine-tune. Checkpoints after every epoch; --resume continues. The agent is "
        "<out>/final.pt (and final.zip).",
    )
    parser.add_argument("--env", default="saliency_gym/SaliencyReveal-Shapes-v0", help="environment id")
    parser.add_argument("--teacher", default="greedy", choices=("greedy",), help="teacher policy")
    parser.add_argument("--lookahead", type=non_negative_int, default=0,
                        help="teacher look-ahead steps (0: every step, the full greedy search)")  # fmt: skip
    parser.add_argument("--images", type=positive_int, default=256, help="training images labelled by the teacher")
    parser.add_argument("--epochs", type=positive_int, default=10, help="behaviour-cloning epochs")
    parser.add_argument("--bc-steps", type=positive_int, default=None,
                        help="clone only the first N steps of each episode, where the AUC is decided (default: all)")
    parser.add_argument("--soft-temperature", type=positive_float, default=None,
                        help="soft labels: softmax of the teacher's standardised look-ahead values at this temperature "
                             "(default: the teacher's choice, one-hot)")  # fmt: skip
    parser.add_argument("--keep-last", action="store_true",
                        help="end with the last epoch's weights (default: the epoch with the best validation AUC)")
    parser.add_argument("--dagger-rounds", type=non_negative_int, default=0, help="DAgger rounds after cloning")
    parser.add_argument("--dagger-states", type=positive_int, default=8, help="student states labelled per image and round")
    parser.add_argument("--dagger-epochs", type=positive_int, default=None, help="epochs after each DAgger round (default: --epochs)")
    parser.add_argument("--finetune-steps", type=non_negative_int, default=0, help="MaskablePPO steps from the distilled weights (0: none)")
    parser.add_argument("--finetune-lr", type=positive_float, default=5e-5, help="fine-tuning learning rate")
    parser.add_argument("--finetune-clip", type=positive_float, default=0.05, help="fine-tuning clip range")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate of the cloning")
    parser.add_argument("--val-images", type=positive_int, default=64, help="training-split images after the distilled ones, for validation")
    parser.add_argument("--val-every", type=positive_int, default=1, help="epochs between validations")
    parser.add_argument("--teacher-batch", type=positive_int, default=32, help="images per batched teacher rollout")
    parser.add_argument("--algo", default="maskable_ppo", choices=("maskable_ppo", "ppo", "a2c"), help="the agent's algorithm (policy class, YAML)")
    add_run_arguments(parser, config_help="YAML of hyperparameters layered over the shipped one")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency_gym.agents.distillation import distill
    from saliency_gym.runs import TrainingInterrupted

    start_run(args)
    try:
        result = distill(
            args.env, args.out, teacher=args.teacher, lookahead=args.lookahead or None, images=args.images,
            epochs=args.epochs, bc_steps=args.bc_steps, soft_temperature=args.soft_temperature,
            keep_best=not args.keep_last, dagger_rounds=args.dagger_rounds, dagger_states=args.dagger_states,
            dagger_epochs=args.dagger_epochs, finetune_steps=args.finetune_steps, finetune_lr=args.finetune_lr,
            finetune_clip=args.finetune_clip, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
            algo=args.algo, config=args.config, resume=args.resume, val_images=args.val_images, val_every=args.val_every,
            teacher_batch=args.teacher_batch, progress=not args.no_progress, device=args.device or "auto",
        )  # fmt: skip
    except TrainingInterrupted as stop:
        print(f"saliency-gym {NAME}: {stop}", file=sys.stderr)
        return 128 + stop.signum
    scores = ", ".join(f"{name} {value:.4f}" for name, value in result.validation.items())
    print(f"distilled in {result.seconds:.0f} s (teacher {result.teacher_seconds:.0f} s, {result.teacher_queries} queries); "
          f"validation AUC: {scores} -> {result.final_path}")  # fmt: skip
    return 0
