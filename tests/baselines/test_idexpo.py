"""ID-ExpO fine-tuning: the step lowers the regulariser, model selection, resume, saving, errors."""

from __future__ import annotations

import argparse
import shutil

import pytest
import torch

from saliency_gym import load_classifier
from saliency_gym.baselines.differentiable_explainers import make_differentiable_explainer
from saliency_gym.baselines.idexpo import (
    IDExpOConfig,
    fine_tune,
    idexpo_loss,
    load_task,
    select_best,
    train_tabular_classifier,
)
from saliency_gym.checkpoint import safe_load
from saliency_gym.cli import idexpo as idexpo_cli
from saliency_gym.runs import TrainingInterrupted
from saliency_gym.zoo import load_classifier_module
from tests.signals import sigterm_on_call

FAST = {"classifier": "breast_cancer", "explainer": "gradient", "steps": 4, "eval_every": 2, "checkpoint_every": 2,
        "batch_size": 16, "tabular_epochs": 5, "lr": 1e-3}  # fmt: skip


@pytest.fixture(scope="module")
def tabular_base(tmp_path_factory):
    """A base breast-cancer MLP, trained once for the module (the fine-tuning runs copy it)."""
    folder = tmp_path_factory.mktemp("base")
    train_tabular_classifier("breast_cancer", folder / "base.pt", epochs=5)
    return folder / "base.pt"


def _run_dir(tmp_path, base, name):
    out = tmp_path / name
    out.mkdir()
    shutil.copy(base, out / "base.pt")  # load_task reuses <out>/base.pt
    return out


def _regulariser(model, explainer, x, y, cfg):
    _, parts = idexpo_loss(model, explainer, x, y, cfg)
    return parts["loss/regulariser"]


@pytest.mark.parametrize("case", ["image", "image-blur", "tabular"])
def test_one_step_lowers_the_regulariser(case, tabular_base):
    if case.startswith("image"):
        model, _ = load_classifier_module("shapes")
        from saliency_gym.data import ShapesSource

        batch = ShapesSource(split="test", n=8, seed=0).arrays()
        x, y = torch.as_tensor(batch.images), torch.as_tensor(batch.labels)
        cfg = IDExpOConfig(explainer="gradcam", lambda_ins_del=1.0, n_steps=4, substrate="blur" if case == "image-blur" else "constant")
    else:
        model, _ = load_classifier_module(tabular_base)
        task = load_task(tabular_base)
        x, y = task.splits["train"][0][:32], task.splits["train"][1][:32]
        cfg = IDExpOConfig(classifier=str(tabular_base), explainer="gradient", lambda_ins_del=1.0, n_steps=10)
    model.eval()
    explainer = make_differentiable_explainer(cfg.explainer, model)
    before = _regulariser(model, explainer, x, y, cfg)
    # a small step (norm 1e-4) down the regulariser's gradient (the loss without its CE term) must
    # lower it on the same batch; the gradient passes through the explanation and the soft inputs
    loss, _ = idexpo_loss(model, explainer, x, y, cfg)
    (loss - torch.nn.functional.cross_entropy(model(x), y)).backward()
    norm = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    with torch.no_grad():
        for p in model.parameters():
            p -= 1e-4 * p.grad / norm
    after = _regulariser(model, explainer, x, y, cfg)
    assert after < before, (before, after)


def test_rise_substrate_pairs_blur_insertion_with_constant_deletion():
    model, _ = load_classifier_module("digits")
    model.eval()
    x, y = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3])
    explainer = make_differentiable_explainer("gradcam", model)
    parts = {}
    for substrate in ("constant", "blur", "rise"):
        cfg = IDExpOConfig(classifier="digits", substrate=substrate, deletion_form="ratio", n_steps=4)
        parts[substrate] = idexpo_loss(model, explainer, x, y, cfg)[1]
    assert parts["rise"]["loss/soft_insertion"] == pytest.approx(parts["blur"]["loss/soft_insertion"])
    assert parts["rise"]["loss/soft_deletion"] == pytest.approx(parts["constant"]["loss/soft_deletion"])
    assert parts["blur"]["loss/soft_insertion"] != pytest.approx(parts["constant"]["loss/soft_insertion"])


def test_select_best_enforces_the_floor():
    history = [
        {"step": 0, "accuracy": 0.98, "insertion_auc": 0.50, "deletion_auc": 0.20},
        {"step": 10, "accuracy": 0.95, "insertion_auc": 0.90, "deletion_auc": 0.05},  # best score, below floor
        {"step": 20, "accuracy": 0.975, "insertion_auc": 0.60, "deletion_auc": 0.20},
        {"step": 30, "accuracy": 0.99, "insertion_auc": 0.60, "deletion_auc": 0.20},  # tie: earliest wins
    ]
    assert select_best(history, 0.97)["step"] == 20
    assert select_best(history, 0.90)["step"] == 10
    assert select_best(history, 0.985)["step"] == 30
    assert select_best(history, 0.995) is None
    with pytest.raises(ValueError, match="floor"):
        select_best(history, 1.5)


def test_fine_tune_selects_above_the_floor_and_saves_a_loadable_classifier(tmp_path, tabular_base):
    out = _run_dir(tmp_path, tabular_base, "run")
    result = fine_tune(IDExpOConfig(**FAST), out, progress=False)
    assert [r["step"] for r in result["history"]] == [0, 2, 4]
    assert result["selected"]["accuracy"] >= result["floor"] == pytest.approx(result["start"]["accuracy"] - 0.01)
    assert result["selected_step"] == select_best(result["history"], result["floor"])["step"]
    model, info = load_classifier_module(result["classifier_path"])
    assert info["meta"]["selected_step"] == result["selected_step"] and info["meta"]["kind"] == "tabular"
    assert (out / "tb").is_dir() and (out / "last.pt").is_file()


def test_fine_tune_enforces_the_floor(tmp_path, tabular_base, monkeypatch):
    """Scores that improve while accuracy falls: the last model above the floor is kept, with
    its own weights; a floor nothing reaches saves nothing."""
    import saliency_gym.baselines.idexpo as idexpo

    scores = iter([(0.96, 0.5), (0.955, 0.6), (0.94, 0.9)])  # (accuracy, insertion AUC) at steps 0, 2, 4
    weights = {}

    def fake_evaluate(model, explainer, inputs, labels, **kwargs):
        accuracy, insertion = next(scores)
        weights[insertion] = {k: v.clone() for k, v in model.state_dict().items()}
        return {"accuracy": accuracy, "insertion_auc": insertion, "deletion_auc": 0.1}

    monkeypatch.setattr(idexpo, "evaluate_faithfulness", fake_evaluate)
    result = fine_tune(IDExpOConfig(**FAST), _run_dir(tmp_path, tabular_base, "floor"), progress=False)
    assert result["floor"] == pytest.approx(0.95) and result["selected_step"] == 2
    saved = safe_load(result["classifier_path"])["state_dict"]
    assert all(torch.equal(saved[k], weights[0.6][k]) for k in saved)
    assert not all(torch.equal(saved[k], weights[0.9][k]) for k in saved)

    scores = iter([(0.9, 0.5), (0.9, 0.6), (0.9, 0.7)])
    strict = _run_dir(tmp_path, tabular_base, "strict")
    with pytest.raises(RuntimeError, match="accuracy floor"):
        fine_tune(IDExpOConfig(**{**FAST, "accuracy_floor": 0.95}), strict, progress=False)
    assert not (strict / "classifier.pt").exists()


def test_resume_continues_the_same_run(tmp_path, tabular_base, monkeypatch):
    """SIGTERM at step 2 saves the state and stops quietly; resuming gives the uninterrupted run."""
    from saliency_gym.baselines import idexpo

    straight = fine_tune(IDExpOConfig(**FAST), _run_dir(tmp_path, tabular_base, "straight"), progress=False)
    split = _run_dir(tmp_path, tabular_base, "split")
    monkeypatch.setattr(idexpo, "idexpo_loss", sigterm_on_call(idexpo.idexpo_loss, 2))
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 2"):
        fine_tune(IDExpOConfig(**FAST), split, progress=False)
    monkeypatch.undo()
    assert not (split / ".lock").exists()
    resumed = fine_tune(IDExpOConfig(**FAST), split, resume=True, progress=False)
    assert resumed["steps"] == 4 and [r["step"] for r in resumed["history"]] == [0, 2, 4]
    for a, b in zip(straight["history"], resumed["history"], strict=True):
        assert a == pytest.approx(b)
    ours, theirs = (safe_load(r["classifier_path"])["state_dict"] for r in (straight, resumed))
    assert all(torch.allclose(ours[k], theirs[k]) for k in ours)
    with pytest.raises(ValueError, match="settings differ"):
        fine_tune(IDExpOConfig(**{**FAST, "steps": 6, "lambda_ins_del": 0.5}), split, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no ID-ExpO state"):
        fine_tune(IDExpOConfig(**FAST), tmp_path / "nothing", resume=True, progress=False)


def test_image_run_with_random_substrate_is_loadable(tmp_path, monkeypatch):
    """substrate="random": each batch trains with black or blur (both occur, seeded), every
    evaluation scores both and selects on their mean; the saved classifier loads by path."""
    import saliency_gym.baselines.idexpo as idexpo

    drawn = []

    def recording_loss(*args, substrate=None, **kwargs):
        drawn.append(substrate)
        return idexpo_loss(*args, substrate=substrate, **kwargs)

    monkeypatch.setattr(idexpo, "idexpo_loss", recording_loss)
    cfg = IDExpOConfig(classifier="digits", explainer="gradcam", substrate="random", steps=4, eval_every=4, batch_size=2,
                       val_size=4, n_steps=4)  # fmt: skip
    result = fine_tune(cfg, tmp_path / "digits", progress=False)
    assert set(drawn) == {"constant", "blur"} and len(drawn) == 4
    for record in result["history"]:
        for metric in ("insertion_auc", "deletion_auc"):
            assert record[metric] == pytest.approx((record[f"{metric}/constant"] + record[f"{metric}/blur"]) / 2)
    assert record["insertion_auc/constant"] != record["insertion_auc/blur"]
    with pytest.raises(ValueError, match="settings differ"):
        fine_tune(IDExpOConfig(**{**cfg.describe(), "substrate": "blur", "steps": 8}), tmp_path / "digits", resume=True, progress=False)
    classifier = load_classifier(result["classifier_path"], device="cpu")
    assert classifier.input_shape == (1, 32, 32) and classifier.num_classes == 10
    import gymnasium as gym

    env = gym.make("saliency_gym/SaliencyReveal-v0", classifier=result["classifier_path"], data="digits", split="test", grid=4, device="cpu")
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (1, 32, 32)
    env.close()


def test_bad_arguments(tmp_path, tabular_base):
    with pytest.raises(TypeError, match="unknown ID-ExpO option"):
        IDExpOConfig.from_kwargs(lambda1=1.0)
    for field, value, error in [
        ("explainer", "rise", ValueError), ("temperature", 0.0, ValueError), ("fraction", 1.5, ValueError),
        ("n_steps", 0, ValueError), ("steps", 2.5, TypeError), ("deletion_form", "log", ValueError),
        ("accuracy_floor", 2.0, ValueError), ("lambda_ins_del", -1.0, ValueError), ("detach_thresholds", "yes", TypeError),
        ("substrate", "noise", ValueError), ("tie_break", -1.0, ValueError),
    ]:  # fmt: skip
        with pytest.raises(error, match=field):
            IDExpOConfig.from_kwargs(**{field: value})
    with pytest.raises(TypeError, match="IDExpOConfig"):
        fine_tune({"steps": 1}, tmp_path)
    with pytest.raises(ValueError, match="Grad-CAM"):
        fine_tune(IDExpOConfig(**{**FAST, "explainer": "gradcam"}), _run_dir(tmp_path, tabular_base, "cam"), progress=False)
    with pytest.raises(ValueError, match="unknown classifier"):
        load_task("no_such_model")
    with pytest.raises(ValueError, match="tables take substrate"):
        fine_tune(IDExpOConfig(**{**FAST, "substrate": "blur"}), _run_dir(tmp_path, tabular_base, "blur"), progress=False)
    model, _ = load_classifier_module(tabular_base)
    x, y = torch.randn(4, 30), torch.tensor([0, 1, 0, 1])
    with pytest.raises(ValueError, match="drawn per batch"):
        idexpo_loss(model, make_differentiable_explainer("gradient", model), x, y, IDExpOConfig(substrate="random"))


def test_cli_parses_and_runs(tmp_path, tabular_base, capsys):
    parser = argparse.ArgumentParser()
    idexpo_cli.register(parser.add_subparsers(dest="command"))
    out = _run_dir(tmp_path, tabular_base, "cli")
    args = parser.parse_args(["idexpo", "--classifier", "breast_cancer", "--explainer", "input_x_gradient", "--steps", "2",
                              "--eval-every", "1", "--batch-size", "8", "--out", str(out), "--no-progress", "--device", "cpu"])  # fmt: skip
    assert args.func(args) == 0
    assert "insertion AUC" in capsys.readouterr().out and (out / "classifier.pt").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(["idexpo", "--fraction", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["idexpo", "--explainer", "rise"])
