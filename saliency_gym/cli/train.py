"""``saliency-gym train``: train an RL agent on a saliency-search environment."""

from __future__ import annotations

import argparse
import sys

from saliency_gym.cli.common import (
    add_device_argument,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_output_dir

NAME = "train"
HELP = "train an agent (MaskablePPO by default) on a saliency-search environment"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.agents.algorithms import ALGORITHMS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train an SB3 agent on the native batched vector environment, with TensorBoard "
        "logs (SB3 scalars plus insertion/deletion AUC on held-out images), periodic atomic "
        "checkpoints and --resume. The final agent is <out>/final.pt.",
    )
    parser.add_argument("--env", default="saliency_gym/SaliencyReveal-Shapes-v0", help="environment id")
    parser.add_argument("--algo", default="maskable_ppo", help=f"algorithm: {', '.join(ALGORITHMS)}")
    parser.add_argument("--timesteps", type=positive_int, default=200_000, help="total environment steps")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--config", default=None, help="YAML of hyperparameters layered over the shipped one")
    parser.add_argument("--out", default=None, help="run folder (default runs/<env>/<algo>_s<seed>)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    parser.add_argument("--n-envs", type=positive_int, default=None, help="parallel episodes (default: YAML)")
    parser.add_argument("--checkpoint-every", type=non_negative_int, default=20_000, help="steps (0: off)")
    parser.add_argument("--eval-every", type=non_negative_int, default=20_000, help="steps (0: off)")
    parser.add_argument("--eval-images", type=positive_int, default=32)
    parser.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from saliency_gym.agents.agent_training import TrainingInterrupted, train_agent

    if args.out is not None:
        check_output_dir(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = train_agent(
            args.env, args.algo, args.timesteps, args.seed, out=args.out, config=args.config, resume=args.resume,
            n_envs=args.n_envs, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
            eval_images=args.eval_images, progress=not args.no_progress, device=args.device or "auto",
        )  # fmt: skip
    except TrainingInterrupted as stop:  # SIGTERM / SIGINT: a checkpoint was saved; one line, no traceback
        print(f"saliency-gym {NAME}: {stop}", file=sys.stderr)
        return 128 + stop.signum
    last = result.evaluations[-1] if result.evaluations else {}
    scores = f", insertion AUC {last['insertion_auc']:.4f}, deletion AUC {last['deletion_auc']:.4f}" if last else ""
    print(f"trained {result.num_timesteps} steps in {result.seconds:.0f} s{scores} -> {result.final_path}")
    return 0
