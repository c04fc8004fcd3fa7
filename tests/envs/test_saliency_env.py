import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import saliency_gym
from saliency_gym.envs import SaliencyMaskEnv, SaliencyRevealEnv, register_envs
from saliency_gym.metrics.insertion_deletion import auc, patch_deletion_curve, patch_insertion_curve

SALIENCY_IDS = sorted(i for i in gym.registry if i.startswith("saliency_gym/Saliency"))


def test_registered_ids_and_idempotent_registration():
    assert {"saliency_gym/SaliencyReveal-v0", "saliency_gym/SaliencyMask-v0",
            "saliency_gym/SaliencyReveal-Shapes-v0", "saliency_gym/SaliencyMask-Digits-v0"} <= set(SALIENCY_IDS)
    before = len(gym.registry)
    import importlib

    importlib.reload(saliency_gym)
    register_envs()
    assert len(gym.registry) == before


@pytest.mark.parametrize("env_id", SALIENCY_IDS)
def test_checkers_pass(env_id):
    env = gym.make(env_id, split="test", grid=4)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=True)
    rendered = gym.make(env_id, split="test", grid=4, render_mode="rgb_array")
    gym_check_env(rendered.unwrapped)


def test_spaces_and_info_contract(tiny_shapes):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=(4, 2), observe_score=True)
    obs, info = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(8)
    assert obs["image"].shape == obs["canvas"].shape == (3, 32, 32) and obs["chosen"].shape == (4, 2)
    assert obs["score"].shape == (1,) and env.observation_space.contains(obs)
    assert info["queries"] == 2 and info["cell_order"].size == 0  # substrate + predicted target
    obs, reward, terminated, truncated, info = env.step(5)
    assert obs["chosen"].reshape(-1)[5] == 1 and info["cell_order"].tolist() == [5]
    assert info["queries"] == 3 and set(info["rewards"]) == {"evidence", "penalty"}
    assert np.isclose(info["gains"][0], info["score"] - info["initial_score"])
    assert not env.action_masks()[5] and env.action_masks().sum() == 7


def test_seeded_reset_is_reproducible(tiny_shapes):
    runs = []
    for _ in range(2):
        env = SaliencyMaskEnv(data=tiny_shapes, grid=4, substrate="noise")
        obs, _ = env.reset(seed=7)
        rewards = [env.step(a)[1] for a in (3, 0, 9)]
        obs2, _ = env.reset()
        runs.append((obs, rewards, obs2))
    for key in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][key], runs[1][0][key])
        np.testing.assert_array_equal(runs[0][2][key], runs[1][2][key])
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("mode", ["reveal", "mask"])
@pytest.mark.parametrize("target", ["predicted", (1, "runner_up")])
@pytest.mark.parametrize("reward_mode", ["auc", "auc_trapezoid"])
def test_return_equals_patch_auc(mode, target, reward_mode, shapes_classifier, tiny_shapes):
    """The undiscounted return is the patch-level insertion AUC (reveal) or one minus the deletion
    AUC (mask) of the same cell order, as the metric evaluator computes it: exactly with the
    trapezoid reward, and up to the endpoint term (s_0, or 1 - s_0) with the default gain reward."""
    env_cls = SaliencyRevealEnv if mode == "reveal" else SaliencyMaskEnv
    env = env_cls(classifier=shapes_classifier, data=tiny_shapes, grid=4, target=target, reward_mode=reward_mode)
    rng = np.random.default_rng(1)
    for episode in range(2):
        _, info = env.reset(seed=episode)
        s0 = info["initial_score"]
        order = rng.permutation(16)
        total = 0.0
        for a in order:
            _, reward, terminated, _, info = env.step(int(a))
            total += reward
        assert terminated
        image = tiny_shapes[info["image_index"]].image[None]
        foils = None if "foil" not in info else [info["foil"]]
        curve_fn = patch_insertion_curve if mode == "reveal" else patch_deletion_curve
        result = curve_fn(shapes_classifier, image, order[None], env.config.grid, [info["target"]],
                          substrate=env.config.substrate, foils=foils)
        assert float(auc(result.curves)[0]) == pytest.approx(result.auc[0], abs=1e-9)
        expected = result.auc[0] if mode == "reveal" else 1.0 - result.auc[0]
        if reward_mode == "auc":
            expected -= s0 if mode == "reveal" else 1.0 - s0
        assert total == pytest.approx(expected, abs=1e-6)


def test_delta_and_log_odds_rewards_telescope(tiny_shapes):
    for mode in ("delta", "log_odds"):
        env = SaliencyRevealEnv(data=tiny_shapes, grid=2, reward_mode=mode)
        _, info = env.reset(seed=0)
        total = sum(env.step(a)[1] for a in range(4))
        p = env.core.scores[0]
        if mode == "delta":
            assert total == pytest.approx(p - info["initial_score"])
        else:
            assert np.isfinite(total)


def test_repeated_cell_changes_nothing(tiny_shapes):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=2, max_steps=5)
    env.reset(seed=0)
    obs1, *_ = env.step(2)
    obs2, reward, terminated, truncated, info = env.step(2)
    assert info["invalid_action"] and reward == pytest.approx(-1 / 4) and info["queries"] == 3
    for key in obs1:
        np.testing.assert_array_equal(obs1[key], obs2[key])
    env.step(2), env.step(2)
    *_, terminated, truncated, info = env.step(2)
    assert truncated and not terminated and "saliency" in info
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_budget_and_final_saliency(tiny_shapes):
    env = SaliencyMaskEnv(data=tiny_shapes, grid=4, budget=3)
    env.reset(seed=0)
    for a in (5, 6, 7):
        *_, terminated, _, info = env.step(a)
    assert terminated
    cells = env.config.grid.cell_means(info["saliency"])
    np.testing.assert_allclose(cells[[5, 6, 7]], info["gains"], atol=1e-6)
    rest = np.delete(cells, [5, 6, 7])
    assert (rest < info["gains"].min()).all()  # cells never chosen rank last


def test_fixed_image_and_options(tiny_shapes, shapes_classifier):
    sample = tiny_shapes[3]
    env = SaliencyRevealEnv(classifier=shapes_classifier, image=sample.image, label=sample.label, target="label", grid=4)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs["image"], sample.image)
    assert info["target"] == sample.label and info["queries"] == 1  # only the substrate is scored
    env2 = SaliencyRevealEnv(data=tiny_shapes, grid=4)
    _, info = env2.reset(options={"image_index": 5})
    assert info["image_index"] == 5
    with pytest.raises(ValueError, match="image_index"):
        env2.reset(options={"image_index": 99})


def test_one_vs_one_score(tiny_shapes, shapes_classifier):
    env = SaliencyMaskEnv(data=tiny_shapes, grid=4, target=(0, 1))
    _, info = env.reset(seed=0)
    image = torch.tensor(tiny_shapes[info["image_index"]].image)
    p = shapes_classifier.probs(image, count=False)
    assert info["initial_score"] == pytest.approx(float(p[0] - p[1]), abs=1e-6) and info["foil"] == 1


def test_non_square_images():
    from saliency_gym import FrozenClassifier
    from saliency_gym.data import ArraySource
    from tests.conftest import RegionModel

    clf = FrozenClassifier(RegionModel(slice(0, 2), slice(0, 3)), (1, 6, 10), device="cpu")
    data = ArraySource(np.random.default_rng(0).random((4, 1, 6, 10)).astype(np.float32), [0, 1, 0, 1])
    env = SaliencyRevealEnv(classifier=clf, data=data, grid=(3, 5), substrate="zeros")
    obs, _ = env.reset(seed=0)
    assert obs["chosen"].shape == (3, 5) and env.action_space.n == 15
    total = sum(env.step(a)[1] for a in range(15))
    assert np.isfinite(total)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"colour": "red"}, TypeError, "unknown argument"),
        ({"grid": 64}, ValueError, "grid rows must be <= 32"),
        ({"grid": "big"}, TypeError, "grid must be"),
        ({"budget": 0}, ValueError, "budget must be >= 1"),
        ({"reward_mode": "sparse"}, ValueError, "reward_mode"),
        ({"target": 9}, ValueError, "target must be <= 4"),
        ({"target": (1, 1)}, ValueError, "must differ"),
        ({"target": (1, "second")}, ValueError, "foil"),
        ({"substrate": "gauss"}, ValueError, "unknown substrate"),
        ({"classifier": "imagenet"}, ValueError, "unknown classifier"),
        ({"classifier": 3}, TypeError, "classifier must be"),
        ({"image": np.zeros((3, 8, 8), np.float32)}, ValueError, "classifier's shape"),
        ({"label": 1}, ValueError, "fixed `image`"),
        ({"data": "digits"}, ValueError, "shape"),
        ({"invalid_action_penalty": 1.0}, ValueError, "<= 0"),
        ({"max_steps": 3}, ValueError, "max_steps must be >= 64"),
        ({"observe_score": "yes"}, TypeError, "observe_score"),
    ],
)
def test_bad_kwargs(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make("saliency_gym/SaliencyReveal-v0", **kwargs)


def test_unsupported_render_mode(tiny_shapes):
    with pytest.raises(ValueError, match="render_mode"):
        SaliencyRevealEnv(data=tiny_shapes, render_mode="ansi")


@pytest.mark.parametrize("action", [-1, 16, 2.5, "a", [1, 2]])
def test_bad_actions(action, tiny_shapes):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="cell id"):
        env.step(action)
    assert env.core.n_chosen[0] == 0  # nothing changed
