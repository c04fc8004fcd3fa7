"""The query-budget benchmark (``saliency-gym bench --dataset photos``) at CI size."""

from __future__ import annotations

import json

import pytest

from saliency_gym.cli.main import main


def test_bench_photos_quick_writes_the_table_and_the_picture(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--dataset", "photos", "--quick", "--no-progress", "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "| RISE | rise-50 | 50 |" in printed
    folder = out / "query_budget"
    for name in ("budget.md", "budget.csv", "budget.json", "budget.png"):
        assert (folder / name).stat().st_size > 0
    rows = {r["method"]: r for r in json.loads((folder / "budget.json").read_text())["results"]}
    # queries are counted by the classifier: exactly what each method's budget says
    assert rows["rise-50"]["queries_per_image"] == 50
    assert rows["occlusion-56/56"]["queries_per_image"] == 16 + 1  # 4x4 windows and the unperturbed image
    assert rows["greedy-1"]["queries_per_image"] == 49  # one look-ahead over the 7x7 cells
    assert rows["gradcam"]["queries_per_image"] == 1
    assert rows["random map"]["queries_per_image"] == 0
    # the shipped photos agent sees the image's features (one query); gain scoring (RExL) adds the
    # substrate's score and one query per cell
    assert rows["photos_reveal-order"]["queries_per_image"] == 1
    assert rows["photos_reveal-gain"]["queries_per_image"] == 1 + 1 + 49
    assert all(0.0 <= r["insertion_auc"] <= 1.0 and 0.0 <= r["deletion_auc"] <= 1.0 for r in rows.values())
    # the priors at zero queries: the centre prior and each agent's own mean map, and the agents'
    # paired differences with both (one image here, so a zero-width interval)
    assert rows["centre"]["queries_per_image"] == 0 and rows["centre"]["family"] == "prior"
    assert rows["photos_reveal-order (mean map)"]["queries_per_image"] == 0
    agent, centre = rows["photos_reveal-order"], rows["centre"]
    assert agent["insertion_minus_centre"] == pytest.approx(agent["insertion_auc"] - centre["insertion_auc"])
    assert agent["insertion_minus_mean_map"] == pytest.approx(0.0)  # one image: its mean map is its map
    assert rows["gradcam"]["insertion_minus_centre"] is None
    table = (folder / "budget.md").read_text()
    assert "insertion − centre ↑" in table and "insertion − Grad-CAM ↑" in table and "pointing game ↑" in table
    assert "**≤ 50 queries per image**" in table  # the best method within each budget, paired with Grad-CAM
    assert rows["rise-50"]["localisation_images"] == 1 and rows["rise-50"]["pointing_game"] in (0.0, 1.0)


def test_query_budget_rejects_bad_arguments(tmp_path):
    from saliency_gym.benchmarks.query_budget import run_query_budget
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.data import load_dataset

    data = load_dataset("shapes", "test", n=2)
    with pytest.raises(ValueError, match="size"):
        run_query_budget(FrozenClassifier.__new__(FrozenClassifier), data, size="huge", out=tmp_path)


def test_query_budget_resumes_limits_and_localises(tmp_path, monkeypatch):
    """A second run reads every map and score from the cache (no classifier query); a limited
    method is explained on its first images only and paired with Grad-CAM on those; localisation
    rows come from the masked data; another run's folder is refused."""
    from saliency_gym.benchmarks import query_budget as qb
    from saliency_gym.data import load_dataset
    from saliency_gym.zoo import load_classifier

    plan = qb.BudgetPlan(rise_masks=(20,), occlusion=((8, 8),), greedy_steps=(1,), gradients=("gradcam",),
                         curve_step=64, grid=4, image_limits=(("rise-20", 2),))  # fmt: skip
    monkeypatch.setitem(qb.PLANS, "quick", plan)
    classifier = load_classifier("shapes", device="cpu")
    data, masked = load_dataset("shapes", "test", n=3), load_dataset("shapes", "test", n=4)
    out = tmp_path / "budget"
    first = {r.method: r for r in qb.run_query_budget(classifier, data, localisation=masked, out=out, progress=False)}
    assert first["rise-20"].images == 2 and first["gradcam"].images == 3
    assert first["rise-20"].queries_per_image == 20 and first["occlusion-8/8"].queries_per_image == 16 + 1
    assert all(r.localisation_images == 4 for r in first.values())
    assert first["gradcam"].insertion_minus_gradcam is None
    # the paired difference of the limited row uses Grad-CAM's AUCs on the same two images
    cache = qb.MapCache(out / "maps", json.loads((out / "maps" / "fingerprint.json").read_text()))
    rise = cache.scores("rise-20", "step64_n2", dict)
    gradcam = cache.scores("gradcam", "step64_n3", dict)
    assert first["rise-20"].insertion_minus_gradcam == pytest.approx(float((rise["insertion"] - gradcam["insertion"][:2]).mean()))
    # resumed: every map and score is read back, so the classifier is never asked again
    classifier.reset_queries()
    second = {r.method: r for r in qb.run_query_budget(classifier, data, localisation=masked, out=out, progress=False)}
    assert classifier.queries == 0
    assert {m: r.insertion_auc for m, r in second.items()} == {m: r.insertion_auc for m, r in first.items()}
    with pytest.raises(ValueError, match="another benchmark run"):
        qb.run_query_budget(classifier, load_dataset("shapes", "test", n=2), out=out, progress=False)
