"""Training agents on the saliency-search environments (``saliency-gym train``).

``train_agent`` builds the native batched vector environment behind SB3's ``VecEnv`` API, the
algorithm from the registry with the YAML hyperparameters of the environment id, and runs
``learn`` with four callbacks: a progress bar, TensorBoard evaluation of insertion/deletion AUC
on a fixed set of held-out images, periodic atomic checkpoints, and a final save. ``resume=True``
continues from ``<out>/checkpoints/last.pt``: the step count, the weights and the optimiser state
carry over, and no earlier checkpoint is removed.

The arguments of a run are an :class:`AgentTrainingConfig` (an :class:`~saliency_gym.options.Options`
dataclass, validated before anything is built). Named ``agent_training`` so it is not confused
with the core's :mod:`saliency_gym.classifier_training`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecMonitor
from tqdm.auto import tqdm

from saliency_gym.agents.agent_checkpoints import load_agent_payload, restore_model, save_agent
from saliency_gym.agents.algorithms import (
    algorithm_spec,
    load_hyperparameters,
    split_hyperparameters,
)
from saliency_gym.agents.policies import AgentPolicy
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.envs.sb3 import SaliencySB3VecEnv
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.options import Options
from saliency_gym.validation import check_int

SALIENCY_ENV_PREFIX = "saliency_gym/Saliency"


@dataclass
class AgentTrainingConfig(Options):
    """What :func:`train_agent` runs (see its arguments); :meth:`validate` checks every field."""

    env_id: str
    algo: str = "maskable_ppo"
    timesteps: int = 200_000
    seed: int = 0
    out: str | os.PathLike[str] | None = None
    config: str | os.PathLike[str] | None = None
    resume: bool = False
    n_envs: int | None = None
    env_kwargs: dict[str, Any] | None = None
    checkpoint_every: int = 20_000
    eval_every: int = 20_000
    eval_images: int = 32
    progress: bool = True
    device: str = "auto"

    def validate(self) -> AgentTrainingConfig:
        algorithm_spec(self.algo)
        if not isinstance(self.env_id, str) or self.env_id not in gym.registry or not self.env_id.startswith(SALIENCY_ENV_PREFIX):
            known = sorted(i for i in gym.registry if i.startswith(SALIENCY_ENV_PREFIX))
            raise ValueError(f"unknown saliency-search environment {self.env_id!r}; choose one of {known}")
        self.timesteps = check_int("timesteps", self.timesteps, minimum=1)
        self.seed = check_int("seed", self.seed, minimum=0)
        self.checkpoint_every = check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        self.eval_every = check_int("eval_every", self.eval_every, minimum=0)
        self.eval_images = check_int("eval_images", self.eval_images, minimum=1)
        if self.n_envs is not None:
            self.n_envs = check_int("n_envs", self.n_envs, minimum=1)
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        self.resume, self.progress = bool(self.resume), bool(self.progress)
        return self

    @property
    def run_folder(self) -> Path:
        """``out``, or ``runs/<env>/<algo>_s<seed>`` by default."""
        return Path(self.out) if self.out is not None else Path("runs") / self.env_id.split("/")[-1] / f"{self.algo}_s{self.seed}"


@dataclass
class TrainResult:
    """What :func:`train_agent` did."""

    final_path: Path
    num_timesteps: int
    seconds: float
    evaluations: list[dict[str, float]] = field(default_factory=list)


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over environment steps (SB3's own needs ``rich``)."""

    def __init__(self, total: int, initial: int) -> None:
        super().__init__()
        self.bar = tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class CheckpointCallback(BaseCallback):
    """Every ``every`` steps: ``checkpoints/step_<n>.pt`` and ``checkpoints/last.pt``, atomically."""

    def __init__(self, folder: Path, every: int, save: Callable[[Path], Path]) -> None:
        super().__init__()
        self.folder, self.every, self.save = folder, every, save
        self._next: int | None = None

    def _on_step(self) -> bool:
        if self._next is None:
            self._next = (self.num_timesteps // self.every + 1) * self.every
        if self.num_timesteps >= self._next:
            self.save(self.folder / f"step_{self.num_timesteps}.pt")
            self.save(self.folder / "last.pt")
            self._next += self.every
        return True


class SaliencyEvalCallback(BaseCallback):
    """Every ``every`` steps: explain fixed held-out images with the current policy (deterministic)
    and log their pixel-level insertion and deletion AUC (RISE's definitions) to TensorBoard."""

    def __init__(self, venv: SaliencySB3VecEnv, images: np.ndarray, every: int) -> None:
        super().__init__()
        self.venv, self.images, self.every = venv, images, every
        self.history: list[dict[str, float]] = []
        self._next: int | None = None

    def evaluate(self) -> dict[str, float]:
        cfg = self.venv.venv.config
        classifier = cfg.classifier
        explainer = PolicyExplainer(
            classifier, AgentPolicy(self.model.policy, observe_score=cfg.observe_score), mode=cfg.mode,
            grid=cfg.grid.shape, substrate=cfg.substrate, observe_score=cfg.observe_score,
        )  # fmt: skip
        with classifier.uncounted():  # evaluation queries are not training queries
            explanation = explainer.explain(self.images)
            ins = insertion_curve(classifier, self.images, explanation.maps, explanation.targets)
            dele = deletion_curve(classifier, self.images, explanation.maps, explanation.targets)
        result = {"step": float(self.num_timesteps), "insertion_auc": float(ins.auc.mean()), "deletion_auc": float(dele.auc.mean())}
        self.history.append(result)
        self.logger.record("eval/insertion_auc", result["insertion_auc"])
        self.logger.record("eval/deletion_auc", result["deletion_auc"])
        return result

    def _on_step(self) -> bool:
        if self._next is None:
            self._next = (self.num_timesteps // self.every + 1) * self.every
        if self.num_timesteps >= self._next:
            self.evaluate()
            self._next += self.every
        return True


def train_agent(
    env_id: str,
    algo: str = "maskable_ppo",
    timesteps: int = 200_000,
    seed: int = 0,
    *,
    out: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    resume: bool = False,
    n_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    checkpoint_every: int = 20_000,
    eval_every: int = 20_000,
    eval_images: int = 32,
    progress: bool = True,
    device: str = "auto",
) -> TrainResult:
    """Train (or resume) an agent and save it to ``<out>/final.pt``.

    Args:
        env_id: a registered saliency-search id, e.g. ``saliency_gym/SaliencyReveal-Shapes-v0``.
        algo: a name from :data:`~saliency_gym.agents.algorithms.ALGORITHMS`.
        timesteps: total environment steps (a resumed run trains until this total).
        seed: seeds the algorithm and the environments.
        out: run folder (TensorBoard logs in ``tb/``, checkpoints in ``checkpoints/``); default
            ``runs/<env>/<algo>_s<seed>``.
        config: extra YAML of hyperparameters layered over the shipped one.
        resume: continue from ``<out>/checkpoints/last.pt`` when it exists.
        n_envs: override the YAML's number of parallel episodes.
        env_kwargs: override environment arguments (merged over the YAML's).
        checkpoint_every, eval_every: in environment steps (0 disables).
        eval_images: held-out test images for the evaluation callback.
        progress: show a progress bar.
        device: torch device of the policy (``"auto"``: CUDA when available).
    """
    cfg = AgentTrainingConfig.from_kwargs(
        env_id=env_id, algo=algo, timesteps=timesteps, seed=seed, out=out, config=config, resume=resume,
        n_envs=n_envs, env_kwargs=env_kwargs, checkpoint_every=checkpoint_every, eval_every=eval_every,
        eval_images=eval_images, progress=progress, device=device,
    )  # fmt: skip
    return train_with_config(cfg)


def evaluation_source(data: DataSource, n: int) -> DataSource | None:
    """``n`` held-out test images of the training data set, or ``None`` (with a warning) when the
    data source has no ``split`` to take them from (then evaluation is off)."""
    if not hasattr(data, "split"):
        warnings.warn(
            f"evaluation is off: the training data {getattr(data, 'name', type(data).__name__)!r} has no "
            "'split', so there are no held-out test images to evaluate the agent on",
            UserWarning,
            stacklevel=2,
        )
        return None
    return load_dataset(data.name, "test", n=n)


def train_with_config(cfg: AgentTrainingConfig) -> TrainResult:
    """Run (or resume) the training described by a validated :class:`AgentTrainingConfig`."""
    spec = algorithm_spec(cfg.algo)
    algo, env_id, seed = cfg.algo, cfg.env_id, cfg.seed
    hyperparameters = load_hyperparameters(env_id, algo, cfg.config)
    yaml_envs, yaml_env_kwargs, algo_kwargs = split_hyperparameters(hyperparameters)
    n_envs = check_int("n_envs", cfg.n_envs if cfg.n_envs is not None else yaml_envs, minimum=1)
    env_kwargs = {**yaml_env_kwargs, **(cfg.env_kwargs or {})}
    out = cfg.run_folder
    ckpt_dir = out / "checkpoints"

    venv = SaliencySB3VecEnv(env_id, num_envs=n_envs, **env_kwargs)
    venv.seed(seed)
    model = spec.cls(spec.policy, VecMonitor(venv), seed=seed, device=cfg.device, verbose=0, tensorboard_log=str(out / "tb"), **algo_kwargs)
    last = ckpt_dir / "last.pt"
    if cfg.resume and last.is_file():
        restore_model(load_agent_payload(last), model)

    def save(path: Path, with_optimizer: bool = True, meta: dict[str, Any] | None = None) -> Path:
        return save_agent(model, path, algo=algo, env_id=env_id, env_kwargs=env_kwargs, hyperparameters=hyperparameters,
                          seed=seed, meta=meta, with_optimizer=with_optimizer)  # fmt: skip

    callbacks: list[BaseCallback] = []
    evaluator = None
    eval_source = evaluation_source(venv.venv.config.data, cfg.eval_images) if cfg.eval_every else None
    if eval_source is not None:
        evaluator = SaliencyEvalCallback(venv, eval_source.arrays().images, cfg.eval_every)
        callbacks.append(evaluator)
    if cfg.checkpoint_every:
        callbacks.append(CheckpointCallback(ckpt_dir, cfg.checkpoint_every, save))
    remaining = cfg.timesteps - model.num_timesteps
    if cfg.progress:
        callbacks.append(ProgressBarCallback(cfg.timesteps, model.num_timesteps))
    start = time.perf_counter()
    try:
        if remaining > 0:
            model.learn(total_timesteps=remaining, callback=CallbackList(callbacks), reset_num_timesteps=False, tb_log_name="run")
    except KeyboardInterrupt:
        save(last)  # an interrupted run resumes from here
        raise
    seconds = time.perf_counter() - start
    if cfg.checkpoint_every:
        save(last)
    final_eval = evaluator.evaluate() if evaluator is not None else {}
    final = save(out / "final.pt", with_optimizer=False, meta={"train_seconds": seconds, **final_eval})
    venv.close()
    return TrainResult(final, int(model.num_timesteps), seconds, evaluator.history if evaluator else [])
