"""``saliency-gym train``: train an RL agent on a saliency-search or attribution-attack environment.

``--env-kwargs JSON`` sets environment arguments over the YAML's (for an attack environment, the
attacked explainer: ``'{"explainer": "gradcam"}'``); attack agents are evaluated by
``eval/shift``, ``eval/topk``, ``eval/lens_recall``, ``eval/topk_div`` and ``eval/label_kept`` on
held-out images (:class:`~saliency_gym.agents.agent_training.AttackEvalCallback`).

By default the environment id decides the classifier and the data. ``--model`` (with
``--weights``, ``--input-shape``, ... as in every command) and ``--data`` (a dataset name or a
folder of images) train on your own pair instead: the environment is built with
``classifier=<FrozenClassifier>`` and ``data=<DataSource>`` (``train_agent(env_kwargs=...)``), and
checkpoints record them as descriptions plus the specs that rebuild them (the model file, weights,
normalisation, input shape, class names; the image folder), so ``enjoy``, ``explain --methods
policy --agent RUN`` and ``PolicyExplainer(None, RUN)`` reopen the agent.

Evaluation (``eval/insertion_auc``, ``eval/deletion_auc`` and ``eval/maps`` in TensorBoard, every
``--eval-every`` steps, on ``--eval-images`` images) uses images training never sees: a shipped
dataset's test split, or, for a folder of images (data without splits), a held-out part of it. The
split rule (:func:`saliency_gym.agents.agent_training.holdout_split`): per class sub-folder (a flat
folder is one class), a permutation seeded with 0 holds out 20% of the images, rounded (a class of
fewer than 3 images holds none out); the agent trains on the other 80%. The seed is fixed, not
``--seed``, so runs with other seeds are evaluated on the same images.

Run folders: ``--out`` names one; a folder that already holds a run is refused unless ``--resume``
(continue it) or ``--overwrite`` (remove that run's files, then start over). Without ``--out`` each
run gets a new folder ``runs/<env>[/model-<m>_data-<d>]/<algo>_<n>`` (rl-zoo's numbering: the next
free ``n``); ``--resume`` without ``--out`` continues the latest one.

``--engine ray`` trains PPO with action masking on RLlib instead
(:func:`saliency_gym.distributed.rllib_training.train_rllib`, the ``[ray]`` extra): on any
saliency-search or attack id (``cell_sign`` actions), with ``--num-env-runners`` EnvRunner actors
each stepping our native vector env of ``--num-envs-per-runner`` episodes, on the cluster at
``--address`` (or ``RAY_ADDRESS``) or on a Ray instance started here with ``--num-cpus``. The run
folder then holds RLlib checkpoints (``--resume`` restores the newest), ``tb/`` and ``final/`` (the
trained module, which the policy explainer opens). ``--config`` is then a YAML mapping of
``PPOConfig.training`` arguments (plus an optional ``model_config`` mapping for the module).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from saliency_gym.cli.common import (
    add_device_argument,
    add_engine_arguments,
    add_model_arguments,
    build_model_and_data,
    check_engine_arguments,
    non_negative_int,
    positive_int,
)
from saliency_gym.runs import check_new_run, check_not_shipped

NAME = "train"
HELP = "train an agent (MaskablePPO by default) on a saliency-search or attribution-attack environment"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.agents.algorithms import ALGORITHMS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Train an SB3 agent on the native batched vector environment, with TensorBoard "
        "logs (SB3 scalars plus insertion/deletion AUC on held-out images), periodic atomic "
        "checkpoints and --resume. The final agent is <out>/final.pt.",
    )
    parser.add_argument(
        "--env", default="saliency_gym/SaliencyReveal-Shapes-v0", help="environment id"
    )
    parser.add_argument(
        "--algo", default="maskable_ppo", help=f"algorithm: {', '.join(ALGORITHMS)}"
    )
    parser.add_argument(
        "--timesteps", type=positive_int, default=200_000, help="total environment steps"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument(
        "--config", default=None, help="YAML of hyperparameters layered over the shipped one"
    )
    parser.add_argument("--out", default=None,
                        help="run folder (default: a new runs/<env>[/model-<m>_data-<d>]/<algo>_<n>, the next free n)")  # fmt: skip
    parser.add_argument("--resume", action="store_true",
                        help="continue from <out>/checkpoints/last.pt (without --out: the latest default run)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true",
                        help="--out holds a run: remove its files (final agent, checkpoints, TensorBoard logs) and start over")  # fmt: skip
    parser.add_argument("--init-from", default=None, metavar="AGENT",
                        help="fine-tune: start from this agent's weights (a shipped name or a .pt/.zip file)")  # fmt: skip
    parser.add_argument(
        "--n-envs", type=positive_int, default=None, help="parallel episodes (default: YAML)"
    )
    parser.add_argument(
        "--checkpoint-every", type=non_negative_int, default=20_000, help="steps (0: off)"
    )
    parser.add_argument(
        "--eval-every", type=non_negative_int, default=20_000, help="steps (0: off)"
    )
    parser.add_argument("--eval-images", type=positive_int, default=32)
    parser.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                        help="environment arguments layered over the YAML's env_kwargs, e.g. "
                        "'{\"explainer\": \"rise\", \"explainer_options\": {\"n_masks\": 64}}'")  # fmt: skip
    add_model_arguments(parser, default_model=None, classifier_alias=False,
                        data_help="training data: a dataset name or a folder of images (default: the environment's)")  # fmt: skip
    parser.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true")
    add_device_argument(parser)
    add_engine_arguments(parser)
    ray_group = parser.add_argument_group("RLlib (--engine ray)")
    ray_group.add_argument("--num-env-runners", type=non_negative_int, default=2,
                           help="EnvRunner actors sampling in parallel (0: sample in the driver; default 2)")  # fmt: skip
    ray_group.add_argument("--num-envs-per-runner", type=positive_int, default=8,
                           help="episodes of the native vector env inside each EnvRunner (default 8)")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    check_engine_arguments(args)  # before any folder is made: Ray missing, a dead --address
    if args.resume and args.overwrite:
        raise ValueError("--resume continues the run in --out and --overwrite replaces it: pass one of them")
    check_run_folder(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    env_kwargs = {**(custom_env_kwargs(args) or {}), **(args.env_kwargs or {})} or None
    if args.engine == "ray":
        return run_ray(args, env_kwargs)
    from saliency_gym.agents.agent_training import (
        AgentTrainingConfig,
        TrainingInterrupted,
        train_with_config,
    )

    cfg = AgentTrainingConfig.from_kwargs(
        env_id=args.env, algo=args.algo, timesteps=args.timesteps, seed=args.seed, out=args.out, config=args.config,
        resume=args.resume, n_envs=args.n_envs, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        eval_images=args.eval_images, progress=not args.no_progress, device=args.device or "auto",
        init_from=args.init_from, overwrite=args.overwrite,
    )  # fmt: skip  # validated (the --config file too) before the model is loaded
    cfg.env_kwargs = env_kwargs
    try:
        result = train_with_config(cfg)
    except TrainingInterrupted as stop:  # SIGTERM / SIGINT: a checkpoint was saved; one line, no traceback
        print(f"saliency-gym {NAME}: {stop}", file=sys.stderr)
        return 128 + stop.signum
    return report(result, "")


def json_object(text: str) -> dict[str, object]:
    """``--env-kwargs``: a JSON object (anything else is a usage error that says why)."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object of keyword arguments, got {text!r}")
    return value


def check_run_folder(args: argparse.Namespace) -> None:
    """Fail before loading anything when ``--out`` is inside the installed package or holds a run
    that ``--resume`` / ``--overwrite`` does not ask for (the trainer checks again, holding the
    folder's lock, and does the overwriting)."""
    if args.out is None:
        return
    check_not_shipped(args.out, "run folder")
    if args.overwrite:
        return
    if args.engine == "ray":
        from saliency_gym.distributed import rllib_training as trainer
    else:
        from saliency_gym.agents import agent_training as trainer  # type: ignore[no-redef]
    check_new_run(args.out, trainer.RUN_FILES, resume=args.resume, overwrite=False)


def report(result: Any, where: str) -> int:
    """Print what a training run did (steps, seconds, final held-out scores, the agent's path)."""
    last = result.evaluations[-1] if result.evaluations else {}
    shown = {"insertion_auc": "insertion AUC", "deletion_auc": "deletion AUC", "shift": "attribution shift",
             "topk": "top-k intersection", "label_kept": "label kept"}  # fmt: skip
    scores = "".join(f", {label} {last[key]:.4f}" for key, label in shown.items() if key in last)
    print(f"trained {result.num_timesteps} steps{where} in {result.seconds:.0f} s{scores} -> {result.final_path}")
    return 0


def ray_settings(config: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(hyperparameters, model_config)`` of an ``--engine ray`` run from ``--config`` (a YAML
    mapping of ``PPOConfig.training`` arguments, with an optional ``model_config`` mapping)."""
    if config is None:
        return None, None
    import yaml

    with open(config, encoding="utf-8") as handle:
        params = yaml.safe_load(handle) or {}
    if not isinstance(params, dict):
        raise ValueError(
            f"--config {config}: expected a mapping of PPO hyperparameters, got {type(params).__name__}"
        )
    model_config = params.pop("model_config", None)
    if model_config is not None and not isinstance(model_config, dict):
        raise ValueError(f"--config {config}: model_config must be a mapping")
    return params, model_config


def run_ray(args: argparse.Namespace, env_kwargs: dict[str, object] | None) -> int:
    """``--engine ray``: masked PPO on RLlib (the local-only options must keep their defaults)."""
    if args.algo not in ("maskable_ppo", "ppo"):
        raise ValueError(
            f"--engine ray trains PPO with action masking; --algo {args.algo} runs with --engine local"
        )
    if args.init_from is not None:
        raise ValueError("--init-from is for --engine local (RLlib runs continue with --resume)")
    if args.n_envs is not None:
        raise ValueError(
            "--n-envs is for --engine local; with --engine ray use --num-env-runners and --num-envs-per-runner"
        )
    from saliency_gym.distributed.rllib_training import train_rllib
    from saliency_gym.runs import TrainingInterrupted

    hyperparameters, model_config = ray_settings(args.config)
    try:
        result = train_rllib(
            args.env, args.timesteps, seed=args.seed, num_env_runners=args.num_env_runners,
            num_envs_per_env_runner=args.num_envs_per_runner, env_kwargs=dict(env_kwargs or {}), out=args.out,
            resume=args.resume, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
            eval_images=args.eval_images, hyperparameters=hyperparameters, model_config=model_config,
            device=args.device or "auto", address=args.address, num_cpus=args.num_cpus, progress=not args.no_progress,
            overwrite=args.overwrite,
        )  # fmt: skip
    except TrainingInterrupted as stop:
        print(f"saliency-gym {NAME}: {stop}", file=sys.stderr)
        return 128 + stop.signum
    return report(result, " on RLlib")


def custom_env_kwargs(args: argparse.Namespace) -> dict[str, object] | None:
    """Environment arguments for ``--model``/``--data`` (``None``: the environment's own pair).

    A dataset name alone replaces only the data (``data="digits"``); a model, or a folder of
    images (which is resized to the model), builds both objects.
    """
    model_flags = [flag for flag, value in (("--weights", args.weights), ("--model-kwargs", args.model_kwargs),
                   ("--input-shape", args.input_shape), ("--class-names", args.class_names),
                   ("--normalize", args.normalize)) if value is not None]  # fmt: skip
    if args.model is None:
        if model_flags:
            raise ValueError(f"{', '.join(model_flags)} describe a model: pass --model too")
        if args.data is None:
            return None
        from saliency_gym.data import available_datasets

        if args.data in available_datasets():
            return {"data": args.data}
        raise ValueError(
            f"--data {args.data!r} (a folder or an unknown name) needs --model, the classifier its images are for"
        )
    classifier, data = build_model_and_data(args, split="train")
    # What load_model was given beyond the file (the classifier itself holds the rest), so the
    # agent's metadata can rebuild a module:factory model with its weights.
    from saliency_gym.models.model_files import parse_model_kwargs

    classifier.meta["load_options"] = {
        "weights": None if args.weights is None else os.path.abspath(args.weights),
        "model_kwargs": parse_model_kwargs(args.model_kwargs) or None,
    }
    return {"classifier": classifier, "data": data}
