"""Reference scores: the normalised-score arithmetic, the shipped table and the measuring command."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from saliency_gym.envs import reference

REVEAL, MASK = "saliency_gym/SaliencyReveal-Toy-v0", "saliency_gym/SaliencyMask-Toy-v0"


def _refs(random: float, greedy: float) -> dict:
    entry = {"auc": 0.0, "auc_ci": 0.0, "return": 0.0, "return_ci": 0.0, "queries_per_image": 0.0}
    refs = {name: dict(entry) for name in reference.REFERENCES}
    refs["random"].update(auc=random, **{"return": random - 0.5})
    refs["greedy"].update(auc=greedy, **{"return": greedy - 0.5})
    return {"images": 3, "references": refs}


@pytest.fixture()
def toy_table(monkeypatch):
    table = {"scores": {REVEAL: _refs(0.6, 0.9), MASK: _refs(0.3, 0.05)}}
    monkeypatch.setattr(reference, "_table", lambda: table)
    return table


def test_normalized_score_by_hand(toy_table):
    assert reference.normalized_score(REVEAL, 0.75) == pytest.approx(0.5)  # (0.75 - 0.6) / (0.9 - 0.6)
    assert reference.normalized_score(REVEAL, 0.6) == 0.0 and reference.normalized_score(REVEAL, 0.9) == pytest.approx(1.0)
    assert reference.normalized_score(REVEAL, 0.45) == pytest.approx(-0.5)  # worse than random
    # deletion: lower is better, greedy is below random, so beating random is still positive
    assert reference.normalized_score(MASK, 0.2) == pytest.approx(0.4)  # (0.2 - 0.3) / (0.05 - 0.3)
    assert reference.normalized_score(MASK, 0.05) == pytest.approx(1.0)
    assert reference.normalized_score(MASK, 0.4) == pytest.approx(-0.4)
    assert reference.normalized_score(REVEAL, 0.25, key="return") == pytest.approx(0.5)  # (0.25 - 0.1) / (0.4 - 0.1)


def test_reference_lookups_and_errors(toy_table):
    assert reference.reference_ids() == sorted([REVEAL, MASK])
    entry = reference.reference_scores(REVEAL)
    entry["references"]["random"]["auc"] = 99.0  # a copy: the table is untouched
    assert reference.reference_scores(REVEAL)["references"]["random"]["auc"] == 0.6
    with pytest.raises(ValueError, match="no reference scores"):
        reference.reference_scores("saliency_gym/SaliencyReveal-Nope-v0")
    with pytest.raises(TypeError, match="str"):
        reference.reference_scores(3)
    with pytest.raises(ValueError, match="key"):
        reference.normalized_score(REVEAL, 0.5, key="auroc")
    with pytest.raises(ValueError, match="finite"):
        reference.normalized_score(REVEAL, math.nan)
    with pytest.raises(TypeError, match="number"):
        reference.normalized_score(REVEAL, True)
    toy_table["scores"][REVEAL] = _refs(0.5, 0.5)
    with pytest.raises(ValueError, match="tie"):
        reference.normalized_score(REVEAL, 0.5)


def test_shipped_table_covers_the_presets_with_sane_references():
    ids = reference.reference_ids()
    for family in ("SaliencyReveal", "SaliencyMask"):
        for preset in ("Shapes", "Digits"):
            assert f"saliency_gym/{family}-{preset}-v0" in ids
    for env_id in ids:
        entry = reference.reference_scores(env_id)
        refs = entry["references"]
        assert set(refs) == set(reference.REFERENCES) and entry["images"] >= 1
        assert all(math.isfinite(v) for r in refs.values() for v in r.values())
        sign = 1 if entry["better"] == "higher" else -1
        assert sign * (refs["greedy"]["auc"] - refs["random"]["auc"]) > 0, env_id  # greedy beats random
        assert reference.normalized_score(env_id, refs["greedy"]["auc"]) == pytest.approx(1.0)
        assert reference.normalized_score(env_id, refs["greedy"]["return"], key="return") == pytest.approx(1.0)


def test_presets_are_listed_from_the_registry(monkeypatch):
    from saliency_gym.benchmarks.reference_scores import saliency_presets

    presets = saliency_presets()
    assert "saliency_gym/SaliencyReveal-Shapes-v0" in presets and "saliency_gym/SaliencyMask-Digits-v0" in presets
    assert not any(p.endswith(("SaliencyReveal-v0", "SaliencyMask-v0")) or "Attack" in p for p in presets)
    new = "saliency_gym/SaliencyReveal-LaterPreset-v0"  # a preset registered later is picked up
    monkeypatch.setitem(gym.registry, new, gym.registry["saliency_gym/SaliencyReveal-Shapes-v0"])
    assert new in saliency_presets()
    with pytest.raises(ValueError, match="not registered"):
        saliency_presets(["CartPole-v1"])


def test_plans_by_image_size():
    from saliency_gym.benchmarks.reference_scores import PresetPlan, greedy_queries, plan_for

    assert greedy_queries(64, None) == 2080 and greedy_queries(49, None) == 1225 and greedy_queries(49, 2) == 49 + 48
    assert plan_for((3, 32, 32), 64, 2000) == PresetPlan(200, None, 50)
    assert plan_for((1, 32, 32), 64, 150) == PresetPlan(150, None, 50)  # a smaller test split
    assert plan_for((3, 64, 64), 64, 2000) == PresetPlan(40, None, 20)
    # large images: the longest look-ahead within the query budget, the full search when it fits
    assert plan_for((3, 224, 224), 49, 3) == PresetPlan(3, None, 5)  # 3 x 1,225 <= 4,000
    assert plan_for((3, 224, 224), 49, 60) == PresetPlan(20, 4, 5)  # 20 x (49 + 48 + 47 + 46) = 3,800
    assert plan_for((3, 224, 224), 49, 60, large_greedy_queries=10) == PresetPlan(20, 1, 5)  # at least one step
    with pytest.raises(ValueError, match="images"):
        plan_for((1, 8, 8), 4, 10, images=0)


def test_play_records_the_envs_return_and_the_patch_auc():
    from saliency_gym.benchmarks.reference_scores import play, reference_policies
    from saliency_gym.metrics.patch_curves import patch_deletion_curve, patch_insertion_curve

    for env_id, curve in (("saliency_gym/SaliencyReveal-Digits-v0", patch_insertion_curve),
                          ("saliency_gym/SaliencyMask-Digits-v0", patch_deletion_curve)):  # fmt: skip
        venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", split="test")
        config = venv.unwrapped.config
        policy = reference_policies(config.classifier, config.grid.shape, None)["centre"]()
        played = play(venv, policy, np.arange(3))
        images = config.data.get_batch(np.arange(3)).images
        targets = config.classifier.predict(images, count=False).cpu().numpy()
        order = np.tile(policy._ranking[0], (3, 1))  # the centre order: the same for every image
        expected = curve(config.classifier, images, order, config.grid, targets, substrate=config.substrate)
        np.testing.assert_allclose(played["auc"], expected.auc, atol=1e-9)
        s0 = expected.curves[:, 0]  # the return is the AUC up to the endpoint term (reward_mode="auc")
        np.testing.assert_allclose(played["return"], expected.auc - s0 if config.mode == "reveal" else s0 - expected.auc, atol=1e-6)  # float32 rewards
        assert (played["queries"] == 64 + 1 + (1 if config.mode == "reveal" else 0)).all()
        venv.close()


def test_command_writes_and_merges_the_json(tmp_path):
    from saliency_gym.benchmarks.reference_scores import main, to_markdown

    out = tmp_path / "ref.json"
    out.write_text(json.dumps({"scores": {"saliency_gym/SaliencyReveal-Other-v0": {"kept": True}}}))
    assert main(["--ids", "saliency_gym/SaliencyMask-Digits-v0", "--images", "2", "--chunk", "2", "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["scores"]["saliency_gym/SaliencyReveal-Other-v0"] == {"kept": True}
    entry = table["scores"]["saliency_gym/SaliencyMask-Digits-v0"]
    assert entry["images"] == 2 and entry["metric"] == "deletion_auc" and entry["greedy_lookahead"] is None
    assert entry["references"]["greedy"]["queries_per_image"] == 64 * 65 / 2 + 64 + 1  # the look-ahead, the steps, the image
    assert entry["references"]["greedy"]["auc"] <= entry["references"]["random"]["auc"]
    assert "--images 2" in table["runs"][-1]["command"]
    markdown = to_markdown({"saliency_gym/SaliencyMask-Digits-v0": entry})
    assert "| SaliencyMask-Digits-v0 | deletion auc ↓ | 2 |" in markdown and "full" in markdown


def test_a_preset_that_cannot_be_built_is_skipped_unless_named(monkeypatch, tmp_path):
    from saliency_gym.benchmarks import reference_scores as rs

    broken = "saliency_gym/SaliencyReveal-NotShippedYet-v0"
    spec = gym.registry["saliency_gym/SaliencyReveal-Shapes-v0"]
    monkeypatch.setitem(gym.registry, broken, gym.envs.registration.EnvSpec(
        broken, entry_point=spec.entry_point, vector_entry_point=spec.vector_entry_point,
        kwargs={"classifier": "no_such_classifier"}))  # fmt: skip
    monkeypatch.setattr(rs, "PRESET_PATTERN", __import__("re").compile(r"^saliency_gym/SaliencyReveal-NotShippedYet-v0$"))
    table = rs.run_reference_scores(out=tmp_path / "ref.json", progress=None)
    assert table["scores"] == {} and broken in table["runs"][-1]["skipped"]
    with pytest.raises(ValueError, match="no_such_classifier"):
        rs.run_reference_scores([broken], progress=None)
