"""Issue 12, "nothing lost, nothing silent": resume checks, run-folder lock, checkpoint
consistency, SIGTERM/SIGINT/SIGKILL, final TensorBoard scalars and the rounded step total."""

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from saliency_gym.agents import train_agent
from saliency_gym.agents.agent_checkpoints import load_agent_payload
from saliency_gym.runs import RunFolderLocked, run_lock

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


def _kwargs(out, tiny_config, **extra):
    return {"out": out, "config": tiny_config, "env_kwargs": {"grid": 2}, "n_envs": 4, "checkpoint_every": 64,
            "eval_every": 0, "progress": False, **extra}  # fmt: skip


def test_resume_checks_settings_missing_checkpoint_and_nothing_to_train(tmp_path, tiny_config):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="last.pt"):  # used to start silently from zero
        train_agent(ENV, "maskable_ppo", 64, seed=1, resume=True, **_kwargs(out, tiny_config))
    first = train_agent(ENV, "maskable_ppo", 64, seed=1, **_kwargs(out, tiny_config))
    assert first.num_timesteps == 64
    with pytest.raises(ValueError, match="seed"):
        train_agent(ENV, "maskable_ppo", 128, seed=2, resume=True, **_kwargs(out, tiny_config))
    with pytest.raises(ValueError, match="env_kwargs"):
        train_agent(ENV, "maskable_ppo", 128, seed=1, resume=True, **_kwargs(out, tiny_config, env_kwargs={"grid": 4}))
    with pytest.raises(ValueError, match="env_id"):
        train_agent("saliency_gym/SaliencyMask-Shapes-v0", "maskable_ppo", 128, seed=1, resume=True,
                    **_kwargs(out, tiny_config))  # fmt: skip
    # an orphaned temporary file of an interrupted write is cleaned on resume
    orphan = out / "checkpoints" / ".last.pt.abc123.tmp"
    orphan.write_bytes(b"partial")
    # timesteps equal to the checkpoint's step: nothing to train, finishes cleanly (with evaluation on)
    again = train_agent(ENV, "maskable_ppo", 64, seed=1, resume=True,
                        **_kwargs(out, tiny_config, eval_every=1000, eval_images=2))  # fmt: skip
    assert again.num_timesteps == 64 and again.final_path.is_file() and len(again.evaluations) == 1
    assert not orphan.exists()
    assert not (out / ".lock").exists()


def test_last_checkpoint_equals_newest_step_checkpoint(tmp_path, tiny_config):
    out = tmp_path / "run"
    result = train_agent(ENV, "maskable_ppo", 192, seed=0, **_kwargs(out, tiny_config))
    ckpts = out / "checkpoints"
    steps = sorted(ckpts.glob("step_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    assert [p.name for p in steps] == ["step_64.pt", "step_128.pt", "step_192.pt"]
    assert (ckpts / "last.pt").read_bytes() == steps[-1].read_bytes()
    assert load_agent_payload(ckpts / "last.pt")["num_timesteps"] == result.num_timesteps == 192
    assert not list(ckpts.glob("*.tmp"))


def test_run_folder_lock(tmp_path, tiny_config):
    out = tmp_path / "run"
    with run_lock(out) as lock:
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(RunFolderLocked, match="in use by process"):
            train_agent(ENV, "maskable_ppo", 64, seed=0, **_kwargs(out, tiny_config))
        with pytest.raises(OSError, match="in use"):
            with run_lock(out):
                pass
    assert not (out / ".lock").exists()
    # a live process of someone else holds it: refused
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (out / ".lock").write_text(f"{sleeper.pid}\n")
        with pytest.raises(RunFolderLocked, match=str(sleeper.pid)):
            with run_lock(out):
                pass
    finally:
        sleeper.kill()
        sleeper.wait()
    # now its process is dead: a stale lock is taken over
    with run_lock(out) as lock:
        assert lock.read_text().strip() == str(os.getpid())
    assert not (out / ".lock").exists()
    # a holder killed with SIGKILL leaves its lock file, but the kernel released its flock
    code = f"import time; from saliency_gym.runs import run_lock\nwith run_lock({str(out)!r}):\n print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderLocked, match=f"in use by process {holder.pid}"):
            with run_lock(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".lock").read_text().strip() == str(holder.pid)
    with run_lock(out) as lock:
        assert lock.read_text().strip() == str(os.getpid())


def test_final_evaluation_reaches_tensorboard(tmp_path, tiny_config):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = train_agent(ENV, "maskable_ppo", 64, seed=0, **_kwargs(out, tiny_config, eval_every=10_000, eval_images=2))
    assert len(result.evaluations) == 1
    (run_dir,) = (out / "tb").iterdir()
    events = EventAccumulator(str(run_dir))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert "eval/insertion_auc" in scalars and "eval/deletion_auc" in scalars
    (point,) = events.Scalars("eval/insertion_auc")
    assert point.step == 64 and point.value == pytest.approx(result.evaluations[-1]["insertion_auc"])
    # example maps in the image tab: 2 held-out images, a row each (image | saliency)
    (picture,) = events.Images("eval/maps")
    assert picture.step == 64 and picture.height > picture.width / 2 > 0
    # the run's settings as hparams, comparable across runs in TensorBoard's HPARAMS tab
    from tensorboard.plugins.hparams import plugin_data_pb2

    plugin = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["algo"].string_value == "maskable_ppo"
    assert start.hparams["env_id"].string_value == ENV and start.hparams["seed"].number_value == 0
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"]).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"eval/insertion_auc", "eval/deletion_auc"}


def test_rounded_timesteps_are_announced_and_counted(tmp_path, tiny_config, capsys):
    # tiny config: 4 envs x 16 steps = rollouts of 64 steps; 70 steps runs two rollouts
    with pytest.warns(UserWarning, match="will run to 128 steps"):
        result = train_agent(ENV, "maskable_ppo", 70, seed=0, **_kwargs(tmp_path / "run", tiny_config, progress=True))
    assert result.num_timesteps == 128
    err = capsys.readouterr().err
    assert "128/128" in err and "/70" not in err


def _cli(out, config, timesteps, *extra):
    cmd = [sys.executable, "-m", "saliency_gym.cli.main", "train", "--env", ENV, "--config", str(config),
           "--timesteps", str(timesteps), "--checkpoint-every", "64", "--eval-every", "0", "--no-progress",
           "--out", str(out), "--threads", "1", *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, proc, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_sigint_and_sigkill_then_resume_reach_the_same_step(tmp_path):
    """A scheduler's SIGTERM and a Ctrl-C's SIGINT save a checkpoint and exit quietly (128 + the
    signal); SIGKILL saves nothing but leaves last.pt of the newest step file; all three resume to
    the same final step."""
    config = tmp_path / "c.yaml"
    small = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "env_kwargs": {"grid": 2}}
    config.write_text(yaml.safe_dump({"default": {"maskable_ppo": small}}))
    total = 1024  # 16 rollouts: far more than a run gets through between its step_64 file and SIGSTOP
    outs = {sig: tmp_path / sig.name for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)}
    procs = {sig: _cli(out, config, total) for sig, out in outs.items()}
    for sig, proc in procs.items():
        _wait_for(outs[sig] / "checkpoints" / "step_64.pt", proc)
        proc.send_signal(signal.SIGSTOP)  # freeze it mid-run while the others catch up
    for sig, proc in procs.items():
        proc.send_signal(sig)  # delivered on SIGCONT, as a scheduler's signal would be at any time
        proc.send_signal(signal.SIGCONT)
    for sig, proc in procs.items():
        _, err = proc.communicate(timeout=60)
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == 128 + sig, err
            assert "Traceback" not in err and "saved to" in err and sig.name in err
        last = outs[sig] / "checkpoints" / "last.pt"
        saved = load_agent_payload(last)["num_timesteps"]
        assert 64 <= saved < total and saved % 64 == 0  # a whole number of rollouts
        assert (outs[sig] / ".lock").exists() == (sig == signal.SIGKILL)  # SIGKILL leaves a stale lock
    resumed = {sig: _cli(out, config, total, "--resume") for sig, out in outs.items()}
    for sig, proc in resumed.items():
        out = outs[sig]
        stdout, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"trained {total} steps" in stdout
        assert load_agent_payload(out / "checkpoints" / "last.pt")["num_timesteps"] == total
        assert not (out / ".lock").exists()


# ---------------------------------------------------------------- issue 20: --config validation


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default:\n  learning_rate: fast\n", "hyperparameter learning_rate = 'fast' is a str; maskable_ppo expects a number"),
        ("default:\n  learning_rate: 3e-4\n", r"YAML reads 3e-4 as text; write 0.0003"),
        ("default:\n  n_steps: 16.5\n", "n_steps = 16.5 is a float; maskable_ppo expects an integer"),
        ("default:\n  maskable_ppo: {normalize_advantage: 1}\n", r"\[default / maskable_ppo\]: hyperparameter normalize_advantage = 1 is an int; maskable_ppo expects true or false"),
        ("default:\n  seed: 3\n", "'seed' is set by saliency-gym train"),
        ("learning_rate: 0.001\n", "top-level key 'learning_rate' is a hyperparameter: put it under 'default:'"),
        ("lerning_rate: 0.001\ndefault: {n_steps: 16}\n", "top-level key 'lerning_rate' is neither an environment id nor 'default'"),
        ("default:\n  maskable_ppo: {n_steps: 16}\n  gamma: 0.9\n", "also holds \\['gamma'\\]"),
    ],
)
def test_config_keys_and_types_are_checked(tmp_path, text, message):
    from saliency_gym.agents.algorithms import load_hyperparameters

    path = tmp_path / "c.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_hyperparameters(ENV, "maskable_ppo", path)


def test_a_bad_config_fails_the_cli_in_one_line_before_any_folder(tmp_path, capsys):
    from saliency_gym.cli.main import main

    config = tmp_path / "c.yml"
    out = tmp_path / "run"
    for text, message in (("default:\n  learning_rate: fast\n", "learning_rate = 'fast'"),
                          ("learning_rate: 0.5\n", "top-level key 'learning_rate'")):  # fmt: skip
        config.write_text(text)
        assert main(["train", "--config", str(config), "--out", str(out), "--timesteps", "64"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()
    # the shipped files and the test's nested form still load, for every algorithm
    from saliency_gym.agents.algorithms import ALGORITHMS, load_hyperparameters

    for algo in ALGORITHMS:
        assert load_hyperparameters(ENV, algo)
