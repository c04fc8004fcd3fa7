"""Short PGD adversarial training of the shapes classifier (the LENS defence side).

Madry et al. ("Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018) train on
the worst case of an L∞ ε-ball found by projected gradient descent (PGD); Kamath et al. (LENS,
AAAI 2024) and Chen et al. (2019) report that such models also have more robust attributions. This
module fine-tunes the shipped natural ``shapes`` classifier with PGD examples for a few epochs so
natural and robust models can be compared (``benchmarks/bench_attacks.py``); the result ships as
``saliency_gym/checkpoints/shapes_robust.pt`` and loads with ``load_classifier("shapes_robust")``.

The recipe is reproducible from its seed (data order, PGD random starts, model initialisation all
come from seeded generators), shows a progress bar, logs to TensorBoard when ``log_dir`` is given,
and resumes from its last per-epoch checkpoint (``resume_dir``), written with
:func:`~saliency_gym.checkpoint.atomic_save` and read back with ``weights_only=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from saliency_gym.classifier_training import evaluate_accuracy
from saliency_gym.data import load_dataset
from saliency_gym.models.zoo import CHECKPOINT_DIR, load_classifier_module, save_classifier
from saliency_gym.runs import (
    RunClock,
    RunState,
    TrainingOptions,
    check_output_dir,
    check_output_file,
    open_writer,
    seed_everything,
)
from saliency_gym.validation import check_float, check_int

__all__ = [
    "AdversarialTrainingConfig",
    "adversarial_training",
    "pgd_attack",
    "robust_accuracy",
]

_RESUME_FORMAT = "saliency_gym.adversarial_training/v1"
_RESUME_KEYS = ("epoch", "model", "optimizer", "scheduler", "generator", "config")


@dataclass
class AdversarialTrainingConfig(TrainingOptions):
    """Hyperparameters of :func:`adversarial_training`; the defaults are the shipped recipe.

    Attributes:
        base: classifier to fine-tune (a shipped name or a checkpoint path).
        epsilon: L∞ radius of the training attack, in pixel units ([0, 1] images).
        pgd_steps: PGD iterations per training batch.
        step_size: PGD step; ``None`` uses ``2.5 * epsilon / pgd_steps`` (Madry et al.).
        epochs: passes over the ``n_train`` training images.
        n_train: training images used (the first ``n_train`` of the train split).
        batch_size: images per optimiser step.
        lr: peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW weight decay.
        seed: seeds data order, PGD starts and the optimiser's randomness.
        eval_images: test images for the clean and robust accuracy stored in the checkpoint.
        eval_pgd_steps: PGD iterations of the evaluation attack (stronger than training's).
    """

    option_kind = "adversarial training option"

    base: str = "shapes"
    epsilon: float = 8 / 255
    pgd_steps: int = 3
    step_size: float | None = None
    epochs: int = 4
    n_train: int = 12000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0
    eval_images: int = 1000
    eval_pgd_steps: int = 10

    def validate(self) -> AdversarialTrainingConfig:
        """Check every field; raise ``TypeError``/``ValueError`` naming the bad one."""
        self.check_floats("epsilon", minimum=0.0, maximum=1.0, exclusive_minimum=True)
        self.check_floats("step_size", minimum=0.0, exclusive_minimum=True, optional=True)
        self.check_floats("lr", minimum=0.0, exclusive_minimum=True)
        self.check_floats("weight_decay", minimum=0.0)
        self.check_ints("pgd_steps", "epochs", "n_train", "batch_size", "eval_images", "eval_pgd_steps", minimum=1)
        self.check_ints("seed", minimum=0)
        return self


def pgd_attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    epsilon: float,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L∞ PGD on the cross-entropy loss (Madry et al. 2018): adversarial images in the ε-ball ∩ [0, 1].

    Args:
        model: a classifier returning logits; its mode (train/eval) is left as it is.
        images: ``(N, C, H, W)`` in [0, 1].
        labels: ``(N,)`` classes whose loss is increased.
        epsilon: L∞ radius.
        steps: iterations.
        step_size: per-iteration step (default ``2.5 * epsilon / steps``).
        random_start: start from a uniform point of the ball (Madry et al.) instead of the image.
        generator: seeds the random start.
    """
    epsilon = check_float("epsilon", epsilon, minimum=0.0)
    steps = check_int("steps", steps, minimum=0)
    alpha = 2.5 * epsilon / max(steps, 1) if step_size is None else check_float("step_size", step_size, minimum=0.0)
    x0 = images.detach()
    if random_start and epsilon > 0:
        noise = torch.rand(x0.shape, generator=generator, device="cpu").to(x0.device) * 2 - 1
        x = (x0 + epsilon * noise).clamp(0.0, 1.0)
    else:
        x = x0.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x), labels)
        (grad,) = torch.autograd.grad(loss, x)
        x = x.detach() + alpha * grad.sign()
        x = torch.min(torch.max(x, x0 - epsilon), x0 + epsilon).clamp(0.0, 1.0)
    return x.detach()


def robust_accuracy(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    epsilon: float,
    steps: int = 10,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Accuracy under :func:`pgd_attack` (random start, ``steps`` iterations), model in eval mode."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        y = torch.from_numpy(np.asarray(labels[start : start + batch_size], dtype=np.int64))
        adv = pgd_attack(model, x, y, epsilon, steps=steps, generator=generator)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == y).sum())
    return correct / max(len(images), 1)


def _resume_state(resume_dir: str | os.PathLike[str]) -> RunState:
    path = check_output_dir(resume_dir, "resume_dir") / "adversarial_training_last.pt"
    return RunState(path, _RESUME_FORMAT, _RESUME_KEYS, what="adversarial training state")


def adversarial_training(
    config: AdversarialTrainingConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    resume_dir: str | os.PathLike[str] | None = None,
    log_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``config.base`` with PGD adversarial examples and save it as a classifier checkpoint.

    Every batch is replaced by its PGD adversarial version (``pgd_steps`` iterations from a random
    start; the model is in eval mode while attacking so batch-norm statistics only see training
    steps). The last epoch's model is saved (adversarial training has no reliable early-stopping
    signal this short). Returns the clean and robust test accuracies of the base and the trained
    model, which are also stored in the checkpoint's ``meta``.

    Args:
        config: the recipe (defaults to :class:`AdversarialTrainingConfig`).
        out: checkpoint path; default ``saliency_gym/checkpoints/shapes_robust.pt``.
        resume_dir: folder for a per-epoch training checkpoint; an existing one is resumed.
        log_dir: TensorBoard folder (``None``: no logging).
        progress: show a progress bar.
    """
    cfg = config or AdversarialTrainingConfig()
    if not isinstance(cfg, AdversarialTrainingConfig):
        raise TypeError(f"config must be an AdversarialTrainingConfig, got {type(cfg).__name__}")
    cfg.validate()
    out = check_output_file(out) if out is not None else CHECKPOINT_DIR / "shapes_robust.pt"
    generator = seed_everything(cfg.seed)
    model, info = load_classifier_module(cfg.base)
    dataset = info.get("dataset")
    if not isinstance(dataset, str):
        raise ValueError(f"classifier {cfg.base!r} does not name its dataset; adversarial training needs it")
    train = load_dataset(dataset, "train", n=cfg.n_train).arrays()
    test = load_dataset(dataset, "test", n=cfg.eval_images).arrays()
    x_all, y_all = torch.from_numpy(train.images), torch.from_numpy(train.labels.astype(np.int64))
    alpha = cfg.step_size if cfg.step_size is not None else 2.5 * cfg.epsilon / cfg.pgd_steps
    steps_per_epoch = int(np.ceil(len(y_all) / cfg.batch_size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)

    base_clean = evaluate_accuracy(model, test.images, test.labels)
    base_robust = robust_accuracy(model, test.images, test.labels, cfg.epsilon, steps=cfg.eval_pgd_steps, seed=cfg.seed)

    start_epoch, elapsed = 0, 0.0
    run_state = _resume_state(resume_dir) if resume_dir is not None else None
    if run_state is not None and run_state.exists():
        state = run_state.load(config=cfg.describe(), hint="; it was written by another recipe: use another resume_dir")
        run_state.restore(state, {"model": model, "optimizer": optimizer, "scheduler": scheduler})
        generator.set_state(state["generator"])
        start_epoch, elapsed = int(state["epoch"]), float(state.get("seconds", 0.0))

    writer = open_writer(log_dir) if log_dir is not None else None
    clock = RunClock(elapsed)
    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, disable=not progress, desc="PGD training")
    for epoch in range(start_epoch, cfg.epochs):
        order = torch.randperm(len(y_all), generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x, y = x_all[idx], y_all[idx]
            model.eval()
            x_adv = pgd_attack(model, x, y, cfg.epsilon, steps=cfg.pgd_steps, step_size=alpha, generator=generator)
            model.train()
            logits = model(x_adv)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            if writer is not None:
                step = epoch * steps_per_epoch + i
                writer.add_scalar("train/adv_loss", loss.item(), step)
                writer.add_scalar("train/adv_accuracy", (logits.argmax(1) == y).float().mean().item(), step)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        if run_state is not None:
            run_state.save(
                epoch=epoch + 1, model=model.state_dict(), optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                generator=generator.get_state(), config=cfg.describe(), seconds=clock.seconds,
            )  # fmt: skip
    bar.close()
    seconds = clock.seconds
    model.eval()
    clean = evaluate_accuracy(model, test.images, test.labels)
    robust = robust_accuracy(model, test.images, test.labels, cfg.epsilon, steps=cfg.eval_pgd_steps, seed=cfg.seed)
    if writer is not None:
        writer.add_scalar("test/clean_accuracy", clean, cfg.epochs)
        writer.add_scalar("test/robust_accuracy", robust, cfg.epochs)
        writer.close()
    results = {
        "clean_accuracy": clean, "robust_accuracy": robust,
        "base_clean_accuracy": base_clean, "base_robust_accuracy": base_robust,
        "eval_images": len(test.labels), "train_seconds": seconds,
    }  # fmt: skip
    meta = {**cfg.describe(), **results, "recipe": "baselines.adversarial_training.adversarial_training"}
    save_classifier(model, out, class_names=info["class_names"], input_shape=tuple(info["input_shape"]), dataset=dataset, meta=meta)
    return {**results, "path": str(out)}


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - thin command-line wrapper
    """``python -m saliency_gym.baselines.adversarial_training [--epochs 3] [--out PATH]``."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description="PGD adversarial fine-tuning of the shapes classifier")
    defaults = AdversarialTrainingConfig()
    parser.add_argument("--base", default=defaults.base)
    parser.add_argument("--epsilon", type=float, default=defaults.epsilon)
    parser.add_argument("--pgd-steps", type=int, default=defaults.pgd_steps)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--n-train", type=int, default=defaults.n_train)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume-dir", default=None)
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = AdversarialTrainingConfig(base=args.base, epsilon=args.epsilon, pgd_steps=args.pgd_steps, epochs=args.epochs,
                                    n_train=args.n_train, seed=args.seed)  # fmt: skip
    print(json.dumps(adversarial_training(cfg, args.out, resume_dir=args.resume_dir, log_dir=args.log_dir), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
