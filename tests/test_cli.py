import subprocess
import sys

import pytest

from saliency_gym.cli.main import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "train-classifier", "demo"):
        assert command in out


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "saliency_gym.cli.main", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "saliency-gym" in result.stdout


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "shapes" in out and "digits" in out


def test_demo_writes_png(tmp_path, capsys):
    assert main(["demo", "--images", "2", "--out", str(tmp_path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out
    png = tmp_path / "shapes_demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_exit_cleanly(capsys):
    assert main(["demo", "--dataset", "imagenet"]) == 2
    assert "unknown classifier" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train-classifier", "--epochs", "-3"])
