"""Distillation of a teacher's cell orders (agents/distillation.py, ``saliency-gym distill``)."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import torch
import yaml

from saliency_gym.agents import distillation
from saliency_gym.agents.agent_checkpoints import load_agent_payload
from saliency_gym.agents.distillation import (
    TEACHER_FORMAT,
    DistillConfig,
    TrainingSet,
    bc_samples,
    dagger_labels,
    distill,
    rollout_orders,
    teacher_cache_key,
)
from saliency_gym.agents.policies import AgentPolicy, GreedyPolicy
from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.agents.pretrained import load_agent_policy
from saliency_gym.checkpoint import atomic_save
from saliency_gym.cli.main import main as cli_main

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"
MASK_ENV = "saliency_gym/SaliencyMask-Shapes-v0"


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """A narrow policy network (trains in a fraction of a second per epoch)."""
    path = tmp_path_factory.mktemp("distill_cfg") / "small.yaml"
    net = {"policy_kwargs": {"features_extractor": "saliency_cnn", "features_extractor_kwargs": {"features_dim": 16, "channels": 8},
                             "net_arch": {"pi": [], "vf": [16]}}}  # fmt: skip
    path.write_text(yaml.safe_dump({"default": {"maskable_ppo": net}}))
    return path


def _kwargs(small_net, **extra):
    kwargs = dict(config=small_net, env_kwargs={"grid": 3}, images=3, val_images=2, epochs=2, teacher_batch=2,
                  progress=False, device="cpu", seed=0)  # fmt: skip
    kwargs.update(extra)
    return kwargs


def _training_set(env_id: str, grid: int, n: int) -> TrainingSet:
    import gymnasium as gym

    env = gym.make(env_id, grid=grid)
    cfg = env.unwrapped.config
    images = np.asarray(cfg.data.get_batch(np.arange(n)).images, np.float32)
    targets = cfg.classifier.predict(images, count=False).cpu().numpy()
    env.close()
    return TrainingSet(cfg, images, targets)


def test_bc_samples_are_the_teacher_trajectory():
    orders = np.array([[2, 0, 1], [1, 2, 0]])
    idx, chosen, labels = bc_samples(orders)
    assert idx.tolist() == [0, 0, 0, 1, 1, 1]
    assert labels.tolist() == [2, 0, 1, 1, 2, 0]
    assert chosen.tolist() == [[False, False, False], [False, False, True], [True, False, True],
                               [False, False, False], [False, True, False], [False, True, True]]  # fmt: skip
    with pytest.raises(ValueError, match="every cell"):
        bc_samples(np.array([[0, -1, 1]]))


def test_observations_match_the_environment():
    data = _training_set(ENV, 3, 2)
    chosen = np.zeros((2, 9), bool)
    chosen[0, [1, 4]] = True
    chosen[1, 8] = True
    data.core.chosen[:] = chosen
    expected = {k: v for k, v in data.core.observation().items()}
    canvases = data.core.canvases_for(np.arange(2), chosen).cpu().numpy()
    got = data.observations(np.arange(2), chosen)
    np.testing.assert_allclose(got["image"].cpu().numpy(), expected["image"])
    np.testing.assert_allclose(got["canvas"].cpu().numpy(), canvases)
    np.testing.assert_array_equal(got["chosen"].cpu().numpy(), expected["chosen"])
    revealed = data.config.grid.to_pixels(chosen[0].astype(np.float32)) > 0.5
    np.testing.assert_allclose(got["canvas"][0].cpu().numpy()[:, revealed], data.images[0][:, revealed])


@pytest.mark.parametrize("env_id", [ENV, MASK_ENV])
def test_dagger_labels_are_the_teachers_choice_at_given_states(env_id):
    data = _training_set(env_id, 3, 3)
    rng = np.random.default_rng(0)
    idx = np.array([0, 1, 2, 2])
    chosen = rng.random((4, 9)) < 0.4
    chosen[3] = False
    labels = dagger_labels(data, idx, chosen, batch=3)
    classifier = data.config.classifier
    reveal = data.config.mode == "reveal"
    for j, (i, c) in enumerate(zip(idx, chosen, strict=True)):
        allowed = np.flatnonzero(~c)
        scores = []
        for cell in allowed:  # brute force: one canvas per allowed cell, built by hand
            after = c.copy()
            after[cell] = True
            pixels = torch.as_tensor(data.config.grid.to_pixels(after.astype(np.float32)) > 0.5)
            image, substrate = data.core.images[i], data.core.substrates[i]
            canvas = torch.where(pixels, image, substrate) if reveal else torch.where(pixels, substrate, image)
            p = classifier.probs(canvas[None], count=False)[0, data.targets[i]].item()
            scores.append(p if reveal else -p)
        assert labels[j] == allowed[int(np.argmax(scores))]
        assert not c[labels[j]]
    with pytest.raises(ValueError, match="every cell"):
        dagger_labels(data, np.array([0]), np.ones((1, 9), bool))
    with pytest.raises(ValueError, match="booleans"):
        dagger_labels(data, np.array([0]), np.zeros((1, 4), bool))


def test_teacher_orders_match_greedy_and_are_cached(small_net, tmp_path):
    out = tmp_path / "run"
    result = distill(ENV, out, **_kwargs(small_net, lookahead=2, epochs=1))
    cached = torch.load(out / "teacher_orders.pt", weights_only=True)
    assert cached["format"] == TEACHER_FORMAT
    data = _training_set(ENV, 3, 3)
    np.testing.assert_array_equal(cached["orders"].numpy(), rollout_orders(GreedyPolicy(lookahead_steps=2), data, np.arange(3)))
    assert result.teacher_queries == 3 * (9 + 8)
    # A second run in the same folder reuses the cache: no teacher query.
    (out / "checkpoints" / "last.pt").unlink()
    again = distill(ENV, out, **_kwargs(small_net, lookahead=2, epochs=1))
    assert again.teacher_queries == result.teacher_queries and again.teacher_seconds == result.teacher_seconds


def test_behaviour_cloning_reproduces_a_fixed_teacher_order(small_net, tmp_path):
    out = tmp_path / "bc"
    out.mkdir()
    rng = np.random.default_rng(1)
    orders = np.stack([rng.permutation(4) for _ in range(3)])  # a different order per image
    kwargs = _kwargs(small_net, env_kwargs={"grid": 2}, epochs=80, batch_size=16, learning_rate=1e-2, val_images=1,
                     keep_best=False, val_every=1000)  # fmt: skip
    cfg = DistillConfig.from_kwargs(env_id=ENV, out=out, **kwargs)
    key = teacher_cache_key(cfg, {"grid": 2})
    # The teacher's orders, planted in the cache: the run clones them instead of asking the greedy.
    atomic_save({"format": TEACHER_FORMAT, "key": key, "orders": torch.from_numpy(orders), "seconds": 0.0, "queries": 0},
                out / "teacher_orders.pt")  # fmt: skip
    result = distill(ENV, out, **kwargs)
    assert result.teacher_queries == 0
    assert [h for h in result.history if "val_auc" in h] == [result.history[-1]]  # validated once, at the end
    policy, info = load_agent_policy(result.final_path)
    data = _training_set(ENV, 2, 3)
    np.testing.assert_array_equal(rollout_orders(policy, data, np.arange(3)), orders)


def test_output_loads_as_a_normal_agent(small_net, tmp_path):
    out = tmp_path / "run"
    result = distill(ENV, out, **_kwargs(small_net, lookahead=1, dagger_rounds=1, dagger_states=2, dagger_epochs=1))
    assert [h["phase_round"] for h in result.history] == [0.0, 0.0, 1.0]
    payload = load_agent_payload(result.final_path)
    assert payload["algo"] == "maskable_ppo" and payload["env_kwargs"] == {"grid": 3}
    assert payload["meta"]["distilled_from"] == "greedy-1" and payload["meta"]["train_seconds"] > 0
    zipped = load_agent_payload(out / "final.zip")
    for name, tensor in payload["policy_state"].items():
        torch.testing.assert_close(zipped["policy_state"][name], tensor)
    data = _training_set(ENV, 3, 2)
    explainer = PolicyExplainer(data.config.classifier, str(result.final_path))
    explanation = explainer.explain(data.images, data.targets)
    assert explanation.maps.shape == (2, 32, 32) and explanation.queries == 0
    # The distilled network is the algorithm's own policy class.
    policy, _ = load_agent_policy(out / "final.zip")
    assert isinstance(policy, AgentPolicy) and type(policy.policy).__name__ == "CellMaskablePolicy"


def test_resume_after_interruption_equals_an_uninterrupted_run(small_net, tmp_path, monkeypatch):
    kwargs = _kwargs(small_net, lookahead=1, epochs=3, dagger_rounds=1, dagger_states=2, dagger_epochs=2)
    whole = distill(ENV, tmp_path / "whole", **kwargs)

    class StopAtOnce(distillation.SignalStop):
        """A SIGINT caught before the first epoch ends."""

        def __enter__(self):
            self.signum = signal.SIGINT
            return self

    monkeypatch.setattr(distillation, "SignalStop", StopAtOnce)
    with pytest.raises(distillation.TrainingInterrupted):
        distill(ENV, tmp_path / "parts", **kwargs)
    state = torch.load(tmp_path / "parts" / "checkpoints" / "last.pt", weights_only=True)
    assert state["phase"] == "bc" and state["epoch"] == 1
    monkeypatch.undo()
    with pytest.raises(FileExistsError, match="--resume"):
        distill(ENV, tmp_path / "parts", **kwargs)
    with pytest.raises(ValueError, match="settings differ"):
        distill(ENV, tmp_path / "parts", resume=True, **{**kwargs, "learning_rate": 5e-3})
    resumed = distill(ENV, tmp_path / "parts", resume=True, **kwargs)
    assert len(resumed.history) == len(whole.history) == 5
    a = load_agent_payload(whole.final_path)["policy_state"]
    b = load_agent_payload(resumed.final_path)["policy_state"]
    for name in a:
        torch.testing.assert_close(a[name], b[name])


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"env_id": "saliency_gym/Nope-v0"}, ValueError, "unknown saliency-search environment"),
        ({"teacher": "oracle"}, ValueError, "teacher"),
        ({"images": 0}, ValueError, "images"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lookahead": 0}, ValueError, "lookahead"),
        ({"val_every": 0}, ValueError, "val_every"),
        ({"soft_temperature": -1.0}, ValueError, "soft_temperature"),
        ({"dagger_rounds": -1}, ValueError, "dagger_rounds"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"algo": "dqn"}, ValueError, "actor-critic"),
        ({"algo": "nope"}, ValueError, "unknown algorithm"),
        ({"device": "nope"}, ValueError, "device"),
        ({"env_kwargs": [1]}, TypeError, "env_kwargs"),
        ({"images": 2.5}, TypeError, "images"),
        ({"bogus": 1}, TypeError, "bogus"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, changes, error, match):
    kwargs = {"env_id": ENV, "out": tmp_path / "run", **changes}
    with pytest.raises(error, match=match):
        DistillConfig.from_kwargs(**kwargs)


def test_run_folder_errors(small_net, tmp_path):
    with pytest.raises(FileNotFoundError, match="resume"):
        distill(ENV, tmp_path / "none", resume=True, **_kwargs(small_net))
    with pytest.raises(ValueError, match="training images"):
        distill(ENV, tmp_path / "big", **_kwargs(small_net, images=100_000))
    with pytest.raises(PermissionError, match="read-only"):
        distill(ENV, distillation.__file__ + "_run", **_kwargs(small_net))


def test_cli_distills_and_reports(small_net, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["distill", "--env", ENV, "--lookahead", "1", "--images", "2", "--epochs", "1", "--val-images", "1",
                     "--config", str(small_net), "--out", str(out), "--no-progress", "--threads", "1", "--seed", "3"])  # fmt: skip
    assert code == 0
    assert "validation AUC" in capsys.readouterr().out
    assert (out / "final.pt").is_file() and (out / "final.zip").is_file()
    assert cli_main(["distill", "--env", "saliency_gym/Nope-v0", "--out", str(tmp_path / "x")]) == 2
    assert "unknown saliency-search environment" in capsys.readouterr().err


def test_finetune_starts_from_the_distilled_weights_and_keeps_the_better(tmp_path):
    config = tmp_path / "tiny.yaml"
    net = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 2,
           "policy_kwargs": {"features_extractor": "saliency_cnn", "features_extractor_kwargs": {"features_dim": 16, "channels": 8},
                             "net_arch": {"pi": [], "vf": [16]}}}  # fmt: skip
    config.write_text(yaml.safe_dump({"default": {"maskable_ppo": net}}))
    out = tmp_path / "ft"
    with _no_check():  # the 'did not improve' warning is allowed
        result = distill(ENV, out, **_kwargs(config, lookahead=1, epochs=1, finetune_steps=64, finetune_lr=1e-4, finetune_clip=0.1))
    assert set(result.validation) == {"distilled", "finetuned"}
    tuned = load_agent_payload(out / "finetune" / "final.pt")
    assert tuned["num_timesteps"] == 64
    assert tuned["hyperparameters"]["learning_rate"] == 1e-4 and tuned["hyperparameters"]["clip_range"] == 0.1
    final = load_agent_payload(result.final_path)
    kept = "finetuned" if result.validation["finetuned"] > result.validation["distilled"] else "distilled"
    assert final["meta"]["val_auc"] == result.validation[kept]
    source = load_agent_payload(out / "finetune" / "final.pt" if kept == "finetuned" else result.distilled_path)
    for name, tensor in source["policy_state"].items():
        torch.testing.assert_close(final["policy_state"][name], tensor)


def _no_check():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def quiet():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield

    return quiet()
