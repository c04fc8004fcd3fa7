"""Image folders given as ``--data FOLDER``: labels by name (or a class map) only, pixels scaled by
their real bit depth, loose files and bad images refused up front naming the file, and photos
centre-cropped rather than squashed (issue 20, image-folder items; issue 22, item 2)."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data.image_files import ImageFileError, read_image
from saliency_gym.data.resolve import UnlabelledImageFolder, resolve_data_spec
from saliency_gym.model_files import load_model
from tests.byo_models import tiny_cnn

SHAPE = (3, 16, 16)


def classifier_for(class_names: Sequence[str], shape: tuple[int, int, int] = SHAPE) -> FrozenClassifier:
    return load_model(
        tiny_cnn(len(class_names), shape[0]), input_shape=shape, class_names=list(class_names), device="cpu"
    )


def write_png(path: Path, array: np.ndarray | None = None, value: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 12, 3), value, np.uint8) if array is None else array).save(path)
    return path


def labelled_folder(root: Path, folders: Sequence[str]) -> Path:
    for k, name in enumerate(folders):
        write_png(root / name / f"{k}.png", value=10 * k)
    return root


def labels_by_folder(source: Any) -> dict[str, int]:
    """The label of each class folder's image (one image per folder)."""
    files = source.folder.files
    return {path.parent.name: int(source[i].label) for i, (path, _) in enumerate(files)}


# ---------------------------------------------------------------- 1. labels by name only


def test_a_misspelt_class_folder_is_refused_not_matched_by_order(tmp_path: Path) -> None:
    classifier = classifier_for(["square", "circle", "triangle"])
    root = labelled_folder(tmp_path / "lab", ["squares", "circle", "triangle"])
    with pytest.raises(ValueError, match=r"'squares'.*not classes of the classifier.*'square', 'circle', 'triangle'"):
        resolve_data_spec(root, classifier)


def test_names_match_ignoring_case_spaces_and_underscores_in_any_order(tmp_path: Path) -> None:
    classifier = classifier_for(["tench", "great white shark", "goldfish"])
    root = labelled_folder(tmp_path / "lab", ["Great_White  Shark", "TENCH"])
    assert labels_by_folder(resolve_data_spec(root, classifier)) == {"Great_White  Shark": 1, "TENCH": 0}


def test_word_folders_against_digit_classes_need_a_class_map(tmp_path: Path) -> None:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    classifier = classifier_for([str(d) for d in range(10)])
    root = labelled_folder(tmp_path / "lab", words)
    with pytest.raises(ValueError, match=r"'eight'.*its classes are '0', '1'.*class map"):
        resolve_data_spec(root, classifier)  # today: sorted order, "eight" -> class 0

    json_map = tmp_path / "map.json"  # names and ids, mixed; keys compared loosely too
    json_map.write_text(json.dumps({w.upper() if d % 2 else w: (d if d % 3 else str(d)) for d, w in enumerate(words)}))
    assert labels_by_folder(resolve_data_spec(root, classifier, class_map=json_map)) == {w: d for d, w in enumerate(words)}

    csv_map = tmp_path / "map.csv"
    csv_map.write_text("folder,class\n# words to digits\n" + "".join(f"{w}, {d}\n" for d, w in enumerate(words)))
    source = resolve_data_spec(root, classifier, class_map=str(csv_map))
    assert labels_by_folder(source)["eight"] == 8 and source.class_names == classifier.class_names
    mapping = {w: str(d) for d, w in enumerate(words)}
    assert labels_by_folder(resolve_data_spec(root, classifier, class_map=mapping))["eight"] == 8


def test_class_maps_that_name_no_class_or_do_not_apply_are_refused(tmp_path: Path) -> None:
    classifier = classifier_for(["Crane", "crane", "kite"])
    root = labelled_folder(tmp_path / "lab", ["CRANE", "kite"])
    with pytest.raises(ValueError, match=r"'CRANE' \(fits classes 0, 1\)"):  # ambiguous: refused
        resolve_data_spec(root, classifier)
    assert labels_by_folder(resolve_data_spec(root, classifier, class_map={"CRANE": 1})) == {"CRANE": 1, "kite": 2}
    with pytest.raises(ValueError, match=r"'kite' -> 'hawk'.*'Crane', 'crane', 'kite'"):
        resolve_data_spec(root, classifier, class_map={"kite": "hawk"})
    with pytest.raises(ValueError, match=r"'kite' -> 7"):
        resolve_data_spec(root, classifier, class_map={"kite": 7})
    bad = tmp_path / "map.txt"
    bad.write_text("kite kite")
    with pytest.raises(ValueError, match=r"\.json or \.csv"):
        resolve_data_spec(root, classifier, class_map=bad)
    malformed = tmp_path / "map.csv"
    malformed.write_text("kite,kite,kite\n")
    with pytest.raises(ValueError, match=r"row 1: expected 'folder,class'"):
        resolve_data_spec(root, classifier, class_map=malformed)
    with pytest.raises(FileNotFoundError, match="class map file not found"):
        resolve_data_spec(root, classifier, class_map=tmp_path / "missing.json")
    write_png(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match="no class sub-folders"):
        resolve_data_spec(tmp_path / "flat", classifier, class_map={"kite": 2})


def test_the_error_lists_the_first_twenty_of_a_thousand_classes(tmp_path: Path) -> None:
    names = [f"class {i}" for i in range(1000)]
    root = labelled_folder(tmp_path / "lab", ["class 3", "n01440764"])
    with pytest.raises(ValueError, match=r"'n01440764'.*'class 19', \.\.\. \(1000 in all\)") as info:
        resolve_data_spec(root, classifier_for(names))
    assert "'class 20'" not in str(info.value)


# ---------------------------------------------------------------- 2. pixel range


def test_a_16_bit_png_is_scaled_by_its_depth(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (64, 1))
    tmp_path.joinpath("flat").mkdir()
    Image.fromarray(gradient).save(tmp_path / "flat" / "g.png")  # Pillow writes mode "I;16"
    with Image.open(tmp_path / "flat" / "g.png") as image:
        assert image.mode == "I;16"
    source = resolve_data_spec(tmp_path / "flat", classifier_for(["a", "b"]))
    image = source[0].image
    assert image.shape == SHAPE and abs(float(image.mean()) - 0.5) < 0.01  # today: 0.998
    assert np.allclose(image[0], image[2])  # grey repeated over the channels
    grey = read_image(tmp_path / "flat" / "g.png", (64, 64), mode="L")
    np.testing.assert_allclose(grey[0, 0], np.linspace(0, 1, 64), atol=1e-4)


def test_float_tiffs_must_lie_in_0_1_and_are_never_clipped(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1))
    (tmp_path / "unit").mkdir()
    tifffile.imwrite(tmp_path / "unit" / "ok.tif", ramp)
    source = resolve_data_spec(tmp_path / "unit", classifier_for(["a", "b"]))
    assert abs(float(source[0].image.mean()) - 0.5) < 1e-3

    (tmp_path / "wide").mkdir()
    tifffile.imwrite(tmp_path / "wide" / "hot.tif", ramp * 999)
    with pytest.raises(ValueError, match=r"hot\.tif holds floating-point pixels in \[0, 999\]"):
        resolve_data_spec(tmp_path / "wide", classifier_for(["a", "b"]))  # refused up front


def test_32_bit_integer_images_are_refused(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    (tmp_path / "flat").mkdir()
    tifffile.imwrite(tmp_path / "flat" / "counts.tif", np.arange(256, dtype=np.int32).reshape(16, 16) * 1000)
    with pytest.raises(ValueError, match=r"counts\.tif has 32-bit integer pixels"):
        resolve_data_spec(tmp_path / "flat", classifier_for(["a", "b"]))


# ---------------------------------------------------------------- 3. loose files in a labelled folder


def test_an_image_at_the_top_of_a_labelled_folder_is_refused(tmp_path: Path) -> None:
    root = labelled_folder(tmp_path / "lab", ["a", "b"])
    write_png(root / "stray.png")
    (root / "notes.txt").write_text("not an image")  # other files stay ignored
    with pytest.raises(ValueError, match=r"stray\.png.*put it in a class folder or use a flat folder"):
        resolve_data_spec(root, classifier_for(["a", "b"]))


# ---------------------------------------------------------------- 4. bad files, named, up front


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def noisy(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_a_truncated_image_is_refused_when_the_source_is_built(tmp_path: Path, suffix: str) -> None:
    write_png(tmp_path / "flat" / "good.png")
    bad = truncate(write_png(tmp_path / "flat" / f"bad{suffix}", noisy()))
    with pytest.raises(ValueError, match=rf"{bad.name}.*fix or remove") as info:
        resolve_data_spec(tmp_path / "flat", classifier_for(["a", "b"]))
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_several_bad_files_are_named_in_one_error(tmp_path: Path) -> None:
    root = labelled_folder(tmp_path / "lab", ["a", "b"])
    for k in range(7):
        truncate(write_png(root / "b" / f"broken{k}.png", noisy(k)))
    with pytest.raises(ValueError, match=r"7 image files in .* cannot be used: .*broken0\.png \(.*and 2 more"):
        resolve_data_spec(root, classifier_for(["a", "b"]))


def test_a_file_damaged_after_the_check_is_named_when_decoded(tmp_path: Path) -> None:
    path = write_png(tmp_path / "flat" / "late.jpg", noisy())
    source = resolve_data_spec(tmp_path / "flat", classifier_for(["a", "b"]))
    truncate(path)
    with pytest.raises(ImageFileError, match=r"late\.jpg: image file is truncated") as info:
        source.get_batch([0])
    assert info.value.path == path


def bomb_png(path: Path, side: int = 14000) -> Path:
    """A PNG whose header claims ``side x side`` grey pixels (a few hundred bytes on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (side + 1))  # one row; the rest is missing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_one_line_naming_the_file(tmp_path: Path) -> None:
    bomb_png(tmp_path / "flat" / "huge.png")
    with pytest.raises(ValueError, match=r"huge\.png is too large to read safely: .*196000000 pixels.*limit") as info:
        resolve_data_spec(tmp_path / "flat", classifier_for(["a", "b"]))
    assert "\n" not in str(info.value)


def test_commands_stop_on_a_bad_image_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from saliency_gym.cli.main import main

    write_png(tmp_path / "flat" / "good.png")
    truncate(write_png(tmp_path / "flat" / "bad.png", noisy()))
    code = main(["explain", "--model", "shapes", "--data", str(tmp_path / "flat"), "--methods", "gradient",
                 "--out", str(tmp_path / "explain"), "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "bad.png" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code = main(["train", "--model", "shapes", "--data", str(tmp_path / "flat"), "--timesteps", "64",
                 "--out", str(tmp_path / "run"), "--device", "cpu", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "bad.png" in err
    assert not list(tmp_path.joinpath("run").rglob("*.pt")) and not list(tmp_path.joinpath("run").rglob("*.zip"))


# ---------------------------------------------------------------- 6. aspect ratio kept


@pytest.mark.parametrize("labelled", [False, True])
def test_non_square_photos_are_centre_cropped_not_squashed(tmp_path: Path, labelled: bool) -> None:
    photo = np.zeros((20, 60, 3), np.uint8)  # black edges, white centre (the centre 20x20 crop and a margin)
    photo[:, 18:42] = 255
    tall = np.ascontiguousarray(photo.transpose(1, 0, 2))
    root = tmp_path / "data"
    folders = ("a", "b") if labelled else ("", "")
    write_png(root / folders[0] / "wide.png", photo)
    write_png(root / folders[1] / "tall.png", tall)
    source = resolve_data_spec(root, classifier_for(["a", "b"]))
    assert isinstance(source, UnlabelledImageFolder) != labelled
    images = source.get_batch([0, 1]).images
    assert images.shape == (2, *SHAPE) and images.min() > 0.99  # today: squashed, black edges
    # a non-square input: the largest centred region of its aspect ratio
    wide = read_image(root / folders[0] / "wide.png", (10, 20))
    assert wide.shape == (3, 10, 20) and wide[:, :, 0].max() < 0.2 and wide[:, :, 10].min() > 0.99
