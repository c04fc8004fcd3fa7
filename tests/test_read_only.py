"""Shipped files are read-only: no command writes inside the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest

from saliency_gym.classifier_training import ClassifierTrainingConfig, default_checkpoint_path
from saliency_gym.cli.main import main
from saliency_gym.runs import check_not_shipped, check_output_dir, check_output_file, shipped_dirs
from saliency_gym.zoo import CHECKPOINT_DIR


def test_output_checks_refuse_the_package(tmp_path):
    for folder in shipped_dirs():
        with pytest.raises(PermissionError, match="read-only"):
            check_output_file(folder / "new.pt")
        with pytest.raises(PermissionError, match="read-only"):
            check_output_dir(folder / "run")
    assert check_output_file(tmp_path / "a" / "b.pt") == tmp_path / "a" / "b.pt"


def test_classifier_training_defaults_to_a_run_folder():
    path = default_checkpoint_path(ClassifierTrainingConfig(dataset="digits", seed=3))
    assert path == Path("runs/classifiers/digits_s3/digits.pt") and not path.is_absolute()


def test_train_classifier_cli_refuses_the_shipped_checkpoint_before_training(capsys):
    before = (CHECKPOINT_DIR / "shapes.pt").stat().st_mtime_ns
    assert main(["train-classifier", "--dataset", "shapes", "--out", str(CHECKPOINT_DIR / "shapes.pt")]) == 2
    assert "read-only" in capsys.readouterr().err
    assert (CHECKPOINT_DIR / "shapes.pt").stat().st_mtime_ns == before


def test_cli_device_and_output_errors_are_clean(tmp_path, capsys):
    with pytest.raises(SystemExit):  # argparse: --device is checked at parse time
        main(["explain", "--device", "tpu"])
    assert "not a valid torch device" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["explain", "--methods", "random", "--out", str(blocker)]) == 2
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the machine without CUDA")
def test_cli_cuda_without_cuda_is_an_error(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--device", "cuda"])
    assert "CUDA is not available" in capsys.readouterr().err


def test_bench_help_prints_percent_once(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = capsys.readouterr().out
    assert "95%" in out and "95%%" not in out


# ---------------------------------------------------------------- issue 20: every shipped folder


def test_every_installed_subpackage_is_read_only():
    """The list is derived from the installation: every package setup.py discovers (benchmarks/
    included, whose results/ the README shows) lies in a read-only folder."""
    import importlib.util

    setup_file = Path(__file__).resolve().parents[1] / "setup.py"
    setup_spec = importlib.util.spec_from_file_location("_saliency_gym_setup", setup_file)
    assert setup_spec is not None and setup_spec.loader is not None
    setup_module = importlib.util.module_from_spec(setup_spec)
    setup_spec.loader.exec_module(setup_module)  # defines the discovery; setup() runs only as a script
    packages = setup_module.discover_packages()
    folders = shipped_dirs()
    for name in packages:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        for location in spec.submodule_search_locations:
            resolved = Path(location).resolve()
            assert any(resolved == f or f in resolved.parents for f in folders), f"{name} ({resolved}) is writable"


def test_bench_cannot_overwrite_the_shipped_results(tmp_path, capsys):
    import saliency_gym.benchmarks as benchmarks

    results = Path(benchmarks.__file__).resolve().parent / "results"
    with pytest.raises(PermissionError, match="read-only"):  # first, without side effects
        check_not_shipped(results)
    before = {p: p.stat().st_mtime_ns for p in results.iterdir()}
    assert main(["bench", "--quick", "--datasets", "shapes", "--methods", "random", "--out", str(results)]) == 2
    assert "read-only" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in results.iterdir()} == before
    with pytest.raises(PermissionError, match="read-only"):
        check_output_dir(results / "new_run")


def test_training_cannot_write_into_the_package(tmp_path):
    import saliency_gym.benchmarks as benchmarks
    from saliency_gym.agents import train_agent

    target = Path(benchmarks.__file__).resolve().parent / "agent_run"
    with pytest.raises(PermissionError, match="read-only"):
        check_not_shipped(target)
    with pytest.raises(PermissionError, match="read-only"):
        train_agent("saliency_gym/SaliencyReveal-Shapes-v0", timesteps=64, out=target, progress=False)
    assert not target.exists()
