"""The policy benchmark: --quick trains, tabulates and plots; a second call reuses finished runs."""

from __future__ import annotations

import json

import pytest

from saliency_gym.benchmarks import policy_benchmark as pb


def test_quick_benchmark_writes_table_curves_and_resumes(tmp_path, monkeypatch):
    rows = pb.run_policy_benchmark("quick", tmp_path, algos=["maskable_ppo", "a2c"], progress=False)
    assert [r.method for r in rows] == ["maskable_ppo", "maskable_ppo (mean map)", "a2c", "a2c (mean map)", "centre",
                                        "gradcam (one pass)"]  # fmt: skip
    agents, priors = [rows[0], rows[2]], [rows[1], rows[3], rows[4]]
    assert all(r.seeds == 2 for r in agents + priors[:2]) and rows[-1].queries_per_image >= 1
    assert all(0.0 <= r.insertion_auc <= 1.0 and r.insertion_ci >= 0 and r.queries_per_image == 0 for r in agents + priors)
    # the environment's own metric for every row; no normalised score for a modified preset (grid 4)
    assert all(0.0 <= r.env_auc <= 1.0 and r.normalized_score is None for r in rows)
    # paired differences with the centre prior and the agents' own mean maps, for the agents only
    for r in agents:
        assert r.insertion_minus_centre is not None and r.insertion_minus_centre_ci >= 0
        assert r.deletion_minus_mean_map is not None and r.insertion_minus_mean_map_ci >= 0
    assert all(r.insertion_minus_centre is None for r in priors + rows[-1:])
    table = (tmp_path / "policy_bench.md").read_text()
    assert "| SaliencyReveal-Shapes-v0 | a2c | 2 |" in table and "insertion − own mean map ↑" in table
    data = json.loads((tmp_path / "policy_bench.json").read_text())
    assert data["meta"]["size"]["timesteps"] == 512 and len(data["results"]) == 6
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


def test_rows_of_an_unmodified_preset_get_the_normalised_score():
    from saliency_gym.envs.reference import normalized_score, reference_scores

    env_id = "saliency_gym/SaliencyMask-Shapes-v0"
    refs = reference_scores(env_id)["references"]
    records = [{"insertion_auc": 0.8, "deletion_auc": 0.2, "env_auc": auc, "queries_per_image": 0} for auc in (0.10, 0.12)]
    row = pb.summarise(records, env_id, "ppo", 200)
    assert row.env_auc == pytest.approx(0.11) and row.normalized_score == pytest.approx(normalized_score(env_id, 0.11))
    assert row.normalized_score > 0  # a deletion AUC below random's is a positive score
    assert row.normalized_ci == pytest.approx(row.env_auc_ci / abs(refs["greedy"]["auc"] - refs["random"]["auc"]))
    assert pb.summarise(records, env_id, "ppo", 200, modified=True).normalized_score is None
    assert pb.summarise([{k: v for k, v in r.items() if k != "env_auc"} for r in records], env_id, "ppo", 200).env_auc is None
