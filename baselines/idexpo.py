"""ID-ExpO: fine-tune a predictor so that its post-hoc explanations become more faithful.

Yoshikawa & Iwata, "Explanation-Based Training with Differentiable Insertion/Deletion
Metric-Aware Regularizers" (AISTATS 2024). Starting from a trained classifier, minimise::

    loss = CE(f(x), y) + lambda1 * (soft insertion + soft deletion) + lambda2 * mean(e^2)

where ``e`` is a differentiable explanation of the true class (Grad-CAM, gradient or
Input x Gradient from :mod:`saliency_gym.baselines.differentiable_explainers`, with
``create_graph=True``), the soft metrics are
:func:`saliency_gym.metrics.soft_insertion_deletion.soft_insertion_deletion` (soft insertion
``-mean log p_y(x_ins,j)``, soft deletion in the paper's ratio form) and ``mean(e^2)`` is the
authors' ``||e||^2 / numel`` (it keeps the explanation from growing to sharpen the masks).

**Model selection** (as the authors' ``val_ckptobj``): every ``eval_every`` steps the model is
scored on validation data: accuracy, and the *hard* insertion and deletion AUCs of the training
explainer's maps (:func:`~saliency_gym.metrics.insertion_deletion.insertion_curve` /
``deletion_curve`` for images, :func:`~saliency_gym.metrics.soft_insertion_deletion.feature_insertion_curve`
/ ``feature_deletion_curve`` for tables, baseline ``baseline`` for both). Among the evaluated
models whose validation accuracy is at least the *floor* (the starting model's validation accuracy
minus ``accuracy_drop``, or an explicit ``accuracy_floor``), the one with the largest
``insertion AUC - deletion AUC`` is kept. The starting model (step 0) is a candidate too, so
fine-tuning never returns a model that is worse on this criterion than the one it started from.

**Training details.** Batch norm stays in eval mode (running statistics frozen) during
fine-tuning: in train mode it would couple the inputs of a batch in the explanation gradient and
learn statistics from the soft-masked inputs. Batches are drawn from the training split with a
seeded generator; the run state (model, optimiser, generator, history, best model) is written
atomically to ``<out_dir>/last.pt`` every ``checkpoint_every`` steps and a run resumes from it; the
selected model is written with :func:`saliency_gym.zoo.save_classifier` to
``<out_dir>/classifier.pt`` so ``load_classifier(path)`` and the environments
(``classifier=path``) load it. TensorBoard logs go to ``<out_dir>/tb``.

**Tables.** ``classifier`` may name a tabular dataset (``"breast_cancer"``, ``"wine"``): a
:class:`~saliency_gym.models.mlp.TabularMLP` is first trained on it (seeded, a few seconds,
:func:`train_tabular_classifier`) and then fine-tuned; features are replaced by ``baseline``
(0, the training mean of standardised features) in the soft and hard metrics.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from saliency_gym.baselines.differentiable_explainers import (
    DIFFERENTIABLE_EXPLAINERS,
    DifferentiableExplainer,
    make_differentiable_explainer,
)
from saliency_gym.checkpoint import CheckpointError, atomic_save, safe_load
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import available_datasets, load_dataset
from saliency_gym.data.tabular import available_tabular_datasets, load_tabular
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.metrics.soft_insertion_deletion import (
    DELETION_FORMS,
    feature_deletion_curve,
    feature_insertion_curve,
    soft_insertion_deletion,
)
from saliency_gym.models import TabularMLP
from saliency_gym.validation import check_choice, check_float, check_int
from saliency_gym.zoo import load_classifier_module, save_classifier

STATE_FORMAT = "saliency_gym.idexpo_state/v1"
#: Settings a resumed run must share with the saved one (``steps`` may grow).
_RESUME_FIXED = (
    "classifier", "explainer", "lambda_ins_del", "lambda_l2", "temperature", "n_steps", "fraction",
    "baseline", "deletion_form", "detach_thresholds", "lr", "weight_decay", "batch_size", "seed", "eval_every", "val_size",
)  # fmt: skip

__all__ = [
    "IDExpOConfig",
    "IDExpOTask",
    "evaluate_faithfulness",
    "fine_tune",
    "idexpo_loss",
    "load_task",
    "select_best",
    "train_tabular_classifier",
]


# ---------------------------------------------------------------------------------------- config
@dataclass
class IDExpOConfig:
    """Hyperparameters of :func:`fine_tune`.

    ``benchmarks/bench_idexpo.py`` lists the recipes it measured per dataset (``RECIPES``); on the
    image sets it uses ``deletion_form="direct"``, since the ratio form's ``log p_y(x_del)`` is
    unbounded below and dominated the loss in short runs on shapes.
    """

    classifier: str = "shapes"
    """Shipped classifier name, checkpoint path, or tabular dataset name (a base MLP is trained)."""
    explainer: str = "gradcam"
    """Differentiable explainer: ``"gradcam"``, ``"gradient"`` or ``"input_x_gradient"``."""
    lambda_ins_del: float = 0.3
    """``lambda1``, weight of soft insertion + soft deletion."""
    lambda_l2: float = 1e-3
    """``lambda2``, weight of ``mean(e^2)``."""
    temperature: float = 1.0
    """``tau`` of the soft masks (the paper's 1)."""
    n_steps: int = 8
    """Soft-metric steps (``D // n_steps`` features per step)."""
    fraction: float = 0.5
    """Share of the steps used (the paper's ``K = 0.5``: the top half of the features)."""
    baseline: float = 0.0
    """Value of absent features, in the soft metrics and the hard selection metrics."""
    deletion_form: str = "ratio"
    """``"ratio"`` (the paper's) or ``"direct"``."""
    detach_thresholds: bool = False
    """Treat the soft masks' thresholds and scale as constants (the authors' code)."""
    lr: float = 5e-5
    weight_decay: float = 0.0
    steps: int = 150
    batch_size: int = 32
    eval_every: int = 50
    val_size: int = 200
    """Validation inputs scored for model selection (the first ``val_size`` of the split)."""
    accuracy_drop: float = 0.01
    """Allowed drop of validation accuracy below the starting model's (the floor)."""
    accuracy_floor: float | None = None
    """An absolute validation-accuracy floor instead of ``start - accuracy_drop``."""
    checkpoint_every: int = 50
    seed: int = 0
    tabular_epochs: int = 60
    """Epochs of the base MLP when ``classifier`` names a tabular dataset."""

    def validate(self) -> IDExpOConfig:
        """Check every field; raise ``TypeError``/``ValueError`` naming the bad one."""
        if not isinstance(self.classifier, (str, os.PathLike)):
            raise TypeError(f"classifier must be a name or a path, got {type(self.classifier).__name__}")
        check_choice("explainer", self.explainer, DIFFERENTIABLE_EXPLAINERS)
        check_float("lambda_ins_del", self.lambda_ins_del, minimum=0.0)
        check_float("lambda_l2", self.lambda_l2, minimum=0.0)
        check_float("temperature", self.temperature, minimum=0.0, exclusive_minimum=True)
        check_int("n_steps", self.n_steps, minimum=1)
        check_float("fraction", self.fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True)
        check_float("baseline", self.baseline)
        check_choice("deletion_form", self.deletion_form, DELETION_FORMS)
        if not isinstance(self.detach_thresholds, bool):
            raise TypeError(f"detach_thresholds must be a bool, got {type(self.detach_thresholds).__name__}")
        check_float("lr", self.lr, minimum=0.0, exclusive_minimum=True)
        check_float("weight_decay", self.weight_decay, minimum=0.0)
        for name in ("steps", "batch_size", "eval_every", "val_size", "checkpoint_every", "tabular_epochs"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_float("accuracy_drop", self.accuracy_drop, minimum=0.0, maximum=1.0)
        if self.accuracy_floor is not None:
            check_float("accuracy_floor", self.accuracy_floor, minimum=0.0, maximum=1.0)
        return self

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> IDExpOConfig:
        """A validated config from keyword arguments, rejecting unknown names clearly."""
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(f"unknown ID-ExpO option(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**kwargs).validate()


# ---------------------------------------------------------------------------------------- task
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
    :func:`saliency_gym.zoo.load_classifier_module`.
    """
    check_choice("tabular dataset", dataset, available_tabular_datasets())
    epochs = check_int("epochs", epochs, minimum=1)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    generator = torch.Generator().manual_seed(seed)
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
            best, best_state = acc, copy.deepcopy(model.state_dict())
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
    if dataset in available_tabular_datasets():
        splits = {}
        for split in ("train", "val", "test"):
            arrays = load_tabular(dataset, split).arrays()
            splits[split] = (torch.from_numpy(arrays.features), torch.from_numpy(arrays.labels))
        kind = "tabular"
    elif dataset in available_datasets():
        splits = {}
        for split in ("train", "val", "test"):
            arrays = load_dataset(dataset, split).arrays()
            splits[split] = (torch.from_numpy(arrays.images), torch.from_numpy(arrays.labels))
        kind = "image"
    else:
        raise ValueError(
            f"classifier {text!r} records dataset {dataset!r}; ID-ExpO fine-tuning needs one of "
            f"{available_datasets() + available_tabular_datasets()}"
        )
    return IDExpOTask(model=model, kind=kind, dataset=dataset, class_names=names, input_shape=shape, splits=splits, source_path=str(info["path"]))


# ---------------------------------------------------------------------------------------- loss
def idexpo_loss(
    model: nn.Module,
    explainer: DifferentiableExplainer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    config: IDExpOConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``CE + lambda1 (soft ins + soft del) + lambda2 mean(e^2)`` on one batch, and its parts.

    The explanation is of the true class, differentiable in the parameters
    (``explainer.create_graph`` should be true for training).
    """
    logits = model(inputs)
    ce = F.cross_entropy(logits, labels)
    e = explainer(inputs, labels)
    soft = soft_insertion_deletion(
        model, inputs, e, labels, temperature=config.temperature, n_steps=config.n_steps,
        fraction=config.fraction, baseline=config.baseline, deletion_form=config.deletion_form,
        detach_thresholds=config.detach_thresholds,
    )  # fmt: skip
    ins, dele = soft.insertion.mean(), soft.deletion.mean()
    l2 = e.pow(2).mean()
    regulariser = config.lambda_ins_del * (ins + dele) + config.lambda_l2 * l2
    total = ce + regulariser
    parts = {
        "loss/total": total.item(), "loss/ce": ce.item(), "loss/soft_insertion": ins.item(),
        "loss/soft_deletion": dele.item(), "loss/l2": l2.item(), "loss/regulariser": regulariser.item(),
        "train/accuracy": float((logits.argmax(1) == labels).float().mean()),
    }  # fmt: skip
    return total, parts


# ---------------------------------------------------------------------------------------- evaluation
def _maps(explainer: DifferentiableExplainer, x: torch.Tensor, y: torch.Tensor, chunk: int = 128) -> np.ndarray:
    """Detached maps of ``explainer`` in chunks (no graph kept)."""
    keep = explainer.create_graph
    explainer.create_graph = False
    try:
        return np.concatenate([explainer(x[i : i + chunk], y[i : i + chunk]).detach().cpu().numpy() for i in range(0, len(x), chunk)])
    finally:
        explainer.create_graph = keep


def evaluate_faithfulness(
    model: nn.Module,
    explainer: DifferentiableExplainer,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    kind: str,
    baseline: float = 0.0,
    input_shape: tuple[int, ...] | None = None,
) -> dict[str, float]:
    """Accuracy and hard insertion/deletion AUCs of ``explainer``'s maps (true classes).

    Images: RISE's curves with one row per step (``step = W``) and the constant ``baseline`` as
    the substrate for both; tables: one feature per step, features replaced by ``baseline``.
    """
    check_choice("kind", kind, ("image", "tabular"))
    model.eval()
    with torch.no_grad():
        accuracy = float((torch.cat([model(inputs[i : i + 256]) for i in range(0, len(inputs), 256)]).argmax(1) == labels).float().mean())
    maps = _maps(explainer, inputs, labels)
    if kind == "image":
        frozen = FrozenClassifier(copy.deepcopy(model), input_shape or tuple(inputs.shape[1:]), device=inputs.device, name="idexpo")
        ins = insertion_curve(frozen, inputs, maps, labels, substrate=float(baseline))
        dele = deletion_curve(frozen, inputs, maps, labels, substrate=float(baseline))
    else:
        ins = feature_insertion_curve(model, inputs, maps, labels, baseline=float(baseline))
        dele = feature_deletion_curve(model, inputs, maps, labels, baseline=float(baseline))
    return {"accuracy": accuracy, "insertion_auc": ins.mean_auc, "deletion_auc": dele.mean_auc}


def select_best(history: list[dict[str, Any]], floor: float) -> dict[str, Any] | None:
    """The evaluation with the largest ``insertion_auc - deletion_auc`` among those with
    ``accuracy >= floor`` (the earliest on ties), or ``None`` when none reaches the floor."""
    floor = check_float("floor", floor, minimum=0.0, maximum=1.0)
    best = None
    for record in history:
        if record["accuracy"] + 1e-12 < floor:
            continue
        score = record["insertion_auc"] - record["deletion_auc"]
        if best is None or score > best["insertion_auc"] - best["deletion_auc"]:
            best = record
    return best


# ---------------------------------------------------------------------------------------- fine-tuning
def fine_tune(
    config: IDExpOConfig | None = None,
    out_dir: str | os.PathLike[str] = "runs/idexpo",
    *,
    resume: bool = False,
    device: torch.device | str | None = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune a classifier with ID-ExpO and save the selected model.

    Args:
        config: the recipe (:class:`IDExpOConfig`).
        out_dir: folder for ``last.pt`` (resumable state), ``tb/`` (TensorBoard), ``classifier.pt``
            (the selected model) and, for tables, ``base.pt`` (the starting MLP).
        resume: continue from ``<out_dir>/last.pt`` (its fixed settings must match ``config``;
            ``steps`` may be larger).
        device: where to train (``None``: CUDA when available).
        progress: show a progress bar.

    Returns:
        ``{"classifier_path", "selected_step", "floor", "start": {...}, "selected": {...},
        "history": [...], "steps", "seconds", "kind", "dataset"}``; ``start`` and ``selected`` hold
        validation accuracy and hard insertion/deletion AUCs.

    Raises:
        RuntimeError: no evaluated model reached the accuracy floor (only possible with an
            explicit ``accuracy_floor`` above the starting model's accuracy).
    """
    from torch.utils.tensorboard import SummaryWriter

    from saliency_gym.validation import resolve_device

    cfg = config or IDExpOConfig()
    if not isinstance(cfg, IDExpOConfig):
        raise TypeError(f"config must be an IDExpOConfig, got {type(cfg).__name__}")
    cfg.validate()
    dev = resolve_device(device)
    out = Path(out_dir)
    state_path = out / "last.pt"
    if resume and not state_path.is_file():
        raise FileNotFoundError(f"resume: no ID-ExpO state at {state_path}")
    task = load_task(cfg.classifier, out_dir=out, seed=cfg.seed, tabular_epochs=cfg.tabular_epochs)
    model = task.model.to(dev).eval()  # batch norm frozen (see the module docstring)
    for p in model.parameters():
        p.requires_grad_(True)
    if cfg.explainer == "gradcam" and task.kind == "tabular":
        raise ValueError("Grad-CAM needs a convolutional model; use explainer 'gradient' or 'input_x_gradient' for tables")
    explainer = make_differentiable_explainer(cfg.explainer, model)
    x_train, y_train = (t.to(dev) for t in task.splits["train"])
    x_val, y_val = (t[: cfg.val_size].to(dev) for t in task.splits["val"])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = torch.Generator().manual_seed(cfg.seed)
    order, position = torch.randperm(len(y_train), generator=rng), 0
    step, elapsed = 0, 0.0
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_step: int | None = None

    def evaluate(at: int) -> dict[str, Any]:
        metrics = evaluate_faithfulness(model, explainer, x_val, y_val, kind=task.kind, baseline=cfg.baseline, input_shape=task.input_shape)
        return {"step": at, **metrics}

    if resume:
        state = safe_load(state_path, expected_format=STATE_FORMAT,
                          required_keys=("config", "model", "optimizer", "step", "rng", "order", "position", "history"))  # fmt: skip
        clash = {f: (state["config"].get(f), getattr(cfg, f)) for f in _RESUME_FIXED if state["config"].get(f) != getattr(cfg, f)}
        if clash:
            raise ValueError(f"cannot resume {state_path}: settings differ from the saved run (saved, now): {clash}")
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"ID-ExpO state {state_path} does not fit the model: {exc}") from exc
        rng.set_state(state["rng"])
        order, position = state["order"], int(state["position"])
        step, elapsed = int(state["step"]), float(state.get("seconds", 0.0))
        history = list(state["history"])
        best_state, best_step = state.get("best_state"), state.get("best_step")
    else:
        history.append(evaluate(0))
    start_record = history[0]
    floor = cfg.accuracy_floor if cfg.accuracy_floor is not None else max(0.0, start_record["accuracy"] - cfg.accuracy_drop)

    def refresh_best() -> None:
        nonlocal best_state, best_step
        chosen = select_best(history, floor)
        if chosen is not None and chosen["step"] != best_step:
            best_step = int(chosen["step"])
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    if not resume:
        refresh_best()

    def save_state() -> None:
        atomic_save(
            {"format": STATE_FORMAT, "config": asdict(cfg), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "step": step, "rng": rng.get_state(), "order": order, "position": position, "history": history,
             "best_state": best_state, "best_step": best_step, "seconds": elapsed},
            state_path,
        )  # fmt: skip

    writer = SummaryWriter(str(out / "tb"), purge_step=step if step else None)
    if step == 0:
        writer.add_text("config", str(asdict(cfg)), 0)
        for key in ("accuracy", "insertion_auc", "deletion_auc"):
            writer.add_scalar(f"val/{key}", start_record[key], 0)
    bar = tqdm(total=cfg.steps, initial=min(step, cfg.steps), disable=not progress, desc=f"idexpo {Path(str(cfg.classifier)).stem}/{cfg.explainer}")
    clock = time.perf_counter() - elapsed
    try:
        while step < cfg.steps:
            if position + cfg.batch_size > len(order):
                order, position = torch.randperm(len(y_train), generator=rng), 0
            idx = order[position : position + cfg.batch_size].to(dev)
            position += cfg.batch_size
            loss, parts = idexpo_loss(model, explainer, x_train[idx], y_train[idx], cfg)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            for key, value in parts.items():
                writer.add_scalar(key, value, step)
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record = evaluate(step)
                history.append(record)
                refresh_best()
                for key in ("accuracy", "insertion_auc", "deletion_auc"):
                    writer.add_scalar(f"val/{key}", record[key], step)
                bar.set_postfix(acc=f"{record['accuracy']:.3f}", ins=f"{record['insertion_auc']:.3f}", dele=f"{record['deletion_auc']:.3f}")
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                elapsed = time.perf_counter() - clock
                save_state()
    finally:
        bar.close()
        writer.close()
    elapsed = time.perf_counter() - clock
    if best_state is None:
        raise RuntimeError(
            f"no evaluated model reached the validation accuracy floor {floor:.4f} "
            f"(best seen: {max(r['accuracy'] for r in history):.4f}); lower accuracy_floor or raise accuracy_drop"
        )
    selected = next(r for r in history if r["step"] == best_step)
    final = copy.deepcopy(model).cpu()
    final.load_state_dict(best_state)
    meta = {
        "kind": task.kind, "idexpo": asdict(cfg), "base_classifier": os.fspath(cfg.classifier), "selected_step": best_step,
        "accuracy_floor": floor, "val_start": start_record, "val_selected": selected,
    }  # fmt: skip
    path = save_classifier(final, out / "classifier.pt", class_names=task.class_names, input_shape=task.input_shape, dataset=task.dataset, meta=meta)
    return {
        "classifier_path": str(path), "selected_step": best_step, "floor": floor, "start": start_record,
        "selected": selected, "history": history, "steps": step, "seconds": elapsed, "kind": task.kind,
        "dataset": task.dataset, "base_classifier": task.source_path,
    }  # fmt: skip

