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


# ---------------------------------------------------------------- your own model and images


@pytest.fixture()
def byo(tmp_path):
    """A torch.export archive, a state dict for tests.byo_models:seeded_tiny_cnn and a flat image folder."""
    import torch

    from tests.byo_models import seeded_tiny_cnn
    from tests.models.test_model_files import save_export, write_pngs

    model = seeded_tiny_cnn()
    write_pngs(tmp_path / "images", 2, size=(24, 24))
    torch.save(model.state_dict(), tmp_path / "w.pt")
    return {"pt2": str(save_export(tmp_path / "net.pt2", model)), "weights": str(tmp_path / "w.pt"),
            "images": str(tmp_path / "images"), "tmp": tmp_path}  # fmt: skip


def test_classifier_alias_still_works(tmp_path, capsys):
    code = main(["explain", "--classifier", "shapes", "--methods", "gradient", "--images", "1",
                 "--out", str(tmp_path), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err


def test_bench_adds_a_row_for_own_model(byo, monkeypatch, capsys):
    from saliency_gym.benchmarks import suite

    monkeypatch.setitem(
        suite.SIZES, "quick", suite.SuiteSize(images=2, rise_masks=20, chunk=2, greedy=False)
    )
    out = byo["tmp"] / "bench"
    code = main(["bench", "--quick", "--model", byo["pt2"], "--data", byo["images"], "--out", str(out),
                 "--no-progress", "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| images | gradcam |" in captured.out  # named after the data folder (not a shipped dataset's name)
    assert (out / "results.csv").is_file() and (out / "overlays_images.png").is_file()
    assert main(["bench", "--data", byo["images"], "--out", str(out)]) == 2
    assert "pass --model too" in capsys.readouterr().err


def test_attack_own_factory_model_with_weights(byo, capsys):
    code = main(["attack", "--model", "tests.byo_models:tiny_cnn", "--weights", byo["weights"], "--input-shape", "3", "16", "16",
                 "--normalize", "m11", "--data", byo["images"], "--images", "2", "--steps", "1", "--attacks", "random", "topk",
                 "--out", str(byo["tmp"] / "attack"), "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "topk" in captured.out


def test_own_model_errors_are_one_line(byo, capsys):
    for argv, message in [
        (["explain", "--model", str(byo["tmp"] / "missing.pt2")], "not found"),
        (
            ["explain", "--model", "tests.byo_models:tiny_cnn", "--data", byo["images"]],
            "--input-shape",
        ),
        (
            [
                "explain",
                "--model",
                "tests.byo_models:NOT_A_FACTORY",
                "--input-shape",
                "3",
                "8",
                "8",
            ],
            "not a callable",
        ),
        (["explain", "--model", byo["pt2"]], "pass --data"),
        (["train", "--weights", byo["weights"]], "pass --model too"),
    ]:
        assert main([*argv, "--out", str(byo["tmp"] / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err


def test_train_builds_env_kwargs_from_own_model(byo):
    from saliency_gym.agents.agent_training import storable_env_kwargs
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.cli.main import build_parser
    from saliency_gym.cli.train import custom_env_kwargs
    from saliency_gym.data import DataSource

    args = build_parser("train").parse_args(
        ["train", "--model", byo["pt2"], "--data", byo["images"]]
    )
    kwargs = custom_env_kwargs(args)
    assert isinstance(kwargs["classifier"], FrozenClassifier) and isinstance(
        kwargs["data"], DataSource
    )
    stored = storable_env_kwargs({"grid": 8, **kwargs})
    assert stored["grid"] == 8 and stored["classifier"].startswith("<FrozenClassifier net")
    assert stored["data"] == "<DataSource images: 2 images (3, 16, 16)>"
    assert custom_env_kwargs(build_parser("train").parse_args(["train", "--data", "digits"])) == {
        "data": "digits"
    }
    assert custom_env_kwargs(build_parser("train").parse_args(["train"])) is None


# ---------------------------------------------------------------- issue 20: engines and big runs


@pytest.mark.parametrize("command", ["explain", "bench", "train"])
def test_ray_options_without_engine_ray_are_an_error(command, tmp_path, capsys):
    for flags in (["--address", "127.0.0.1:6379"], ["--num-cpus", "2"]):
        assert main([command, *flags, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert f"{flags[0]} only apply with --engine ray" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["explain", "bench", "train"])
def test_engine_ray_without_ray_is_one_line_with_the_install_hint(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    out = tmp_path / "o"
    assert main([command, "--engine", "ray", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"saliency-gym {command}: error: {command} --engine ray needs Ray: pip install 'saliency-gym[ray]'"
    assert not out.exists()  # train used to leave an empty run folder behind


def test_explain_says_how_many_images_it_explains_and_draws_a_bounded_figure(byo, monkeypatch, capsys):
    from saliency_gym import plotting
    from tests.models.test_model_files import write_pngs

    write_pngs(byo["tmp"] / "many", 20, size=(16, 16))
    drawn = {}
    real = plotting.save_saliency_grid

    def spy(images, maps, path, **kwargs):
        drawn["rows"] = len(images)
        drawn["maps"] = {m: len(v) for m, v in maps.items()}
        drawn["titles"] = len(kwargs["row_titles"])
        return real(images, maps, path, **kwargs)

    monkeypatch.setattr(plotting, "save_saliency_grid", spy)
    code = main(["explain", "--model", byo["pt2"], "--data", str(byo["tmp"] / "many"), "--methods", "random",
                 "--images", "100000", "--out", str(byo["tmp"] / "e"), "--device", "cpu"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "--images 100000: the many data holds 20 images; explaining all 20" in out
    assert "the figure shows 16 of the 20 images, evenly spaced" in out
    assert drawn == {"rows": 16, "maps": {"random": 16}, "titles": 16}


def test_figure_sample_is_evenly_spaced():
    from saliency_gym.cli.explain import figure_sample

    assert figure_sample(3) == [0, 1, 2]
    sample = figure_sample(2000)
    assert len(sample) == 16 and sample[0] == 0 and sample[-1] == 1999


def test_train_env_kwargs_must_be_a_json_object(capsys):
    from saliency_gym.cli.main import build_parser

    args = build_parser("train").parse_args(["train", "--env-kwargs", '{"explainer": "gradcam", "budget": 4}'])
    assert args.env_kwargs == {"explainer": "gradcam", "budget": 4}
    for text, message in (("{explainer", "not JSON"), ("[1, 2]", "must be a JSON object")):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--env", "saliency_gym/AttributionAttack-Shapes-v0", "--env-kwargs", text])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_info_lists_the_attack_agents(capsys):
    from saliency_gym.agents.attack_agents import shipped_attack_agents

    assert main(["info"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("attackers:"))
    assert all(name in line for name in shipped_attack_agents()) and "shapes_gradient" in line


def test_bench_attacks_runs_the_attack_benchmark(tmp_path, capsys):
    argv = ["bench", "--attacks", "--datasets", "shapes", "--methods", "gradient", "--images", "2", "--out", str(tmp_path), "--device", "cpu"]
    assert main(argv) == 0
    table = (tmp_path / "attacks" / "attacks.md").read_text()
    assert "| agent |" in table and "| topk |" in table and "− Ghorbani top-k" in table
    assert main(["bench", "--attacks", "--agents", "--out", str(tmp_path)]) == 2
    assert "two benchmarks" in capsys.readouterr().err
