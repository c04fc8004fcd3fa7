"""Explain any class: the explained class (and foil) as observation keys, and agents that use them."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import saliency_gym
from saliency_gym.agents import train_agent
from saliency_gym.agents.pretrained import agent_explainer, load_agent_policy

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


def test_observation_carries_the_class_and_the_foil():
    env = gym.make(ENV, grid=4, observe_class=True, target=2)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["target"], np.eye(5, dtype=np.float32)[2])
    assert "foil" not in obs
    pair = gym.make(ENV, grid=4, observe_class=True, target=(1, 3))
    obs, _ = pair.reset(seed=0)
    assert obs["target"].argmax() == 1 and obs["foil"].argmax() == 3 and obs["foil"].sum() == 1
    plain = gym.make(ENV, grid=4)
    assert "target" not in plain.observation_space.spaces  # the default observation is unchanged
    with pytest.raises(TypeError, match="observe_class"):
        gym.make(ENV, observe_class="yes")


def test_class_conditioned_agent_changes_its_choice_with_the_class(tmp_path, tiny_config):
    out = tmp_path / "run"
    train_agent(ENV, "maskable_ppo", 64, seed=0, out=out, config=tiny_config, n_envs=4, checkpoint_every=0,
                eval_every=0, progress=False, env_kwargs={"grid": 4, "observe_class": True})  # fmt: skip
    policy, _ = load_agent_policy(out / "final.pt")
    assert policy.needs_class
    classifier = saliency_gym.load_classifier("shapes")
    explainer = agent_explainer(out / "final.pt", classifier)
    images = saliency_gym.load_dataset("shapes", "test", n=8).arrays().images
    maps = {c: explainer.explain(images, [c] * len(images)).maps for c in range(5)}
    assert explainer.explain(images, [0] * len(images)).queries == 0  # the class is given, not queried
    # the policy reads the class: for some image, explaining another class orders the cells otherwise
    assert any(not np.array_equal(maps[0][i], maps[c][i]) for c in range(1, 5) for i in range(len(images)))


def test_random_target_rule_is_seeded_and_avoids_the_foil():
    env = gym.make(ENV, grid=4, observe_class=True, target="random")
    first = [int(env.reset(seed=s)[0]["target"].argmax()) for s in range(12)]
    assert first == [int(env.reset(seed=s)[0]["target"].argmax()) for s in range(12)]  # seeded resets replay
    assert len(set(first)) > 1
    pair = gym.make(ENV, grid=4, observe_class=True, target=("random", 2))
    drawn = {int(pair.reset(seed=s)[0]["target"].argmax()) for s in range(40)}
    assert 2 not in drawn and len(drawn) >= 3


def test_reset_option_target_explains_the_requested_class():
    env = gym.make(ENV, grid=4, observe_class=True)  # rule "predicted", overridden per episode
    obs, info = env.reset(seed=0, options={"target": 3})
    assert obs["target"].argmax() == 3 and int(env.unwrapped.core.targets[0]) == 3
    obs, _ = env.reset(seed=0)  # the next plain reset follows the rule again
    predicted = int(env.unwrapped.config.classifier.predict(obs["image"][None], count=False)[0])
    assert obs["target"].argmax() == predicted
    venv = gym.make_vec(ENV, num_envs=3, vectorization_mode="vector_entry_point", grid=4, observe_class=True)
    obs, _ = venv.reset(seed=0, options={"target": [0, 4, 2], "image_index": 5})
    assert obs["target"].argmax(axis=1).tolist() == [0, 4, 2]
    with pytest.raises(ValueError, match=r"options\['target'\] must lie in \[0, 4\]"):
        env.reset(options={"target": 5})
    with pytest.raises(TypeError, match="target"):
        env.reset(options={"target": 1.5})
    with pytest.raises(ValueError, match="target and foil|equals the foil"):
        gym.make(ENV, grid=4, target=("predicted", 2)).reset(options={"target": 2})
    attack = gym.make("saliency_gym/AttributionAttack-Shapes-v0")
    with pytest.raises(ValueError, match="unknown reset option"):
        attack.reset(options={"target": 1})
