"""Training agents on the saliency-search and attribution-attack environments (``saliency-gym train``).

``train_agent`` builds the native batched vector environment behind SB3's ``VecEnv`` API, the
algorithm from the registry with the YAML hyperparameters of the environment id, and runs
``learn`` with four callbacks: a progress bar, TensorBoard evaluation of insertion/deletion AUC
(for an attack environment: the attribution shift, :class:`AttackEvalCallback`) on a fixed set of
held-out images (a shipped dataset's test split; for data without splits, such as
an image folder, a seeded held-out part of it that training never sees: :func:`holdout_split`),
periodic atomic checkpoints, and a final save. ``resume=True`` continues from ``<out>/checkpoints/last.pt``: the step count, the weights and the optimiser state
carry over, and no earlier checkpoint is removed. A new run never starts over an old one: a folder
that holds a run is refused unless ``overwrite=True`` (which removes that run's files first), and
the default folder is ``runs/<env>[/model-<m>_data-<d>]/<algo>_<n>``, numbered as rl-zoo numbers
its runs (:func:`default_run_group`). Every checkpoint records the classifier and data it was
trained on (:func:`~saliency_gym.agents.policy_explainer.model_record`), so an agent trained on
your own model reopens. The run folder is locked while a run uses it
(``<out>/.lock``), ``last.pt`` is always a copy of the newest ``step_<n>.pt``, SIGTERM and SIGINT
save a checkpoint and stop (:class:`TrainingInterrupted`), and a step total that is not a whole
number of rollouts is announced (SB3 rounds it up).

The arguments of a run are an :class:`AgentTrainingConfig` (an :class:`~saliency_gym.options.Options`
dataclass, validated before anything is built). Named ``agent_training`` so it is not confused
with the core's :mod:`saliency_gym.classifier_training`.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import HParam, Image
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecMonitor
from tqdm.auto import tqdm

from saliency_gym.agents.agent_checkpoints import (
    load_agent_payload,
    restore_model,
    save_agent,
    save_step_checkpoint,
)
from saliency_gym.agents.algorithms import (
    algorithm_spec,
    load_hyperparameters,
    split_hyperparameters,
)
from saliency_gym.agents.policies import AgentPolicy
from saliency_gym.agents.policy_explainer import (
    DATA_META,
    MODEL_META,
    PolicyExplainer,
    data_record,
    model_record,
)
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.envs.render import explanation_rows
from saliency_gym.envs.sb3 import SaliencySB3VecEnv
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.options import Options
from saliency_gym.runs import (
    SignalStop,
    TrainingInterrupted,
    check_new_run,
    check_output_dir,
    check_resume_settings,
    clean_stale_tmp,
    latest_run_folder,
    next_run_folder,
    removed_if_left_empty,
    run_lock,
    run_numbers,
    run_slug,
)
from saliency_gym.validation import check_env_id, check_int

SALIENCY_ENV_PREFIX = "saliency_gym/Saliency"
ATTACK_ENV_PREFIX = "saliency_gym/AttributionAttack"
#: The environment families ``train_agent`` trains on.
TRAINABLE_ENV_PREFIXES = (SALIENCY_ENV_PREFIX, ATTACK_ENV_PREFIX)
#: What a local run writes in its folder: a folder holding one of them holds a run.
RUN_FILES = ("final.pt", "final.zip", "checkpoints", "tb")


def _label(value: Any) -> str:
    """A short name of an environment argument: an object's ``name``, a path's stem, or the text."""
    name = getattr(value, "name", None)
    if isinstance(name, str) and not isinstance(value, (str, os.PathLike)):
        return name
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else type(value).__name__
    return Path(text).stem if (os.sep in text or Path(text).suffix) else text


def default_run_group(env_id: str, env_kwargs: dict[str, Any] | None = None, root: str | os.PathLike[str] = "runs") -> Path:
    """The folder default runs of ``env_id`` are numbered in: ``runs/<env>``, or, with a classifier
    or data of your own, ``runs/<env>/model-<m>_data-<d>`` (a short slug of each), so runs on other
    models never share numbers, folders or TensorBoard logs with the environment's own."""
    group = Path(root) / run_slug(env_id.split("/")[-1])
    kwargs = env_kwargs or {}
    parts = [f"{what}-{run_slug(_label(kwargs[key]), 24)}" for key, what in (("classifier", "model"), ("data", "data"))
             if kwargs.get(key) is not None]  # fmt: skip
    return group / "_".join(parts) if parts else group


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
    init_from: str | os.PathLike[str] | None = None
    overwrite: bool = False

    def validate(self) -> AgentTrainingConfig:
        algorithm_spec(self.algo)
        check_env_id(self.env_id, TRAINABLE_ENV_PREFIXES, "saliency-search or attribution-attack environment")
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
        self.overwrite = bool(self.overwrite)
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues the run, overwrite replaces it")
        if self.init_from is not None and not isinstance(self.init_from, (str, os.PathLike)):
            raise TypeError(f"init_from must be an agent name or path, got {type(self.init_from).__name__}")
        load_hyperparameters(self.env_id, self.algo, self.config)  # a bad --config fails here, before any folder
        return self

    @property
    def run_folder(self) -> Path:
        """``out``, or the default folder: for a new run the next number in
        :func:`default_run_group` (``<algo>_<n>``, not created here), for ``resume`` the latest."""
        if self.out is not None:
            return Path(self.out)
        group = default_run_group(self.env_id, self.env_kwargs)
        if self.resume:
            return latest_run_folder(group, self.algo)
        return group / f"{self.algo}_{max(run_numbers(group, self.algo), default=0) + 1}"

    def claim_run_folder(self) -> Path:
        """:attr:`run_folder`, a new default one created now (claiming its number), and stored as
        :attr:`out` so the run uses this one folder throughout."""
        if self.out is None:
            group = default_run_group(self.env_id, self.env_kwargs)
            self.out = latest_run_folder(group, self.algo) if self.resume else next_run_folder(group, self.algo)
        return Path(self.out)


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
    """Every ``every`` steps: ``checkpoints/step_<n>.pt``, then ``checkpoints/last.pt`` as a copy of
    it, atomically. Saved at the start of a rollout, so the weights are those updated on every step
    counted (a checkpoint taken mid-rollout would count steps whose update it lacks)."""

    def __init__(self, every: int, save: Callable[[], Path]) -> None:
        super().__init__()
        self.every, self.save = every, save
        self._next: int | None = None

    def _on_rollout_start(self) -> None:
        if self._next is None:
            self._next = (self.num_timesteps // self.every + 1) * self.every
        elif self.num_timesteps >= self._next:
            self.save()
            self._next = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        return True


class HParamsCallback(BaseCallback):
    """Writes the run's settings as TensorBoard hparams when training starts, so runs can be
    compared in TensorBoard's HPARAMS tab against their held-out insertion/deletion AUC."""

    def __init__(self, hparams: dict[str, Any]) -> None:
        super().__init__()
        self.hparams = hparams

    def _on_training_start(self) -> None:
        metrics: dict[str, float] = {
            "eval/insertion_auc": 0.0,
            "eval/deletion_auc": 0.0,
            "rollout/ep_rew_mean": 0.0,
        }
        self.logger.record("hparams", HParam(self.hparams, metrics), exclude=TENSORBOARD_ONLY)

    def _on_step(self) -> bool:
        return True


def hparam_values(
    settings: dict[str, Any], prefix: str = ""
) -> dict[str, bool | str | float | int]:
    """Flatten nested settings into TensorBoard hparam values (numbers, booleans and strings; other
    values, lists included, as their ``repr``), keys joined with ``/``."""
    out: dict[str, bool | str | float | int] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(hparam_values(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif isinstance(value, np.generic):
            out[name] = value.item()
        else:
            out[name] = repr(value)
    return out


class StopCallback(BaseCallback):
    """Stops ``learn`` at the next environment step once ``signals`` caught SIGTERM or SIGINT, and
    remembers the step count at the start of the current rollout: the weights are those of that
    step, since the unfinished rollout never reaches an update."""

    def __init__(self, signals: SignalStop) -> None:
        super().__init__()
        self.signals = signals
        self.rollout_start: int | None = None

    @property
    def signum(self) -> int | None:
        return self.signals.signum

    def _on_rollout_start(self) -> None:
        self.rollout_start = self.num_timesteps

    def _on_step(self) -> bool:
        return self.signals.signum is None


#: TensorBoard only: keeps images and hparams out of the stdout, CSV and JSON logs.
TENSORBOARD_ONLY = ("stdout", "log", "json", "csv")
#: Held-out explanations drawn into TensorBoard's image tab at each evaluation.
EXAMPLE_MAPS = 4


class SaliencyEvalCallback(BaseCallback):
    """Every ``every`` steps: explain fixed held-out images with the current policy (deterministic)
    and log their pixel-level insertion and deletion AUC (RISE's definitions) to TensorBoard, with
    the first :data:`EXAMPLE_MAPS` images and their saliency maps as the image ``eval/maps``."""

    def __init__(self, venv: SaliencySB3VecEnv, images: np.ndarray, every: int) -> None:
        super().__init__()
        self.venv, self.images, self.every = venv, images, every
        self.history: list[dict[str, float]] = []
        self._next: int | None = None
        self._started = time.perf_counter()
        self._eval_seconds = 0.0

    def _on_training_start(self) -> None:
        self._started, self._eval_seconds = time.perf_counter(), 0.0

    def evaluate(self) -> dict[str, float]:
        """Evaluate now; ``"seconds"`` is this call's training wall time so far, evaluations excluded
        (the x axis of learning curves over time)."""
        began = time.perf_counter()
        result = self._evaluate()
        result["seconds"] = began - self._started - self._eval_seconds
        self._eval_seconds += time.perf_counter() - began
        return result

    def _evaluate(self) -> dict[str, float]:
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
        result = {
            "step": float(self.num_timesteps),
            "insertion_auc": float(ins.auc.mean()),
            "deletion_auc": float(dele.auc.mean()),
        }
        self.history.append(result)
        self.logger.record("eval/insertion_auc", result["insertion_auc"])
        self.logger.record("eval/deletion_auc", result["deletion_auc"])
        shown = slice(0, EXAMPLE_MAPS)
        names = classifier.class_names
        titles = [
            f"{names[int(t)] if names else int(t)}: ins {a:.2f}"
            for t, a in zip(explanation.targets[shown], ins.auc[shown], strict=True)
        ]
        picture = explanation_rows(self.images[shown], np.asarray(explanation.maps[shown]), titles)
        self.logger.record("eval/maps", Image(picture, "HWC"), exclude=TENSORBOARD_ONLY)
        return result

    def final(self) -> dict[str, float]:
        """Evaluate after training and write the scalars now (``learn`` dumps nothing after its last
        rollout, so a final evaluation that is only recorded never reaches TensorBoard)."""
        result = self.evaluate()
        self.logger.dump(step=self.num_timesteps)
        return result

    def _on_step(self) -> bool:
        if self._next is None:
            self._next = (self.num_timesteps // self.every + 1) * self.every
        if self.num_timesteps >= self._next:
            self.evaluate()
            self._next += self.every
        return True


class AttackEvalCallback(SaliencyEvalCallback):
    """:class:`SaliencyEvalCallback` for the attribution-attack environments: every ``every`` steps,
    attack fixed held-out images with the current policy (deterministic,
    :func:`~saliency_gym.agents.attack_rollout.policy_attack`, best label-kept state) and log
    ``eval/shift`` (the environment's dissimilarity), ``eval/topk``, ``eval/lens_recall`` and
    ``eval/topk_div`` (similarities after the attack: lower is a stronger attack) and
    ``eval/label_kept``."""

    def _evaluate(self) -> dict[str, float]:
        from saliency_gym.agents.attack_rollout import policy_attack
        from saliency_gym.baselines.attacks import attribution_similarities
        from saliency_gym.metrics.similarity import dissimilarity

        cfg = self.venv.venv.config
        with cfg.classifier.uncounted():  # evaluation queries are not training queries
            result = policy_attack(self.model, cfg.explainer, self.images, cfg.epsilon, env_kwargs=cfg.episode_kwargs())
        sims = attribution_similarities(result.original_maps, result.adversarial_maps, k=cfg.k, w=cfg.w)
        shift = dissimilarity(cfg.dissimilarity, result.original_maps, result.adversarial_maps, k=cfg.k, w=cfg.w, nan_value=cfg.nan_value)
        values = {"shift": float(np.mean(shift)), **{name: float(v.mean()) for name, v in sims.items()},
                  "label_kept": float(result.label_kept.mean())}  # fmt: skip
        for name, value in values.items():
            self.logger.record(f"eval/{name}", value)
        result_row = {"step": float(self.num_timesteps), **values}
        self.history.append(result_row)
        return result_row


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
    init_from: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train (or resume) an agent and save it to ``<out>/final.pt`` and, as a standard SB3 zip with
    our metadata inside, ``<out>/final.zip``.

    Args:
        env_id: a registered saliency-search id, e.g. ``saliency_gym/SaliencyReveal-Shapes-v0``.
        algo: a name from :data:`~saliency_gym.agents.algorithms.ALGORITHMS`.
        timesteps: total environment steps (a resumed run trains until this total).
        seed: seeds the algorithm and the environments.
        out: run folder (TensorBoard logs in ``tb/``, checkpoints in ``checkpoints/``); default
            ``runs/<env>[/model-<m>_data-<d>]/<algo>_<n>``, the next free ``n`` (with ``resume``:
            the latest). A folder that holds a run (``final.pt``, checkpoints, TensorBoard logs)
            is refused (``FileExistsError``) unless ``resume`` or ``overwrite``.
        config: extra YAML of hyperparameters layered over the shipped one (keys and value types
            checked: :func:`~saliency_gym.agents.algorithms.load_hyperparameters`).
        resume: continue from ``<out>/checkpoints/last.pt`` (``FileNotFoundError`` when there is
            none; ``ValueError`` when its env id, algorithm, seed, environment arguments or
            hyperparameters differ from this call's).
        n_envs: override the YAML's number of parallel episodes.
        env_kwargs: override environment arguments (merged over the YAML's).
        checkpoint_every, eval_every: in environment steps (0 disables).
        eval_images: held-out test images for the evaluation callback.
        progress: show a progress bar.
        device: torch device of the policy (``"auto"``: CUDA when available).
        init_from: start from this agent's weights (a shipped name or a ``.pt``/``.zip`` file of
            the same algorithm and network) instead of a fresh network: fine-tuning, e.g. to
            another classifier (``env_kwargs={"classifier": "shapes_robust"}``). Ignored when
            resuming (the checkpoint has the weights).
        overwrite: start over in an ``out`` that holds a run, removing that run's files
            (:data:`RUN_FILES`) first; anything else in the folder stays.
    """
    cfg = AgentTrainingConfig.from_kwargs(
        env_id=env_id, algo=algo, timesteps=timesteps, seed=seed, out=out, config=config, resume=resume,
        n_envs=n_envs, env_kwargs=env_kwargs, checkpoint_every=checkpoint_every, eval_every=eval_every,
        eval_images=eval_images, progress=progress, device=device, init_from=init_from, overwrite=overwrite,
    )  # fmt: skip
    return train_with_config(cfg)


#: Environment arguments that shape an agent's observation: a fine-tuned agent keeps its source's.
OBSERVATION_KWARGS = ("grid", "observe_score", "observe_class", "observe_features", "feature_layer", "observe_action_mask")


def inherit_network(hyperparameters: dict[str, Any], agent: str | os.PathLike[str], algo: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fine-tuning keeps the source agent's network and observation: its ``policy_kwargs`` replace
    the YAML's, and its observation arguments (:data:`OBSERVATION_KWARGS`) become the run's
    defaults (``env_kwargs`` given to the run still win). Returns the hyperparameters and those
    environment arguments."""
    from saliency_gym.agents.pretrained import resolve_agent_path

    path = resolve_agent_path(agent)
    payload = load_agent_payload(path)
    if payload["algo"] != algo:
        raise ValueError(f"init_from: {path} is a {payload['algo']} agent; this run trains {algo}")
    source = payload.get("hyperparameters") or {}
    merged = dict(hyperparameters)
    if "policy_kwargs" in source:
        merged["policy_kwargs"] = source["policy_kwargs"]
    observation = {k: v for k, v in (payload.get("env_kwargs") or {}).items() if k in OBSERVATION_KWARGS}
    return merged, observation


def initialise_from_agent(model: BaseAlgorithm, algo: str, agent: str | os.PathLike[str]) -> None:
    """Load a trained agent's policy weights into ``model`` (fine-tuning starts from them).

    Raises ``ValueError`` when the agent was trained with another algorithm or its network does not
    fit this model's (other hyperparameters, grid or observation).
    """
    from saliency_gym.agents.pretrained import resolve_agent_path

    path = resolve_agent_path(agent)
    payload = load_agent_payload(path)
    if payload["algo"] != algo:
        raise ValueError(f"init_from: {path} is a {payload['algo']} agent; this run trains {algo}")
    try:
        model.policy.load_state_dict(payload["policy_state"])
    except RuntimeError as exc:
        raise ValueError(f"init_from: the weights of {path} do not fit this run's network: {exc}") from None


def storable_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``env_kwargs`` as checkpoints store them: a ``FrozenClassifier`` or ``DataSource`` object
    (passed by ``saliency-gym train --model/--data`` or by a caller of :func:`train_agent`) becomes a
    descriptive string, so checkpoints stay weights-only dictionaries and resume checks compare
    like with like. An agent trained so is loaded with the objects passed again as overrides
    (``agent_env(payload, classifier=..., data=...)``).
    """
    from saliency_gym.classifier import FrozenClassifier

    stored = dict(env_kwargs)
    for key, value in env_kwargs.items():
        if isinstance(value, FrozenClassifier):
            origin = value.meta.get("spec", value.meta.get("path", ""))
            stored[key] = f"<FrozenClassifier {value.name} {origin}>".replace(" >", ">")
        elif isinstance(value, DataSource):
            shape = tuple(value.image_shape)
            stored[key] = f"<DataSource {value.name}: {len(value)} images {shape}>"
    return stored


#: Seed of the held-out split of training data without splits (fixed, not the run's seed, so runs
#: with different seeds are evaluated on the same images).
HOLDOUT_SEED = 0


class HeldOutPart(DataSource):
    """The images ``indices`` of ``source``, read lazily (a folder of photos is never loaded whole).

    Keeps the source's classes, shape, labels and masks; ``folder`` is the source's own (so an
    agent trained on the part records the image folder it can reopen) and ``part`` says which part
    it is (``"train"`` or ``"held-out"``).
    """

    def __init__(self, source: DataSource, indices: np.ndarray, part: str) -> None:
        self.source, self.indices, self.part = source, np.asarray(indices, np.int64), part
        self.class_names, self.image_shape = source.class_names, source.image_shape
        self.name, self.has_label = source.name, source.has_label
        self.folder = getattr(source, "folder", source)

    @property
    def has_masks(self) -> bool:
        return self.source.has_masks

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        return self.source[int(self.indices[self._check_index(index)])]

    def get_batch(self, indices: Any) -> Any:
        return self.source.get_batch(self.indices[np.asarray(indices, np.int64).reshape(-1)])


def holdout_split(data: DataSource, seed: int = HOLDOUT_SEED) -> tuple[DataSource, DataSource] | None:
    """Split training data without a ``split`` (an image folder, an array source) into a part to
    train on and a held-out part to evaluate on, or ``None`` when nothing can be held out.

    The rule (:func:`saliency_gym.data.base.stratified_split`, as the shipped datasets are split):
    per class, a permutation seeded by ``seed`` holds out 20% of the images (rounded; a class of
    fewer than 3 images holds none out); the rest (the split's ``train`` and ``val``) is trained on.
    An unlabelled folder is one class. The same data and seed always give the same parts.
    """
    from saliency_gym.data.base import stratified_split

    n = len(data)
    if n < 2:
        return None
    parts = stratified_split(_labels_without_images(data), seed)
    held = parts["test"]
    if len(held) == 0 or len(held) == n:
        return None
    train = np.sort(np.concatenate([parts["train"], parts["val"]]))
    return HeldOutPart(data, train, "train"), HeldOutPart(data, held, "held-out")


def _labels_without_images(data: DataSource) -> np.ndarray:
    """The labels to stratify by, without decoding a folder's photos: an image folder's class
    folders, none (one class) for an unlabelled folder, else the source's labels."""
    n = len(data)
    if not data.has_label:
        return np.zeros(n, np.int64)
    files = getattr(getattr(data, "folder", data), "files", None)
    if files is not None and len(files) == n and all(isinstance(f, tuple) for f in files):
        return np.array([int(f[1]) for f in files], np.int64)
    return np.asarray(data.get_batch(np.arange(n)).labels, np.int64)


def evaluation_source(data: DataSource, n: int, held_out: DataSource | None = None) -> DataSource | None:
    """``n`` held-out images to evaluate an agent trained on ``data``: the test split of a shipped
    dataset, the ``held_out`` part of data without splits (:func:`holdout_split`), or ``None``
    (with a warning: evaluation is off) when there is neither."""
    if held_out is not None:
        return HeldOutPart(held_out, np.arange(min(n, len(held_out))), "held-out")
    if not hasattr(data, "split"):
        warnings.warn(
            f"evaluation is off: the training data {getattr(data, 'name', type(data).__name__)!r} has no "
            "'split' and too few images to hold some out, so there are no held-out images to evaluate the agent on",
            UserWarning,
            stacklevel=2,
        )
        return None
    return load_dataset(data.name, "test", n=n)


def rollout_size(model: Any, n_envs: int) -> int:
    """Environment steps ``learn`` takes between two checks of its total: ``n_steps * n_envs`` for
    on-policy algorithms, ``train_freq * n_envs`` for off-policy ones counting steps, else ``n_envs``."""
    if hasattr(model, "n_steps"):
        return int(model.n_steps) * n_envs
    freq = getattr(model, "train_freq", None)
    if freq is not None and getattr(getattr(freq, "unit", None), "value", None) == "step":
        return int(freq.frequency) * n_envs
    return n_envs


def planned_timesteps(start: int, total: int, chunk: int) -> int:
    """The step count ``learn`` ends at: SB3 runs whole rollouts of ``chunk`` steps from ``start``
    until it reaches ``total``, so it rounds the remaining steps up to a multiple of ``chunk``."""
    return start + max(0, math.ceil((total - start) / chunk)) * chunk


def _resume_settings(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        name: payload.get(name)
        for name in ("env_id", "algo", "seed", "env_kwargs", "hyperparameters")
    }


def train_with_config(cfg: AgentTrainingConfig) -> TrainResult:
    """Run (or resume) the training described by a validated :class:`AgentTrainingConfig`.

    The run folder is locked while it runs (:func:`~saliency_gym.runs.run_lock`); a folder that
    holds a run is refused without ``resume`` or ``overwrite`` (:func:`~saliency_gym.runs.check_new_run`),
    and a folder this call created is removed again if the run fails before writing anything. A
    resumed run must match its checkpoint's env id, algorithm, seed, environment arguments and
    hyperparameters (``ValueError`` listing what differs) and needs ``checkpoints/last.pt``
    (``FileNotFoundError``). On SIGTERM or SIGINT the run saves a checkpoint and raises
    :class:`TrainingInterrupted`.
    """
    existed = cfg.out is not None and Path(cfg.out).exists()
    out = cfg.claim_run_folder()
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.pt"
    with removed_if_left_empty(out, existed=existed):
        if cfg.resume and not last.is_file():
            raise FileNotFoundError(
                f"resume: no checkpoint at {last} (run without --resume to start a new run)"
            )
        check_output_dir(out, "run folder")  # never inside the installed package
        with run_lock(out):
            clean_stale_tmp(ckpt_dir)  # left by writes interrupted before their rename
            check_new_run(out, RUN_FILES, resume=cfg.resume, overwrite=cfg.overwrite)
            return _train_locked(cfg, out, ckpt_dir, last)


def _train_locked(cfg: AgentTrainingConfig, out: Path, ckpt_dir: Path, last: Path) -> TrainResult:
    spec = algorithm_spec(cfg.algo)
    algo, env_id, seed = cfg.algo, cfg.env_id, cfg.seed
    hyperparameters = load_hyperparameters(env_id, algo, cfg.config)
    inherited: dict[str, Any] = {}
    if cfg.init_from is not None and not cfg.resume:
        hyperparameters, inherited = inherit_network(hyperparameters, cfg.init_from, algo)
    yaml_envs, yaml_env_kwargs, algo_kwargs = split_hyperparameters(hyperparameters)
    n_envs = check_int("n_envs", cfg.n_envs if cfg.n_envs is not None else yaml_envs, minimum=1)
    env_kwargs = {**yaml_env_kwargs, **inherited, **(cfg.env_kwargs or {})}
    held_out = None
    data = env_kwargs.get("data")
    if isinstance(data, DataSource) and not hasattr(data, "split"):
        # Always (evaluation on or off), so the training images never depend on --eval-every.
        parts = holdout_split(data)  # train on the rest, evaluate on the held-out part
        if parts is not None:
            env_kwargs["data"], held_out = parts
    stored_env_kwargs = storable_env_kwargs(env_kwargs)  # what checkpoints and resume checks see
    payload = None
    if cfg.resume:
        if not last.is_file():
            raise FileNotFoundError(
                f"resume: no checkpoint at {last} (run without --resume to start a new run)"
            )
        payload = load_agent_payload(last)
        current = {
            "env_id": env_id,
            "algo": algo,
            "seed": seed,
            "env_kwargs": stored_env_kwargs,
            "hyperparameters": hyperparameters,
        }
        check_resume_settings(_resume_settings(payload), current, None, last,
                              hint="; resume with the saved settings or train into another --out")  # fmt: skip

    venv = SaliencySB3VecEnv(env_id, num_envs=n_envs, **env_kwargs)
    venv.seed(seed)
    model = spec.cls(
        spec.policy,
        VecMonitor(venv),
        seed=seed,
        device=cfg.device,
        verbose=0,
        tensorboard_log=str(out / "tb"),
        **algo_kwargs,
    )
    if payload is not None:
        restore_model(payload, model)
    elif cfg.init_from is not None:
        initialise_from_agent(model, algo, cfg.init_from)
    save_kwargs: dict[str, Any] = dict(
        algo=algo,
        env_id=env_id,
        env_kwargs=stored_env_kwargs,
        hyperparameters=hyperparameters,
        seed=seed,
    )
    # What the agent was trained on, as plain data that reopens it (an agent trained on your own
    # model stores stand-in strings in env_kwargs: policy_explainer.open_agent reads these).
    trained_on = {MODEL_META: model_record(venv.venv.config.classifier), DATA_META: data_record(venv.venv.config.data)}

    def checkpoint() -> Path:
        return save_step_checkpoint(model, ckpt_dir, **save_kwargs, meta=trained_on)

    signals = SignalStop()
    stopper = StopCallback(signals)
    run_settings = {"env_id": env_id, "algo": algo, "seed": seed, "n_envs": n_envs, "timesteps": cfg.timesteps,
                    "env_kwargs": stored_env_kwargs, "init_from": str(cfg.init_from or ""), **hyperparameters}  # fmt: skip
    callbacks: list[BaseCallback] = [stopper, HParamsCallback(hparam_values(run_settings))]
    evaluator = None
    eval_source = (
        evaluation_source(venv.venv.config.data, cfg.eval_images, held_out) if cfg.eval_every else None
    )
    if eval_source is not None:
        evaluator_class = AttackEvalCallback if env_id.startswith(ATTACK_ENV_PREFIX) else SaliencyEvalCallback
        evaluator = evaluator_class(venv, eval_source.arrays().images, cfg.eval_every)
        callbacks.append(evaluator)
    if cfg.checkpoint_every:
        callbacks.append(CheckpointCallback(cfg.checkpoint_every, checkpoint))
    start_step = int(model.num_timesteps)
    chunk = rollout_size(model, n_envs)
    planned = planned_timesteps(start_step, cfg.timesteps, chunk)
    if planned != max(cfg.timesteps, start_step):
        warnings.warn(
            f"timesteps={cfg.timesteps} is not a whole number of rollouts of {chunk} steps ({n_envs} envs) "
            f"from step {start_step}: training will run to {planned} steps",
            UserWarning,
            stacklevel=3,
        )
    if cfg.progress:
        callbacks.append(ProgressBarCallback(planned, start_step))
    start = time.perf_counter()
    try:
        with signals:
            if planned > start_step:
                model.learn(total_timesteps=cfg.timesteps - start_step, callback=CallbackList(callbacks),
                            reset_num_timesteps=False, tb_log_name="run")  # fmt: skip
        if stopper.signum is not None:
            if stopper.rollout_start is not None:
                model.num_timesteps = (
                    stopper.rollout_start
                )  # the unfinished rollout was never learned from
            checkpoint()
            raise TrainingInterrupted(stopper.signum, last, int(model.num_timesteps))
    except TrainingInterrupted:
        venv.close()
        raise
    except (
        KeyboardInterrupt
    ):  # a second signal: stop at once, still leaving a checkpoint to resume from
        checkpoint()
        venv.close()
        raise
    seconds = time.perf_counter() - start
    if cfg.checkpoint_every:
        checkpoint()
    final_eval: dict[str, float] = {}
    if evaluator is not None:
        if planned <= start_step:  # nothing to train: learn never set up the model's logger
            model.set_logger(configure_logger(0, str(out / "tb"), "run", reset_num_timesteps=False))
            evaluator.init_callback(model)
        final_eval = evaluator.final()
    meta: dict[str, Any] = {**trained_on, "train_seconds": seconds, **final_eval}
    if cfg.init_from is not None:
        meta["init_from"] = str(cfg.init_from)
    final = save_agent(model, out / "final.pt", **save_kwargs, with_optimizer=False, meta=meta)
    # The same agent as a standard SB3 zip (MaskablePPO.load / PPO.load open it), metadata inside;
    # environment arguments JSON cannot hold (an array substrate, say) leave final.pt alone.
    try:
        save_agent(model, out / "final.zip", **save_kwargs, meta=meta, format="zip")
    except TypeError as exc:
        warnings.warn(f"final.zip not written: {exc}", UserWarning, stacklevel=3)
    if planned > start_step or evaluator is not None:
        model.logger.close()
    venv.close()
    return TrainResult(
        final, int(model.num_timesteps), seconds, evaluator.history if evaluator else []
    )
