"""The policy benchmark: --quick trains, tabulates and plots; a second call reuses finished runs."""

from __future__ import annotations

import json

import pytest

from saliency_gym.benchmarks import policy_benchmark as pb


def test_quick_benchmark_writes_table_curves_and_resumes(tmp_path, monkeypatch):
    rows = pb.run_policy_benchmark("quick", tmp_path, algos=["maskable_ppo", "a2c"], progress=False)
    assert [r.method for r in rows] == ["maskable_ppo", "a2c", "gradcam (one pass)"]
    assert all(r.seeds == 2 for r in rows[:2]) and rows[2].queries_per_image >= 1
    assert all(0.0 <= r.insertion_auc <= 1.0 and r.insertion_ci >= 0 and r.queries_per_image == 0 for r in rows[:2])
    table = (tmp_path / "policy_bench.md").read_text()
    assert "| SaliencyReveal-Shapes-v0 | a2c | 2 |" in table
    data = json.loads((tmp_path / "policy_bench.json").read_text())
    assert data["meta"]["size"]["timesteps"] == 512 and len(data["results"]) == 3
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    run = json.loads((tmp_path / "runs" / "saliency_gym-SaliencyReveal-Shapes-v0" / "a2c_s1" / "result.json").read_text())
    assert [p["step"] for p in run["curve"]][:2] == [256, 512] and all("seconds" in p for p in run["curve"])

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("saliency_gym.agents.agent_training.train_agent", no_training)
    again = pb.run_policy_benchmark("quick", tmp_path, algos=["maskable_ppo", "a2c"], progress=False)
    assert again == rows


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown size"):
        pb.run_policy_benchmark("huge", tmp_path)
    with pytest.raises(ValueError, match="unknown algorithm"):
        pb.run_policy_benchmark("quick", tmp_path, algos=["sac"])
    with pytest.raises(ValueError, match="at least one seed"):
        pb.run_policy_benchmark("quick", tmp_path, seeds=[])
    with pytest.raises(ValueError, match="unknown saliency-search environment"):
        pb.run_policy_benchmark("quick", tmp_path, envs=["CartPole-v1"])


def test_cli_bench_agents_quick(tmp_path, capsys):
    from saliency_gym.cli.main import main

    out = tmp_path / "pb"
    assert main(["bench", "--agents", "--quick", "--algos", "dqn", "--seeds", "3", "--no-progress", "--out", str(out)]) == 0
    assert "| SaliencyReveal-Shapes-v0 | dqn | 1 |" in capsys.readouterr().out
    assert (out / "learning_curves.png").is_file() and (out / "runs" / "saliency_gym-SaliencyReveal-Shapes-v0" / "dqn_s3").is_dir()
    assert main(["bench", "--agents", "--engine", "ray", "--out", str(out)]) == 2
