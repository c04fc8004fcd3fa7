"""Reproducible training of the shipped classifiers (``saliency-gym train-classifier``).

Named ``classifier_training`` so it is not confused with :mod:`saliency_gym.agents.agent_training`
(``saliency_gym.training`` before issue 11).

The same ``(dataset, seed, epochs)`` regenerates an equivalent checkpoint: data come from the
seeded sources, the model from ``torch.manual_seed(seed)``, and batches from a seeded generator.
The best epoch on the validation split is kept and the test accuracy is stored in the checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from saliency_gym.data import load_dataset
from saliency_gym.models import SmallCNN
from saliency_gym.models.cnn import POOLS
from saliency_gym.models.zoo import save_classifier
from saliency_gym.runs import (
    RunClock,
    TrainingOptions,
    check_output_file,
    seed_everything,
    snapshot_state,
)
from saliency_gym.validation import check_choice

TRAINABLE = ("shapes", "shapes64", "digits", "shape_pairs", "shapes_cluttered")
#: :class:`SmallCNN` arguments a dataset needs beyond the defaults: one small shape anywhere in a
#: 64x64 image is classified at the cost of a 32x32 image (a stride-2 stem, an 8x8 last block) and
#: found wherever it lies (global max pooling).
ARCHITECTURES: dict[str, dict[str, int | str]] = {"shapes_cluttered": {"stem_stride": 2, "pool": "max"}}


@dataclass
class ClassifierTrainingConfig(TrainingOptions):
    """Hyperparameters of :func:`train_classifier`; defaults are the shipped recipe."""

    option_kind = "classifier training option"

    dataset: str = "shapes"
    seed: int = 0
    epochs: int = 12
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    width: int = 16
    max_shift: int = 2
    """Random translation (pixels) used as augmentation."""
    stem_stride: int | None = None
    """Stride of the first convolution (1 or 2); ``None``: the dataset's (:data:`ARCHITECTURES`, else 1)."""
    pool: str | None = None
    """Global pooling, ``"avg"`` or ``"max"``; ``None``: the dataset's (:data:`ARCHITECTURES`, else avg)."""

    def validate(self) -> ClassifierTrainingConfig:
        """Check every field; raise ``TypeError``/``ValueError`` naming the bad one."""
        check_choice("dataset", self.dataset, TRAINABLE)
        self.check_ints("epochs", "batch_size", "width", minimum=1)
        self.check_ints("seed", "max_shift", minimum=0)
        self.check_floats("lr", minimum=0, exclusive_minimum=True)
        self.check_floats("weight_decay", minimum=0)
        self.check_ints("stem_stride", minimum=1, optional=True)
        if self.stem_stride is not None and self.stem_stride > 2:
            raise ValueError(f"stem_stride must be 1 or 2 (or None: the dataset's), got {self.stem_stride}")
        if self.pool is not None:
            check_choice("pool", self.pool, POOLS)
        return self

    def architecture(self) -> dict[str, int | str]:
        """The :class:`SmallCNN` arguments beyond the image's channels and classes: ``width``, then
        the dataset's :data:`ARCHITECTURES` entry, then the fields set here."""
        chosen = {"stem_stride": self.stem_stride, "pool": self.pool}
        return {"width": self.width, **ARCHITECTURES.get(self.dataset, {}),
                **{k: v for k, v in chosen.items() if v is not None}}  # fmt: skip


def _augment(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Random per-batch translation with edge padding (labels and masks are shift-invariant)."""
    if max_shift <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=generator))
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy : max_shift + dy + h, max_shift + dx : max_shift + dx + w]


@torch.no_grad()
def evaluate_accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of ``model`` (put in eval mode) on arrays ``images``/``labels``."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size])
        correct += int((model(x).argmax(1).numpy() == labels[start : start + batch_size]).sum())
    return correct / max(len(images), 1)


def default_checkpoint_path(cfg: ClassifierTrainingConfig) -> Path:
    """``runs/classifiers/<dataset>_s<seed>/<dataset>.pt`` (relative to the working folder)."""
    return Path("runs") / "classifiers" / f"{cfg.dataset}_s{cfg.seed}" / f"{cfg.dataset}.pt"


def train_classifier(
    config: ClassifierTrainingConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> dict[str, float | str]:
    """Train a :class:`SmallCNN` on a shipped dataset and save it; returns the accuracies.

    Args:
        config: the recipe (defaults to :class:`ClassifierTrainingConfig`).
        out: checkpoint path; defaults to :func:`default_checkpoint_path` (a run folder: shipped
            checkpoints are read-only).
        progress: show a progress bar.
    """
    cfg = config or ClassifierTrainingConfig()
    if not isinstance(cfg, ClassifierTrainingConfig):
        raise TypeError(f"config must be a ClassifierTrainingConfig, got {type(cfg).__name__}")
    cfg.validate()
    out = check_output_file(default_checkpoint_path(cfg) if out is None else out)
    generator = seed_everything(cfg.seed)
    train = load_dataset(cfg.dataset, "train").arrays()
    val = load_dataset(cfg.dataset, "val").arrays()
    test_source = load_dataset(cfg.dataset, "test")
    test = test_source.arrays()
    c = test_source.image_shape[0]
    model = SmallCNN(c, test_source.num_classes, **cfg.architecture())  # type: ignore[arg-type]
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = int(np.ceil(len(train.labels) / cfg.batch_size))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch
    )
    x_all, y_all = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    best_val, best_state = -1.0, None
    clock = RunClock()
    bar = tqdm(total=cfg.epochs * steps_per_epoch, disable=not progress, desc=f"train {cfg.dataset}")
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(y_all), generator=generator)
        for i in range(steps_per_epoch):
            idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = _augment(x_all[idx], cfg.max_shift, generator)
            loss = F.cross_entropy(model(x), y_all[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
        val_acc = evaluate_accuracy(model, val.images, val.labels)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", val_acc=f"{val_acc:.4f}")
        if val_acc >= best_val:
            best_val = val_acc
            best_state = snapshot_state(model)
    bar.close()
    assert best_state is not None
    model.load_state_dict(best_state)
    test_acc = evaluate_accuracy(model, test.images, test.labels)
    seconds = clock.seconds
    meta = {**cfg.describe(), "val_accuracy": best_val, "test_accuracy": test_acc, "train_seconds": seconds}
    save_classifier(
        model, out, class_names=test_source.class_names, input_shape=test_source.image_shape,
        dataset=cfg.dataset, meta=meta,
    )  # fmt: skip
    return {"dataset": cfg.dataset, "val_accuracy": best_val, "test_accuracy": test_acc,
            "seconds": seconds, "path": str(out)}  # fmt: skip
