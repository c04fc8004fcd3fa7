"""The transfer benchmark at smoke-test size: the shapes agents explain another classifier's images."""

import numpy as np
import pytest

from saliency_gym.benchmarks.bench_transfer import to_markdown, transfer_table


def test_transfer_table_rows():
    from saliency_gym.data import load_dataset
    from saliency_gym.explainers import make_explainer
    from saliency_gym.metrics import deletion_curve, insertion_curve
    from saliency_gym.zoo import load_classifier

    rows = transfer_table(images=4, classifiers=("shapes_robust",))
    assert [r["method"] for r in rows] == ["agent", "gradcam", "random"]
    assert all(r["classifier"] == "shapes_robust" and r["images"] == 4 for r in rows)
    # Each one-pass row is the mean of the per-image AUCs computed here independently: the same
    # four test images, the other classifier's predicted classes, that classifier's own maps.
    classifier = load_classifier("shapes_robust", device="cpu")
    images = load_dataset("shapes", "test", n=4).arrays().images
    targets = classifier.predict(images, count=False).cpu().numpy()
    by_method = {r["method"]: r for r in rows}
    for method in ("gradcam", "random"):
        # One explainer serves both curves: the random one draws its deletion maps second.
        explainer = make_explainer(method, classifier)
        insertion = insertion_curve(classifier, images, explainer.explain(images, targets).maps, targets).auc
        deletion = deletion_curve(classifier, images, explainer.explain(images, targets).maps, targets).auc
        assert by_method[method]["insertion_auc"] == pytest.approx(float(np.mean(insertion)), abs=1e-6)
        assert by_method[method]["deletion_auc"] == pytest.approx(float(np.mean(deletion)), abs=1e-6)
    # Grad-CAM explains the robust classifier better than a random map on the same images.
    assert by_method["gradcam"]["insertion_auc"] > by_method["random"]["insertion_auc"]
    table = to_markdown(rows)
    assert table.count("| shapes_robust |") == 3
    gradcam = by_method["gradcam"]
    assert f"| shapes_robust | gradcam | {gradcam['insertion_auc']:.3f} ± {gradcam['insertion_ci']:.3f} |" in table


def test_finetuned_agents_get_a_row_and_are_reused(tmp_path):
    rows = transfer_table(images=4, classifiers=("shapes_robust",), finetune=64, runs=tmp_path)
    (tuned,) = [r for r in rows if r["method"] == "agent (fine-tuned)"]
    assert tuned["finetune_steps"] == 64 and tuned["finetune_seconds"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes_mask_to_shapes_robust_64", "shapes_reveal_to_shapes_robust_64"]
    # the fine-tuned agents explain against the other classifier and start from the shipped weights
    from saliency_gym.agents.agent_checkpoints import load_agent_payload

    payload = load_agent_payload(tmp_path / "shapes_reveal_to_shapes_robust_64" / "final.pt")
    assert payload["env_kwargs"]["classifier"] == "shapes_robust" and payload["meta"]["init_from"] == "shapes_reveal"


def test_init_from_refuses_another_algorithm_or_network(tmp_path):
    import pytest

    from saliency_gym.agents.agent_training import train_agent

    env = "saliency_gym/SaliencyReveal-Shapes-v0"
    with pytest.raises(ValueError, match="is a maskable_ppo agent; this run trains ppo"):
        train_agent(env, "ppo", 64, out=tmp_path / "a", init_from="shapes_reveal", progress=False, n_envs=2)
    with pytest.raises(ValueError, match="do not fit this run's network"):
        train_agent(env, "maskable_ppo", 64, out=tmp_path / "b", init_from="shapes_reveal", progress=False, n_envs=2,
                    env_kwargs={"observe_features": "both", "observe_score": True})


def test_init_from_keeps_the_source_network_and_observation(tmp_path):
    from saliency_gym.agents.agent_checkpoints import load_agent_payload
    from saliency_gym.agents.agent_training import train_agent
    from saliency_gym.agents.pretrained import resolve_agent_path

    env = "saliency_gym/SaliencyReveal-Shapes-v0"
    result = train_agent(env, "maskable_ppo", 64, out=tmp_path / "c", init_from="shapes_reveal", progress=False, n_envs=2,
                         checkpoint_every=0, eval_every=0)  # fmt: skip
    payload = load_agent_payload(result.final_path)
    source = load_agent_payload(resolve_agent_path("shapes_reveal"))
    assert payload["env_kwargs"]["observe_features"] == source["env_kwargs"]["observe_features"] == "image"
    assert payload["hyperparameters"]["policy_kwargs"] == source["hyperparameters"]["policy_kwargs"]
