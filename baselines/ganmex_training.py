"""Training GANMEX generators (``saliency-gym train-ganmex``): seeded, logged, resumable.

:func:`train_ganmex` trains a :class:`~saliency_gym.baselines.ganmex.ConditionalGenerator` and a
WGAN-GP :class:`~saliency_gym.baselines.ganmex.Critic` against a *frozen* shipped classifier on
the training split of the classifier's dataset (Shih et al. 2021; StarGAN's alternating schedule,
``n_critic`` critic updates per generator update, Adam with ``betas=(0.5, 0.999)``).

* Reproducible: the networks come from ``torch.manual_seed(seed)``, batches and target classes
  from a seeded ``torch.Generator``; the same config on the same machine gives the same weights.
* Logged: a tqdm progress bar and TensorBoard scalars (losses, batch validity) under
  ``<out_dir>/tb``.
* Resumable: every ``checkpoint_every`` steps the full state (both networks, both optimisers,
  the generators' RNG states, the step) is written atomically to ``<out_dir>/last.pt``;
  ``resume=True`` continues from it (and may extend ``steps``).
* Exported: at the end the generator alone (weights-only, small) is written to ``export`` (by
  default ``<out_dir>/generator.pt``) with its measured validity and proximity on the validation
  split, ready for :class:`~saliency_gym.baselines.baseline_providers.GanmexSubstrate`.
* Selected (``select="min_l1_valid"``): every ``select_every`` steps the generator is measured on
  ``select_samples`` validation images; the checkpoint with the smallest mean L1 edit among those
  with validity >= ``select_min_validity`` is kept (in the resumable state, and weights-only and
  atomically in ``<out_dir>/selected.pt``) and exported instead of the last one. Validity alone
  does not pick a good counterfactual generator: late in training it may keep every translation
  valid by editing more than the class needs.
* Minimality ramp (``lambda_sim_end``): the L1 weight rises linearly from ``lambda_sim`` to
  ``lambda_sim_end`` over the second half of training, shrinking edits once the generator has
  learnt valid ones.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_gym.baselines.ganmex import (
    ConditionalGenerator,
    Critic,
    GanmexLossWeights,
    critic_loss,
    generator_loss,
    sample_targets,
    save_generator,
)
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.models.zoo import load_classifier
from saliency_gym.runs import (
    RunClock,
    RunState,
    SignalStop,
    TrainingOptions,
    check_output_dir,
    open_writer,
    run_lock,
    save_or_stop,
    seed_everything,
)
from saliency_gym.validation import check_choice

STATE_FORMAT = "saliency_gym.ganmex_training/v1"
#: Config fields that must match for ``resume=True`` (the rest, e.g. ``steps``, may change).
_RESUME_FIXED = (
    "classifier",
    "dataset",
    "seed",
    "batch_size",
    "gen_width",
    "n_residual",
    "copy_window",
    "critic_width",
    "conditional_critic",
)
_STATE_KEYS = ("config", "generator", "critic", "opt_g", "opt_d", "step", "rng")
#: Checkpoint selection rules of :class:`GanmexTrainingConfig` (``select``).
SELECT_RULES = ("last", "min_l1_valid")


@dataclass
class GanmexTrainingConfig(TrainingOptions):
    """Hyperparameters of :func:`train_ganmex`; the defaults are the recipe of the shipped ``digits``
    generator. The shipped ``shapes`` and ``shape_pairs`` generators add the minimality ramp and
    checkpoint selection: ``lambda_sim_end=40, select="min_l1_valid"`` (docs/counterfactuals.md)."""

    option_kind = "GANMEX training option"

    classifier: str = "shape_pairs"
    """Shipped classifier name or checkpoint path; the frozen model whose counterfactuals are learnt."""
    dataset: str | None = None
    """Training data (a :func:`~saliency_gym.data.load_dataset` name); ``None``: the classifier's."""
    seed: int = 0
    """Seeds the networks' initialisation, the batches and the target classes."""
    steps: int = 2000
    """Generator updates (all three shipped generators: 2000)."""
    n_critic: int = 1
    """Critic updates per generator update (StarGAN uses 5; 1 fits the 15-minute CPU budget)."""
    batch_size: int = 32
    """Images per critic or generator update."""
    lr_generator: float = 2e-4
    """Adam learning rate of the generator (``betas=(0.5, 0.999)``, as StarGAN)."""
    lr_critic: float = 2e-4
    """Adam learning rate of the critic."""
    lambda_cls: float = 1.0
    """Weight of the frozen classifier's cross-entropy towards the target class."""
    lambda_sim: float = 10.0
    """Weight of the L1 distance to the input (keeps counterfactuals close)."""
    lambda_cyc: float = 0.0
    """Weight of the cycle-consistency loss (0: off)."""
    lambda_gp: float = 10.0
    """Weight of the WGAN-GP gradient penalty."""
    lambda_sim_end: float | None = None
    """Minimality ramp: the L1 weight rises linearly from ``lambda_sim`` (at half the steps) to this
    value (at the last step); ``None``: constant ``lambda_sim``."""
    gen_width: int = 16
    """Channels of the generator's first convolution."""
    n_residual: int = 2
    """Residual blocks in the generator's bottleneck."""
    copy_window: int = 7
    """Side of the window a repainted pixel may copy its colour from (odd; 0: free colour only,
    the v1 generator); see :class:`~saliency_gym.baselines.ganmex.ConditionalGenerator`."""
    critic_width: int = 16
    """Channels of the critic's first convolution."""
    conditional_critic: bool = True
    """Judge each counterfactual against real images *of its target class* (class planes as critic
    input) rather than against all real images, which accept a translation that keeps the source
    class's features (a marked image is real, even when relabelled plain). ``False``: the v1
    recipe."""
    max_train: int | None = None
    """Use only the first ``max_train`` training images (``None``: all)."""
    eval_samples: int = 500
    """Validation images for the final validity/proximity measurement."""
    select: str = "last"
    """Which generator to export: ``"last"`` (the final weights) or ``"min_l1_valid"`` (of the
    checkpoints measured every ``select_every`` steps, the one with the smallest mean L1 edit among
    those with validity >= ``select_min_validity``; the last weights, with a warning, if none
    qualifies)."""
    select_every: int = 100
    """Generator updates between two selection measurements (``select="min_l1_valid"``)."""
    select_samples: int = 300
    """Validation images (sent to seeded random other classes) each selection measurement uses."""
    select_min_validity: float = 0.95
    """Validity a checkpoint needs to be selectable (in [0, 1])."""
    log_every: int = 25
    """TensorBoard scalars every ``log_every`` generator updates."""
    checkpoint_every: int = 200
    """Write the resumable state every ``checkpoint_every`` generator updates."""

    def validate(self) -> GanmexTrainingConfig:
        """Check every field; raise ``TypeError``/``ValueError`` naming the bad one."""
        self.check_ints("seed", "n_residual", "copy_window", minimum=0)
        if self.copy_window % 2 == 0 and self.copy_window:
            raise ValueError(f"copy_window must be odd (or 0), got {self.copy_window}")
        self.check_ints("steps", "n_critic", "batch_size", "gen_width", "critic_width", "eval_samples", "log_every",
                        "checkpoint_every", minimum=1)  # fmt: skip
        self.check_ints("max_train", minimum=2, optional=True)
        self.check_floats("lr_generator", "lr_critic", minimum=0.0, exclusive_minimum=True)
        self.check_floats("lambda_sim_end", minimum=0.0, optional=True)
        check_choice("select", self.select, SELECT_RULES)
        self.check_ints("select_every", "select_samples", minimum=1)
        self.check_floats("select_min_validity", minimum=0.0, maximum=1.0)
        if not isinstance(self.conditional_critic, bool):
            raise TypeError(f"conditional_critic must be a bool, got {type(self.conditional_critic).__name__}")
        self.loss_weights()
        return self

    def loss_weights(self) -> GanmexLossWeights:
        """The loss weights (validated by :class:`~saliency_gym.baselines.ganmex.GanmexLossWeights`)."""
        return GanmexLossWeights(self.lambda_cls, self.lambda_sim, self.lambda_cyc, self.lambda_gp)

    def lambda_sim_at(self, step: int) -> float:
        """The L1 weight at generator update ``step`` (0-based): ``lambda_sim`` in the first half,
        then linear to ``lambda_sim_end`` at the last step (constant without a ramp)."""
        if self.lambda_sim_end is None:
            return float(self.lambda_sim)
        half = self.steps / 2
        frac = min(max((step + 1 - half) / max(self.steps - half, 1), 0.0), 1.0)
        return float(self.lambda_sim + frac * (self.lambda_sim_end - self.lambda_sim))


@torch.no_grad()
def evaluate_counterfactuals(
    generator_net: ConditionalGenerator,
    classifier: FrozenClassifier,
    images: torch.Tensor,
    targets: torch.Tensor,
    batch_size: int = 256,
) -> dict[str, float]:
    """Validity (fraction of ``G(x, t)`` the classifier assigns to ``t``) and proximity (mean
    per-pixel L1 distance ``mean |G(x, t) - x|``, averaged over images) of counterfactuals."""
    valid, l1 = [], []
    for lo in range(0, images.shape[0], batch_size):
        x = images[lo : lo + batch_size].to(classifier.device)
        t = targets[lo : lo + batch_size].to(classifier.device)
        fake = generator_net(x, t).clamp(0, 1)
        valid.append((classifier.predict(fake) == t).float().cpu())
        l1.append((fake - x).abs().flatten(1).mean(1).cpu())
    return {"validity": float(torch.cat(valid).mean()), "proximity_l1": float(torch.cat(l1).mean())}


def _data_tensors(source: DataSource, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(source) if limit is None else min(limit, len(source))
    batch = source.get_batch(np.arange(n))
    return torch.from_numpy(np.ascontiguousarray(batch.images)), torch.from_numpy(batch.labels)


def train_ganmex(
    config: GanmexTrainingConfig | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    export: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Train a GANMEX generator for a frozen classifier; return the measured results.

    Args:
        config: the recipe (:class:`GanmexTrainingConfig`).
        out_dir: folder for ``last.pt`` (resumable state), ``tb/`` (TensorBoard) and, unless
            ``export`` is given, ``generator.pt``; default ``runs/ganmex/<classifier name>``.
        resume: continue from ``<out_dir>/last.pt`` (its fixed settings must match ``config``).
        export: where to write the final generator checkpoint.
        device: where to train (``None``: CUDA when available).
        progress: show a progress bar.

    Returns:
        ``{"validity", "proximity_l1", "steps", "seconds", "generator_path", ...}`` where
        validity and proximity are measured on ``eval_samples`` validation images translated to
        random other classes.
    """
    cfg = config or GanmexTrainingConfig()
    if not isinstance(cfg, GanmexTrainingConfig):
        raise TypeError(f"config must be a GanmexTrainingConfig, got {type(cfg).__name__}")
    cfg.validate()
    classifier = load_classifier(cfg.classifier, device=device, optimize=False)
    module = classifier.module
    if any(p.requires_grad for p in module.parameters()):
        raise RuntimeError(
            "the classifier must be frozen (FrozenClassifier sets requires_grad=False)"
        )
    dataset = cfg.dataset or classifier.meta.get("dataset")
    if not dataset:
        raise ValueError(f"classifier {cfg.classifier!r} records no dataset; pass dataset=")
    cfg.dataset = dataset
    train_source = load_dataset(dataset, "train")
    if (
        tuple(train_source.image_shape) != classifier.input_shape
        or train_source.num_classes != classifier.num_classes
    ):
        raise ValueError(
            f"dataset {dataset!r} ({train_source.image_shape}, {train_source.num_classes} classes) does not fit "
            f"classifier {cfg.classifier!r} ({classifier.input_shape}, {classifier.num_classes} classes)"
        )
    name = Path(str(cfg.classifier)).stem
    out_dir = check_output_dir(
        out_dir if out_dir is not None else Path("runs") / "ganmex" / name, "out_dir"
    )
    with run_lock(out_dir), SignalStop() as signals:
        run_state = RunState(out_dir / "last.pt", STATE_FORMAT, _STATE_KEYS)
        export_path = Path(export) if export is not None else out_dir / "generator.pt"
        weights = cfg.loss_weights()
        c, k = classifier.input_shape[0], classifier.num_classes

        rng = seed_everything(cfg.seed)
        generator_net = ConditionalGenerator(
            c, k, width=cfg.gen_width, n_residual=cfg.n_residual, copy_window=cfg.copy_window
        ).to(classifier.device)
        critic = Critic(c, width=cfg.critic_width, num_classes=k if cfg.conditional_critic else 0).to(classifier.device)
        opt_g = torch.optim.Adam(
            generator_net.parameters(), lr=cfg.lr_generator, betas=(0.5, 0.999)
        )
        opt_d = torch.optim.Adam(critic.parameters(), lr=cfg.lr_critic, betas=(0.5, 0.999))
        step, elapsed = 0, 0.0
        selected: dict[str, Any] | None = None  # {"state_dict", "step", "validity", "proximity_l1"}
        if resume:
            state = run_state.load(config=cfg.describe(), fixed=_RESUME_FIXED)
            run_state.restore(
                state,
                {"generator": generator_net, "critic": critic, "opt_g": opt_g, "opt_d": opt_d},
            )
            rng.set_state(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            step, elapsed = int(state["step"]), float(state.get("seconds", 0.0))
            selected = state.get("selected")

        x_all, y_all = _data_tensors(train_source, cfg.max_train)
        n_train = x_all.shape[0]
        by_class = [torch.nonzero(y_all == cls).flatten() for cls in range(k)]
        if cfg.conditional_critic and any(pool.numel() == 0 for pool in by_class):
            raise ValueError(f"conditional_critic needs training images of every class; {dataset!r} lacks some")

        def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.randint(0, n_train, (cfg.batch_size,), generator=rng)
            return x_all[idx].to(classifier.device), y_all[idx].to(classifier.device)

        def critic_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
            """Real images, fakes and the classes a conditional critic judges both as (``None``
            for an unconditional one). Conditional: the real images are drawn from the classes
            the fakes were translated to, so each fake is compared with real images of its class.
            Unconditional: the fakes are translations of the real batch (the v1 recipe)."""
            real, sources = next_batch()
            targets = sample_targets(sources, k, rng)
            with torch.no_grad():
                fake = generator_net(real, targets)
            if not cfg.conditional_critic:
                return real, fake, None
            targets_cpu = targets.cpu()
            idx = torch.empty_like(targets_cpu)
            for cls, pool in enumerate(by_class):
                where = targets_cpu == cls
                idx[where] = pool[torch.randint(0, pool.numel(), (int(where.sum()),), generator=rng)]
            return x_all[idx].to(classifier.device), fake, targets

        def save_state() -> None:
            run_state.save(
                config=cfg.describe(), generator=generator_net.state_dict(), critic=critic.state_dict(),
                opt_g=opt_g.state_dict(), opt_d=opt_d.state_dict(), step=step, rng=rng.get_state(),
                torch_rng=torch.get_rng_state(), seconds=clock.seconds, selected=selected,
            )  # fmt: skip

        val = load_dataset(dataset, "val")
        if cfg.select == "min_l1_valid":
            x_sel, y_sel = _data_tensors(val, cfg.select_samples)
            sel_targets = sample_targets(y_sel, k, torch.Generator().manual_seed(cfg.seed + 2))

        def export_meta(extra: dict[str, Any]) -> dict[str, Any]:
            return {**cfg.describe(), **extra}

        def maybe_select() -> None:
            """Measure the generator now; keep it if it is the smallest valid edit so far."""
            nonlocal selected
            generator_net.eval()
            scores = evaluate_counterfactuals(generator_net, classifier, x_sel, sel_targets)
            generator_net.train()
            writer.add_scalar("select/validity", scores["validity"], step)
            writer.add_scalar("select/proximity_l1", scores["proximity_l1"], step)
            if scores["validity"] < cfg.select_min_validity:
                return
            if selected is not None and scores["proximity_l1"] >= selected["proximity_l1"]:
                return
            state_dict = {key: v.detach().cpu().clone() for key, v in generator_net.state_dict().items()}
            selected = {"state_dict": state_dict, "step": step, **scores}
            snapshot = copy.deepcopy(generator_net).cpu()
            save_generator(snapshot, out_dir / "selected.pt", class_names=classifier.class_names or [],
                           input_shape=classifier.input_shape, classifier=str(cfg.classifier),
                           meta=export_meta({"selected_step": step, "select_scores": scores}))  # fmt: skip

        writer = open_writer(out_dir / "tb", purge_step=step)
        writer.add_text("config", str(cfg.describe()), step)
        bar = tqdm(
            total=cfg.steps,
            initial=min(step, cfg.steps),
            disable=not progress,
            desc=f"train-ganmex {name}",
        )
        clock = RunClock(elapsed)
        generator_net.train()
        critic.train()
        try:
            while step < cfg.steps:
                for _ in range(cfg.n_critic):
                    real, fake, classes = critic_batch()
                    d_loss, d_parts = critic_loss(critic, real, fake, weights, rng, classes)
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_d.step()
                real, sources = next_batch()
                targets = sample_targets(sources, k, rng)
                step_weights = weights if cfg.lambda_sim_end is None else replace(weights, lambda_sim=cfg.lambda_sim_at(step))
                g_loss, g_parts = generator_loss(
                    generator_net, critic, module, real, sources, targets, step_weights
                )
                opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                opt_g.step()
                step += 1
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    for key, value in {**d_parts, **g_parts}.items():
                        writer.add_scalar(key, value, step)
                    bar.set_postfix(valid=f"{g_parts['generator/validity']:.2f}", l1=f"{g_parts['generator/sim_l1']:.3f}",
                                    w=f"{d_parts['critic/wasserstein']:.2f}")  # fmt: skip
                    writer.add_scalar("generator/lambda_sim", step_weights.lambda_sim, step)
                if cfg.select == "min_l1_valid" and (step % cfg.select_every == 0 or step == cfg.steps):
                    maybe_select()
                save_or_stop(step, every=cfg.checkpoint_every, total=cfg.steps, signals=signals, save=save_state,
                             state_path=run_state.path, on_stop=writer.close)  # fmt: skip
        finally:
            bar.close()
        elapsed = clock.seconds

        generator_net.eval()
        selection: dict[str, Any] = {}
        if cfg.select == "min_l1_valid":
            if selected is None:
                warnings.warn(
                    f"select='min_l1_valid': no checkpoint reached validity {cfg.select_min_validity}; "
                    "exporting the last weights",
                    RuntimeWarning,
                    stacklevel=2,
                )
                selection = {"selected_step": None}
            else:
                generator_net.load_state_dict(selected["state_dict"])
                selection = {"selected_step": int(selected["step"]),
                             "select_scores": {"validity": selected["validity"], "proximity_l1": selected["proximity_l1"]}}  # fmt: skip
        x_val, y_val = _data_tensors(val, cfg.eval_samples)
        eval_targets = sample_targets(y_val, k, torch.Generator().manual_seed(cfg.seed + 1))
        metrics = evaluate_counterfactuals(generator_net, classifier, x_val, eval_targets)
        writer.add_scalar("eval/validity", metrics["validity"], step)
        writer.add_scalar("eval/proximity_l1", metrics["proximity_l1"], step)
        writer.close()
        meta = export_meta({**metrics, **selection, "train_seconds": elapsed, "steps_done": step})
        save_generator(generator_net.cpu(), export_path, class_names=classifier.class_names or [],
                       input_shape=classifier.input_shape, classifier=str(cfg.classifier), meta=meta)  # fmt: skip
        return {**metrics, "steps": step, "seconds": elapsed, "generator_path": str(export_path),
                "state_path": str(run_state.path), "dataset": dataset, **selection}  # fmt: skip


def config_from_kwargs(**kwargs: Any) -> GanmexTrainingConfig:
    """A :class:`GanmexTrainingConfig` from keyword arguments, rejecting unknown names clearly."""
    return GanmexTrainingConfig.from_kwargs(**kwargs)
