"""``saliency-gym imitate``: train an agent that sees what the classifier sees.

The agent observes the frozen classifier's own pooled features (the environments'
``observe_features``) and is trained to imitate the greedy look-ahead's one-step evidence gains,
first on random orders, then on its own states (DAgger); see
:mod:`saliency_gym.agents.evidence_imitation`. ``--observe image`` gives an open-loop agent (one
query per explained image), ``--observe canvas`` a closed-loop one (one query per step, RExL's
inference). The result, ``<out>/final.pt`` and ``<out>/final.zip``, is a normal agent file.
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

NAME = "imitate"
HELP = "train an agent over the classifier's own features by imitating the greedy look-ahead (DAgger)"

#: ``--observe`` choices and the environment arguments they stand for.
OBSERVATIONS = {
    "image": {"observe_features": "image", "observe_score": False},
    "canvas": {"observe_features": "canvas", "observe_score": True},
    "both": {"observe_features": "both", "observe_score": True},
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.agents.evidence_imitation import ImitationConfig

    defaults = ImitationConfig(env_id="", out="")
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Play episodes on the first --images training images (random orders, then the "
        "student's own choices for each DAgger round), label every --label-every-th state with the "
        "evidence gain of every allowed cell (batched classifier queries), and fit the policy's cell "
        "logits to softmax(gain / --temperature). The best round on --val-images validation images "
        "(training split) is kept. States are cached per round and the run state saved after every "
        "round, so --resume continues. The agent is <out>/final.pt and <out>/final.zip.",
        epilog="example: saliency-gym imitate --env saliency_gym/SaliencyReveal-Shapes-v0 --observe canvas --out runs/shapes_reveal",
    )
    parser.add_argument("--env", default="saliency_gym/SaliencyReveal-Shapes-v0", help="saliency-search environment id")
    parser.add_argument("--observe", choices=tuple(OBSERVATIONS), default="canvas",
                        help="image: the image's features (open loop, 1 query per image); canvas: the canvas's "
                             "features and the score (closed loop, 1 query per step); both (default: canvas)")  # fmt: skip
    parser.add_argument("--grid", type=positive_int, default=None, help="cells per side (default: the YAML's, else the preset's)")
    parser.add_argument("--images", type=positive_int, default=defaults.images, help="training images")
    parser.add_argument("--val-images", type=positive_int, default=defaults.val_images, help="validation images (training split, after --images)")
    parser.add_argument("--label-every", type=positive_int, default=defaults.label_every, help="keep one state in this many steps")
    parser.add_argument("--temperature", type=positive_float, default=defaults.temperature, help="of the soft-max over gains")
    parser.add_argument("--dagger-rounds", type=non_negative_int, default=defaults.dagger_rounds, help="rounds on the student's own states")
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="fitting epochs per round")
    parser.add_argument("--batch-size", type=positive_int, default=defaults.batch_size)
    parser.add_argument("--lr", type=positive_float, default=defaults.learning_rate, help="Adam learning rate")
    add_run_arguments(parser, config_help="YAML of hyperparameters layered over the shipped ppo_mask.yml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency_gym.agents.evidence_imitation import imitate

    start_run(args)
    env_kwargs: dict[str, object] = {**OBSERVATIONS[args.observe], "observe_class": True}
    if args.grid is not None:
        env_kwargs["grid"] = args.grid
    result = imitate(
        args.env, args.out, images=args.images, val_images=args.val_images, label_every=args.label_every,
        temperature=args.temperature, dagger_rounds=args.dagger_rounds, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed, env_kwargs=env_kwargs,
        config=args.config, resume=args.resume, progress=not args.no_progress, device=args.device or "auto",
    )  # fmt: skip
    best = float("nan") if result.validation_auc is None else result.validation_auc
    print(
        f"imitated in {result.seconds:.0f} s ({result.label_queries:,} label queries); validation AUC {best:.4f} "
        f"-> {result.final_path} and {result.zip_path}",
        file=sys.stdout,
    )
    return 0
