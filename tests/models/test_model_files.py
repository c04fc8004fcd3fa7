"""Bring your own model and images: TorchScript, torch.export, module:factory, image folders."""

from __future__ import annotations

import json
import pathlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from saliency_gym.checkpoint import CheckpointError
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data.resolve import UnlabelledImageFolder, resolve_data_spec
from saliency_gym.model_files import load_model, model_file_kind, parse_normalize, read_class_names
from tests.byo_models import seeded_tiny_cnn

SHAPE = (3, 16, 16)
FACTORY = "tests.byo_models:tiny_cnn"


def eager_probs(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x).softmax(dim=1)


def save_torchscript(path: Path, model: torch.nn.Module) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        torch.jit.trace(model.eval(), torch.rand(2, *SHAPE)).save(str(path))
    return path


def save_export(path: Path, model: torch.nn.Module, dynamic: bool = True) -> Path:
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    torch.export.save(
        torch.export.export(model.eval(), (torch.rand(2, *SHAPE),), dynamic_shapes=shapes),
        str(path),
    )
    return path


def write_pngs(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (20, 24)) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png"
        )


# ---------------------------------------------------------------- model files


def test_torchscript_file_predicts_like_the_eager_module(tmp_path: Path) -> None:
    model = seeded_tiny_cnn()
    path = save_torchscript(tmp_path / "model.ts", model)
    assert model_file_kind(path) == "torchscript"
    classifier = load_model(path, input_shape=SHAPE, device="cpu")
    assert isinstance(classifier, FrozenClassifier) and classifier.input_shape == SHAPE
    x = torch.rand(5, *SHAPE)
    torch.testing.assert_close(classifier.probs(x), eager_probs(model, x), atol=1e-5, rtol=1e-4)
    assert classifier.class_names == ("0", "1", "2") and classifier.name == "model"


def test_export_archive_predicts_like_the_eager_module_and_knows_its_shape(tmp_path: Path) -> None:
    model = seeded_tiny_cnn()
    path = save_export(tmp_path / "model.pt2", model)
    assert model_file_kind(path) == "export"
    classifier = load_model(path, device="cpu")  # input shape read from the archive
    assert classifier.input_shape == SHAPE
    x = torch.rand(5, *SHAPE)
    torch.testing.assert_close(classifier.probs(x), eager_probs(model, x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="exported for inputs of shape"):
        load_model(path, input_shape=(3, 32, 32))


def test_export_with_a_fixed_batch_is_a_clear_error(tmp_path: Path) -> None:
    path = save_export(tmp_path / "fixed.pt2", seeded_tiny_cnn(), dynamic=False)
    with pytest.raises(ValueError, match="fixed batch.*dynamic_shapes"):
        load_model(path)


def test_factory_with_weights_and_kwargs(tmp_path: Path) -> None:
    model = seeded_tiny_cnn(num_classes=4, seed=3)
    weights = tmp_path / "w.pt"
    torch.save({"state_dict": model.state_dict()}, weights)
    classifier = load_model(
        FACTORY, weights=weights, model_kwargs='{"num_classes": 4}', input_shape=SHAPE, device="cpu"
    )
    x = torch.rand(3, *SHAPE)
    torch.testing.assert_close(classifier.probs(x), eager_probs(model, x))
    assert classifier.name == "tiny_cnn" and classifier.num_classes == 4
    with pytest.raises(CheckpointError, match="do not fit"):  # 4-class weights into a 3-class model
        load_model(FACTORY, weights=weights, input_shape=SHAPE)


def test_class_names_from_text_json_and_imagenet(tmp_path: Path) -> None:
    text, js = tmp_path / "names.txt", tmp_path / "names.json"
    text.write_text("cat\ndog\n\nbird\n")
    js.write_text(json.dumps(["a", "b", "c"]))
    assert read_class_names(text) == ("cat", "dog", "bird")
    assert load_model(
        FACTORY, input_shape=SHAPE, class_names=js, random_weights=True
    ).class_names == ("a", "b", "c")
    with pytest.raises(ValueError, match="2 class names given.*returns 3"):
        load_model(FACTORY, input_shape=SHAPE, class_names=["x", "y"], random_weights=True)
    imagenet = load_model(
        FACTORY, input_shape=SHAPE, model_kwargs={"num_classes": 1000}, random_weights=True
    )
    assert imagenet.class_names is not None and len(imagenet.class_names) == 1000
    assert imagenet.class_names[0] != "0"


def test_normalize_specs() -> None:
    assert parse_normalize("none") is None and parse_normalize(None) is None
    assert parse_normalize("imagenet", 3) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert parse_normalize(["m11"], 1) == ((0.5,), (0.5,))
    assert parse_normalize(["0.5", "0.25"], 3) == ((0.5,) * 3, (0.25,) * 3)
    assert parse_normalize(["0.1", "0.2", "0.3", "1", "2", "3"], 3) == (
        (0.1, 0.2, 0.3),
        (1.0, 2.0, 3.0),
    )
    for bad in (["imagenets"], ["1", "2", "3"], ["0.5", "0"]):
        with pytest.raises(ValueError, match="normalize"):
            parse_normalize(bad, 3)
    with pytest.raises(ValueError, match="3 channels"):
        parse_normalize("imagenet", 1)
    # the m11 model sees [-1, 1]: a grey image is 0
    classifier = load_model(FACTORY, input_shape=SHAPE, normalize="m11", random_weights=True)
    assert classifier._mean is not None and float(classifier._mean.flatten()[0]) == 0.5


def test_bad_arguments_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model(tmp_path / "missing.pt2")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        load_model(FACTORY, weights=tmp_path / "missing.pt", input_shape=SHAPE)
    with pytest.raises(TypeError, match="not a callable"):
        load_model("tests.byo_models:NOT_A_FACTORY", input_shape=SHAPE)
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        load_model("tests.byo_models:not_a_module", input_shape=SHAPE)
    with pytest.raises(ValueError, match="cannot import"):
        load_model("no_such_package_xyz.models:net", input_shape=SHAPE)
    with pytest.raises(ValueError, match="no attribute"):
        load_model("tests.byo_models:missing", input_shape=SHAPE)
    with pytest.raises(ValueError, match="--input-shape"):
        load_model(FACTORY, random_weights=True)
    with pytest.raises(ValueError, match="fails on inputs of shape"):
        load_model(FACTORY, input_shape=(1, 16, 16), random_weights=True)  # a 3-channel model
    with pytest.raises(ValueError, match="JSON"):
        load_model(FACTORY, input_shape=SHAPE, model_kwargs="{num_classes: 3}")
    path = save_torchscript(tmp_path / "m.ts", seeded_tiny_cnn())
    with pytest.raises(ValueError, match="weights go with a 'module:factory'"):
        load_model(path, weights=path, input_shape=SHAPE)
    with pytest.raises(ValueError, match="carries its own"):
        load_model("shapes", normalize="imagenet")


def test_a_pickle_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (pathlib.Path.touch, (marker,))

    plain = tmp_path / "model.pkl"
    plain.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="not a TorchScript file.*not loaded"):
        load_model(plain, input_shape=SHAPE)
    saved = tmp_path / "model.pt"
    torch.save(Payload(), saved)  # a torch.save archive holding a pickled object
    with pytest.raises(ValueError, match="refuses|not loaded"):
        load_model(saved, input_shape=SHAPE)
    assert not marker.exists()


def test_a_state_dict_given_as_the_model_points_to_factory_and_weights(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(seeded_tiny_cnn().state_dict(), path)
    with pytest.raises(ValueError, match="module:factory"):
        load_model(path)


# ---------------------------------------------------------------- data


@pytest.fixture()
def abc_classifier() -> FrozenClassifier:
    return load_model(
        FACTORY, input_shape=SHAPE, class_names=["a", "b", "c"], device="cpu", random_weights=True
    )


def test_flat_folder_is_unlabelled_and_resized(
    tmp_path: Path, abc_classifier: FrozenClassifier
) -> None:
    write_pngs(tmp_path / "flat", 3)
    source = resolve_data_spec(tmp_path / "flat", abc_classifier)
    assert isinstance(source, UnlabelledImageFolder) and not source.has_label
    assert (
        len(source) == 3 and source.image_shape == SHAPE and source.class_names == ("a", "b", "c")
    )
    batch = source.get_batch([0, 1, 2])
    assert batch.images.shape == (3, *SHAPE) and 0 <= batch.images.min() and batch.images.max() <= 1
    abc_classifier.probs(batch.images)


def test_class_subfolders_take_the_classifier_class_ids(
    tmp_path: Path, abc_classifier: FrozenClassifier
) -> None:
    write_pngs(tmp_path / "lab" / "a", 2)
    write_pngs(tmp_path / "lab" / "c", 1, seed=1)
    source = resolve_data_spec(tmp_path / "lab", abc_classifier)
    assert source.has_label and source.num_classes == 3 and source.image_shape == SHAPE
    assert list(source.get_batch([0, 1, 2]).labels) == [0, 0, 2]
    write_pngs(tmp_path / "other" / "x", 1)
    write_pngs(tmp_path / "other" / "y", 1)
    with pytest.raises(ValueError, match="not classes of the classifier"):
        resolve_data_spec(tmp_path / "other", abc_classifier)


def test_data_names_and_missing_folders(tmp_path: Path, abc_classifier: FrozenClassifier) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'.*folder"):
        resolve_data_spec("nope", abc_classifier)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        resolve_data_spec(str(tmp_path / "missing") + "/", abc_classifier)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        resolve_data_spec(tmp_path / "empty", abc_classifier)


# ---------------------------------------------------------------- command line


def test_cli_explain_with_own_model_and_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from saliency_gym.cli.main import main

    write_pngs(tmp_path / "images", 2, size=(40, 40))
    model = seeded_tiny_cnn()
    exported = save_export(tmp_path / "net.pt2", model)
    out = tmp_path / "out"
    code = main(["explain", "--model", str(exported), "--data", str(tmp_path / "images"),
                 "--methods", "gradcam", "occlusion", "--images", "2", "--out", str(out), "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Grad-CAM layer: 2" in captured.out and "predicted class" in captured.out
    assert (out / "explain_net.png").is_file()

    scripted = save_torchscript(tmp_path / "net.ts", model)
    code = main(["explain", "--model", str(scripted), "--input-shape", "3", "16", "16", "--data", str(tmp_path / "images"),
                 "--methods", "occlusion", "gradient", "--images", "2", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    code = main(["explain", "--model", str(scripted), "--input-shape", "3", "16", "16", "--data", str(tmp_path / "images"),
                 "--methods", "gradcam", "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 2 and "TorchScript" in capsys.readouterr().err
