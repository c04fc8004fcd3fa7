"""Base models for ID-ExpO on tables, and loading a fine-tuning task (model + data splits).

:func:`train_tabular_classifier` trains a :class:`~saliency_gym.models.mlp.TabularMLP` on a shipped
table (seeded, a few seconds) and saves it as a classifier checkpoint; :func:`load_task` loads a
trainable model (a shipped name, a checkpoint path, or a tabular dataset name: then a base MLP is
trained first) with its dataset's splits as tensors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from saliency_gym.data import available_datasets, load_dataset
from saliency_gym.data.tabular import available_tabular_datasets, load_tabular
from saliency_gym.models import TabularMLP
from saliency_gym.models.zoo import load_classifier_module, save_classifier
from saliency_gym.runs import seed_everything, snapshot_state
from saliency_gym.validation import check_choice, check_int

__all__ = ["IDExpOTask", "load_task", "train_tabular_classifier"]


@dataclass
class IDExpOTask:
    """A trainable model and its data splits as tensors."""

    model: nn.Module
    kind: str
    """``"image"`` or ``"tabular"``."""
    dataset: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    """``(C, H, W)`` for images; ``(1, 1, F)`` for tables (how the checkpoint records it)."""
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    """``{"train" | "val" | "test": (inputs, labels)}``; tables as ``(N, F)`` rows."""
    source_path: str


def train_tabular_classifier(
    dataset: str,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    epochs: int = 60,
    hidden: tuple[int, ...] = (64, 64),
    lr: float = 3e-3,
    batch_size: int = 64,
    progress: bool = False,
) -> Path:
    """Train a :class:`TabularMLP` on a shipped table (seeded) and save it as a classifier checkpoint.

    The best epoch on the validation split is kept; the checkpoint records ``input_shape (1, 1, F)``
    and ``meta["kind"] = "tabular"``. Load the module with
    :func:`saliency_gym.models.zoo.load_classifier_module`.
    """
    check_choice("tabular dataset", dataset, available_tabular_datasets())
    epochs = check_int("epochs", epochs, minimum=1)
    generator = seed_everything(check_int("seed", seed, minimum=0))
    train, val = load_tabular(dataset, "train").arrays(), load_tabular(dataset, "val").arrays()
    x, y = torch.from_numpy(train.features), torch.from_numpy(train.labels)
    xv, yv = torch.from_numpy(val.features), torch.from_numpy(val.labels)
    source = load_tabular(dataset, "train")
    model = TabularMLP(source.num_features, source.num_classes, hidden=hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    best, best_state = -1.0, None
    for _ in tqdm(range(epochs), disable=not progress, desc=f"train {dataset} MLP"):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(xv).argmax(1) == yv).float().mean())
        if acc >= best:
            best, best_state = acc, snapshot_state(model)
    assert best_state is not None
    model.load_state_dict(best_state)
    meta = {"kind": "tabular", "seed": seed, "epochs": epochs, "val_accuracy": best, "feature_names": list(source.feature_names)}
    return save_classifier(model, out, class_names=source.class_names, input_shape=(1, 1, source.num_features), dataset=dataset, meta=meta)


def load_task(classifier: str | os.PathLike[str], *, out_dir: str | os.PathLike[str] | None = None, seed: int = 0,
              tabular_epochs: int = 60) -> IDExpOTask:  # fmt: skip
    """Load a trainable model and its dataset's splits.

    ``classifier`` is a shipped name or a checkpoint path (its recorded dataset gives the data), or
    a tabular dataset name: then a base MLP is trained first and saved to ``<out_dir>/base.pt``
    (reused when present).
    """
    if not isinstance(classifier, (str, os.PathLike)):
        raise TypeError(f"classifier must be a name or a path, got {type(classifier).__name__}")
    text = os.fspath(classifier)
    if text in available_tabular_datasets():
        if out_dir is None:
            raise ValueError("a tabular dataset name needs out_dir (where the base MLP is saved)")
        base = Path(out_dir) / "base.pt"
        if not base.is_file():
            train_tabular_classifier(text, base, seed=seed, epochs=tabular_epochs)
        text = str(base)
    model, info = load_classifier_module(text)
    dataset = str(info.get("dataset", ""))
    names = tuple(info["class_names"])
    shape = tuple(int(s) for s in info["input_shape"])
    loader: Callable[[str, str], Any]
    if dataset in available_tabular_datasets():
        kind, loader, inputs = "tabular", load_tabular, "features"
    elif dataset in available_datasets():
        kind, loader, inputs = "image", load_dataset, "images"
    else:
        raise ValueError(
            f"classifier {text!r} records dataset {dataset!r}; ID-ExpO fine-tuning needs one of "
            f"{available_datasets() + available_tabular_datasets()}"
        )
    splits = {}
    for split in ("train", "val", "test"):
        arrays = loader(dataset, split).arrays()
        splits[split] = (torch.from_numpy(getattr(arrays, inputs)), torch.from_numpy(arrays.labels))
    return IDExpOTask(model=model, kind=kind, dataset=dataset, class_names=names, input_shape=shape, splits=splits, source_path=str(info["path"]))
