"""Issue 20, run folders: a new run never lands on an old one (``--out`` that holds a run is refused
unless ``--resume`` or ``--overwrite``), and default folders are named after the environment, the
model and the data and numbered as rl-zoo numbers its runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from saliency_gym.cli.main import main
from saliency_gym.runs import (
    check_new_run,
    latest_run_folder,
    next_run_folder,
    removed_if_left_empty,
    run_numbers,
    run_slug,
)

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"
QUICK = ["--n-envs", "4", "--checkpoint-every", "64", "--eval-every", "0", "--no-progress", "--device", "cpu",
         "--threads", "1"]  # fmt: skip
FAST = ["--timesteps", "64", *QUICK]


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump({"default": {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1,
                                                "env_kwargs": {"grid": 2}}}))  # fmt: skip
    return path


# ---------------------------------------------------------------- the helpers


def test_numbered_folders_follow_rl_zoo(tmp_path):
    assert run_numbers(tmp_path / "missing", "ppo") == []
    first = next_run_folder(tmp_path / "g", "ppo")
    assert first == tmp_path / "g" / "ppo_1" and first.is_dir()
    (tmp_path / "g" / "ppo_7").mkdir()
    (tmp_path / "g" / "ppo_x").mkdir()  # not a number: ignored
    (tmp_path / "g" / "a2c_9").mkdir()  # another algorithm: its own numbers
    assert next_run_folder(tmp_path / "g", "ppo").name == "ppo_8"
    assert latest_run_folder(tmp_path / "g", "ppo").name == "ppo_8"
    with pytest.raises(FileNotFoundError, match="no run dqn_<n>"):
        latest_run_folder(tmp_path / "g", "dqn")
    assert run_slug("my model/v2 (final).pt2") == "my-model-v2-final-.pt2"
    assert run_slug("///") == "run" and len(run_slug("x" * 100)) == 40


def test_check_new_run_refuses_overwrites_and_resumes(tmp_path):
    files = ("final.pt", "checkpoints", "tb")
    (tmp_path / "empty_tb" / "tb").mkdir(parents=True)
    assert check_new_run(tmp_path / "empty_tb", files, resume=False, overwrite=False) == []  # nothing written yet
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_64.pt").write_bytes(b"x")
    (run / "final.pt").write_bytes(b"x")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds a run .*use --resume or another --out"):
        check_new_run(run, files, resume=False, overwrite=False)
    assert check_new_run(run, files, resume=True, overwrite=False) == []
    with pytest.raises(ValueError, match="exclude each other"):
        check_new_run(run, files, resume=True, overwrite=True)
    removed = check_new_run(run, files, resume=False, overwrite=True)
    assert {p.name for p in removed} == {"final.pt", "checkpoints"}
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]  # only the run's own files went


def test_a_folder_made_for_a_failed_run_is_removed(tmp_path):
    with pytest.raises(RuntimeError), removed_if_left_empty(tmp_path / "new") as folder:
        folder.mkdir()
        raise RuntimeError
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError), removed_if_left_empty(tmp_path / "old"):
        raise RuntimeError
    assert (tmp_path / "old").is_dir()  # it was there before: kept


def test_default_groups_name_env_model_and_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from saliency_gym.agents.agent_training import AgentTrainingConfig, default_run_group
    from saliency_gym.data import load_dataset
    from saliency_gym.zoo import load_classifier

    assert default_run_group(ENV) == default_run_group(ENV, {"grid": 4}) == Path("runs/SaliencyReveal-Shapes-v0")
    own = default_run_group(ENV, {"classifier": load_classifier("shapes_robust", device="cpu"),
                                  "data": load_dataset("shapes", split="train", n=4)})  # fmt: skip
    assert own.parts == ("runs", "SaliencyReveal-Shapes-v0", "model-shapes_robust_data-shapes")
    assert default_run_group(ENV, {"classifier": "/models/my net.pt2"}).name == "model-my-net"
    assert default_run_group(ENV, {"data": "digits"}).name == "data-digits"
    cfg = AgentTrainingConfig.from_kwargs(env_id=ENV, algo="ppo")
    assert cfg.run_folder.name == "ppo_1"  # was ppo_s0 for every run, whatever its model
    with pytest.raises(FileNotFoundError, match="no run ppo_<n>"):
        AgentTrainingConfig.from_kwargs(env_id=ENV, algo="ppo", resume=True, env_kwargs={"data": "nothing-here"}).run_folder  # noqa: B018


# ---------------------------------------------------------------- training


def test_train_refuses_a_folder_holding_a_run_and_overwrites_on_request(tmp_path, tiny_yaml, capsys):
    out = tmp_path / "x"
    assert main(["train", "--out", str(out), "--config", str(tiny_yaml), *FAST]) == 0
    first = (out / "final.pt").read_bytes()
    stale = out / "checkpoints" / "step_999.pt"  # a step file of the old run
    stale.write_bytes(b"old")
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--config", str(tiny_yaml), "--seed", "1", *FAST]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a run" in err and "use --resume or another --out" in err and "Traceback" not in err
    assert (out / "final.pt").read_bytes() == first and stale.exists()  # nothing replaced
    assert main(["train", "--out", str(out), "--config", str(tiny_yaml), "--resume", "--overwrite", *FAST]) == 2
    assert "pass one of them" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--config", str(tiny_yaml), "--seed", "1", "--overwrite", *FAST]) == 0
    assert not stale.exists() and (out / "final.pt").read_bytes() != first
    assert len(list((out / "tb").rglob("events.out.tfevents.*"))) == 1  # the old run's events went too


def test_library_train_agent_refuses_too(tmp_path, tiny_yaml):
    from saliency_gym.agents import train_agent

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"a run")
    with pytest.raises(FileExistsError, match="holds a run"):
        train_agent(ENV, "maskable_ppo", 64, out=out, config=tiny_yaml, progress=False, eval_every=0)
    assert (out / "checkpoints" / "last.pt").read_bytes() == b"a run"


def test_default_runs_are_numbered_and_never_share_a_folder(tmp_path, tiny_yaml, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert main(["train", "--config", str(tiny_yaml), *FAST]) == 0
    group = tmp_path / "runs" / "SaliencyReveal-Shapes-v0"
    assert sorted(p.name for p in group.iterdir()) == ["maskable_ppo_1", "maskable_ppo_2"]
    for run in group.iterdir():
        assert (run / "final.pt").is_file() and len(list((run / "tb").rglob("events.out.tfevents.*"))) == 1
    assert "maskable_ppo_2/final.pt" in capsys.readouterr().out
    # --resume without --out continues the latest default run
    assert main(["train", "--config", str(tiny_yaml), "--resume", "--timesteps", "128", *QUICK]) == 0
    assert "maskable_ppo_2/final.pt" in capsys.readouterr().out
    assert sorted(p.name for p in group.iterdir()) == ["maskable_ppo_1", "maskable_ppo_2"]


def test_a_bad_run_leaves_no_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("default:\n  n_steps: 16\n  batch_size: 0.5\n")
    assert main(["train", "--config", str(bad), *FAST]) == 2
    assert "batch_size = 0.5" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_rllib_runs_refuse_a_folder_holding_a_run(tmp_path, capsys):
    pytest.importorskip("ray")
    from saliency_gym.distributed.rllib_training import train_rllib

    out = tmp_path / "ray_run"
    (out / "final").mkdir(parents=True)
    (out / "final" / "module.pt").write_bytes(b"old")
    with pytest.raises(FileExistsError, match="holds a run"):  # refused before Ray starts
        train_rllib(ENV, 64, out=out, num_env_runners=0)
    assert main(["train", "--engine", "ray", "--out", str(out), "--timesteps", "64"]) == 2
    assert "holds a run" in capsys.readouterr().err
    assert (out / "final" / "module.pt").read_bytes() == b"old"


def test_rllib_without_ray_leaves_no_run_folder(tmp_path, monkeypatch):
    import sys

    from saliency_gym.distributed.rllib_training import train_rllib

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'saliency-gym\[ray\]'"):
        train_rllib(ENV, 64, out=tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImportError):
        train_rllib(ENV, 64)
    assert sorted(tmp_path.iterdir()) == []
