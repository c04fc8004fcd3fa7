"""``saliency-gym train-ganmex``: train a GANMEX counterfactual generator for a frozen classifier."""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import (
    add_device_argument,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_output_dir, check_output_file

NAME = "train-ganmex"
HELP = "train a GANMEX generator (counterfactual baselines) against a frozen classifier"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.baselines.ganmex_training import SELECT_RULES, GanmexTrainingConfig

    d = GanmexTrainingConfig()
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train a StarGAN-style conditional generator with a WGAN-GP critic and the frozen "
        "classifier's cross-entropy (GANMEX, Shih et al. 2021). Writes a resumable state to "
        "OUT_DIR/last.pt every --checkpoint-every steps, TensorBoard logs to OUT_DIR/tb, and the "
        "generator to --export (default OUT_DIR/generator.pt).",
    )
    parser.add_argument("--classifier", required=True, help="shipped classifier name (e.g. shape_pairs) or checkpoint path")
    parser.add_argument("--dataset", default=None, help="training data (default: the classifier's dataset)")
    parser.add_argument("--seed", type=non_negative_int, default=d.seed)
    parser.add_argument("--steps", type=positive_int, default=d.steps, help="generator updates")
    parser.add_argument("--n-critic", type=positive_int, default=d.n_critic, help="critic updates per generator update")
    parser.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    parser.add_argument("--lr-generator", type=float, default=d.lr_generator)
    parser.add_argument("--lr-critic", type=float, default=d.lr_critic)
    parser.add_argument("--lambda-cls", type=float, default=d.lambda_cls)
    parser.add_argument("--lambda-sim", type=float, default=d.lambda_sim)
    parser.add_argument("--lambda-cyc", type=float, default=d.lambda_cyc)
    parser.add_argument("--lambda-gp", type=float, default=d.lambda_gp)
    parser.add_argument("--lambda-sim-end", type=float, default=d.lambda_sim_end,
                        help="minimality ramp: raise the L1 weight linearly from --lambda-sim to this over the second half")
    parser.add_argument("--select", choices=SELECT_RULES, default=d.select,
                        help="export the last generator, or the checkpoint with the smallest mean L1 edit among those "
                        "with validity >= --select-min-validity (measured every --select-every steps)")
    parser.add_argument("--select-every", type=positive_int, default=d.select_every)
    parser.add_argument("--select-samples", type=positive_int, default=d.select_samples,
                        help="validation images per selection measurement")
    parser.add_argument("--select-min-validity", type=float, default=d.select_min_validity)
    parser.add_argument("--gen-width", type=positive_int, default=d.gen_width)
    parser.add_argument("--copy-window", type=non_negative_int, default=d.copy_window,
                        help="odd window side a repainted pixel may copy its colour from (0: free colour only, v1)")
    parser.add_argument("--critic-width", type=positive_int, default=d.critic_width)
    parser.add_argument("--conditional-critic", action=argparse.BooleanOptionalAction, default=d.conditional_critic,
                        help="judge counterfactuals against real images of their target class (the default); "
                        "--no-conditional-critic: against all real images (the v1 recipe)")
    parser.add_argument("--max-train", type=positive_int, default=None, help="use only the first N training images")
    parser.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every)
    parser.add_argument("--out-dir", default=None, help="run folder (default runs/ganmex/<classifier>)")
    parser.add_argument("--export", default=None, help="generator checkpoint path (default OUT_DIR/generator.pt)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from saliency_gym.baselines.ganmex_training import GanmexTrainingConfig, train_ganmex

    if args.out_dir is not None:
        check_output_dir(args.out_dir, "--out-dir")
    if args.export is not None:
        check_output_file(args.export, "--export")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    config = GanmexTrainingConfig(
        classifier=args.classifier, dataset=args.dataset, seed=args.seed, steps=args.steps, n_critic=args.n_critic,
        batch_size=args.batch_size, lr_generator=args.lr_generator, lr_critic=args.lr_critic,
        lambda_cls=args.lambda_cls, lambda_sim=args.lambda_sim, lambda_cyc=args.lambda_cyc, lambda_gp=args.lambda_gp,
        gen_width=args.gen_width, copy_window=args.copy_window, critic_width=args.critic_width, conditional_critic=args.conditional_critic, max_train=args.max_train,
        checkpoint_every=args.checkpoint_every, lambda_sim_end=args.lambda_sim_end, select=args.select,
        select_every=args.select_every, select_samples=args.select_samples, select_min_validity=args.select_min_validity,
    )  # fmt: skip
    result = train_ganmex(config, args.out_dir, resume=args.resume, export=args.export, device=args.device,
                          progress=not args.no_progress)  # fmt: skip
    print(
        f"{args.classifier}: validity {result['validity']:.4f}, proximity (mean L1) {result['proximity_l1']:.4f} "
        f"on the val split after {result['steps']} steps, {result['seconds']:.0f} s -> {result['generator_path']}"
    )
    if "selected_step" in result:
        print(f"selected checkpoint: step {result['selected_step']}")
    return 0
