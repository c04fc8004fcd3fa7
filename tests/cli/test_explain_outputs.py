"""``saliency-gym explain`` locally: every image by default, one map per image and method as an
array, a manifest (image, class, method, queries, seconds), overlays at the photo's own size, resume
by existing maps, a figure in PNG, PDF or SVG (issue 24)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from saliency_gym.cli.main import main
from tests.models.test_model_files import write_pngs


def _explain(folder, out, *extra):
    return main(["explain", "--model", "shapes", "--data", str(folder), "--methods", "gradient", "gradcam",
                 "--batch-size", "3", "--out", str(out), "--device", "cpu", "--no-progress", *extra])  # fmt: skip


def test_local_explain_writes_every_map_a_manifest_and_resumes(tmp_path, capsys):
    from saliency_gym.explainers import make_explainer
    from saliency_gym.specs import ModelDataSpec

    folder, out = tmp_path / "images", tmp_path / "out"
    write_pngs(folder, 7, size=(40, 50))
    assert _explain(folder, out) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "7 images" in printed and "wrote 14 maps" in printed  # every image, without --images
    names = [f"img{i}.png" for i in range(7)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["image"] for e in manifest["images"]] == names and manifest["engine"] == "local"
    rows = manifest["maps"]
    assert len(rows) == 14 and set(rows[0]) >= {"image", "target", "class", "method", "queries", "seconds", "path"}
    assert {r["method"] for r in rows} == {"gradient", "gradcam"} and all(r["seconds"] > 0 and r["queries"] >= 1 for r in rows)

    classifier, source = ModelDataSpec("shapes", str(folder)).build("cpu")
    images = source.get_batch(np.arange(7)).images
    targets = np.array([e["target"] for e in manifest["images"]])
    np.testing.assert_array_equal(targets, classifier.predict(images, count=False).numpy())  # unlabelled: predicted
    assert rows[0]["class"] == classifier.class_names[targets[0]]
    gradcam = make_explainer("gradcam", classifier)
    expected = np.concatenate([gradcam.explain(images[i : i + 3], targets[i : i + 3]).maps for i in (0, 3, 6)])
    got = np.stack([np.load(out / "maps" / "gradcam" / f"{n}.npy") for n in names])
    np.testing.assert_array_equal(got, expected)  # the batches Ray would explain (same --batch-size)

    overlay = Image.open(out / "overlays" / "gradcam" / "img0.png.png")
    assert overlay.height == 40 and overlay.width > 40  # the photo's 40x40 centre crop, not 32 px, plus a colour bar
    assert (out / "explain_shapes.png").is_file()

    (out / "maps" / "gradcam" / "img4.png.npy").unlink()  # a run stopped before img4's map
    untouched = (out / "maps" / "gradient" / "img0.png.npy").stat().st_mtime_ns
    assert _explain(folder, out) == 0
    printed = capsys.readouterr().out
    assert "resuming: 6 of the 7 images" in printed and "wrote 2 maps" in printed
    assert (out / "maps" / "gradient" / "img0.png.npy").stat().st_mtime_ns == untouched
    # explained alone now: equal up to float rounding of a differently composed classifier batch
    np.testing.assert_allclose(np.load(out / "maps" / "gradcam" / "img4.png.npy"), expected[4], rtol=0, atol=1e-6)
    assert len(json.loads((out / "manifest.json").read_text())["maps"]) == 14  # earlier rows kept


@pytest.mark.parametrize("fmt, magic", [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_figure_formats(tmp_path, capsys, fmt, magic):
    folder = tmp_path / "images"
    write_pngs(folder, 2, size=(32, 32))
    assert _explain(folder, tmp_path / "o", "--format", fmt, "--no-overlays") == 0, capsys.readouterr().err
    assert (tmp_path / "o" / f"explain_shapes.{fmt}").read_bytes()[:5].startswith(magic)
    assert not (tmp_path / "o" / "overlays").exists()


def test_bad_figure_options_and_a_policy_without_agent_fail_early(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--dpi", "5", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        main(["explain", "--format", "jpg", "--out", str(tmp_path / "o")])
    capsys.readouterr()
    assert main(["explain", "--methods", "policy", "--out", str(tmp_path / "o")]) == 2
    assert "'policy' method needs an agent (--agent" in capsys.readouterr().err
    assert not (tmp_path / "o" / "maps").exists()


def test_images_limits_the_run(tmp_path, capsys):
    assert main(["explain", "--classifier", "shapes", "--methods", "gradient", "--images", "3", "--no-progress",
                 "--out", str(tmp_path / "o"), "--device", "cpu"]) == 0  # fmt: skip
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [e["image"] for e in manifest["images"]] == ["000000", "000001", "000002"]
    assert manifest["data"] == "shapes" and manifest["images"][0]["class"] in manifest["class_names"]
