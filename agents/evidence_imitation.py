"""Training agents that see what the classifier sees: imitation of the greedy look-ahead's gains.

RExL's policy observes the frozen classifier's own spatial features and is judged by the evidence
each step gains. This recipe trains such a policy (MaskablePPO's
:class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy` over
:class:`~saliency_gym.agents.extractors.EvidenceCNN`, so the result is an ordinary agent file that
``PolicyExplainer``, ``saliency-gym bench`` and ``MaskablePPO.load`` open) to imitate the one-step
greedy look-ahead:

1. **States.** Episodes on the training images (explained for the environment's target rule),
   stepped by a *behaviour* policy: uniformly random orders in round 0, the student's own
   deterministic choices in each DAgger round after it. Every ``label_every``-th state (a random
   phase per episode) is kept with its observation (the classifier's features of the image and of
   the canvas, the chosen cells, the score, the class).
2. **Labels.** At a kept state every cell still allowed is scored by the evidence its step would
   gain (reveal: the score's rise; mask: its fall), in batched classifier queries (``cells - t``
   for a state after ``t`` steps). The target distribution is ``softmax(gain / temperature)`` over
   the allowed cells: the greedy look-ahead's choice, with its near-ties kept.
3. **Fitting.** The policy's masked cell logits are fitted to the targets by cross-entropy (Adam).
   After each round the student is scored on validation images (training-split images after the
   training ones, never test images) and the best weights are kept.

Open- and closed-loop agents come from the same recipe: the environment's ``observe_features``
(``"image"``: one query per explained image, then no more; ``"both"`` with ``observe_score``: one
query per step, RExL's inference) decides what the policy can use.

Each round's states are cached in ``<out>/states_<round>.pt`` (atomic, weights-only) and the run
state in ``<out>/checkpoints/last.pt`` after every round, so an interrupted run resumes
(``resume=True``) where it stopped. The agent is ``<out>/final.pt`` and ``<out>/final.zip``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from saliency_gym.agents.agent_checkpoints import save_agent
from saliency_gym.agents.algorithms import (
    algorithm_spec,
    load_hyperparameters,
    split_hyperparameters,
)
from saliency_gym.agents.distillation import load_explained_images
from saliency_gym.checkpoint import atomic_save, safe_load
from saliency_gym.data import ArraySource
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore
from saliency_gym.runs import (
    RunClock,
    RunState,
    TrainingOptions,
    check_not_shipped,
    open_writer,
    run_lock,
    seed_everything,
    snapshot_state,
)
from saliency_gym.validation import resolve_device

__all__ = ["ImitationConfig", "ImitationResult", "imitate", "label_gains", "collect_states"]

STATE_FORMAT = "saliency_gym.evidence_imitation/v1"
STATES_FORMAT = "saliency_gym.evidence_imitation_states/v1"
#: Settings a resumed run must share with its saved state.
FIXED_SETTINGS = (
    "env_id", "images", "val_images", "label_every", "temperature", "dagger_rounds", "epochs",
    "batch_size", "learning_rate", "seed", "env_kwargs", "config",
)  # fmt: skip
#: Observation keys the states keep (what :class:`EvidenceCNN` reads).
KEPT_KEYS = ("image_features", "canvas_features", "chosen", "score", "target", "foil")

#: The policy's network unless the hyperparameter file says otherwise (the extractor is always
#: :class:`~saliency_gym.agents.extractors.EvidenceCNN`).
EVIDENCE_POLICY_KWARGS: dict[str, Any] = {
    "features_extractor_kwargs": {"features_dim": 128, "channels": 64},
    "net_arch": {"pi": [], "vf": [128]},
}

#: Chooses the next cell of every episode: ``(core, action_masks) -> actions``.
Behaviour = Callable[[SaliencySearchCore, np.ndarray], np.ndarray]


@dataclass
class ImitationConfig(TrainingOptions):
    """What :func:`imitate` runs; :meth:`validate` checks every field.

    Attributes:
        env_id: a registered saliency-search id (its data, classifier, grid and substrate).
        out: the run folder (never inside the installed package).
        images: training images (the first ones of the environment's training split).
        val_images: validation images (the next ones), for choosing the best round.
        label_every: keep one state in this many steps of each episode.
        temperature: of the target soft-max over the gains (probability units).
        dagger_rounds: rounds on the student's own states after the random-order round.
        epochs: fitting epochs per round (over all states gathered so far).
        env_kwargs: environment arguments over the YAML's (e.g. ``observe_features``).
        config: a user hyperparameter file layered over the shipped YAML.
    """

    option_kind: ClassVar[str] = "imitation option"

    env_id: str
    out: str | os.PathLike[str]
    images: int = 400
    val_images: int = 64
    label_every: int = 8
    temperature: float = 0.02
    dagger_rounds: int = 1
    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 1e-3
    episodes_per_batch: int = 32
    seed: int = 0
    env_kwargs: dict[str, Any] | None = None
    config: str | None = None
    resume: bool = False
    progress: bool = True
    device: str = "auto"

    def validate(self) -> ImitationConfig:
        from saliency_gym.agents.agent_training import SALIENCY_ENV_PREFIX
        from saliency_gym.validation import check_env_id

        check_env_id(self.env_id, SALIENCY_ENV_PREFIX, "saliency-search environment")
        self.check_ints("images", "val_images", "label_every", "epochs", "batch_size", "episodes_per_batch", minimum=1)
        self.check_ints("dagger_rounds", "seed", minimum=0)
        self.check_floats("temperature", "learning_rate", minimum=0.0, exclusive_minimum=True)
        if self.out is None or not isinstance(self.out, (str, os.PathLike)):
            raise TypeError(f"out must be a run folder path, got {type(self.out).__name__}")
        check_not_shipped(self.out, "run folder")
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, dict):
            raise TypeError(f"env_kwargs must be a dict, got {type(self.env_kwargs).__name__}")
        self.resume, self.progress = bool(self.resume), bool(self.progress)
        resolve_device(None if self.device == "auto" else self.device)
        return self

    def settings(self) -> dict[str, Any]:
        values = asdict(self)
        return {name: values[name] for name in FIXED_SETTINGS}


@dataclass
class ImitationResult:
    """What :func:`imitate` did: the agent files, wall time, queries spent on labels, history."""

    final_path: Path
    zip_path: Path
    seconds: float
    label_queries: int
    history: list[dict[str, float]]
    #: The kept round's validation AUC (reveal: higher is better; mask: lower).
    validation_auc: float | None


# ---------------------------------------------------------------------------- states and labels
def fixed_image_config(env: SaliencySearchConfig, images: np.ndarray, targets: np.ndarray) -> SaliencySearchConfig:
    """The environment's settings (mode, classifier, grid, substrate, observations) over fixed
    images explained for fixed ``targets``."""
    classifier = env.classifier
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    data = ArraySource(np.asarray(images, np.float32), np.asarray(targets, np.int64), class_names=names, name="imitation")
    return SaliencySearchConfig.from_kwargs(
        env.mode, classifier=classifier, data=data, grid=env.grid.shape, substrate=env.substrate,
        target="label", observe_score=env.observe_score, observe_class=env.observe_class,
        observe_features=env.observe_features, feature_layer=env.feature_layer_name,
    )  # fmt: skip


def label_gains(core: SaliencySearchCore, idx: np.ndarray) -> np.ndarray:
    """``(len(idx), cells)`` evidence gains of every allowed cell of the episodes ``idx`` from
    their current state (``NaN`` for cells already chosen), in one batched query."""
    allowed = ~core.chosen[idx]
    rows, cells = np.nonzero(allowed)
    gains = np.full(allowed.shape, np.nan)
    if len(rows):
        env_idx = idx[rows]
        chosen = core.chosen[env_idx].copy()
        chosen[np.arange(len(rows)), cells] = True
        probs = core.cfg.classifier.probs(core.canvases_for(env_idx, chosen), validate=False)
        score, _ = core.scores_of(probs, env_idx)
        sign = 1.0 if core.reveal else -1.0
        gains[rows, cells] = sign * (score - core.scores[env_idx])
    return gains


def collect_states(
    config: SaliencySearchConfig, behaviour: Behaviour, label_every: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """Play one episode per image of ``config`` with ``behaviour``; keep every ``label_every``-th
    state (random phase per episode) with its observation and the gains of its allowed cells.

    Returns ``(observations, gains, label queries)``.
    """
    n = len(config.data)
    core = SaliencySearchCore(config, n)
    everyone, nobody = np.ones(n, bool), np.zeros(n, bool)
    core.advance(None, nobody, everyone, options={"image_index": np.arange(n)})
    phase = rng.integers(label_every, size=n)
    kept: dict[str, list[np.ndarray]] = {}
    gains: list[np.ndarray] = []
    queries = 0
    for step in range(config.budget):
        idx = np.flatnonzero((step - phase) % label_every == 0)
        if len(idx):
            obs = core.observation(idx)
            for key in KEPT_KEYS:
                if key in obs:
                    kept.setdefault(key, []).append(obs[key])
            gains.append(label_gains(core, idx))
            queries += int((~core.chosen[idx]).sum())
        actions = behaviour(core, core.action_masks())
        core.advance(np.asarray(actions, np.int64), everyone, nobody)
    return {key: np.concatenate(parts) for key, parts in kept.items()}, np.concatenate(gains), queries


def random_behaviour(rng: np.random.Generator) -> Behaviour:
    """A uniformly random allowed cell per episode."""

    def act(core: SaliencySearchCore, masks: np.ndarray) -> np.ndarray:
        scores = np.where(masks, rng.random(masks.shape), -1.0)
        return scores.argmax(axis=1)

    return act


def student_behaviour(policy: Any) -> Behaviour:
    """The student's deterministic choice (its highest allowed logit)."""

    @torch.no_grad()
    def act(core: SaliencySearchCore, masks: np.ndarray) -> np.ndarray:
        return masked_argmax(policy, core.observation(), masks)

    return act


@torch.no_grad()
def masked_argmax(policy: Any, obs: dict[str, np.ndarray], masks: np.ndarray) -> np.ndarray:
    """The policy's best allowed cell for every observation."""
    policy.set_training_mode(False)
    logits = cell_logits(policy, _to_tensors({k: v for k, v in obs.items() if k in KEPT_KEYS}, policy.device))
    logits = logits.masked_fill(~torch.as_tensor(masks, device=logits.device), -torch.inf)
    return logits.argmax(dim=1).cpu().numpy()


def cell_logits(policy: Any, obs: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, cells)`` action logits of a cell policy from the observation keys its extractor reads
    (the extractor called directly: SB3's ``extract_features`` would need every key of the space)."""
    extractor = policy.features_extractor if policy.share_features_extractor else policy.pi_features_extractor
    latent = policy.mlp_extractor.forward_actor(extractor(obs))
    logits: torch.Tensor = policy.action_net(latent)
    return logits


def _to_tensors(obs: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: torch.as_tensor(np.asarray(value, np.float32), device=device) for key, value in obs.items()}


def soft_gain_targets(gains: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(gain / temperature)`` over the cells with a gain (the others get 0)."""
    known = torch.isfinite(gains)
    logits = torch.where(known, gains / temperature, torch.full_like(gains, -torch.inf))
    return torch.nan_to_num(torch.softmax(logits, dim=1))


def fit(
    policy: Any, states: dict[str, torch.Tensor], targets: torch.Tensor, *, epochs: int, batch_size: int,
    optimizer: torch.optim.Optimizer, generator: torch.Generator, log: Callable[[dict[str, float]], None],
) -> None:
    """Fit the policy's masked cell logits to the target distributions (cross-entropy)."""
    n = targets.shape[0]
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total, agree, count = 0.0, 0, 0
        for start in range(0, n, batch_size):
            batch = order[start : start + batch_size]
            obs = {key: value[batch].to(policy.device) for key, value in states.items()}
            target = targets[batch].to(policy.device)
            logits = cell_logits(policy, obs)
            masked = logits.masked_fill(obs["chosen"].flatten(1) > 0.5, torch.finfo(logits.dtype).min)
            loss = -(target * F.log_softmax(masked, dim=1)).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(batch)
            agree += int((masked.argmax(1) == target.argmax(1)).sum())
            count += len(batch)
        log({"loss": total / count, "agreement": agree / count})
    policy.set_training_mode(False)


@torch.no_grad()
def rollout_auc(config: SaliencySearchConfig, policy: Any) -> float:
    """Mean area under the score curve of the policy's closed-loop episodes on ``config``'s images
    (reveal: insertion, higher is better; mask: deletion, lower is better), trapezoid over steps."""
    n = len(config.data)
    core = SaliencySearchCore(config, n)
    everyone, nobody = np.ones(n, bool), np.zeros(n, bool)
    core.advance(None, nobody, everyone, options={"image_index": np.arange(n)})
    curve = [core.scores.copy()]
    for _ in range(config.budget):
        core.advance(masked_argmax(policy, core.observation(), core.action_masks()), everyone, nobody)
        curve.append(core.scores.copy())
    scores = np.stack(curve, axis=1)
    return float(((scores[:, 1:] + scores[:, :-1]) / 2).mean())


# ---------------------------------------------------------------------------- the run
def imitate(env_id: str, out: str | os.PathLike[str], **kwargs: Any) -> ImitationResult:
    """Train an evidence agent for ``env_id`` by imitating the greedy look-ahead's gains (see the
    module docstring; keyword arguments: the fields of :class:`ImitationConfig`)."""
    cfg = ImitationConfig(env_id=env_id, out=out, **kwargs).validate()
    out_path = Path(cfg.out)
    state_file = RunState(out_path / "checkpoints" / "last.pt", STATE_FORMAT, ("config", "round", "policy_state"), "imitation state")
    if cfg.resume:
        state_file.require()
    elif state_file.exists() or (out_path / "final.pt").exists():
        raise FileExistsError(f"{out_path} holds an imitation run; pass resume=True (--resume) or use another run folder")
    with run_lock(out_path):
        return _imitate_locked(cfg, out_path, state_file)


def _imitate_locked(cfg: ImitationConfig, out: Path, state_file: RunState) -> ImitationResult:
    from saliency_gym.envs.sb3 import SB3VecEnv

    device = str(resolve_device(None if cfg.device == "auto" else cfg.device))
    generator = seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    spec = algorithm_spec("maskable_ppo")
    hyperparameters = load_hyperparameters(cfg.env_id, "maskable_ppo", cfg.config)
    hyperparameters["policy_kwargs"] = {**EVIDENCE_POLICY_KWARGS, **(hyperparameters.get("policy_kwargs") or {})}
    hyperparameters["policy_kwargs"]["features_extractor"] = "evidence_cnn"
    _, yaml_env_kwargs, algo_kwargs = split_hyperparameters(hyperparameters)
    env_kwargs = {**yaml_env_kwargs, **(cfg.env_kwargs or {})}
    venv = SB3VecEnv(cfg.env_id, num_envs=1, **env_kwargs)
    try:
        model = spec.cls(spec.policy, venv, seed=cfg.seed, device=device, verbose=0, **algo_kwargs)
        env_config: SaliencySearchConfig = venv.venv.config
        policy = model.policy
        optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
        images, targets = load_explained_images(env_config, 0, cfg.images)
        val_images, val_targets = load_explained_images(env_config, cfg.images, cfg.val_images)
        train_config = fixed_image_config(env_config, images, targets)
        val_config = fixed_image_config(env_config, val_images, val_targets)
        history: list[dict[str, float]] = []
        first_round, label_queries, clock = 0, 0, RunClock()
        best_state, best_auc = snapshot_state(policy), None
        if cfg.resume:
            state = state_file.load(config=cfg.settings(), fixed=FIXED_SETTINGS)
            policy.load_state_dict(state["policy_state"])
            optimizer.load_state_dict(state["optimizer_state"])
            best_state, best_auc = state["best_state"], state["best_auc"]
            first_round, label_queries = int(state["round"]) + 1, int(state["label_queries"])
            history, clock = list(state["history"]), RunClock(float(state["seconds"]))
        writer = open_writer(out / "tb")
        sign = 1.0 if env_config.mode == "reveal" else -1.0
        try:
            for round_ in range(first_round, cfg.dagger_rounds + 1):
                states, gains, queries = _round_states(cfg, out, round_, train_config, policy, rng)
                label_queries += queries
                merged = _merge_rounds(out, round_ + 1)
                targets_t = soft_gain_targets(torch.as_tensor(merged[1]), cfg.temperature).float()
                obs_t = {key: torch.as_tensor(value) for key, value in merged[0].items()}
                step = len(history)

                def log(stats: dict[str, float], round_: int = round_) -> None:
                    history.append({"round": float(round_), **stats})
                    for name, value in stats.items():
                        writer.add_scalar(f"imitation/{name}", value, len(history))

                fit(policy, obs_t, targets_t, epochs=cfg.epochs, batch_size=cfg.batch_size, optimizer=optimizer, generator=generator, log=log)
                auc = rollout_auc(val_config, policy)
                writer.add_scalar("eval/validation_auc", auc, len(history))
                history[-1]["validation_auc"] = auc
                if best_auc is None or sign * auc > sign * best_auc:
                    best_auc, best_state = auc, snapshot_state(policy)
                if cfg.progress:
                    tqdm.write(f"round {round_}: {len(targets_t)} states, validation AUC {auc:.4f} (epochs {step}..{len(history)})")
                state_file.save(
                    config=cfg.settings(), round=round_, policy_state=policy.state_dict(),
                    optimizer_state=optimizer.state_dict(), best_state=best_state, best_auc=best_auc,
                    label_queries=label_queries, history=history, seconds=clock.seconds,
                )  # fmt: skip
        finally:
            writer.close()
        policy.load_state_dict(best_state)
        seconds = clock.seconds
        meta = {
            "recipe": "evidence_imitation", "label_queries": label_queries, "validation_auc": best_auc,
            "train_seconds": seconds, "images": cfg.images, "rounds": cfg.dagger_rounds + 1,
        }  # fmt: skip
        save_kwargs: dict[str, Any] = dict(
            algo="maskable_ppo", env_id=cfg.env_id, env_kwargs=env_kwargs, hyperparameters=hyperparameters,
            seed=cfg.seed, meta=meta,
        )  # fmt: skip
        final = save_agent(model, out / "final.pt", with_optimizer=False, **save_kwargs)
        zipped = save_agent(model, out / "final.zip", format="zip", **save_kwargs)
        return ImitationResult(final, zipped, seconds, label_queries, history, best_auc)
    finally:
        venv.close()


def _round_states(
    cfg: ImitationConfig, out: Path, round_: int, config: SaliencySearchConfig, policy: Any, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray, int]:
    """The states and gains of one round, gathered in batches of episodes (or read from its cache)."""
    path = out / f"states_{round_}.pt"
    if path.exists():
        cached = safe_load(path, expected_format=STATES_FORMAT, required_keys=("observations", "gains", "queries"))
        return {k: v.numpy() for k, v in cached["observations"].items()}, cached["gains"].numpy(), int(cached["queries"])
    behaviour = random_behaviour(rng) if round_ == 0 else student_behaviour(policy)
    parts: list[tuple[dict[str, np.ndarray], np.ndarray, int]] = []
    n = len(config.data)
    batches = range(0, n, cfg.episodes_per_batch)
    for start in tqdm(batches, desc=f"round {round_} states", disable=not cfg.progress, leave=False):
        stop = min(n, start + cfg.episodes_per_batch)
        batch = config.data.get_batch(np.arange(start, stop))
        sub = fixed_image_config(config, batch.images, batch.labels)
        parts.append(collect_states(sub, behaviour, cfg.label_every, rng))
    observations = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
    gains = np.concatenate([p[1] for p in parts])
    queries = sum(p[2] for p in parts)
    atomic_save(
        {
            "format": STATES_FORMAT, "observations": {k: torch.from_numpy(v) for k, v in observations.items()},
            "gains": torch.from_numpy(gains), "queries": queries,
        },
        path,
    )  # fmt: skip
    return observations, gains, queries


def _merge_rounds(out: Path, rounds: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """All states gathered in rounds ``0 .. rounds - 1``."""
    obs: dict[str, list[np.ndarray]] = {}
    gains: list[np.ndarray] = []
    for round_ in range(rounds):
        cached = safe_load(out / f"states_{round_}.pt", expected_format=STATES_FORMAT, required_keys=("observations", "gains"))
        for key, value in cached["observations"].items():
            obs.setdefault(key, []).append(value.numpy())
        gains.append(cached["gains"].numpy())
    return {key: np.concatenate(parts) for key, parts in obs.items()}, np.concatenate(gains)
