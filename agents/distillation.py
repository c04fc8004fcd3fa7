"""Distilling a teacher's cell orders into an agent (``saliency-gym distill``).

The greedy look-ahead (:class:`~saliency_gym.agents.policies.GreedyPolicy`) orders cells far
better than PPO agents learn to (insertion AUC 0.958 vs 0.891 on shapes) but costs 2,080 classifier
queries per image on an 8x8 grid. Distillation trains the *same* policy network our RL agents use
(the algorithm's SB3 policy built from the YAML hyperparameters, e.g. MaskablePPO's
:class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy`) to imitate the teacher, so the result
is a normal agent file: :class:`~saliency_gym.agents.policy_explainer.PolicyExplainer`,
``saliency-gym bench`` and the SB3 ``.zip`` export load it unchanged, and it explains an image with
no classifier query at all (order scoring).

Phases, each resumable from ``<out>/checkpoints/last.pt``:

1. **Teacher labels.** The teacher's full cell order of every training image (the first ``images``
   images of the environment's training data, explained for the environment's target class), in
   batched rollouts of ``teacher_batch`` images, cached in ``<out>/teacher_orders.pt`` after every
   batch (atomic), so an interrupted run and any later run on the same folder reuse them.
2. **Behaviour cloning.** Every state of the teacher's trajectory (``images x cells`` states: the
   image, the canvas with the teacher's first ``t`` cells, the chosen cells) is a sample whose label
   is the teacher's next cell; the loss is the cross-entropy of the policy's logits over the cells
   still allowed (used cells are masked, as MaskablePPO masks them).
3. **DAgger** (``dagger_rounds``). The student rolls out its own (deterministic) orders on the
   training images; ``dagger_states`` of its states per image are labelled with the teacher's
   one-step greedy choice from that state (``cells - t`` queries for a state after ``t`` cells)
   and added to the data set, and training continues for ``dagger_epochs`` epochs on everything.
   This fixes the states the student reaches but the teacher never visits.
4. **RL fine-tuning** (``finetune_steps``, optional). The distilled weights start a MaskablePPO run
   of :func:`~saliency_gym.agents.agent_training.train_agent` (``<out>/finetune``) with a smaller
   learning rate and clip range (``finetune_lr``, ``finetune_clip``), so PPO cannot move far from
   the teacher's policy in one update. The value head starts untrained, so the first updates are
   noisy: the fine-tuned agent replaces the distilled one only if its insertion (reveal) or
   deletion (mask) AUC on the validation images is better.

The validation images are training-split images after the distilled ones (never the benchmark's
held-out test images). Scalars (loss, accuracy against the teacher, validation AUC) go to
TensorBoard in ``<out>/tb``. The final agent is ``<out>/final.pt`` (and ``final.zip``); the
distilled agent before fine-tuning is also kept as ``<out>/distilled.pt``.
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from tqdm.auto import tqdm

from saliency_gym.agents.agent_checkpoints import save_agent
from saliency_gym.agents.algorithms import (
    algorithm_spec,
    load_hyperparameters,
    split_hyperparameters,
)
from saliency_gym.agents.policies import AgentPolicy, GreedyPolicy, Policy
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.checkpoint import atomic_save, safe_load
from saliency_gym.data import ArraySource
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore
from saliency_gym.envs.saliency import unwrap_search_env
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.runs import (
    RunClock,
    RunState,
    SignalStop,
    TrainingInterrupted,
    TrainingOptions,
    check_not_shipped,
    clean_stale_tmp,
    open_writer,
    run_lock,
    seed_everything,
    snapshot_state,
)
from saliency_gym.validation import check_choice, resolve_device

__all__ = [
    "DISTILL_FORMAT",
    "TEACHERS",
    "TEACHER_FORMAT",
    "DistillConfig",
    "DistillResult",
    "TrainingSet",
    "dagger_labels",
    "distill",
    "load_explained_images",
    "distill_with_config",
    "policy_logits",
    "teacher_cache_key",
    "teacher_orders",
]

DISTILL_FORMAT = "saliency_gym.distill_state/v1"
TEACHER_FORMAT = "saliency_gym.teacher_orders/v1"
#: Teachers ``saliency-gym distill --teacher`` knows.
TEACHERS = ("greedy",)
#: Algorithms whose policy is a (non-recurrent) actor-critic with one logit per cell.
DISTILLABLE_ALGOS = ("maskable_ppo", "ppo", "a2c")
#: Settings a resumed run must share with its saved state (the rest may change, e.g. ``progress``).
FIXED_SETTINGS = (
    "env_id", "algo", "teacher", "lookahead", "images", "epochs", "bc_steps", "soft_temperature", "keep_best", "dagger_rounds", "dagger_states",
    "dagger_epochs", "batch_size", "learning_rate", "seed", "val_images", "config", "env_kwargs",
)  # fmt: skip


@dataclass
class DistillConfig(TrainingOptions):
    """What :func:`distill` runs (see its arguments); :meth:`validate` checks every field."""

    option_kind: ClassVar[str] = "distillation option"

    env_id: str
    out: str | os.PathLike[str]
    teacher: str = "greedy"
    lookahead: int | None = None
    images: int = 256
    epochs: int = 10
    bc_steps: int | None = None
    soft_temperature: float | None = None
    keep_best: bool = True
    val_every: int = 1
    dagger_rounds: int = 0
    dagger_states: int = 8
    dagger_epochs: int | None = None
    finetune_steps: int = 0
    finetune_lr: float = 5e-5
    finetune_clip: float = 0.05
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0
    algo: str = "maskable_ppo"
    config: str | os.PathLike[str] | None = None
    env_kwargs: dict[str, Any] | None = None
    resume: bool = False
    val_images: int = 64
    teacher_batch: int = 32
    progress: bool = True
    device: str = "auto"

    def validate(self) -> DistillConfig:
        from saliency_gym.agents.agent_training import SALIENCY_ENV_PREFIX
        from saliency_gym.validation import check_env_id

        check_env_id(self.env_id, SALIENCY_ENV_PREFIX, "saliency-search environment")
        self.teacher = check_choice("teacher", self.teacher, TEACHERS)
        algorithm_spec(self.algo)
        if self.algo not in DISTILLABLE_ALGOS:
            raise ValueError(f"distillation needs an actor-critic algorithm with cell logits: one of {list(DISTILLABLE_ALGOS)}, got {self.algo!r}")
        self.check_ints("images", "epochs", "dagger_states", "batch_size", "val_images", "teacher_batch", "val_every", minimum=1)
        self.check_ints("dagger_rounds", "finetune_steps", "seed", minimum=0)
        self.check_ints("lookahead", "dagger_epochs", "bc_steps", minimum=1, optional=True)
        self.check_floats("learning_rate", "finetune_lr", "finetune_clip", minimum=0.0, exclusive_minimum=True)
        self.check_floats("soft_temperature", minimum=0.0, exclusive_minimum=True, optional=True)
        if self.out is None or not isinstance(self.out, (str, os.PathLike)):
            raise TypeError(f"out must be a run folder path, got {type(self.out).__name__}")
        check_not_shipped(self.out, "run folder")
        if self.config is not None:
            self.config = str(self.config)
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        self.resume, self.progress, self.keep_best = bool(self.resume), bool(self.progress), bool(self.keep_best)
        resolve_device(self.device)
        return self

    def settings(self) -> dict[str, Any]:
        """The fixed settings as plain data (what a resumed run must match)."""
        values = asdict(self)
        return {name: values[name] for name in FIXED_SETTINGS}


@dataclass
class DistillResult:
    """What :func:`distill` did: the final agent, the distilled one, timings and validation AUCs."""

    final_path: Path
    distilled_path: Path
    seconds: float
    teacher_seconds: float
    teacher_queries: int
    history: list[dict[str, float]]
    validation: dict[str, float]


# ---------------------------------------------------------------------------- states and logits
class TrainingSet:
    """The images of a distillation run, their targets and what the policy observes of them.

    Holds one unscored :class:`~saliency_gym.envs.core.SaliencySearchCore` over all images (its
    images and substrates, on the device), so that the observation of any ``(image, chosen cells)``
    state is built on demand exactly as the environment builds it, without storing canvases.
    """

    def __init__(self, env_config: SaliencySearchConfig, images: np.ndarray, targets: np.ndarray) -> None:
        self.env_config = env_config
        self.images = np.asarray(images, np.float32)
        self.targets = np.asarray(targets, np.int64)
        self.config = explain_config(env_config, self.images, self.targets)
        self.core = SaliencySearchCore(self.config, len(self.images))
        n = len(self.images)
        self.core.advance(None, np.zeros(n, bool), np.ones(n, bool), options={"image_index": np.arange(n)}, score=False)
        self.num_cells = self.core.num_cells
        self.grid = self.config.grid.shape

    def __len__(self) -> int:
        return len(self.images)

    def observations(self, idx: np.ndarray, chosen: np.ndarray) -> dict[str, torch.Tensor]:
        """The policy's observation (image, canvas, chosen) of the states ``(idx[j], chosen[j])``."""
        idx = np.asarray(idx, np.int64)
        canvases = self.core.canvases_for(idx, chosen)
        rows, cols = self.grid
        return {
            "image": self.core.images[idx],
            "canvas": canvases,
            "chosen": torch.as_tensor(np.asarray(chosen, np.float32).reshape(-1, rows, cols), device=canvases.device),
        }


def explain_config(env_config: SaliencySearchConfig, images: np.ndarray, targets: np.ndarray) -> SaliencySearchConfig:
    """The environment's settings (mode, classifier, grid, substrate) over fixed images explained
    for fixed ``targets`` (as :class:`PolicyExplainer` rolls out agents): no query to start."""
    classifier = env_config.classifier
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    data = ArraySource(np.asarray(images, np.float32), np.asarray(targets, np.int64), class_names=names, name="distill")
    return SaliencySearchConfig.from_kwargs(
        env_config.mode, classifier=classifier, data=data, grid=env_config.grid.shape,
        substrate=env_config.substrate, target="label",
    )  # fmt: skip


def policy_logits(policy: Any, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, cells)`` action logits of an SB3 actor-critic policy (the same path as
    ``policy.get_distribution``: features, actor latent, action net), with gradients."""
    features = policy.extract_features(obs, policy.pi_features_extractor)
    latent = policy.mlp_extractor.forward_actor(features)
    logits: torch.Tensor = policy.action_net(latent)
    return logits


def masked_cross_entropy(logits: torch.Tensor, chosen: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``labels`` under ``logits`` restricted to the cells not yet ``chosen``."""
    masked = logits.masked_fill(chosen.flatten(1) > 0.5, torch.finfo(logits.dtype).min)
    return F.cross_entropy(masked, labels)


def soft_targets(values: torch.Tensor, labels: torch.Tensor, temperature: float | None) -> torch.Tensor:
    """``(B, cells)`` target distributions: the teacher's label one-hot where ``temperature`` is
    None or the row has no values (``NaN``); else ``softmax(z / temperature)`` over the cells the
    teacher measured, ``z`` its values standardised per state (so one temperature fits images
    whose gains differ in scale). Soft targets teach the ranking of the alternatives, not only the
    teacher's arg-max among near-ties."""
    hard = F.one_hot(labels, values.shape[1]).to(values.dtype)
    if temperature is None:
        return hard
    known = torch.isfinite(values)
    has = known.sum(1) > 1
    if not bool(has.any()):
        return hard
    v = torch.where(known, values, torch.zeros_like(values))
    count = known.sum(1, keepdim=True).clamp(min=1)
    mean = v.sum(1, keepdim=True) / count
    std = (torch.where(known, (values - mean) ** 2, torch.zeros_like(values)).sum(1, keepdim=True) / count).sqrt()
    z = torch.where(known, (values - mean) / (std + 1e-6), torch.full_like(values, -torch.inf))
    soft = torch.softmax(z / temperature, dim=1)
    return torch.where(has[:, None], torch.nan_to_num(soft), hard)


def distillation_loss(logits: torch.Tensor, chosen: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of target distributions under ``logits`` restricted to the cells not yet ``chosen``."""
    masked = logits.masked_fill(chosen.flatten(1) > 0.5, torch.finfo(logits.dtype).min)
    return -(targets * F.log_softmax(masked, dim=1)).sum(1).mean()


# ---------------------------------------------------------------------------- teacher
class RecordingGreedy(GreedyPolicy):
    """The greedy look-ahead that also keeps what it measured: at each look-ahead step, the value
    (reveal: the score, mask: minus the score) of every allowed cell, ``NaN`` elsewhere. These are
    the teacher's soft labels (how good each alternative to its choice was)."""

    def __init__(self, lookahead_steps: int | None = None) -> None:
        super().__init__(lookahead_steps)
        self.records: list[np.ndarray] = []

    def reset(self, core: SaliencySearchCore) -> None:
        super().reset(core)
        self.records = []

    def act(self, obs: dict[str, np.ndarray], action_masks: np.ndarray, core: SaliencySearchCore | None = None) -> np.ndarray:
        actions = super().act(obs, action_masks, core)
        if self.lookahead_steps is None or len(self.records) < self.lookahead_steps:
            assert self._last_values is not None
            self.records.append(np.where(action_masks, self._last_values, np.nan).astype(np.float32))
        return actions

    def values(self) -> np.ndarray:
        """``(episodes, look-ahead steps, cells)`` values recorded since the last reset."""
        return np.stack(self.records, axis=1)


def make_teacher(name: str, lookahead: int | None) -> RecordingGreedy:
    """The teacher policy ``name`` (``"greedy"``: the look-ahead over ``lookahead`` steps, all if None)."""
    check_choice("teacher", name, TEACHERS)
    return RecordingGreedy(lookahead_steps=lookahead)


def rollout_orders(policy: Policy, data: TrainingSet, idx: np.ndarray) -> np.ndarray:
    """``(len(idx), cells)`` cell orders of deterministic rollouts of ``policy`` on the images ``idx``."""
    cfg = data.config
    explainer = PolicyExplainer(cfg.classifier, policy, mode=cfg.mode, grid=cfg.grid.shape, substrate=cfg.substrate)
    images = torch.as_tensor(data.images[idx])
    targets = torch.as_tensor(data.targets[idx])
    core = explainer.rollout(images, targets)
    return core.order.copy()


def teacher_orders(
    teacher: RecordingGreedy,
    data: TrainingSet,
    cache: Path,
    *,
    key: dict[str, Any],
    batch: int = 32,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """The teacher's order of every image of ``data`` and the values it measured on the way
    (``(images, look-ahead steps, cells)``, see :class:`RecordingGreedy`), from ``cache`` where it
    holds them.

    Missing orders are computed in batches of ``batch`` images and the cache (with ``key``, the
    settings the orders depend on, checked on reuse) is rewritten atomically after every batch, so
    an interrupted labelling resumes where it stopped. Returns ``(orders, values, seconds, queries)``
    where seconds and queries add up the time and classifier queries ever spent on these orders."""
    n, k = len(data), data.num_cells
    steps = k if teacher.lookahead_steps is None else min(teacher.lookahead_steps, k)
    orders = np.full((n, k), -1, np.int64)
    values = np.full((n, steps, k), np.nan, np.float32)
    seconds, queries = 0.0, 0
    if cache.is_file():
        saved = safe_load(cache, expected_format=TEACHER_FORMAT, required_keys=("key", "orders", "seconds", "queries"))
        if saved["key"] != key:
            raise ValueError(f"teacher cache {cache} was made with other settings: {saved['key']} (now {key}); remove it or use another run folder")
        cached = saved["orders"].numpy()
        m = min(len(cached), n)
        orders[:m] = cached[:m]
        if "values" in saved:
            values[:m] = saved["values"].numpy()[:m]
        seconds, queries = float(saved["seconds"]), int(saved["queries"])
    todo = np.flatnonzero((orders < 0).any(axis=1))
    classifier = data.config.classifier
    bar = tqdm(total=n, initial=n - len(todo), desc="teacher", unit="image", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(todo), batch):
        idx = todo[start : start + batch]
        before, clock = classifier.queries, time.perf_counter()
        orders[idx] = rollout_orders(teacher, data, idx)
        values[idx] = teacher.values()[:, :steps]
        seconds += time.perf_counter() - clock
        queries += int(classifier.queries - before)
        atomic_save({"format": TEACHER_FORMAT, "key": key, "orders": torch.from_numpy(orders), "values": torch.from_numpy(values),
                     "seconds": seconds, "queries": queries}, cache)  # fmt: skip
        bar.update(len(idx))
    bar.close()
    return orders, values, seconds, queries


def teacher_cache_key(cfg: DistillConfig, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the cached teacher orders depend on (checked when a cache is reused)."""
    return {"env_id": cfg.env_id, "teacher": cfg.teacher, "lookahead": cfg.lookahead, "env_kwargs": repr(sorted(env_kwargs.items()))}


def bc_samples(orders: np.ndarray, steps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Behaviour-cloning samples of the teacher's trajectories: for every image ``i`` and step
    ``t < steps`` (all steps if None), the state ``chosen = order[:t]`` labelled ``order[t]``.
    Returns ``(idx, chosen, labels)``.

    Insertion and deletion AUC are decided by the first cells (once the evidence is revealed or
    removed, the score saturates and the teacher's later choices are near-ties, i.e. label noise),
    so cloning only the first ``steps`` steps spends the training time where the AUC is made."""
    n, k = orders.shape
    if (orders < 0).any():
        raise ValueError("every teacher order must hold every cell")
    s = k if steps is None else min(int(steps), k)
    rank = np.empty_like(orders)
    rank[np.arange(n)[:, None], orders] = np.arange(k)[None, :]
    chosen = rank[:, None, :] < np.arange(s)[None, :, None]  # (n, s steps, k cells)
    return np.repeat(np.arange(n), s), chosen.reshape(n * s, k), orders[:, :s].reshape(-1)


def dagger_labels(
    data: TrainingSet, idx: np.ndarray, chosen: np.ndarray, *, batch: int = 64, with_values: bool = False
) -> Any:
    """The teacher's one-step greedy choice (best gain of one more cell, ties to the lowest cell id,
    as :class:`GreedyPolicy` takes it) at each state ``(idx[j], chosen[j])``; costs one classifier
    query per cell still allowed. ``with_values``: also return the ``(states, cells)`` values the
    look-ahead measured (``NaN`` for chosen cells), the soft labels."""
    idx, chosen = np.asarray(idx, np.int64), np.asarray(chosen, bool)
    if chosen.ndim != 2 or len(chosen) != len(idx) or chosen.shape[1] != data.num_cells:
        raise ValueError(f"chosen must be (states, {data.num_cells}) booleans, got {chosen.shape}")
    if chosen.all(axis=1).any():
        raise ValueError("a state with every cell chosen has no next cell to label")
    labels = np.empty(len(idx), np.int64)
    values = np.full(chosen.shape, np.nan, np.float32)
    for start in range(0, len(idx), batch):
        part = slice(start, start + batch)
        cfg = explain_config(data.env_config, data.images[idx[part]], data.targets[idx[part]])
        m = len(idx[part])
        core = SaliencySearchCore(cfg, m)
        core.advance(None, np.zeros(m, bool), np.ones(m, bool), options={"image_index": np.arange(m)}, score=False)
        core.chosen[:] = chosen[part]
        teacher = RecordingGreedy()
        labels[part] = teacher.act(core.observation(), core.action_masks(), core=core)
        values[part] = teacher.values()[:, 0]
    return (labels, values) if with_values else labels


# ---------------------------------------------------------------------------- evaluation
def order_auc(data: TrainingSet, policy: Policy) -> float:
    """Mean insertion (reveal) or deletion (mask) AUC of ``policy``'s order maps on ``data``,
    pixel level as in the benchmark (queries uncounted)."""
    cfg = data.config
    classifier = cfg.classifier
    explainer = PolicyExplainer(classifier, policy, mode=cfg.mode, grid=cfg.grid.shape, substrate=cfg.substrate)
    with classifier.uncounted():
        maps = explainer.explain(data.images, data.targets).maps
        curve = insertion_curve if cfg.mode == "reveal" else deletion_curve
        return float(curve(classifier, data.images, maps, data.targets).auc.mean())


# ---------------------------------------------------------------------------- the run
def distill(env_id: str, out: str | os.PathLike[str], **kwargs: Any) -> DistillResult:
    """Distil a teacher into an agent of ``env_id``, in the run folder ``out``.

    Args:
        env_id: a registered saliency-search id (``saliency_gym/SaliencyReveal-Shapes-v0``, ...).
        out: run folder (``teacher_orders.pt``, ``checkpoints/``, ``tb/``, ``final.pt``).
        teacher: ``"greedy"`` (the look-ahead).
        lookahead: the teacher's look-ahead steps (``None``: every step, the full greedy search).
        images: training images (the first ones of the environment's training data).
        epochs: behaviour-cloning epochs over the teacher's trajectories.
        bc_steps: clone (and draw DAgger states from) the first ``bc_steps`` steps of each episode
            only (``None``: every step); see :func:`bc_samples`.
        soft_temperature: soft labels (see :func:`soft_targets`; ``None``: the teacher's choice, one-hot).
        val_every: epochs between validations (the last epoch is always validated).
        keep_best: end the cloning with the weights of the epoch whose validation AUC was best
            (``False``: the last epoch's).
        dagger_rounds: DAgger rounds after behaviour cloning (0: none).
        dagger_states: states of each student rollout labelled per round (per image).
        dagger_epochs: epochs over the aggregated data after each round (default ``epochs``).
        finetune_steps: MaskablePPO steps from the distilled weights (0: no fine-tuning).
        finetune_lr, finetune_clip: learning rate and clip range of that fine-tuning.
        batch_size, learning_rate: Adam on the cross-entropy.
        seed: seeds the network, the sample order and the DAgger state draws.
        algo: the agent's algorithm (its policy class and YAML hyperparameters).
        config: extra YAML of hyperparameters layered over the shipped one.
        resume: continue from ``<out>/checkpoints/last.pt`` (settings must match).
        val_images: training-split images after the distilled ones, for validation AUC.
        teacher_batch: images per batched teacher rollout (and per cache write).
        progress: show progress bars.
        device: torch device (``"auto"``: CUDA when available).
    """
    return distill_with_config(DistillConfig.from_kwargs(env_id=env_id, out=out, **kwargs))


def _build_model(cfg: DistillConfig, device: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The algorithm's SB3 model (policy from the YAML), its hyperparameters and env kwargs."""
    from saliency_gym.envs.sb3 import SB3VecEnv

    spec = algorithm_spec(cfg.algo)
    hyperparameters = load_hyperparameters(cfg.env_id, cfg.algo, cfg.config)
    _, yaml_env_kwargs, algo_kwargs = split_hyperparameters(hyperparameters)
    env_kwargs = {**yaml_env_kwargs, **(cfg.env_kwargs or {})}
    venv = SB3VecEnv(cfg.env_id, num_envs=1, **env_kwargs)
    model = spec.cls(spec.policy, venv, seed=cfg.seed, device=device, verbose=0, **algo_kwargs)
    return model, hyperparameters, env_kwargs


def load_explained_images(env_config: SaliencySearchConfig, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training images from ``start`` and their targets (the environment's target rule)."""
    data = env_config.data
    if start + count > len(data):
        raise ValueError(f"{env_config.data.name} has {len(data)} training images; {start + count} were asked for (images + val_images)")
    batch = data.get_batch(np.arange(start, start + count))
    images = np.asarray(batch.images, np.float32)
    if env_config.target == "predicted":
        targets = env_config.classifier.predict(images, count=False).cpu().numpy()
    elif env_config.target == "label":
        targets = np.asarray(batch.labels, np.int64)
    elif isinstance(env_config.target, int):
        targets = np.full(count, env_config.target, np.int64)
    else:
        raise ValueError(f"distillation and imitation explain fixed classes; the environment's target rule {env_config.target!r} is not supported")
    return images, np.asarray(targets, np.int64)


def distill_with_config(cfg: DistillConfig) -> DistillResult:
    """Run (or resume) the distillation described by a validated :class:`DistillConfig`."""
    out = Path(cfg.out)
    state_file = RunState(out / "checkpoints" / "last.pt", DISTILL_FORMAT, ("config", "phase", "policy_state"), "distillation state")
    if cfg.resume:
        state_file.require()
    elif state_file.exists():
        raise FileExistsError(f"{out} already holds a distillation run ({state_file.path}); pass resume=True (--resume) or use another run folder")
    with run_lock(out):
        clean_stale_tmp(out / "checkpoints")
        clean_stale_tmp(out)
        return _distill_locked(cfg, out, state_file)


def _distill_locked(cfg: DistillConfig, out: Path, state_file: RunState) -> DistillResult:
    import gymnasium as gym

    device = str(resolve_device(cfg.device))
    generator = seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model, hyperparameters, env_kwargs = _build_model(cfg, device)
    policy = model.policy
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    env = gym.make(cfg.env_id, **env_kwargs)
    env_config: SaliencySearchConfig = unwrap_search_env(env).config
    env.close()
    if env_config.observe_score or env_config.observe_class:
        raise ValueError("distillation needs agents that observe image, canvas and chosen cells only (no observe_score / observe_class)")
    images, targets = load_explained_images(env_config, 0, cfg.images + cfg.val_images)
    train = TrainingSet(env_config, images[: cfg.images], targets[: cfg.images])
    val = TrainingSet(env_config, images[cfg.images :], targets[cfg.images :])

    saved: dict[str, Any] | None = None
    if cfg.resume:
        saved = state_file.load(config=cfg.settings(), fixed=FIXED_SETTINGS, hint="; resume with the saved settings or use another run folder")
        state_file.restore(saved, {"policy_state": policy, "optimizer_state": optimizer})
        generator.set_state(saved["generator"])
        rng.bit_generator.state = saved["rng"]
    clock = RunClock(float(saved["seconds"]) if saved else 0.0)  # teacher labelling included
    history: list[dict[str, float]] = list(saved["history"]) if saved else []
    phase = saved["phase"] if saved else "bc"
    epoch = int(saved["epoch"]) if saved else 0  # epochs done in the current phase
    round_ = int(saved["round"]) if saved else 0  # DAgger rounds whose data was gathered
    extra = {key: saved[key].numpy() for key in ("dagger_idx", "dagger_chosen", "dagger_labels", "dagger_values")} if saved else {
        "dagger_idx": np.zeros(0, np.int64), "dagger_chosen": np.zeros((0, train.num_cells), bool), "dagger_labels": np.zeros(0, np.int64),
        "dagger_values": np.zeros((0, train.num_cells), np.float32)}  # fmt: skip

    writer = open_writer(out / "tb", purge_step=len(history) + 1 if saved else None)
    key = teacher_cache_key(cfg, env_kwargs)
    teacher = make_teacher(cfg.teacher, cfg.lookahead)
    labelling_started = clock.seconds
    orders, values, teacher_seconds, teacher_queries = teacher_orders(
        teacher, train, out / "teacher_orders.pt", key=key, batch=cfg.teacher_batch, progress=cfg.progress)  # fmt: skip
    # Teacher time spent before this run (a cache made by an earlier run or copied in) still
    # counts as training time of the agent.
    if not saved:
        clock = RunClock(clock.seconds + max(0.0, teacher_seconds - (clock.seconds - labelling_started)))
    base_idx, base_chosen, base_labels = bc_samples(orders, cfg.bc_steps)
    k_cells = train.num_cells
    s_steps = len(base_idx) // len(train)
    # Each labelled step's per-cell values: (images, steps, cells), then one row per step.
    step_values = np.full((len(train), s_steps, k_cells), np.nan, np.float32)
    step_values[:, : min(s_steps, values.shape[1])] = values[:, :s_steps]
    base_values = step_values.reshape(-1, k_cells)
    dagger_epochs = cfg.dagger_epochs or cfg.epochs
    total_epochs = cfg.epochs + cfg.dagger_rounds * dagger_epochs
    student = AgentPolicy(policy, name="student")
    signals = SignalStop()
    reveal = env_config.mode == "reveal"
    best: dict[str, Any] = {"auc": saved.get("best_auc") if saved else None, "state": saved.get("best_state") if saved else None}

    def save_state() -> None:
        state_file.save(
            config=cfg.settings(), phase=phase, epoch=epoch, round=round_, seconds=clock.seconds, history=history,
            policy_state={k: v.detach().cpu() for k, v in policy.state_dict().items()},
            optimizer_state=optimizer.state_dict(), generator=generator.get_state(), rng=rng.bit_generator.state,
            dagger_idx=torch.from_numpy(extra["dagger_idx"]), dagger_chosen=torch.from_numpy(extra["dagger_chosen"]),
            dagger_labels=torch.from_numpy(extra["dagger_labels"]), dagger_values=torch.from_numpy(extra["dagger_values"]),
            best_state=best["state"], best_auc=best["auc"],
        )  # fmt: skip

    def train_epoch() -> dict[str, float]:
        idx = np.concatenate([base_idx, extra["dagger_idx"]])
        chosen = np.concatenate([base_chosen, extra["dagger_chosen"]])
        labels = np.concatenate([base_labels, extra["dagger_labels"]])
        value_rows = np.concatenate([base_values, extra["dagger_values"]])
        perm = torch.randperm(len(idx), generator=generator).numpy()
        # Cosine decay of the learning rate over all epochs of the run (a function of the epoch
        # count only, so a resumed run follows the same schedule).
        lr = 0.5 * cfg.learning_rate * (1.0 + math.cos(math.pi * len(history) / max(1, total_epochs)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        policy.set_training_mode(True)
        total, correct, count = 0.0, 0, 0
        for start in range(0, len(perm), cfg.batch_size):
            b = perm[start : start + cfg.batch_size]
            obs = {name: value.to(policy.device) for name, value in train.observations(idx[b], chosen[b]).items()}
            y = torch.as_tensor(labels[b], device=policy.device)
            logits = policy_logits(policy, obs)
            targets_b = soft_targets(torch.as_tensor(value_rows[b], device=policy.device), y, cfg.soft_temperature)
            loss = distillation_loss(logits, obs["chosen"], targets_b)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():
                pred = logits.masked_fill(obs["chosen"].flatten(1) > 0.5, -torch.inf).argmax(1)
            total += float(loss.detach()) * len(b)
            correct += int((pred == y).sum())
            count += len(b)
        policy.set_training_mode(False)
        return {"loss": total / count, "accuracy": correct / count, "samples": float(count)}

    def log_epoch(stats: dict[str, float]) -> None:
        step = len(history) + 1
        if step % cfg.val_every == 0 or step == total_epochs:
            stats = {**stats, "val_auc": order_auc(val, student)}
            better = best["auc"] is None or (stats["val_auc"] > best["auc"] if reveal else stats["val_auc"] < best["auc"])
            if better:  # keep the best epoch's weights (validation images, never the test images)
                best["auc"], best["state"] = stats["val_auc"], snapshot_state(policy)
        stats = {**stats, "seconds": clock.seconds}
        history.append({"step": float(step), "phase_round": float(round_), **stats})
        for name, value in stats.items():
            writer.add_scalar(f"distill/{name}", value, step)
        writer.flush()

    bar = tqdm(total=total_epochs, initial=len(history), desc="distill", unit="epoch", disable=not cfg.progress, dynamic_ncols=True)
    try:
        with signals:
            while phase in ("bc", "dagger"):
                if phase == "bc" and epoch >= cfg.epochs:
                    phase, epoch = "dagger", 0
                if phase == "dagger" and round_ >= cfg.dagger_rounds and epoch >= (dagger_epochs if round_ else 0):
                    phase = "distilled"
                    break
                if phase == "dagger" and (round_ == 0 or epoch >= dagger_epochs):
                    # Gather the next round: the student's own states, labelled by the teacher.
                    student_orders = rollout_orders(student, train, np.arange(len(train)))
                    k = train.num_cells
                    horizon = min(cfg.bc_steps or k - 1, k - 1)
                    steps = np.stack([rng.choice(horizon, size=min(cfg.dagger_states, horizon), replace=False) for _ in range(len(train))])
                    idx = np.repeat(np.arange(len(train)), steps.shape[1])
                    rank = np.empty_like(student_orders)
                    rank[np.arange(len(train))[:, None], student_orders] = np.arange(k)[None, :]
                    chosen = rank[idx] < steps.reshape(-1)[:, None]
                    before, tick = train.config.classifier.queries, time.perf_counter()
                    labels, new_values = dagger_labels(train, idx, chosen, with_values=True)
                    teacher_queries += int(train.config.classifier.queries - before)
                    teacher_seconds += time.perf_counter() - tick
                    extra = {"dagger_idx": np.concatenate([extra["dagger_idx"], idx]),
                             "dagger_chosen": np.concatenate([extra["dagger_chosen"], chosen]),
                             "dagger_labels": np.concatenate([extra["dagger_labels"], labels]),
                             "dagger_values": np.concatenate([extra["dagger_values"], new_values])}  # fmt: skip
                    round_, epoch = round_ + 1, 0
                    save_state()
                stats = train_epoch()
                epoch += 1
                log_epoch(stats)
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['accuracy']:.2f}", val=f"{history[-1].get('val_auc', float('nan')):.3f}")
                save_state()
                if signals.signum is not None:
                    raise TrainingInterrupted(signals.signum, state_file.path, len(history))
    finally:
        bar.close()
        writer.close()

    save_kwargs: dict[str, Any] = dict(algo=cfg.algo, env_id=cfg.env_id, env_kwargs=env_kwargs, hyperparameters=hyperparameters, seed=cfg.seed)
    distill_meta = {
        "distilled_from": f"{cfg.teacher}-{cfg.lookahead or 'full'}", "distill_images": cfg.images, "distill_epochs": cfg.epochs,
        "dagger_rounds": cfg.dagger_rounds, "teacher_queries": teacher_queries, "teacher_seconds": teacher_seconds,
    }  # fmt: skip
    distilled_path = out / "distilled.pt"
    if phase == "distilled" and cfg.keep_best and best["state"] is not None:
        policy.load_state_dict(best["state"])
    distilled_auc = order_auc(val, student)
    if phase == "distilled":
        save_agent(model, distilled_path, **save_kwargs, with_optimizer=False,
                   meta={**distill_meta, "train_seconds": clock.seconds, "val_auc": distilled_auc})  # fmt: skip
        phase = "finetune" if cfg.finetune_steps else "done"
        save_state()
    validation = {"distilled": distilled_auc}
    final_source = distilled_path
    if cfg.finetune_steps:
        tuned, tuned_auc = _finetune(cfg, out, model, save_kwargs, val)
        validation["finetuned"] = tuned_auc
        better = tuned_auc > distilled_auc if env_config.mode == "reveal" else tuned_auc < distilled_auc
        if better:
            final_source = tuned
        else:
            warnings.warn(f"fine-tuning did not improve the validation AUC ({distilled_auc:.4f} -> {tuned_auc:.4f}); final.pt is the distilled agent",
                          UserWarning, stacklevel=2)  # fmt: skip
        phase = "done"
        save_state()
    # The final agent: the better of the two, re-saved with the whole run's time in its meta.
    from saliency_gym.agents.agent_checkpoints import load_agent_payload

    payload = load_agent_payload(final_source)
    policy.load_state_dict(payload["policy_state"])
    model.num_timesteps = int(payload["num_timesteps"])
    meta = {**payload.get("meta", {}), **distill_meta, "train_seconds": clock.seconds, "val_auc": validation.get("finetuned" if final_source != distilled_path else "distilled", distilled_auc),
            "finetune_steps": cfg.finetune_steps if final_source != distilled_path else 0}  # fmt: skip
    final = save_agent(model, out / "final.pt", **save_kwargs, with_optimizer=False, meta=meta)
    try:
        save_agent(model, out / "final.zip", **save_kwargs, meta=meta, format="zip")
    except TypeError as exc:
        warnings.warn(f"final.zip not written: {exc}", UserWarning, stacklevel=2)
    venv = model.get_env()
    if venv is not None:
        venv.close()
    return DistillResult(final, distilled_path, clock.seconds, teacher_seconds, teacher_queries, history, validation)


def _finetune(cfg: DistillConfig, out: Path, model: Any, save_kwargs: dict[str, Any], val: TrainingSet) -> tuple[Path, float]:
    """MaskablePPO from the distilled weights (``<out>/finetune``, resumable), with the learning
    rate and clip range of ``cfg``; returns the fine-tuned agent and its validation AUC."""
    from saliency_gym.agents.agent_training import train_agent
    from saliency_gym.agents.pretrained import load_agent_policy

    folder = out / "finetune"
    overrides = {cfg.env_id: {cfg.algo: {"learning_rate": cfg.finetune_lr, "clip_range": cfg.finetune_clip}}}
    yaml_path = out / "finetune.yaml"
    if cfg.config is not None:  # layer the user's YAML under the fine-tuning overrides
        with open(cfg.config) as handle:
            user = yaml.safe_load(handle) or {}
        from saliency_gym.agents.algorithms import _merge

        overrides = _merge(user, overrides)
    text = yaml.safe_dump(overrides)
    if not yaml_path.is_file() or yaml_path.read_text() != text:
        from saliency_gym.checkpoint import atomic_write

        atomic_write(yaml_path, lambda tmp: tmp.write_text(text))
    start = folder / "checkpoints" / "last.pt"
    if not start.is_file():
        hyperparameters = load_hyperparameters(cfg.env_id, cfg.algo, yaml_path)
        model.num_timesteps = 0
        save_agent(model, start, **{**save_kwargs, "hyperparameters": hyperparameters}, with_optimizer=False)
    result = train_agent(cfg.env_id, cfg.algo, cfg.finetune_steps, cfg.seed, out=folder, config=yaml_path, resume=True,
                         checkpoint_every=max(1, cfg.finetune_steps // 4), eval_every=0, progress=cfg.progress,
                         device=cfg.device, env_kwargs=cfg.env_kwargs)  # fmt: skip
    tuned_policy, _ = load_agent_policy(result.final_path, device=str(model.policy.device))
    return result.final_path, order_auc(val, tuned_policy)


def minutes(seconds: float) -> float:
    """Seconds as minutes (tables report training minutes)."""
    return seconds / 60.0 if math.isfinite(seconds) else float("nan")


def copy_agent(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy an agent file to ``target`` (not inside the installed package)."""
    check_not_shipped(target, "agent file")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copyfile(source, target))
