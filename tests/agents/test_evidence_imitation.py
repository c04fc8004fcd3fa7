"""Evidence agents: EvidenceCNN over the classifier's features, trained by imitating greedy gains."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from saliency_gym.agents.evidence_imitation import (
    collect_states,
    fixed_image_config,
    imitate,
    label_gains,
    random_behaviour,
    soft_gain_targets,
)
from saliency_gym.agents.extractors import EvidenceCNN
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore


def test_soft_gain_targets_by_hand():
    gains = torch.tensor([[0.1, float("nan"), 0.0, 0.1]])
    targets = soft_gain_targets(gains, temperature=0.1)
    e = np.exp(1.0)
    np.testing.assert_allclose(targets.numpy(), [[e / (2 * e + 1), 0.0, 1 / (2 * e + 1), e / (2 * e + 1)]], rtol=1e-5)


def test_label_gains_are_the_score_change_of_each_allowed_cell():
    env = SaliencySearchConfig.from_kwargs("reveal", classifier="shapes", split="test", grid=4, observe_features="canvas")
    images = np.stack([env.data[i].image for i in range(2)])
    cfg = fixed_image_config(env, images, np.array([0, 1]))
    core = SaliencySearchCore(cfg, 2)
    core.advance(None, np.zeros(2, bool), np.ones(2, bool), options={"image_index": np.arange(2)})
    core.advance(np.array([5, 6]), np.ones(2, bool), np.zeros(2, bool))
    gains = label_gains(core, np.array([0, 1]))
    assert np.isnan(gains[0, 5]) and np.isnan(gains[1, 6])
    chosen = core.chosen[[1]].copy()
    chosen[0, 3] = True
    probs = cfg.classifier.probs(core.canvases_for(np.array([1]), chosen), count=False)
    assert gains[1, 3] == pytest.approx(float(probs[0, 1]) - core.scores[1], abs=1e-6)


def test_collect_states_keeps_every_kth_state():
    env = SaliencySearchConfig.from_kwargs("mask", classifier="shapes", split="test", grid=4, observe_features=True, observe_score=True)
    images = np.stack([env.data[i].image for i in range(3)])
    cfg = fixed_image_config(env, images, np.zeros(3, np.int64))
    obs, gains, queries = collect_states(cfg, random_behaviour(np.random.default_rng(0)), 4, np.random.default_rng(1))
    assert gains.shape == (3 * 16 // 4, 16) and obs["chosen"].shape == (12, 4, 4)
    assert set(obs) == {"image_features", "canvas_features", "chosen", "score"}
    # Every state's unchosen cells were labelled, and the queries counted.
    assert np.array_equal(np.isfinite(gains), obs["chosen"].reshape(12, 16) == 0)
    assert queries == int(np.isfinite(gains).sum())


def test_evidence_cnn_scores_any_grid_with_the_same_weights():
    def space(rows: int) -> gym.spaces.Dict:
        big = float(np.finfo(np.float32).max)
        return gym.spaces.Dict({
            "chosen": gym.spaces.Box(0, 1, (rows, rows), np.float32),
            "image_features": gym.spaces.Box(-big, big, (8, rows, rows), np.float32),
            "target": gym.spaces.Box(0, 1, (5,), np.float32),
        })  # fmt: skip

    small = EvidenceCNN(space(7), features_dim=16, channels=8, cell_scores=True)
    large = EvidenceCNN(space(16), features_dim=16, channels=8, cell_scores=True)
    large.load_state_dict(small.state_dict())  # the same parameters fit both grids
    out = large({"chosen": torch.zeros(2, 16, 16), "image_features": torch.rand(2, 8, 16, 16), "target": torch.eye(5)[:2]})
    assert out.shape == (2, 256 + 16)
    with pytest.raises(ValueError, match="observe_features"):
        EvidenceCNN(gym.spaces.Dict({"chosen": gym.spaces.Box(0, 1, (4, 4), np.float32)}))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("imitation") / "run"
    kwargs = dict(
        images=8, val_images=4, epochs=2, dagger_rounds=1, label_every=8, batch_size=16, episodes_per_batch=4,
        env_kwargs={"grid": 4, "observe_features": "image", "observe_class": True}, progress=False,
    )  # fmt: skip
    result = imitate("saliency_gym/SaliencyReveal-Shapes-v0", out, **kwargs)
    return out, kwargs, result


def test_imitation_writes_agents_that_both_loaders_open(tiny_run):
    from sb3_contrib import MaskablePPO

    from saliency_gym.agents.pretrained import load_agent_policy

    out, _, result = tiny_run
    assert result.final_path == out / "final.pt" and result.zip_path.exists()
    assert [h["round"] for h in result.history] == [0.0, 0.0, 1.0, 1.0]
    assert result.label_queries > 0 and result.validation_auc is not None
    policy, info = load_agent_policy(result.zip_path)
    assert policy.observe_features == "image" and not policy.needs_scores and policy.needs_class
    assert info["meta"]["recipe"] == "evidence_imitation"
    model = MaskablePPO.load(result.zip_path, device="cpu")  # SB3's own loader (a trusted file)
    assert type(model.policy.features_extractor).__name__ == "EvidenceCNN"


def test_imitation_refuses_a_finished_run_and_resumes_to_the_same_agent(tiny_run):
    out, kwargs, result = tiny_run
    with pytest.raises(FileExistsError, match="resume"):
        imitate("saliency_gym/SaliencyReveal-Shapes-v0", out, **kwargs)
    before = torch.load(result.final_path, weights_only=True)["policy_state"]
    result.final_path.unlink()
    resumed = imitate("saliency_gym/SaliencyReveal-Shapes-v0", out, resume=True, **kwargs)
    after = torch.load(resumed.final_path, weights_only=True)["policy_state"]
    for key, value in before.items():
        torch.testing.assert_close(after[key], value)


def test_imitation_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="temperature"):
        imitate("saliency_gym/SaliencyReveal-Shapes-v0", tmp_path / "x", temperature=0)
    with pytest.raises(ValueError):
        imitate("CartPole-v1", tmp_path / "y")


def test_agent_benchmark_rows_and_paired_differences(tiny_run, tmp_path):
    from saliency_gym.benchmarks.bench_evidence_agents import (
        evaluate_agent,
        main,
        summarise,
        to_markdown,
    )

    out, _, _ = tiny_run
    result = evaluate_agent(str(out), images=6)
    assert result["dataset"] == "shapes" and result["observe_features"] == "image"
    rows = result["rows"]
    assert set(rows) == {"agent, open loop (order)", "agent (mean map)", "centre", "gradcam", "random"}
    assert rows["agent, open loop (order)"]["queries"] == 1 and rows["centre"]["queries"] == 0
    entries = {e["method"]: e for e in summarise(result)}
    agent = entries["agent, open loop (order)"]
    diff = rows["agent, open loop (order)"]["insertion"] - rows["centre"]["insertion"]
    assert agent["minus centre"] == pytest.approx(diff.mean())
    assert "minus centre" not in entries["centre"]  # no row is compared with itself
    assert "| shapes | reveal | centre |" in to_markdown(list(entries.values()))
    assert main(["--agents", str(out), "--images", "4", "--out", str(tmp_path / "bench")]) == 0
    assert (tmp_path / "bench" / "evidence_agents.md").is_file()


def test_imitate_command_trains_a_small_agent_and_refuses_shipped_folders(tmp_path, capsys):
    from saliency_gym.agents.pretrained import PRETRAINED_DIR
    from saliency_gym.cli.main import main

    out = tmp_path / "cli_run"
    args = ["imitate", "--env", "saliency_gym/SaliencyMask-Digits-v0", "--observe", "image", "--grid", "4",
            "--images", "4", "--val-images", "2", "--dagger-rounds", "0", "--epochs", "1", "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(out)]) == 0
    assert "validation AUC" in capsys.readouterr().out
    assert (out / "final.pt").is_file() and (out / "final.zip").is_file()
    assert main([*args, "--out", str(PRETRAINED_DIR / "x")]) == 2
    assert "inside the installed saliency_gym package" in capsys.readouterr().err
    assert not (PRETRAINED_DIR / "x").exists()
