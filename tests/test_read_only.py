"""Shipped files are read-only: no command writes inside the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest

from saliency_gym.classifier_training import ClassifierTrainingConfig, default_checkpoint_path
from saliency_gym.cli.main import main
from saliency_gym.runs import check_output_dir, check_output_file, shipped_dirs
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
