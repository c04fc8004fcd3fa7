import gymnasium as gym
import numpy as np
import pytest
import torch

import saliency_gym
from saliency_gym.agents import (
    AgentPolicy,
    AttributionOrderPolicy,
    GreedyPolicy,
    PolicyExplainer,
    RandomPolicy,
    SaliencyCNN,
    load_hyperparameters,
    train_agent,
)
from saliency_gym.agents.agent_checkpoints import load_agent_payload
from saliency_gym.agents.algorithms import ALGORITHMS, split_hyperparameters
from saliency_gym.agents.pretrained import agent_explainer, load_agent_policy, shipped_agents
from saliency_gym.baselines import make_explainer
from saliency_gym.checkpoint import CheckpointError
from saliency_gym.metrics import patch_insertion_curve

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


def test_extractor_output_and_non_divisible_grid():
    for grid in (8, 3, (4, 2)):
        env = gym.make(ENV, grid=grid, split="test")
        extractor = SaliencyCNN(env.observation_space, features_dim=16)
        obs, _ = env.reset(seed=0)
        batch = {k: torch.as_tensor(v)[None].repeat(2, *[1] * v.ndim) for k, v in obs.items()}
        assert extractor(batch).shape == (2, 16)
    with pytest.raises(ValueError, match="missing"):
        SaliencyCNN(gym.spaces.Dict({"image": gym.spaces.Box(0, 1, (1, 4, 4))}))


def test_hyperparameters_yaml(tiny_config):
    params = load_hyperparameters(ENV, "maskable_ppo")
    assert params["gamma"] == 1.0 and params["env_kwargs"] == {"grid": 8}
    n_envs, env_kwargs, kwargs = split_hyperparameters(params)
    assert n_envs == 16 and "policy" not in kwargs and "n_timesteps" not in kwargs
    policy = ALGORITHMS["maskable_ppo"].policy_class(
        gym.make(ENV, grid=8).observation_space, gym.spaces.Discrete(64), lambda _: 0.0, **kwargs["policy_kwargs"])
    assert isinstance(policy.features_extractor, SaliencyCNN)
    layered = load_hyperparameters(ENV, "maskable_ppo", tiny_config)
    assert layered["n_steps"] == 16 and layered["gamma"] == 1.0
    with pytest.raises(ValueError, match="unknown algorithm 'sac'"):
        load_hyperparameters(ENV, "sac")
    with pytest.raises(FileNotFoundError):
        load_hyperparameters(ENV, "ppo", "/nonexistent.yaml")


def _patch_auc(explainer, classifier, images, targets, grid):
    core = explainer.rollout(torch.as_tensor(images), torch.as_tensor(targets))
    result = patch_insertion_curve(classifier, images, core.order, core.cfg.grid, targets, substrate=core.cfg.substrate)
    return result.auc.mean()


def test_short_training_learns(tmp_path, tiny_config, shapes_classifier):
    """A short MaskablePPO run on a 4x4 grid beats the random policy's evaluation return."""
    result = train_agent(ENV, "maskable_ppo", 3072, seed=0, out=tmp_path / "run", config=tiny_config,
                         env_kwargs={"grid": 4}, n_envs=8, checkpoint_every=0, eval_every=0, progress=False)
    policy, info = load_agent_policy(result.final_path)
    data = saliency_gym.load_dataset("shapes", "test", n=24).arrays()
    targets = shapes_classifier.predict(data.images, count=False).numpy()
    agent = PolicyExplainer(shapes_classifier, policy, grid=4)
    random = PolicyExplainer(shapes_classifier, RandomPolicy(seed=0), grid=4)
    agent_auc = _patch_auc(agent, shapes_classifier, data.images, targets, 4)
    random_auc = _patch_auc(random, shapes_classifier, data.images, targets, 4)
    assert agent_auc > random_auc + 0.02, (agent_auc, random_auc)


def test_resume_continues_step_count(tmp_path, tiny_config):
    out = tmp_path / "run"
    kwargs = dict(out=out, config=tiny_config, env_kwargs={"grid": 2}, n_envs=4, checkpoint_every=64, eval_every=0, progress=False)
    first = train_agent(ENV, "maskable_ppo", 128, seed=1, **kwargs)
    assert first.num_timesteps == 128
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert "last.pt" in before and "step_64.pt" in before
    assert load_agent_payload(out / "checkpoints" / "last.pt")["num_timesteps"] == 128
    second = train_agent(ENV, "maskable_ppo", 256, seed=1, resume=True, **kwargs)
    assert second.num_timesteps == 256
    after = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert set(before) <= set(after) and "step_192.pt" in after
    assert load_agent_payload(out / "checkpoints" / "last.pt")["num_timesteps"] == 256


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_algorithm_trains_and_respects_masks(algo, tmp_path, tiny_config, shapes_classifier):
    result = train_agent(ENV, algo, 64, seed=0, out=tmp_path / algo, config=tiny_config, env_kwargs={"grid": 2},
                         n_envs=4, checkpoint_every=0, eval_every=0, progress=False)
    explainer = agent_explainer(result.final_path, shapes_classifier)
    images = saliency_gym.load_dataset("shapes", "test", n=3).arrays().images
    core = explainer.rollout(torch.as_tensor(images), torch.zeros(3, dtype=torch.long))
    for i in range(3):  # every cell exactly once: no masked action was ever taken
        assert sorted(core.order[i].tolist()) == [0, 1, 2, 3]


def test_policy_explainer_determinism_and_queries(shapes_classifier):
    images = saliency_gym.load_dataset("shapes", "test", n=4).arrays().images
    targets = np.zeros(4, np.int64)
    random = PolicyExplainer(shapes_classifier, RandomPolicy(seed=3), grid=4)
    first, second = random.explain(images, targets), random.explain(images, targets)
    np.testing.assert_array_equal(first.maps, second.maps)
    assert first.queries == 0  # a policy without feedback, scored by order: no classifier query
    gains = PolicyExplainer(shapes_classifier, RandomPolicy(seed=3), grid=4, scoring="gain").explain(images, targets)
    assert gains.queries == 4 * (16 + 1)  # the substrate, then every step
    greedy = PolicyExplainer(shapes_classifier, GreedyPolicy(), grid=4).explain(images, targets)
    assert greedy.queries == 4 * sum(range(1, 17))
    with pytest.raises(TypeError, match="Policy"):
        PolicyExplainer(shapes_classifier, object())
    with pytest.raises(ValueError, match="scoring"):
        PolicyExplainer(shapes_classifier, RandomPolicy(), scoring="rank")


def test_greedy_finds_the_only_informative_cell(region_classifier):
    """The region classifier looks at the top-left 2x2 pixels only: cell 0 of a 4x4 grid on 8x8."""
    images = np.ones((2, 1, 8, 8), np.float32)
    explainer = PolicyExplainer(region_classifier, GreedyPolicy(), grid=4, substrate="zeros")
    core = explainer.rollout(torch.as_tensor(images), torch.ones(2, dtype=torch.long))
    assert core.order[:, 0].tolist() == [0, 0]
    maps = explainer.explain(images, [1, 1]).maps
    assert (maps[:, :2, :2] == maps.max()).all()


def test_attribution_order_policy(region_classifier):
    occlusion = make_explainer("occlusion", region_classifier, window=2, stride=2)
    explainer = PolicyExplainer(region_classifier, AttributionOrderPolicy(occlusion), grid=4, substrate="zeros")
    core = explainer.rollout(torch.ones(1, 1, 8, 8), torch.ones(1, dtype=torch.long))
    assert core.order[0, 0] == 0


def test_corrupt_and_unknown_agent_checkpoints(tmp_path):
    bad = tmp_path / "agent.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError):
        load_agent_policy(bad)
    with pytest.raises(ValueError, match="unknown agent"):
        load_agent_policy("no_such_agent")
    with pytest.raises(FileNotFoundError):
        load_agent_policy(tmp_path / "missing.pt")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"env_id": "CartPole-v1"}, ValueError, "unknown saliency-search or attribution-attack environment"),
        ({"algo": "sac"}, ValueError, "unknown algorithm"),
        ({"timesteps": -5}, ValueError, "timesteps must be >= 1"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
    ],
)
def test_bad_training_arguments(kwargs, error, match, tmp_path):
    args = {"env_id": ENV, "algo": "maskable_ppo", "timesteps": 10, **kwargs}
    with pytest.raises(error, match=match):
        train_agent(args.pop("env_id"), args.pop("algo"), args.pop("timesteps"), out=tmp_path, progress=False, **args)


@pytest.mark.skipif(not shipped_agents(), reason="no shipped agent")
def test_shipped_agents_load_and_explain():
    assert {"shapes_reveal", "shapes_mask"} <= set(shipped_agents())
    for name in shipped_agents():
        policy, info = load_agent_policy(name)
        assert isinstance(policy, AgentPolicy) and info["algo"] in ALGORITHMS
        explainer = agent_explainer(name)  # with the agent's own classifier
        dataset = explainer.classifier.meta["dataset"]
        images = saliency_gym.load_dataset(dataset, "test").arrays().images[:2]
        explanation = explainer.explain(images, [0, 1])
        assert explanation.maps.shape == (2, *images.shape[-2:])
        # Pixel agents explain with no query; open-loop feature agents with one per image; closed-loop
        # ones with one per step and one for the start (the substrate).
        per_image = {"none": 0, "image": 1, "canvas": explainer._dummy.budget + 1}[policy.observe_features]
        assert explanation.queries == explainer.expected_queries() * 2 == 2 * per_image
        assert explainer.loop == ("closed" if policy.observe_features == "canvas" else "open")


def test_greedy_lookahead_budget(shapes_classifier):
    """``lookahead_steps=m`` pays K + ... + (K-m+1) queries and still orders every cell; m = 1 is the
    order of the single-cell gains; m = K is the full greedy search."""
    batch = saliency_gym.load_dataset("shapes", "test", n=6).arrays()
    images, targets = batch.images, batch.labels
    k = 16
    full = PolicyExplainer(shapes_classifier, GreedyPolicy(), grid=4).explain(images, targets)
    same = PolicyExplainer(shapes_classifier, GreedyPolicy(lookahead_steps=k), grid=4).explain(images, targets)
    np.testing.assert_array_equal(full.maps, same.maps)
    one = PolicyExplainer(shapes_classifier, GreedyPolicy(lookahead_steps=1), grid=4)
    assert one.expected_queries() == k and one.policy.name == "greedy-1"
    explanation = one.explain(images, targets)
    assert explanation.queries == k * len(images)
    assert all(len(np.unique(m)) == k for m in explanation.maps)  # a full order, no ties
    two = PolicyExplainer(shapes_classifier, GreedyPolicy(lookahead_steps=2), grid=4)
    assert two.explain(images, targets).queries == (k + k - 1) * len(images) == two.expected_queries() * len(images)
    # m = 1: cells ranked by the score of the canvas with that cell alone revealed
    from saliency_gym.grid import PatchGrid
    from saliency_gym.substrates import make_substrate

    grid = PatchGrid(32, 32, 4)
    x = torch.as_tensor(images[:1])
    blur = make_substrate("blur")(x)
    cells = torch.stack([torch.as_tensor(grid.to_pixels(np.eye(k, dtype=bool)[c]), dtype=torch.bool) for c in range(k)])
    canvases = torch.where(cells[:, None], x, blur)
    single = shapes_classifier.probs(canvases, count=False)[:, int(targets[0])].cpu().numpy()
    ranked = grid.cell_scores(explanation.maps[:1])[0]
    assert np.argmax(ranked) == np.argmax(single)
    with pytest.raises(ValueError, match="lookahead_steps"):
        GreedyPolicy(lookahead_steps=0)
    with pytest.raises(TypeError, match="lookahead_steps"):
        GreedyPolicy(lookahead_steps=1.5)  # type: ignore[arg-type]
