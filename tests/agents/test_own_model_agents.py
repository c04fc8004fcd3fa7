"""Issue 20: an agent trained on your own model can be used again, and an agent is checked against
the model it explains before any rollout.

``saliency-gym train --model net.pt2 --data images/`` used to store the classifier as its ``repr``,
so ``PolicyExplainer(classifier, run)``, ``explain --methods policy --agent run`` and ``enjoy`` all
failed with "classifier checkpoint not found: <FrozenClassifier net ...>"; the agent's metadata now
records the model and data specs, and a classifier passed explicitly is used (checked to fit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from saliency_gym.agents.policy_explainer import PolicyExplainer
from saliency_gym.cli.main import main
from saliency_gym.model_files import load_model
from tests.byo_models import seeded_tiny_cnn, tiny_cnn
from tests.models.test_model_files import save_export, write_pngs

NAMES = ["circle", "square", "triangle"]


def export(path: Path, model: torch.nn.Module, shape: tuple[int, int, int]) -> str:
    program = torch.export.export(model.eval(), (torch.rand(2, *shape),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(path))
    return str(path)


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """A tiny agent trained (128 steps) on a user's .pt2 model with m11 normalisation and class
    names, and a flat folder of images, through the CLI."""
    tmp = tmp_path_factory.mktemp("own")
    pt2 = str(save_export(tmp / "net.pt2", seeded_tiny_cnn()))
    write_pngs(tmp / "images", 6, size=(20, 20))
    (tmp / "names.txt").write_text("\n".join(NAMES))
    config = tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump({"default": {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 1,
                                                  "env_kwargs": {"grid": 2}}}))  # fmt: skip
    model_args = ["--model", pt2, "--normalize", "m11", "--class-names", str(tmp / "names.txt"), "--data", str(tmp / "images")]
    code = main(["train", *model_args, "--out", str(tmp / "run"), "--config", str(config), "--timesteps", "128",
                 "--checkpoint-every", "64", "--eval-every", "0", "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0
    return {"tmp": tmp, "pt2": pt2, "run": tmp / "run", "model_args": model_args, "config": config}


def classifier_of(own):
    return load_model(own["pt2"], normalize="m11", class_names=str(own["tmp"] / "names.txt"), device="cpu")


def test_the_agent_reopens_with_the_classifier_passed(own):
    from saliency_gym.explainers import make_explainer

    classifier = classifier_of(own)
    images = torch.rand(3, 3, 16, 16)
    reference = None
    for agent in (own["run"], own["run"] / "final.pt", own["run"] / "final.zip", str(own["run"] / "checkpoints" / "last.pt")):
        maps = PolicyExplainer(classifier, agent).explain(images, [0, 1, 2]).maps
        assert maps.shape == (3, 16, 16)
        reference = maps if reference is None else reference
        np.testing.assert_array_equal(maps, reference)
    explainer = make_explainer("policy", classifier, policy=str(own["run"]))
    assert explainer.name == "run" and explainer.grid == (2, 2)


def test_the_agent_reopens_its_own_classifier(own):
    explainer = PolicyExplainer(None, own["run"])
    classifier, original = explainer.classifier, classifier_of(own)
    assert classifier.name == "net" and classifier.input_shape == (3, 16, 16)
    assert classifier.class_names == tuple(NAMES)
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(classifier.probs(x, count=False), original.probs(x, count=False))  # m11 restored
    explicit = PolicyExplainer(original, own["run"])
    np.testing.assert_array_equal(explainer.explain(x, [0, 1, 2, 0]).maps, explicit.explain(x, [0, 1, 2, 0]).maps)


def test_explain_and_enjoy_reopen_the_run(own, capsys):
    from saliency_gym.agents.rollout_video import record_agent_episodes

    out = own["tmp"] / "explained"
    code = main(["explain", *own["model_args"], "--methods", "policy", "--agent", str(own["run"]), "--images", "2",
                 "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert (out / "explain_net.png").is_file()
    (record,) = record_agent_episodes(own["run"], episodes=1, video_folder=None, device="cpu")
    assert record.length == 4  # a 2x2 grid, on the training images
    assert main(["enjoy", "--agent", str(own["run"]), "--episodes", "1", "--no-video", "--device", "cpu"]) == 0
    assert "mean return" in capsys.readouterr().out


def test_a_classifier_that_does_not_fit_is_refused(own):
    other_size = load_model(export(own["tmp"] / "big.pt2", tiny_cnn(3), (3, 24, 24)), device="cpu")
    with pytest.raises(ValueError, match=r"agent run was trained on 3x16x16 inputs; the model 'big' takes 3x24x24"):
        PolicyExplainer(other_size, own["run"])
    more_classes = load_model(export(own["tmp"] / "four.pt2", tiny_cnn(4), (3, 16, 16)), device="cpu")
    with pytest.raises(ValueError, match="trained on a model with 3 classes; the model 'four' has 4"):
        PolicyExplainer(more_classes, own["run"])


def test_a_moved_model_file_needs_the_classifier(own):
    moved = Path(own["pt2"]).with_suffix(".moved")
    shutil.move(own["pt2"], moved)
    try:
        with pytest.raises(ValueError, match="cannot reopen the model it was trained on.*pass the classifier"):
            PolicyExplainer(None, own["run"])
    finally:
        shutil.move(moved, own["pt2"])
    assert PolicyExplainer(classifier_of(own), own["run"]).classifier.name == "net"


def test_a_factory_model_reopens_with_its_weights(own, capsys):
    weights = own["tmp"] / "w.pt"
    torch.save(seeded_tiny_cnn(seed=3).state_dict(), weights)
    run = own["tmp"] / "factory_run"
    code = main(["train", "--model", "tests.byo_models:tiny_cnn", "--weights", str(weights), "--input-shape", "3", "16", "16",
                 "--data", str(own["tmp"] / "images"), "--out", str(run), "--config", str(own["config"]),
                 "--timesteps", "64", "--eval-every", "0", "--no-progress", "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    reopened = PolicyExplainer(None, run).classifier
    original = load_model("tests.byo_models:tiny_cnn", weights=str(weights), input_shape=(3, 16, 16), device="cpu")
    x = torch.rand(4, 3, 16, 16)
    torch.testing.assert_close(reopened.probs(x, count=False), original.probs(x, count=False))


def test_an_agent_for_other_inputs_is_refused_before_the_rollout(own, capsys):
    """digits_reveal observes 1x32x32 images: a 3-channel model got SB3's "Unexpected observation shape"."""
    from saliency_gym.classifier import FrozenClassifier

    rgb = FrozenClassifier(tiny_cnn(10), (3, 32, 32), device="cpu", name="rgb")
    with pytest.raises(ValueError, match=r"agent digits_reveal was trained on 1x32x32 inputs; the model 'rgb' takes 3x32x32"):
        PolicyExplainer(rgb, "digits_reveal")
    pt2 = export(own["tmp"] / "rgb32.pt2", tiny_cnn(10), (3, 32, 32))
    code = main(["explain", "--model", pt2, "--data", str(own["tmp"] / "images"), "--methods", "policy",
                 "--agent", "digits_reveal", "--images", "1", "--out", str(own["tmp"] / "o"), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "agent digits_reveal was trained on 1x32x32 inputs" in err and "takes 3x32x32" in err
    assert "Traceback" not in err and "Unexpected observation shape" not in err
