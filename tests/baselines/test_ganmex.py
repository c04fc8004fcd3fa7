"""GANMEX networks, losses, training loop and checkpoints."""

from __future__ import annotations

import hashlib
import signal

import pytest
import torch

from saliency_gym.baselines.ganmex import (
    ConditionalGenerator,
    Critic,
    GanmexLossWeights,
    critic_loss,
    generator_loss,
    load_generator,
    sample_targets,
    save_generator,
)
from saliency_gym.baselines.ganmex_training import (
    GanmexTrainingConfig,
    config_from_kwargs,
    evaluate_counterfactuals,
    train_ganmex,
)
from saliency_gym.checkpoint import CheckpointError
from saliency_gym.data import load_dataset
from saliency_gym.runs import TrainingInterrupted
from saliency_gym.zoo import load_classifier, resolve_classifier_path
from tests.signals import sigterm_on_call

# A short run on the 1-channel digits classifier (10 classes: chance validity is 0.1).
SHORT = {"classifier": "digits", "steps": 50, "batch_size": 32, "max_train": 256, "eval_samples": 100,
         "lambda_sim": 1.0, "lr_generator": 3e-3, "log_every": 10, "checkpoint_every": 25, "seed": 0}  # fmt: skip


def test_generator_output_shape_and_range():
    torch.manual_seed(0)
    net = ConditionalGenerator(3, 5).eval()
    x = torch.rand(6, 3, 32, 32)
    t = torch.tensor([0, 1, 2, 3, 4, 0])
    out = net(x, t)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    other = net(x, (t + 1) % 5)
    assert not torch.allclose(out, other)  # the class planes condition the output
    # The blend output starts near the identity (small, local edits are cheap).
    assert (out - x).abs().mean() < 0.2
    with pytest.raises(ValueError, match="even"):
        net(torch.rand(1, 3, 31, 31), torch.tensor([0]))
    with pytest.raises(ValueError, match="targets"):
        net(x, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        net(torch.rand(2, 1, 32, 32), torch.tensor([0, 1]))
    assert sum(p.numel() for p in net.parameters()) * 4 < 2_000_000  # ships well under 2 MB


def test_copy_window_copies_from_the_predicted_neighbour():
    """With the head forced to repaint every pixel with its left neighbour's colour, the output is
    the input shifted one pixel right (zero padding at the border)."""
    torch.manual_seed(0)
    g = ConditionalGenerator(3, 2, width=4, n_residual=0, copy_window=5).eval()
    left = 2 * 5 + 1  # kernel position (row 2, column 1) of the 5x5 window: dy = 0, dx = -1
    with torch.no_grad():
        g.head.weight.zero_()
        g.head.bias.zero_()
        g.head.bias[0] = 100.0  # blend ~ 1
        g.head.bias[4] = 100.0  # gate ~ 1: the copied colour, not the free one
        g.head.bias[5 + left] = 100.0
        x = torch.rand(2, 3, 8, 8)
        out = g(x, torch.tensor([0, 1]))
    expected = torch.zeros_like(x)
    expected[..., 1:] = x[..., :-1]
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="odd"):
        ConditionalGenerator(3, 2, copy_window=4)
    assert ConditionalGenerator(3, 2, copy_window=0).head.out_channels == 4  # the v1 head


def test_v1_checkpoint_without_copy_window_loads(tmp_path):
    v1 = ConditionalGenerator(1, 3, copy_window=0)
    path = save_generator(v1, tmp_path / "g.pt", class_names=["a", "b", "c"], input_shape=(1, 8, 8), classifier="x")
    payload = torch.load(path, weights_only=True)
    del payload["arch_kwargs"]["copy_window"]  # as written before the copy window existed
    torch.save(payload, path)
    loaded, _ = load_generator(path)
    assert loaded.copy_window == 0
    x, t = torch.rand(2, 1, 8, 8), torch.tensor([0, 2])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, t), v1(x, t))


def test_conditional_critic_judges_image_and_class():
    torch.manual_seed(0)
    critic = Critic(3, width=8, num_classes=4)
    x = torch.rand(5, 3, 16, 16)
    a, b = critic(x, torch.zeros(5, dtype=torch.long)), critic(x, torch.full((5,), 3))
    assert a.shape == (5,) and not torch.allclose(a, b)  # the class planes condition the score
    with pytest.raises(ValueError, match="needs the classes"):
        critic(x)
    with pytest.raises(ValueError, match="num_classes"):
        Critic(3, num_classes=1)
    plain = Critic(3, width=8)
    torch.testing.assert_close(plain(x), plain(x, torch.zeros(5, dtype=torch.long)))  # unconditional: classes unused
    weights = GanmexLossWeights()
    classes = torch.randint(0, 4, (5,))
    loss, parts = critic_loss(critic, x, torch.rand(5, 3, 16, 16), weights, classes=classes)
    loss.backward()
    assert parts["critic/gp"] >= 0 and all(p.grad is not None for p in critic.parameters())


def test_sample_targets_never_the_source():
    sources = torch.arange(5).repeat(200)
    targets = sample_targets(sources, 5, torch.Generator().manual_seed(0))
    assert (targets != sources).all() and set(targets.tolist()) == set(range(5))


def test_losses_leave_the_classifier_unchanged(shapes_classifier):
    module = shapes_classifier.module
    before = {k: v.clone() for k, v in module.state_dict().items()}
    torch.manual_seed(0)
    g, d = ConditionalGenerator(3, 5, width=8, n_residual=1), Critic(3, width=8, num_classes=5)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    weights = GanmexLossWeights(lambda_cyc=1.0)
    x = torch.rand(4, 3, 16, 16)  # the CNN pools globally, so small images keep the test fast
    s = torch.randint(0, 5, (4,))
    t = sample_targets(s, 5)
    loss_d, parts_d = critic_loss(d, x, g(x, t), weights, classes=t)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g, parts_g = generator_loss(g, d, module, x, s, sample_targets(s, 5), weights)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    assert {"generator/cls", "generator/sim_l1", "generator/cycle_l1", "generator/validity"} <= set(parts_g)
    assert parts_d["critic/gp"] >= 0
    assert all(p.grad is None and not p.requires_grad for p in module.parameters())
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert not module.training


def test_loss_weights_and_config_validation():
    with pytest.raises(ValueError, match="lambda_sim"):
        GanmexLossWeights(lambda_sim=-1.0)
    with pytest.raises(TypeError, match="unknown GANMEX training option"):
        config_from_kwargs(stepz=3)
    with pytest.raises(ValueError, match="steps"):
        train_ganmex(GanmexTrainingConfig(steps=0), progress=False)
    with pytest.raises(ValueError, match="unknown classifier"):
        train_ganmex(GanmexTrainingConfig(classifier="no_such_model"), progress=False)


def test_selection_and_minimality_ramp_options():
    for bad, match in [({"select": "best"}, "select"), ({"select_every": 0}, "select_every"),
                       ({"select_samples": 0}, "select_samples"), ({"select_min_validity": 1.5}, "select_min_validity"),
                       ({"lambda_sim_end": -1.0}, "lambda_sim_end")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            GanmexTrainingConfig(**bad).validate()
    flat = GanmexTrainingConfig(steps=100, lambda_sim=10.0)
    assert {flat.lambda_sim_at(s) for s in (0, 50, 99)} == {10.0}
    ramp = GanmexTrainingConfig(steps=100, lambda_sim=10.0, lambda_sim_end=40.0)
    assert ramp.lambda_sim_at(0) == ramp.lambda_sim_at(49) == 10.0  # first half: constant
    assert 10.0 < ramp.lambda_sim_at(75) < 40.0 and ramp.lambda_sim_at(99) == pytest.approx(40.0)


def test_min_l1_valid_selection_exports_the_selected_checkpoint(tmp_path):
    """Every selection measurement qualifies at validity >= 0: the export is the smallest-L1 one
    (also written to selected.pt); at validity >= 1 none does and the last weights are exported."""
    tiny = {**SHORT, "steps": 6, "max_train": 64, "eval_samples": 8, "batch_size": 8, "checkpoint_every": 3,
            "select": "min_l1_valid", "select_every": 2, "select_samples": 16, "lambda_sim_end": 5.0}  # fmt: skip
    result = train_ganmex(GanmexTrainingConfig(**{**tiny, "select_min_validity": 0.0}), tmp_path / "a", progress=False)
    assert result["selected_step"] in (2, 4, 6)
    exported, info = load_generator(result["generator_path"])
    selected, selected_info = load_generator(tmp_path / "a" / "selected.pt")
    for (key, va), vb in zip(exported.state_dict().items(), selected.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=key)
    assert info["meta"]["selected_step"] == selected_info["meta"]["selected_step"] == result["selected_step"]
    state = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert state["selected"]["step"] == result["selected_step"]
    with pytest.warns(RuntimeWarning, match="no checkpoint reached validity"):
        result = train_ganmex(GanmexTrainingConfig(**{**tiny, "select_min_validity": 1.0}), tmp_path / "b", progress=False)
    assert result["selected_step"] is None and not (tmp_path / "b" / "selected.pt").exists()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    torch.set_num_threads(1)
    path = resolve_classifier_path("digits")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = tmp_path_factory.mktemp("ganmex")
    result = train_ganmex(GanmexTrainingConfig(**SHORT), out, progress=False)
    return result, out, digest, path


def test_short_training_raises_validity_above_chance(short_run):
    result, out, digest, classifier_path = short_run
    assert hashlib.sha256(classifier_path.read_bytes()).hexdigest() == digest  # classifier file untouched
    classifier = load_classifier("digits", device="cpu", optimize=False)
    val = load_dataset("digits", "val").get_batch(range(100))
    x, y = torch.as_tensor(val.images), torch.as_tensor(val.labels)
    targets = sample_targets(y, 10, torch.Generator().manual_seed(SHORT["seed"] + 1))
    torch.manual_seed(SHORT["seed"])
    untrained = evaluate_counterfactuals(ConditionalGenerator(1, 10).eval(), classifier, x, targets)
    net, info = load_generator(result["generator_path"])
    trained = evaluate_counterfactuals(net, classifier, x, targets)
    assert trained["validity"] == pytest.approx(result["validity"])  # the reported number is the checkpoint's
    assert trained["validity"] > 0.1 + 0.2  # chance (1 in 10) plus a margin (0.67 measured)
    assert trained["validity"] > untrained["validity"] + 0.2
    assert info["classifier"] == "digits" and info["meta"]["steps_done"] == SHORT["steps"]
    assert (out / "last.pt").is_file() and any((out / "tb").iterdir())


def test_resume_continues_the_same_run(tmp_path, monkeypatch):
    """SIGTERM at step 2 saves the state and stops quietly; resuming to 6 gives the weights of the
    uninterrupted run."""
    from saliency_gym.baselines import ganmex_training

    tiny = {**SHORT, "steps": 6, "max_train": 64, "eval_samples": 8, "checkpoint_every": 3, "batch_size": 8}
    result = train_ganmex(GanmexTrainingConfig(**tiny), tmp_path / "straight", progress=False)
    monkeypatch.setattr(ganmex_training, "generator_loss", sigterm_on_call(ganmex_training.generator_loss, 2))
    with pytest.raises(TrainingInterrupted, match="SIGTERM at step 2") as stopped:
        train_ganmex(GanmexTrainingConfig(**tiny), tmp_path, progress=False)
    monkeypatch.undo()
    assert stopped.value.signum == signal.SIGTERM and torch.load(stopped.value.checkpoint, weights_only=True)["step"] == 2
    assert not (tmp_path / ".lock").exists()  # the run folder's lock is released
    resumed = train_ganmex(GanmexTrainingConfig(**tiny), tmp_path, resume=True, progress=False)
    a, _ = load_generator(result["generator_path"])
    b, _ = load_generator(resumed["generator_path"])
    for (key, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=key)
    with pytest.raises(ValueError, match="settings differ"):
        train_ganmex(GanmexTrainingConfig(**{**tiny, "seed": 1}), tmp_path, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no training state"):
        train_ganmex(GanmexTrainingConfig(**tiny), tmp_path / "empty", resume=True, progress=False)


def test_generator_checkpoint_errors(tmp_path):
    net = ConditionalGenerator(1, 3)
    path = save_generator(net, tmp_path / "g.pt", class_names=["a", "b", "c"], input_shape=(1, 8, 8), classifier="x")
    loaded, info = load_generator(path)
    assert not any(p.requires_grad for p in loaded.parameters()) and info["class_names"] == ["a", "b", "c"]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_generator(corrupt)
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="unknown GANMEX generator"):
        load_generator("no_such_generator")
    payload = torch.load(path, weights_only=True)
    payload["arch_kwargs"]["width"] = 8
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        load_generator(tmp_path / "mismatch.pt")


def test_train_ganmex_command(tmp_path, capsys):
    import argparse

    from saliency_gym.cli import train_ganmex as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    # 16 digits lack some classes: the class-conditional critic has no real images of those to compare with.
    tiny = ["train-ganmex", "--classifier", "digits", "--batch-size", "4", "--max-train", "16", "--out-dir", str(tmp_path),
            "--no-progress"]  # fmt: skip
    args = parser.parse_args([*tiny, "--steps", "2", "--device", "cpu"])
    with pytest.raises(ValueError, match="every class"):
        args.func(args)
    args = parser.parse_args([*tiny, "--steps", "2", "--device", "cpu", "--no-conditional-critic", "--copy-window", "0",
                              "--select", "min_l1_valid", "--select-every", "1", "--select-samples", "8",
                              "--select-min-validity", "0", "--lambda-sim-end", "20"])  # fmt: skip
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "validity" in out and "selected checkpoint: step" in out and (tmp_path / "generator.pt").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args([*tiny, "--select", "best"])
    args = parser.parse_args([*tiny, "--steps", "3", "--resume"])
    with pytest.raises(ValueError, match="settings differ"):  # the default recipe is not the saved one
        args.func(args)
    args = parser.parse_args([*tiny, "--steps", "3", "--resume", "--no-conditional-critic", "--copy-window", "0",
                              "--select", "min_l1_valid", "--select-every", "1", "--select-samples", "8",
                              "--select-min-validity", "0", "--lambda-sim-end", "20"])  # fmt: skip
    assert args.func(args) == 0
    _, info = load_generator(tmp_path / "generator.pt")
    assert info["meta"]["steps_done"] == 3 and info["meta"]["copy_window"] == 0 and not info["meta"]["conditional_critic"]
    with pytest.raises(SystemExit):
        parser.parse_args(["train-ganmex"])  # --classifier is required
