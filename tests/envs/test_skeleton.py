"""The shared skeleton of the environment families: engine protocol, outcomes, configs, SB3 adapter."""

import inspect

import numpy as np
import pytest
import torch

from saliency_gym.envs import SaliencySB3VecEnv, SB3VecEnv
from saliency_gym.envs.attack import AttributionAttackEnv, AttributionAttackVectorEnv
from saliency_gym.envs.attack_config import AttackOptions, AttributionAttackConfig
from saliency_gym.envs.attack_config import default_config as attack_defaults
from saliency_gym.envs.base import BatchedEngineEnv
from saliency_gym.envs.config import SaliencySearchConfig, SaliencySearchOptions, default_config
from saliency_gym.envs.engine import BatchedEngine, StepOutcome, check_discrete_actions
from saliency_gym.envs.saliency import SaliencyMaskEnv, SaliencyRevealEnv, SaliencyRevealVectorEnv
from saliency_gym.envs.vector_base import BatchedVectorEnv
from saliency_gym.options import Options


def test_both_families_share_the_skeletons(tiny_shapes, shapes_classifier):
    reveal = SaliencyRevealEnv(data=tiny_shapes, grid=2)
    attack = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=2)
    for env in (reveal, attack):
        assert isinstance(env, BatchedEngineEnv) and isinstance(env.core, BatchedEngine)
        assert isinstance(env.config, Options) and env.core.config is env.config is env.core.cfg
    assert issubclass(SaliencyRevealVectorEnv, BatchedVectorEnv) and issubclass(AttributionAttackVectorEnv, BatchedVectorEnv)


def test_outcomes_set_every_field(tiny_shapes, shapes_classifier):
    venv = AttributionAttackVectorEnv(num_envs=2, classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=1)
    venv.reset(seed=0)
    out = venv.core.advance(np.array([0, 1]), np.ones(2, bool), np.zeros(2, bool))
    assert isinstance(out, StepOutcome) and out.terminated.all() and not out.truncated.any()
    assert set(out.reward_parts) == {"shift", "penalty"} and set(out.flags) == {"label_changed", "reverted"}
    np.testing.assert_allclose(out.rewards, out.reward_parts["shift"] + out.reward_parts["penalty"])


def test_configs_derive_from_options():
    assert default_config() == SaliencySearchOptions.defaults() and attack_defaults() == AttackOptions.defaults()
    assert issubclass(SaliencySearchConfig, Options) and issubclass(AttributionAttackConfig, Options)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['colour'\]"):
        SaliencySearchConfig.from_kwargs("mask", colour="red")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['colour'\]"):
        AttributionAttackConfig.from_kwargs(colour="red")


def test_describe_is_json_friendly(tiny_shapes, shapes_classifier):
    saliency = SaliencyMaskEnv(data=tiny_shapes, grid=4).config.describe()
    assert saliency["mode"] == "mask" and saliency["grid"] == (4, 4) and saliency["substrate"] == "zeros"
    assert saliency["data"] == f"{tiny_shapes.name} (8 images)" and isinstance(saliency["classifier"], str)
    attack = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes).config.describe()
    assert attack["explainer"] == "gradient" and attack["budget"] == 16 and attack["grid"] == (8, 8)


def test_docstrings_are_literal():
    for cls in (SaliencyRevealEnv, SaliencyMaskEnv, AttributionAttackEnv):
        source = inspect.getsource(cls)
        assert "__doc__" not in source and cls.__doc__ and cls.__doc__ in source
        for section in ("Description", "Action Space", "Observation Space", "Rewards", "Starting State",
                        "Episode End", "Info", "Arguments", "Registered Configurations"):  # fmt: skip
            assert f"## {section}" in cls.__doc__, (cls, section)
    assert "only mode whose return equals" in SaliencyRevealEnv.__doc__


def test_discrete_action_checker():
    np.testing.assert_array_equal(check_discrete_actions(np.array([1.0, 2.0]), 2, 4), [1, 2])
    with pytest.raises(ValueError, match=r"2 integer cell id\(s\) in \[0, 3\]"):
        check_discrete_actions(np.array([1.5, 2.0]), 2, 4, noun="cell id")
    with pytest.raises(ValueError, match=r"\(cell, then sign\)"):
        check_discrete_actions(np.array([9]), 1, 8, hint=" (cell, then sign)")


def test_policy_lookahead_operations(tiny_shapes, shapes_classifier):
    venv = SaliencyRevealVectorEnv(num_envs=2, classifier=shapes_classifier, data=tiny_shapes, grid=2)
    venv.reset(seed=0)
    venv.step(np.array([1, 3]))
    core, idx = venv.core, np.array([1])
    np.testing.assert_array_equal(core.canvases_for(idx, core.chosen[idx]).numpy(), core.canvas_np[idx])
    everything = core.canvases_for(idx, np.ones((1, 4), bool))
    np.testing.assert_array_equal(everything.numpy(), core.images_np[idx])
    probs = shapes_classifier.probs(torch.from_numpy(core.canvas_np[idx]), count=False)
    score, log_odds = core.scores_of(probs, idx)
    assert score.shape == log_odds.shape == (1,) and score[0] == pytest.approx(core.scores[1], abs=1e-6)


def test_sb3_adapter_attributes():
    assert SaliencySB3VecEnv is SB3VecEnv
    venv = SB3VecEnv("saliency_gym/SaliencyReveal-Shapes-v0", num_envs=3, grid=2, split="test")
    assert venv.get_attr("render_mode", indices=[0, 2]) == [None, None] and len(venv.get_attr("num_envs", 1)) == 1
    venv.set_attr("marker", 5)
    assert venv.get_attr("marker") == [5, 5, 5]
    venv.set_attr("marker", 6, indices=[0, 1, 2])
    with pytest.raises(ValueError, match="share one vector environment"):
        venv.set_attr("marker", 7, indices=[1])
    assert venv.get_attr("marker") == [6, 6, 6]


def test_painted_canvases_equal_rebuilt_ones() -> None:
    """Steps paint one cell per episode; the canvases equal those rebuilt from the chosen cells."""
    import gymnasium as gym
    import numpy as np

    for env_id in ("saliency_gym/SaliencyReveal-Shapes-v0", "saliency_gym/SaliencyMask-Shapes-v0"):
        env = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
        env.reset(seed=0)
        core = env.unwrapped.core
        rng = np.random.default_rng(0)
        for _ in range(5):
            env.step(np.array([rng.choice(np.flatnonzero(~core.chosen[i])) for i in range(3)]))
            idx = np.arange(3)
            np.testing.assert_array_equal(core.canvas_np, core.canvases_for(idx, core.chosen).cpu().numpy())
        env.close()
