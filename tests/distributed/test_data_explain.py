"""``explain --engine ray``: Ray Data maps a folder through explainers, equal to the local
explainer's maps, with overlays, and resumes by output file; outputs keep the file's extension (and
class folder), so ``cat.png`` and ``cat.jpg`` do not collide; a bad image stops the run before Ray
starts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saliency_gym.cli.main import main
from tests.models.test_model_files import write_pngs

pytestmark = pytest.mark.xdist_group("ray")

METHODS = ["rise", "gradcam", "occlusion"]


def test_ray_data_maps_equal_local_explainer_and_resume(ray_local, tmp_path, capsys):
    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain
    from saliency_gym.explainers import make_explainer

    folder, out = tmp_path / "images", tmp_path / "out"
    write_pngs(folder, 6, size=(40, 50))
    code = main(["explain", "--engine", "ray", "--model", "shapes", "--data", str(folder), "--methods", *METHODS,
                 "--rise-masks", "60", "--batch-size", "3", "--actors", "2", "--out", str(out), "--device", "cpu",
                 "--no-progress"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "6 images explained" in capsys.readouterr().out

    spec = ModelSpec.of("shapes", folder)
    classifier, source = spec.build("cpu")
    images = source.get_batch(np.arange(6)).images
    targets = classifier.predict(images, count=False).numpy()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["image"] for e in manifest["images"]] == [f"img{i}.png" for i in range(6)]
    assert [e["target"] for e in manifest["images"]] == targets.tolist()
    for method in METHODS:
        explainer = make_explainer(method, classifier, **({"n_masks": 60, "seed": 0} if method == "rise" else {}))
        got = np.stack([np.load(out / "maps" / method / f"img{i}.png.npy") for i in range(6)])
        # the local explainer on the same batches of 3: identical maps
        same_batches = np.concatenate([explainer.explain(images[i:i + 3], targets[i:i + 3]).maps for i in (0, 3)])
        assert np.array_equal(got, same_batches), method
        # on all 6 at once: equal up to float rounding of differently composed classifier batches
        np.testing.assert_allclose(got, explainer.explain(images, targets).maps, rtol=0, atol=1e-6)
        assert (out / "overlays" / method / "img0.png.png").read_bytes()[:4] == b"\x89PNG"

    before = np.load(out / "maps" / "gradcam" / "img4.png.npy")
    untouched = (out / "maps" / "rise" / "img0.png.npy").stat().st_mtime_ns
    (out / "maps" / "gradcam" / "img4.png.npy").unlink()  # a run stopped before img4 was written
    report = run_ray_explain(spec, METHODS, out, rise_masks=60, device="cpu", batch_size=3, progress=False)
    assert (report.written, report.skipped) == (1, 5)
    np.testing.assert_allclose(np.load(out / "maps" / "gradcam" / "img4.png.npy"), before, rtol=0, atol=1e-6)
    assert (out / "maps" / "rise" / "img0.png.npy").stat().st_mtime_ns == untouched  # finished images not redone


def test_bad_arguments_fail_before_ray_starts(tmp_path):
    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain

    spec = ModelSpec.of("shapes", tmp_path)
    with pytest.raises(ValueError, match="at least one method"):
        run_ray_explain(spec, [], tmp_path / "out")
    with pytest.raises(ValueError, match="batch_size"):
        run_ray_explain(spec, ["gradient"], tmp_path / "out", batch_size=0)
    with pytest.raises(TypeError, match="unknown model arguments"):
        ModelSpec.of("shapes", tmp_path, colour="red")


def test_same_stem_images_keep_their_own_outputs(ray_local, tmp_path):
    from PIL import Image

    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain
    from saliency_gym.explainers import make_explainer

    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("square/cat.png", "square/cat.jpg", "circle/cat.png"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / name)
    spec = ModelSpec.of("shapes", folder)
    report = run_ray_explain(spec, ["gradient"], tmp_path / "out", device="cpu", batch_size=2, actors=1, progress=False)
    names = ["circle/cat.png", "square/cat.jpg", "square/cat.png"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert report.written == 3 and [e["image"] for e in manifest["images"]] == names  # today: 'cat' x 3
    assert [e["target"] for e in manifest["images"]] == [0, 1, 1]  # the class folders' labels
    classifier, source = spec.build("cpu")
    explainer = make_explainer("gradient", classifier)
    for i, name in enumerate(names):
        local = explainer.explain(source.get_batch([i]).images, [manifest["images"][i]["target"]]).maps[0]
        np.testing.assert_allclose(np.load(tmp_path / "out" / "maps" / "gradient" / f"{name}.npy"), local, rtol=0, atol=1e-6)
        assert (tmp_path / "out" / "overlays" / "gradient" / f"{name}.png").is_file()


def test_a_bad_image_stops_the_run_before_ray_starts(tmp_path, monkeypatch):
    from saliency_gym.distributed import data_explain
    from tests.data.test_image_folders import noisy, truncate, write_png

    folder = tmp_path / "images"
    write_pngs(folder, 3, size=(32, 32))
    truncate(write_png(folder / "broken.jpg", noisy()))  # a truncated JPEG passes Pillow's verify()

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(data_explain, "ensure_ray", no_ray)
    with pytest.raises(ValueError, match=r"broken\.jpg: image file is truncated") as info:
        data_explain.run_ray_explain(data_explain.ModelSpec.of("shapes", folder), ["gradient"], tmp_path / "out")
    assert "\n" not in str(info.value) and not (tmp_path / "out" / "maps").exists()


def test_names_that_differ_only_in_case_are_refused(tmp_path):
    from saliency_gym.data.resolve import UnlabelledImageFolder
    from saliency_gym.distributed.data_explain import image_names

    folder = tmp_path / "images"
    write_pngs(folder, 1, size=(8, 8))
    (folder / "img0.png").rename(folder / "Cat.png")
    source = UnlabelledImageFolder(folder, ["a", "b"], (8, 8))
    assert image_names(source) == ["Cat.png"]
    source.files = [folder / "Cat.png", folder / "cat.PNG"]  # as listed on a case-sensitive file system
    with pytest.raises(ValueError, match=r"differ only in case \(Cat\.png and cat\.PNG\)"):
        image_names(source)
