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

**Substrates.** ``substrate`` sets what absent pixels become in the soft metrics and in the
selection: ``"constant"`` (the value ``baseline``: black), ``"blur"`` (RISE's blur), ``"rise"``
(insertion from the blur, deletion to black, RISE's pairing) or ``"random"`` (each batch draws
black or blur from the run's seeded generator); with ``"rise"`` and ``"random"`` selection
averages ``insertion - deletion`` over black and blur. Faithfulness learnt under one substrate does not
carry over to the other by itself: on shapes, tuning with black raised Grad-CAM's black-substrate
insertion AUC and lowered its blur-substrate one (see ``benchmarks/bench_idexpo.py``).

**Training details.** Batch norm stays in eval mode (running statistics frozen) during
fine-tuning: in train mode it would couple the inputs of a batch in the explanation gradient and
learn statistics from the soft-masked inputs. Batches are drawn from the training split with a
seeded generator; the run state (model, optimiser, generator, history, best model) is written
atomically to ``<out_dir>/last.pt`` every ``checkpoint_every`` steps and a run resumes from it; the
selected model is written with :func:`saliency_gym.models.zoo.save_classifier` to
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
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from saliency_gym.baselines.differentiable_explainers import make_differentiable_explainer
from saliency_gym.baselines.idexpo_config import IDExpOConfig
from saliency_gym.baselines.idexpo_objective import (
    evaluate_faithfulness,
    idexpo_loss,
    select_best,
    substrates_of,
)
from saliency_gym.baselines.tabular_training import IDExpOTask, load_task, train_tabular_classifier
from saliency_gym.models.zoo import save_classifier
from saliency_gym.runs import (
    RunClock,
    RunState,
    SignalStop,
    check_output_dir,
    open_writer,
    run_lock,
    save_or_stop,
    snapshot_state,
)
from saliency_gym.validation import resolve_device

STATE_FORMAT = "saliency_gym.idexpo_state/v1"
#: Settings a resumed run must share with the saved one (``steps`` may grow).
_RESUME_FIXED = (
    "classifier", "explainer", "lambda_ins_del", "lambda_l2", "temperature", "n_steps", "fraction",
    "baseline", "substrate", "tie_break", "deletion_form", "detach_thresholds", "lr", "weight_decay", "batch_size", "seed", "eval_every", "val_size",
)  # fmt: skip
_STATE_KEYS = ("config", "model", "optimizer", "step", "rng", "order", "position", "history")

# ``IDExpOConfig``, the task loader, the loss and the selection live in their own modules
# (:mod:`.idexpo_config`, :mod:`.tabular_training`, :mod:`.idexpo_objective`) and are re-exported here.
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
    cfg = config or IDExpOConfig()
    if not isinstance(cfg, IDExpOConfig):
        raise TypeError(f"config must be an IDExpOConfig, got {type(cfg).__name__}")
    cfg.validate()
    dev = resolve_device(device)
    out = check_output_dir(out_dir, "out_dir")
    with run_lock(out), SignalStop() as signals:
        run_state = RunState(out / "last.pt", STATE_FORMAT, _STATE_KEYS, what="ID-ExpO state")
        if resume:
            run_state.require()  # before a tabular base model is trained
        task = load_task(
            cfg.classifier, out_dir=out, seed=cfg.seed, tabular_epochs=cfg.tabular_epochs
        )
        model = task.model.to(dev).eval()  # batch norm frozen (see the module docstring)
        for p in model.parameters():
            p.requires_grad_(True)
        if task.kind == "tabular" and cfg.substrate != "constant":
            raise ValueError(f"tables take substrate='constant' (features replaced by baseline), got {cfg.substrate!r}")
        substrates = substrates_of(cfg)
        if cfg.explainer == "gradcam" and task.kind == "tabular":
            raise ValueError(
                "Grad-CAM needs a convolutional model; use explainer 'gradient' or 'input_x_gradient' for tables"
            )
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
            metrics = evaluate_faithfulness(
                model,
                explainer,
                x_val,
                y_val,
                kind=task.kind,
                baseline=cfg.baseline,
                input_shape=task.input_shape,
                substrates=substrates,
            )
            return {"step": at, **metrics}

        if resume:
            state = run_state.load(config=cfg.describe(), fixed=_RESUME_FIXED)
            run_state.restore(state, {"model": model, "optimizer": optimizer})
            rng.set_state(state["rng"])
            order, position = state["order"], int(state["position"])
            step, elapsed = int(state["step"]), float(state.get("seconds", 0.0))
            history = list(state["history"])
            best_state, best_step = state.get("best_state"), state.get("best_step")
        else:
            history.append(evaluate(0))
        start_record = history[0]
        floor = (
            cfg.accuracy_floor
            if cfg.accuracy_floor is not None
            else max(0.0, start_record["accuracy"] - cfg.accuracy_drop)
        )

        def refresh_best() -> None:
            nonlocal best_state, best_step
            chosen = select_best(history, floor)
            if chosen is not None and chosen["step"] != best_step:
                best_step = int(chosen["step"])
                best_state = snapshot_state(model)

        if not resume:
            refresh_best()

        def save_state() -> None:
            run_state.save(
                config=cfg.describe(), model=model.state_dict(), optimizer=optimizer.state_dict(), step=step,
                rng=rng.get_state(), order=order, position=position, history=history, best_state=best_state,
                best_step=best_step, seconds=clock.seconds,
            )  # fmt: skip

        writer = open_writer(out / "tb", purge_step=step)
        if step == 0:
            writer.add_text("config", str(cfg.describe()), 0)
            for key, value in start_record.items():
                if key != "step":
                    writer.add_scalar(f"val/{key}", value, 0)
        bar = tqdm(
            total=cfg.steps,
            initial=min(step, cfg.steps),
            disable=not progress,
            desc=f"idexpo {Path(str(cfg.classifier)).stem}/{cfg.explainer}",
        )
        clock = RunClock(elapsed)
        try:
            while step < cfg.steps:
                if position + cfg.batch_size > len(order):
                    order, position = torch.randperm(len(y_train), generator=rng), 0
                idx = order[position : position + cfg.batch_size].to(dev)
                position += cfg.batch_size
                if cfg.substrate == "random":  # drawn from the run's generator, so a resumed run draws the same
                    batch_substrate = substrates[int(torch.randint(len(substrates), (1,), generator=rng))]
                else:
                    batch_substrate = cfg.substrate
                loss, parts = idexpo_loss(model, explainer, x_train[idx], y_train[idx], cfg, substrate=batch_substrate)
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
                    for key, value in record.items():
                        if key != "step":
                            writer.add_scalar(f"val/{key}", value, step)
                    bar.set_postfix(
                        acc=f"{record['accuracy']:.3f}",
                        ins=f"{record['insertion_auc']:.3f}",
                        dele=f"{record['deletion_auc']:.3f}",
                    )
                save_or_stop(step, every=cfg.checkpoint_every, total=cfg.steps, signals=signals, save=save_state,
                             state_path=run_state.path, on_stop=writer.close)  # fmt: skip
        finally:
            bar.close()
            writer.close()
        elapsed = clock.seconds
        if best_state is None:
            raise RuntimeError(
                f"no evaluated model reached the validation accuracy floor {floor:.4f} "
                f"(best seen: {max(r['accuracy'] for r in history):.4f}); lower accuracy_floor or raise accuracy_drop"
            )
        selected = next(r for r in history if r["step"] == best_step)
        final = copy.deepcopy(model).cpu()
        final.load_state_dict(best_state)
        meta = {
            "kind": task.kind, "idexpo": cfg.describe(), "base_classifier": os.fspath(cfg.classifier), "selected_step": best_step,
            "accuracy_floor": floor, "val_start": start_record, "val_selected": selected,
        }  # fmt: skip
        path = save_classifier(
            final,
            out / "classifier.pt",
            class_names=task.class_names,
            input_shape=(int(task.input_shape[0]), int(task.input_shape[1]), int(task.input_shape[2])),
            dataset=task.dataset,
            meta=meta,
        )
        return {
            "classifier_path": str(path), "selected_step": best_step, "floor": floor, "start": start_record,
            "selected": selected, "history": history, "steps": step, "seconds": elapsed, "kind": task.kind,
            "dataset": task.dataset, "base_classifier": task.source_path,
        }  # fmt: skip
