"""The shared training-run scaffolding (``saliency_gym.runs``) and the plugin's import boundaries."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch

from saliency_gym.checkpoint import CheckpointError
from saliency_gym.runs import (
    RunClock,
    RunState,
    TrainingOptions,
    check_output_dir,
    check_output_file,
    check_resume_settings,
    seed_everything,
    snapshot_state,
)


@dataclass
class _Recipe(TrainingOptions):
    option_kind = "toy option"

    seed: int = 0
    lr: float = 0.1
    limit: int | None = None

    def validate(self) -> _Recipe:
        self.check_ints("seed", minimum=0)
        self.check_ints("limit", minimum=1, optional=True)
        self.check_floats("lr", minimum=0.0, exclusive_minimum=True)
        return self


def test_training_options_names_its_kind_and_checks_fields():
    assert _Recipe.field_names() == ["seed", "lr", "limit"]
    with pytest.raises(TypeError, match=r"unknown toy option\(s\) \['sed'\]"):
        _Recipe.from_kwargs(sed=1)
    with pytest.raises(ValueError, match="lr"):
        _Recipe.from_kwargs(lr=0.0)
    with pytest.raises(TypeError, match="limit"):
        _Recipe.from_kwargs(limit=1.5)
    assert _Recipe.from_kwargs(limit=None).describe() == {"seed": 0, "lr": 0.1, "limit": None}


def test_run_state_round_trip_resume_checks_and_errors(tmp_path):
    net = torch.nn.Linear(3, 2)
    state = RunState(tmp_path / "run" / "last.pt", "test.run/v1", ("config", "model"), what="toy state")
    assert not state.exists()
    with pytest.raises(FileNotFoundError, match="no toy state"):
        state.require()
    state.save(config={"seed": 0, "steps": 3}, model=net.state_dict())
    loaded = state.load(config={"seed": 0, "steps": 9}, fixed=("seed",))  # steps may change
    other = torch.nn.Linear(3, 2)
    state.restore(loaded, {"model": other})
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True))
    with pytest.raises(ValueError, match="settings differ"):
        state.load(config={"seed": 1, "steps": 3}, fixed=("seed",))
    with pytest.raises(CheckpointError, match="does not fit"):
        state.restore(loaded, {"model": torch.nn.Linear(4, 2)})
    with pytest.raises(CheckpointError, match="format"):
        RunState(state.path, "other/v1").load()


def test_resume_settings_all_fields_by_default(tmp_path):
    check_resume_settings({"a": 1, "b": 2}, {"a": 1, "b": 2}, None, tmp_path)
    with pytest.raises(ValueError, match="another recipe"):
        check_resume_settings({"a": 1}, {"a": 2}, None, tmp_path, hint="; another recipe")


def test_small_helpers(tmp_path):
    a = seed_everything(3)
    first = torch.rand(2)
    b = seed_everything(3)
    assert torch.equal(first, torch.rand(2)) and torch.equal(a.get_state(), b.get_state())
    net = torch.nn.Linear(2, 2)
    snap = snapshot_state(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(snap["weight"], net.weight)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        check_output_dir(tmp_path / "file")
    with pytest.raises(IsADirectoryError):
        check_output_file(tmp_path)
    assert RunClock(5.0).seconds >= 5.0


def test_gradient_methods_do_not_load_training_or_env_modules():
    """Importing one explainer module leaves the training recipes unloaded; the baselines
    themselves never import the environments (``saliency_gym`` may register them)."""
    code = (
        "import sys, saliency_gym.baselines.gradient_methods, saliency_gym.baselines.attack_policies\n"
        "heavy = [m for m in sys.modules if m.startswith('saliency_gym.baselines.') and "
        "any(k in m for k in ('ganmex', 'idexpo', 'adversarial', 'tabular_training'))]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import pathlib

    import saliency_gym.baselines as package

    for path in pathlib.Path(package.__file__).parent.glob("*.py"):
        assert "saliency_gym.envs" not in path.read_text(), path.name
