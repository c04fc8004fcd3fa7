"""The agents package as a plugin: the ``"policy"`` explainer, declared costs, lazy imports, the
training configuration and the evaluation callback."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger

import saliency_gym
from saliency_gym.agents import (
    AgentTrainingConfig,
    GreedyPolicy,
    PolicyExplainer,
    RandomPolicy,
    train_agent,
)
from saliency_gym.agents.agent_training import SaliencyEvalCallback
from saliency_gym.agents.pretrained import load_agent_policy
from saliency_gym.data import ArraySource
from saliency_gym.envs.sb3 import SaliencySB3VecEnv
from saliency_gym.explainers import make_explainer

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


def test_make_explainer_policy_with_a_shipped_agent(shapes_classifier):
    images = saliency_gym.load_dataset("shapes", "test", n=3).arrays().images
    explainer = make_explainer("policy", shapes_classifier, policy="shapes_reveal")
    assert isinstance(explainer, PolicyExplainer) and explainer.name == "shapes_reveal"
    explanation = explainer.explain(images, [0, 1, 2])
    assert explanation.maps.shape == (3, 32, 32) and np.isfinite(explanation.maps).all()
    # The shipped agent reads the image's features: open loop, one query per image.
    assert explainer.loop == "open"
    assert explanation.queries == explainer.expected_queries() * 3 == 3


def test_make_explainer_policy_with_a_policy_object_and_options(shapes_classifier):
    explainer = make_explainer("policy", shapes_classifier, policy=RandomPolicy(seed=1), grid=4, mode="mask", scoring="gain")
    assert (explainer.mode, explainer.grid, explainer.scoring) == ("mask", 4, "gain")
    with pytest.raises(TypeError, match="does not take"):
        make_explainer("policy", shapes_classifier, policy=RandomPolicy(), n_masks=3)
    with pytest.raises(TypeError, match="Policy"):
        make_explainer("policy", shapes_classifier, policy=42)


@pytest.mark.parametrize("mode", ["reveal", "mask"])
@pytest.mark.parametrize("scoring", ["order", "gain"])
@pytest.mark.parametrize("budget", [None, 5])
def test_expected_queries_match_measured(mode, scoring, budget, shapes_classifier):
    images = saliency_gym.load_dataset("shapes", "test", n=2).arrays().images
    for policy in (RandomPolicy(seed=0), GreedyPolicy()):
        explainer = PolicyExplainer(shapes_classifier, policy, grid=4, mode=mode, scoring=scoring, budget=budget)
        measured = explainer.explain(images, [0, 1]).queries
        assert measured == explainer.expected_queries() * 2
    k = 16 if budget is None else budget
    gains = PolicyExplainer(shapes_classifier, RandomPolicy(), grid=4, mode=mode, scoring="gain", budget=budget)
    assert gains.expected_queries() == k + 1  # the start (substrate or image), then each step


def test_policy_explainer_import_does_not_load_training_code():
    code = "import sys, saliency_gym.agents.policy_explainer; print('stable_baselines3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_training_config_validation():
    cfg = AgentTrainingConfig.from_kwargs(env_id=ENV, timesteps=np.int64(12))
    assert type(cfg.timesteps) is int and cfg.timesteps == 12 and cfg.algo == "maskable_ppo" and cfg.run_folder.name.startswith("maskable_ppo_")
    assert AgentTrainingConfig.defaults()["eval_every"] == 20_000
    with pytest.raises(TypeError, match="unknown"):
        AgentTrainingConfig.from_kwargs(env_id=ENV, learning_rate=1e-3)
    with pytest.raises(ValueError, match="n_envs must be >= 1"):
        AgentTrainingConfig.from_kwargs(env_id=ENV, n_envs=0)
    with pytest.raises(ValueError, match="unknown saliency-search or attribution-attack environment"):
        AgentTrainingConfig.from_kwargs(env_id="CartPole-v1")


def test_training_without_split_says_evaluation_is_off(tmp_path, tiny_config):
    arrays = saliency_gym.load_dataset("shapes", "train", n=8).arrays()
    names = saliency_gym.load_dataset("shapes", "train", n=1).class_names
    data = ArraySource(arrays.images, arrays.labels, class_names=names, name="mine")
    with pytest.warns(UserWarning, match="evaluation is off.*'mine'.*split"):
        result = train_agent(ENV, "maskable_ppo", 16, out=tmp_path / "run", config=tiny_config, env_kwargs={"grid": 2, "data": data},
                             n_envs=4, checkpoint_every=0, eval_every=8, progress=False)  # fmt: skip
    assert result.evaluations == []


def test_evaluation_queries_are_not_counted():
    """The evaluation callback queries the training classifier without adding to its counter."""
    agent, info = load_agent_policy("shapes_reveal")
    venv = SaliencySB3VecEnv(info["env_id"], num_envs=1, **info["env_kwargs"])
    images = saliency_gym.load_dataset("shapes", "test", n=2).arrays().images
    callback = SaliencyEvalCallback(venv, images, every=1)
    callback.model = SimpleNamespace(policy=agent.policy, logger=Logger(None, []))
    classifier = venv.venv.config.classifier
    classifier.queries = 7
    calls = []
    original = classifier.probs
    classifier.probs = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        result = callback.evaluate()
    finally:
        del classifier.probs
        venv.close()
    assert calls and classifier.queries == 7
    assert 0 <= result["insertion_auc"] <= 1 and callback.history == [result]
