"""``explain --engine ray``: Ray Data maps a folder through explainers, equal to the local
explainer's maps, with overlays, and resumes by output file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saliency_gym.cli.main import main
from tests.test_model_files import write_pngs

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
    assert [e["image"] for e in manifest["images"]] == [f"img{i}" for i in range(6)]
    assert [e["target"] for e in manifest["images"]] == targets.tolist()
    for method in METHODS:
        explainer = make_explainer(method, classifier, **({"n_masks": 60, "seed": 0} if method == "rise" else {}))
        got = np.stack([np.load(out / "maps" / method / f"img{i}.npy") for i in range(6)])
        # the local explainer on the same batches of 3: identical maps
        same_batches = np.concatenate([explainer.explain(images[i:i + 3], targets[i:i + 3]).maps for i in (0, 3)])
        assert np.array_equal(got, same_batches), method
        # on all 6 at once: equal up to float rounding of differently composed classifier batches
        np.testing.assert_allclose(got, explainer.explain(images, targets).maps, rtol=0, atol=1e-6)
        assert (out / "overlays" / method / "img0.png").read_bytes()[:4] == b"\x89PNG"

    before = np.load(out / "maps" / "gradcam" / "img4.npy")
    untouched = (out / "maps" / "rise" / "img0.npy").stat().st_mtime_ns
    (out / "maps" / "gradcam" / "img4.npy").unlink()  # a run stopped before img4 was written
    report = run_ray_explain(spec, METHODS, out, rise_masks=60, device="cpu", batch_size=3, progress=False)
    assert (report.written, report.skipped) == (1, 5)
    np.testing.assert_allclose(np.load(out / "maps" / "gradcam" / "img4.npy"), before, rtol=0, atol=1e-6)
    assert (out / "maps" / "rise" / "img0.npy").stat().st_mtime_ns == untouched  # finished images not redone


def test_bad_arguments_fail_before_ray_starts(tmp_path):
    from saliency_gym.distributed.data_explain import ModelSpec, run_ray_explain

    spec = ModelSpec.of("shapes", tmp_path)
    with pytest.raises(ValueError, match="at least one method"):
        run_ray_explain(spec, [], tmp_path / "out")
    with pytest.raises(ValueError, match="batch_size"):
        run_ray_explain(spec, ["gradient"], tmp_path / "out", batch_size=0)
    with pytest.raises(TypeError, match="unknown model arguments"):
        ModelSpec.of("shapes", tmp_path, colour="red")
