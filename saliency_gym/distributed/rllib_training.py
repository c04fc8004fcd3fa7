"""PPO with action masking on RLlib (``saliency-gym train --engine ray``).

:func:`train_rllib` trains :class:`~saliency_gym.distributed.rllib_module.SaliencyMaskingTorchModule`
with RLlib's PPO (new API stack) on any saliency-search or attribution-attack env id (attack ids
with ``cell_sign`` actions):

- **Where things run.** The driver (this process) holds the Learner (the PPO update, on CUDA when
  ``device`` allows); ``num_env_runners`` EnvRunner actors sample, each with our *native* vector env
  of ``num_envs_per_env_runner`` episodes (``gym_env_vectorize_mode="vector_entry_point"``): one
  batched classifier query per runner step. ``num_env_runners=0`` samples in the driver. The env
  id is given to RLlib as ``"saliency_gym:<id>"``, so every worker imports saliency_gym (and
  registers the ids) on its own; the env runs in Gymnasium's default NEXT_STEP autoreset mode,
  the one RLlib's sampling loop expects.
- **Masking.** The env is built with ``observe_action_mask=True``; the module reads the mask from
  the observation and gives masked actions the dtype's minimum logit, so PPO never samples them.
- **Run folder** (``out``): ``checkpoints/step_<n>/`` (RLlib algorithm checkpoints,
  ``Algorithm.save_to_path``), ``checkpoints/last.json`` (which one is newest, written
  atomically), ``tb/`` (TensorBoard: episode return and length, PPO losses, env steps/s and, for
  saliency-search ids, the held-out insertion / deletion AUC of the current policy, as the local
  trainer logs them) and ``final/`` (the trained RLModule and ``saliency_gym_rllib.json``, which
  :func:`~saliency_gym.distributed.rllib_policy.load_rllib_policy` and the policy explainer open).
- **New runs never start over old ones**: an ``out`` that holds a run is refused unless
  ``resume`` or ``overwrite`` (which removes that run's files first); the default folder is
  ``runs/<env>[/model-<m>_data-<d>]/rllib_ppo_<n>``, the next free ``n``.
- **Resume.** ``resume=True`` restores ``checkpoints/last.json``'s checkpoint
  (``Algorithm.restore_from_path``: weights, optimiser, step counters) and trains on to
  ``timesteps``; the env id, seed, env arguments, PPO hyperparameters and model config must match
  the saved run (``ValueError``), the number of EnvRunners may change.

Ray is started with :func:`~saliency_gym.distributed.cluster.ensure_ray` (``address`` /
``num_cpus``), or used as it is when the caller already initialised it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from saliency_gym.checkpoint import atomic_write
from saliency_gym.distributed.rllib_policy import POLICY_META
from saliency_gym.options import Options, describe_value
from saliency_gym.runs import (
    SignalStop,
    TrainingInterrupted,
    check_new_run,
    check_output_dir,
    check_resume_settings,
    clean_stale_tmp,
    latest_run_folder,
    next_run_folder,
    open_writer,
    removed_if_left_empty,
    run_lock,
    run_numbers,
)
from saliency_gym.validation import check_env_id, check_int, resolve_device

__all__ = [
    "DEFAULT_PPO",
    "RLlibTrainResult",
    "RLlibTrainingConfig",
    "build_ppo_config",
    "rllib_env_id",
    "train_rllib",
]

#: PPO hyperparameters (``PPOConfig.training`` arguments) used unless ``hyperparameters`` overrides
#: them: the local MaskablePPO's settings where RLlib has the same knob (undiscounted AUC rewards).
DEFAULT_PPO: dict[str, Any] = {
    "train_batch_size_per_learner": 1024,
    "minibatch_size": 128,
    "num_epochs": 4,
    "lr": 3e-4,
    "gamma": 1.0,
    "lambda_": 0.95,
    "entropy_coeff": 0.01,
    "clip_param": 0.2,
    "vf_loss_coeff": 0.5,
}
#: Model settings of the module (see :mod:`~saliency_gym.distributed.rllib_module`).
DEFAULT_MODEL: dict[str, Any] = {"channels": 32, "value_hidden": 128}
ENV_PREFIX = "saliency_gym/"
SALIENCY_PREFIX = "saliency_gym/Saliency"
#: What an RLlib run writes in its folder: a folder holding one of them holds a run.
RUN_FILES = ("final", "checkpoints", "tb", POLICY_META)
#: Prefix of the numbered default run folders (``rllib_ppo_<n>``).
RUN_PREFIX = "rllib_ppo"
#: Settings a resumed run must share with its checkpoint.
RESUME_FIXED = ("env_id", "seed", "env_kwargs", "hyperparameters", "model_config")
SETTINGS_FORMAT = "saliency_gym.rllib_run/v1"


@dataclass
class RLlibTrainingConfig(Options):
    """What :func:`train_rllib` runs (see its arguments); :meth:`validate` checks every field."""

    env_id: str
    timesteps: int = 200_000
    seed: int = 0
    num_env_runners: int = 2
    num_envs_per_env_runner: int = 8
    env_kwargs: dict[str, Any] | None = None
    out: str | os.PathLike[str] | None = None
    resume: bool = False
    checkpoint_every: int = 20_000
    eval_every: int = 20_000
    eval_images: int = 32
    hyperparameters: dict[str, Any] | None = None
    model_config: dict[str, Any] | None = None
    device: str = "auto"
    address: str | None = None
    num_cpus: int | None = None
    progress: bool = True
    overwrite: bool = False

    def validate(self) -> RLlibTrainingConfig:
        check_env_id(self.env_id, ENV_PREFIX, "saliency-gym environment")
        self.timesteps = check_int("timesteps", self.timesteps, minimum=1)
        self.seed = check_int("seed", self.seed, minimum=0)
        self.num_env_runners = check_int("num_env_runners", self.num_env_runners, minimum=0)
        self.num_envs_per_env_runner = check_int(
            "num_envs_per_env_runner", self.num_envs_per_env_runner, minimum=1
        )
        self.checkpoint_every = check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        self.eval_every = check_int("eval_every", self.eval_every, minimum=0)
        self.eval_images = check_int("eval_images", self.eval_images, minimum=1)
        for name in ("env_kwargs", "hyperparameters", "model_config"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict or None, got {type(value).__name__}")
        if self.env_kwargs and "observe_action_mask" in self.env_kwargs:
            raise ValueError(
                "env_kwargs must not set observe_action_mask: RLlib training always observes the mask"
            )
        # Only with hyperparameters to check: reading PPOConfig imports Ray, which is checked (with a
        # clear message) when the run starts, so a missing [ray] extra is reported there.
        unknown = sorted(set(self.hyperparameters) - set(_ppo_training_arguments())) if self.hyperparameters else []
        if unknown:
            raise ValueError(
                f"unknown PPO hyperparameter(s) {unknown}; PPOConfig.training takes {_ppo_training_arguments()}"
            )
        if self.device not in ("auto", "cpu") and not str(self.device).startswith("cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {self.device!r}")
        if self.num_cpus is not None:
            self.num_cpus = check_int("num_cpus", self.num_cpus, minimum=1)
        self.resume, self.progress = bool(self.resume), bool(self.progress)
        self.overwrite = bool(self.overwrite)
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues the run, overwrite replaces it")
        return self

    @property
    def run_folder(self) -> Path:
        """``out``, or the default folder (as the local trainer's,
        :func:`~saliency_gym.agents.agent_training.default_run_group`): for a new run the next
        ``rllib_ppo_<n>`` (not created here), for ``resume`` the latest."""
        from saliency_gym.agents.agent_training import default_run_group

        if self.out is not None:
            return Path(self.out)
        group = default_run_group(self.env_id, self.env_kwargs)
        if self.resume:
            return latest_run_folder(group, RUN_PREFIX)
        return group / f"{RUN_PREFIX}_{max(run_numbers(group, RUN_PREFIX), default=0) + 1}"


@dataclass
class RLlibTrainResult:
    """What :func:`train_rllib` did: the final module folder, the environment steps sampled in
    all (a resumed run counts from its checkpoint), training seconds, the held-out evaluations
    (saliency-search ids), the last algorithm checkpoint, the masked actions that reached the
    environment (``invalid_action`` infos: 0 when masking works) and the PPO iterations this call ran."""

    final_path: Path
    num_timesteps: int
    seconds: float
    evaluations: list[dict[str, float]] = field(default_factory=list)
    checkpoint: Path | None = None
    invalid_actions: int = 0
    iterations: int = 0


#: The EnvRunner metric counting steps whose info says ``invalid_action`` (a masked action taken).
INVALID_ACTIONS = "invalid_actions"


def invalid_action_counter() -> type:
    """The RLlib callback class that counts, in every EnvRunner, the steps whose ``info`` reports
    ``invalid_action`` (saliency search: a cell chosen again, which the mask forbids); the count
    per PPO iteration is ``result["env_runners"]["invalid_actions"]``. A class built on first use,
    so importing this module does not import Ray's callbacks."""
    from ray.rllib.callbacks.callbacks import RLlibCallback

    class InvalidActionCounter(RLlibCallback):
        """Counts masked actions that reached the environment (0 when masking works)."""

        def on_episode_step(
            self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any
        ) -> None:
            info = episode.get_infos(-1)
            if metrics_logger is not None and isinstance(info, dict) and info.get("invalid_action"):
                metrics_logger.log_value(INVALID_ACTIONS, 1, reduce="sum")

    return InvalidActionCounter


def _ppo_training_arguments() -> list[str]:
    import inspect

    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.algorithms.ppo import PPOConfig

    names = set()
    for method in (
        PPOConfig.training,
        AlgorithmConfig.training,
    ):  # PPO's passes **kwargs to the base's
        params = inspect.signature(method).parameters.values()
        names |= {
            p.name
            for p in params
            if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
        }
    return sorted(names)


def rllib_env_id(env_id: str) -> str:
    """The id RLlib's EnvRunners make: ``"saliency_gym:<id>"``, so Gymnasium imports saliency_gym
    (which registers the ids) in every worker process before looking the id up."""
    return env_id if ":" in env_id else f"saliency_gym:{env_id}"


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists...), for stored settings."""
    return json.loads(json.dumps(describe_value(value)))


def build_ppo_config(
    env_id: str,
    *,
    env_kwargs: dict[str, Any],
    grid: tuple[int, int],
    seed: int,
    num_env_runners: int,
    num_envs_per_env_runner: int,
    hyperparameters: dict[str, Any],
    model_config: dict[str, Any],
    num_gpus_per_learner: int = 0,
) -> Any:
    """The ``PPOConfig`` of a run: our native vector env inside each EnvRunner, the masking
    module, the given PPO ``training()`` arguments, ``seed`` for the workers and the envs."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from saliency_gym.distributed.rllib_module import SaliencyMaskingTorchModule

    batch = int(hyperparameters["train_batch_size_per_learner"])
    # Each runner samples an equal share of the batch per iteration, in whole vector steps.
    fragment = max(1, math.ceil(batch / (max(1, num_env_runners) * num_envs_per_env_runner)))
    return (
        PPOConfig()
        .environment(rllib_env_id(env_id), env_config={**env_kwargs, "observe_action_mask": True})
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=num_envs_per_env_runner,
            gym_env_vectorize_mode="vector_entry_point",
            rollout_fragment_length=fragment,
        )
        .training(**hyperparameters)
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=SaliencyMaskingTorchModule,
                model_config={**model_config, "grid": tuple(grid)},
            )
        )  # fmt: skip
        .learners(num_learners=0, num_gpus_per_learner=num_gpus_per_learner)
        .callbacks(invalid_action_counter())
        .debugging(seed=seed)
    )


def train_rllib(
    env_id: str,
    timesteps: int = 200_000,
    *,
    seed: int = 0,
    num_env_runners: int = 2,
    num_envs_per_env_runner: int = 8,
    env_kwargs: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    resume: bool = False,
    checkpoint_every: int = 20_000,
    eval_every: int = 20_000,
    eval_images: int = 32,
    hyperparameters: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    device: str = "auto",
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> RLlibTrainResult:
    """Train (or resume) masked PPO on RLlib and write the run folder (see the module docstring).

    Args:
        env_id: a registered saliency-gym id (saliency search, or attack with ``cell_sign`` actions).
        timesteps: total environment steps to sample (a resumed run trains on to this total);
            training stops after the first PPO iteration that reaches it.
        seed: seeds RLlib (workers, module initialisation) and the environments.
        num_env_runners: EnvRunner actors (0: sample in this process).
        num_envs_per_env_runner: episodes of the native vector env inside each EnvRunner.
        env_kwargs: environment arguments (``observe_action_mask`` is always on).
        out: run folder; default ``runs/<env>/rllib_ppo_s<seed>``.
        resume: continue from ``<out>/checkpoints/last.json`` (``FileNotFoundError`` without it).
        checkpoint_every, eval_every: in environment steps (0 disables; a final checkpoint and,
            for saliency-search ids, a final evaluation are always made).
        eval_images: held-out test images of the training data for the insertion/deletion AUC.
        hyperparameters: ``PPOConfig.training`` arguments over :data:`DEFAULT_PPO`.
        model_config: module settings over :data:`DEFAULT_MODEL` (``channels``, ``value_hidden``).
        device: the Learner's device (``"auto"``: CUDA when available; EnvRunners use the CPU).
        address, num_cpus: where Ray runs (:func:`~saliency_gym.distributed.cluster.ensure_ray`).
        progress: print one line per PPO iteration.
        overwrite: start over in an ``out`` that holds a run (:data:`RUN_FILES`), removing that
            run's files first; without it (or ``resume``) such a folder is refused
            (``FileExistsError``).
    """
    cfg = RLlibTrainingConfig.from_kwargs(
        env_id=env_id, timesteps=timesteps, seed=seed, num_env_runners=num_env_runners,
        num_envs_per_env_runner=num_envs_per_env_runner, env_kwargs=env_kwargs, out=out, resume=resume,
        checkpoint_every=checkpoint_every, eval_every=eval_every, eval_images=eval_images,
        hyperparameters=hyperparameters, model_config=model_config, device=device, address=address,
        num_cpus=num_cpus, progress=progress, overwrite=overwrite,
    )  # fmt: skip
    return train_rllib_with_config(cfg)


def train_rllib_with_config(cfg: RLlibTrainingConfig) -> RLlibTrainResult:
    """Run (or resume) the training described by a validated :class:`RLlibTrainingConfig`.

    Ray and the cluster address are checked before the run folder is made, so a missing ``[ray]``
    extra or a dead address leaves no folder behind; a folder that holds a run is refused without
    ``resume`` or ``overwrite`` (:func:`~saliency_gym.runs.check_new_run`).
    """
    from saliency_gym.distributed.cluster import check_ray_address, require_ray

    require_ray("train --engine ray")
    import ray

    if not ray.is_initialized():  # ensure_ray connects later; a dead address fails now, in seconds
        check_ray_address(cfg.address or os.environ.get("RAY_ADDRESS"))
    existed = cfg.out is not None and Path(cfg.out).exists()
    if cfg.out is None:  # claim the default folder's number now; the run uses this one folder
        from saliency_gym.agents.agent_training import default_run_group

        group = default_run_group(cfg.env_id, cfg.env_kwargs)
        cfg.out = latest_run_folder(group, RUN_PREFIX) if cfg.resume else next_run_folder(group, RUN_PREFIX)
    out = cfg.run_folder
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.json"
    with removed_if_left_empty(out, existed=existed):
        if cfg.resume and not last.is_file():
            raise FileNotFoundError(
                f"resume: no checkpoint at {last} (run without --resume to start a new run)"
            )
        check_output_dir(out, "run folder")
        with run_lock(out), torch_determinism_kept():
            clean_stale_tmp(ckpt_dir)
            check_new_run(out, RUN_FILES, resume=cfg.resume, overwrite=cfg.overwrite)
            return _train_locked(cfg, out, ckpt_dir, last)


@contextlib.contextmanager
def torch_determinism_kept() -> Iterator[None]:
    """Restore torch's global determinism switches afterwards.

    RLlib's seeding (``set_torch_seed``, called when the Learner is built in this process) turns
    on ``torch.use_deterministic_algorithms(True)`` process-wide on CPU builds; left on, it breaks
    later work in the same process that has no deterministic kernel (Captum's DeepLIFT on a
    max-pooling network raises, for one).
    """
    import torch

    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _probe_env(cfg: RLlibTrainingConfig, env_kwargs: dict[str, Any]) -> Any:
    """The env built here once: checks the arguments before Ray starts and tells the grid, the
    family and the spaces (``ValueError`` for actions the masking module cannot take)."""
    env = gym.make(cfg.env_id, **env_kwargs, observe_action_mask=True)
    if not isinstance(env.action_space, gym.spaces.Discrete):
        env.close()
        raise ValueError(f"RLlib training needs discrete actions; {cfg.env_id} has {env.action_space} "
                         "(for attacks use action_type='cell_sign')")  # fmt: skip
    return env


def _policy_meta(
    cfg: RLlibTrainingConfig, config: Any, stored_env_kwargs: dict[str, Any], steps: int
) -> dict[str, Any]:
    from saliency_gym.distributed.rllib_policy import POLICY_FORMAT

    saliency = cfg.env_id.startswith(SALIENCY_PREFIX)
    substrate = (cfg.env_kwargs or {}).get("substrate")
    return {
        "format": POLICY_FORMAT,
        "family": "saliency" if saliency else "attack",
        "env_id": cfg.env_id,
        "env_kwargs": stored_env_kwargs,
        "mode": getattr(config, "mode", None),
        "grid": list(config.grid.shape),
        # A substrate given by name or number is stored; None: the mode's default (or not storable).
        "substrate": substrate
        if isinstance(substrate, (str, int, float)) and not isinstance(substrate, bool)
        else None,
        "observe_score": bool(getattr(config, "observe_score", False)),
        "observe_class": bool(getattr(config, "observe_class", False)),
        "num_timesteps": int(steps),
        "seed": cfg.seed,
        "name": cfg.run_folder.resolve().name,
    }


def _write_json(path: Path, payload: dict[str, Any]) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(payload, indent=1)))


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    """The TensorBoard scalars of one PPO iteration's result."""
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        EPISODE_LEN_MEAN,
        EPISODE_RETURN_MEAN,
        LEARNER_RESULTS,
    )

    runners = result.get(ENV_RUNNER_RESULTS, {})
    scalars: dict[str, float] = {"rollout/invalid_actions": float(runners.get(INVALID_ACTIONS, 0))}
    for name, key in (
        ("rollout/ep_rew_mean", EPISODE_RETURN_MEAN),
        ("rollout/ep_len_mean", EPISODE_LEN_MEAN),
    ):
        value = runners.get(key)
        if value is not None and np.isfinite(value):
            scalars[name] = float(value)
    learner = result.get(LEARNER_RESULTS, {}).get("default_policy", {})
    for key in (
        "policy_loss",
        "vf_loss",
        "entropy",
        "mean_kl_loss",
        "vf_explained_var",
        "total_loss",
    ):
        value = learner.get(key)
        if value is not None and np.isfinite(value):
            scalars[f"train/{key}"] = float(value)
    return scalars


def _learner_module(algo: Any, probe: Any, model_config: dict[str, Any], device: str) -> Any:
    """A copy of the Learner's current module (the weights PPO just updated), built here."""
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    from saliency_gym.distributed.rllib_module import SaliencyMaskingTorchModule

    spec = RLModuleSpec(module_class=SaliencyMaskingTorchModule, observation_space=probe.observation_space,
                        action_space=probe.action_space, model_config=model_config)  # fmt: skip
    module = spec.build()
    assert isinstance(module, SaliencyMaskingTorchModule)
    module.set_state(algo.learner_group.get_weights([DEFAULT_MODULE_ID])[DEFAULT_MODULE_ID])
    return module.to(device)


class _Evaluator:
    """Held-out insertion / deletion AUC of the current policy (saliency-search ids), with the
    local trainer's images (:func:`~saliency_gym.agents.agent_training.evaluation_source`) and
    metrics (RISE's pixel-level curves), through the policy explainer."""

    def __init__(self, config: Any, images: np.ndarray) -> None:
        self.config, self.images = config, images
        self.history: list[dict[str, float]] = []

    def __call__(self, module: Any, step: int) -> dict[str, float]:
        from saliency_gym.agents.policy_explainer import PolicyExplainer
        from saliency_gym.distributed.rllib_policy import RLlibPolicy
        from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve

        cfg = self.config
        classifier = cfg.classifier
        policy = RLlibPolicy(module, name="rllib_ppo", device=str(classifier.device))
        explainer = PolicyExplainer(classifier, policy, mode=cfg.mode, grid=cfg.grid.shape, substrate=cfg.substrate,
                                    observe_score=cfg.observe_score)  # fmt: skip
        with classifier.uncounted():  # evaluation queries are not training queries
            explanation = explainer.explain(self.images)
            ins = insertion_curve(classifier, self.images, explanation.maps, explanation.targets)
            dele = deletion_curve(classifier, self.images, explanation.maps, explanation.targets)
        result = {
            "step": float(step),
            "insertion_auc": float(ins.auc.mean()),
            "deletion_auc": float(dele.auc.mean()),
        }
        self.history.append(result)
        return result


def _train_locked(
    cfg: RLlibTrainingConfig, out: Path, ckpt_dir: Path, last: Path
) -> RLlibTrainResult:
    from functools import partial

    from saliency_gym.agents.agent_training import (
        evaluation_source,
        holdout_split,
        storable_env_kwargs,
    )
    from saliency_gym.data import DataSource
    from saliency_gym.distributed.cluster import ensure_ray
    from saliency_gym.distributed.rllib_policy import POLICY_META

    env_kwargs = dict(cfg.env_kwargs or {})
    held_out = None
    if isinstance(env_kwargs.get("data"), DataSource) and not hasattr(env_kwargs["data"], "split"):
        parts = holdout_split(env_kwargs["data"])  # as the local trainer: evaluate on a held-out part
        if parts is not None:
            env_kwargs["data"], held_out = parts
    hyperparameters = {**DEFAULT_PPO, **(cfg.hyperparameters or {})}
    model_config = {**DEFAULT_MODEL, **(cfg.model_config or {})}
    probe = _probe_env(cfg, env_kwargs)
    config = probe.unwrapped.config
    grid = tuple(config.grid.shape)
    model_config["grid"] = grid
    stored_env_kwargs = _jsonable(storable_env_kwargs(env_kwargs))
    settings = {"env_id": cfg.env_id, "seed": cfg.seed, "env_kwargs": stored_env_kwargs,
                "hyperparameters": _jsonable(hyperparameters), "model_config": _jsonable(model_config)}  # fmt: skip
    restore_from: Path | None = None
    if cfg.resume:
        saved = json.loads(last.read_text())
        check_resume_settings(saved.get("settings", {}), settings, RESUME_FIXED, last,
                              hint="; resume with the saved settings or train into another --out")  # fmt: skip
        restore_from = ckpt_dir / saved["path"]
        if not restore_from.is_dir():
            raise FileNotFoundError(f"resume: {last} names {restore_from}, which does not exist")

    device = str(resolve_device(cfg.device))
    ensure_ray(cfg.address, cfg.num_cpus)
    ppo = build_ppo_config(
        cfg.env_id, env_kwargs=env_kwargs, grid=grid, seed=cfg.seed, num_env_runners=cfg.num_env_runners,
        num_envs_per_env_runner=cfg.num_envs_per_env_runner, hyperparameters=hyperparameters,
        model_config=model_config, num_gpus_per_learner=int(device.startswith("cuda")),
    )  # fmt: skip
    algo = ppo.build_algo()
    try:
        return _run(cfg, algo, probe, config, out, ckpt_dir, last, settings, model_config, stored_env_kwargs,
                    restore_from, device, partial(evaluation_source, held_out=held_out), POLICY_META)  # fmt: skip
    finally:
        algo.stop()
        probe.close()


def _run(
    cfg: RLlibTrainingConfig, algo: Any, probe: Any, config: Any, out: Path, ckpt_dir: Path, last: Path,
    settings: dict[str, Any], model_config: dict[str, Any], stored_env_kwargs: dict[str, Any],
    restore_from: Path | None, device: str, evaluation_source: Any, policy_meta_name: str,
) -> RLlibTrainResult:  # fmt: skip
    from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

    steps = 0
    if restore_from is not None:
        algo.restore_from_path(str(restore_from.resolve()))
        steps = int(json.loads(last.read_text())["num_timesteps"])
    _write_json(out / policy_meta_name, _policy_meta(cfg, config, stored_env_kwargs, steps))

    def checkpoint(step: int) -> Path:
        path = ckpt_dir / f"step_{step}"
        algo.save_to_path(str(path.resolve()))
        _write_json(
            last,
            {
                "format": SETTINGS_FORMAT,
                "path": path.name,
                "num_timesteps": step,
                "settings": settings,
            },
        )
        return path

    evaluator = None
    if cfg.env_id.startswith(SALIENCY_PREFIX):
        source = evaluation_source(config.data, cfg.eval_images)
        if source is not None:
            evaluator = _Evaluator(config, source.arrays().images)
    writer = open_writer(out / "tb", purge_step=steps if restore_from is not None else None)
    writer.add_text("settings", json.dumps({**settings, "num_env_runners": cfg.num_env_runners,
                                            "num_envs_per_env_runner": cfg.num_envs_per_env_runner}), steps)  # fmt: skip

    def evaluate(step: int) -> dict[str, float]:
        assert evaluator is not None
        result = evaluator(_learner_module(algo, probe, model_config, device), step)
        writer.add_scalar("eval/insertion_auc", result["insertion_auc"], step)
        writer.add_scalar("eval/deletion_auc", result["deletion_auc"], step)
        writer.flush()
        return result

    next_ckpt = (
        (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every if cfg.checkpoint_every else None
    )
    next_eval = (steps // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
    last_path: Path | None = restore_from
    invalid = iterations = 0
    signals = SignalStop()
    start = time.perf_counter()
    try:
        with signals:
            while steps < cfg.timesteps:
                tick = time.perf_counter()
                result = algo.train()
                iterations += 1
                new_steps = int(result.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, steps))
                rate = (new_steps - steps) / max(time.perf_counter() - tick, 1e-9)
                steps = new_steps
                scalars = {**_scalars(result), "time/env_steps_per_s": rate}
                invalid += int(scalars["rollout/invalid_actions"])
                for name, value in scalars.items():
                    writer.add_scalar(name, value, steps)
                if cfg.progress:
                    shown = ", ".join(
                        f"{k.split('/')[-1]} {v:.4g}"
                        for k, v in scalars.items()
                        if k.startswith(("rollout", "time"))
                    )
                    print(f"[rllib] step {steps}/{cfg.timesteps}: {shown}", flush=True)
                if signals.signum is not None:
                    last_path = checkpoint(steps)
                    raise TrainingInterrupted(signals.signum, last, steps)
                if next_ckpt is not None and steps >= next_ckpt and steps < cfg.timesteps:
                    last_path = checkpoint(steps)
                    next_ckpt = (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
                if (
                    evaluator is not None
                    and next_eval is not None
                    and steps >= next_eval
                    and steps < cfg.timesteps
                ):
                    evaluate(steps)
                    next_eval = (steps // cfg.eval_every + 1) * cfg.eval_every
    except TrainingInterrupted:
        writer.close()
        raise
    seconds = time.perf_counter() - start
    if last_path is None or last_path.name != f"step_{steps}":
        last_path = checkpoint(steps)
    final_eval = evaluate(steps) if evaluator is not None else {}
    writer.close()
    final = out / "final"
    _learner_module(algo, probe, model_config, "cpu").save_to_path(str(final.resolve()))
    meta = _policy_meta(cfg, config, stored_env_kwargs, steps)
    _write_json(final / policy_meta_name, {**meta, "train_seconds": seconds, **final_eval})
    _write_json(out / policy_meta_name, meta)
    return RLlibTrainResult(
        final,
        steps,
        seconds,
        evaluator.history if evaluator else [],
        last_path,
        invalid,
        iterations,
    )
