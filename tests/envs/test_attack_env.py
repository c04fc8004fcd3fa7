import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import saliency_gym
from saliency_gym import FrozenClassifier
from saliency_gym.data import ArraySource
from saliency_gym.envs.attack import AttributionAttackEnv, AttributionAttackVectorEnv
from saliency_gym.envs.attack_config import default_config
from saliency_gym.envs.registration import register_envs
from saliency_gym.envs.sb3 import SaliencySB3VecEnv
from saliency_gym.metrics.similarity import dissimilarity
from tests.conftest import RegionModel

ATTACK_IDS = sorted(i for i in gym.registry if i.startswith("saliency_gym/AttributionAttack"))
SMALL = dict(grid=4, budget=3)


def test_registered_ids_and_idempotent_registration():
    assert {"saliency_gym/AttributionAttack-v0", "saliency_gym/AttributionAttack-Shapes-v0",
            "saliency_gym/AttributionAttack-ShapesRobust-v0", "saliency_gym/AttributionAttack-Digits-v0",
            "saliency_gym/AttributionAttack-Shapes64-v0"} <= set(ATTACK_IDS)  # fmt: skip
    assert "saliency_gym/SaliencyReveal-Shapes-v0" in gym.registry  # the saliency ids are unchanged
    before = len(gym.registry)
    import importlib

    importlib.reload(saliency_gym)
    ids = register_envs()
    assert len(gym.registry) == before and set(ATTACK_IDS) <= set(ids)


@pytest.mark.parametrize("action_type", ["cell_sign", "continuous"])
def test_checkers_pass(action_type, tiny_shapes, shapes_classifier):
    env = gym.make("saliency_gym/AttributionAttack-v0", classifier=shapes_classifier, data=tiny_shapes, action_type=action_type, **SMALL)
    gym_check_env(env.unwrapped, skip_render_check=action_type == "continuous")
    sb3_check_env(env.unwrapped, warn=True)


def test_robust_preset(tiny_shapes):
    env = gym.make("saliency_gym/AttributionAttack-ShapesRobust-v0", data=tiny_shapes, **SMALL)
    assert env.unwrapped.config.classifier.name == "shapes_robust"
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs) and info["label_kept"]


def test_docstring_documents_every_argument():
    for key in default_config():
        assert f"``{key}``" in AttributionAttackEnv.__doc__, key


def test_spaces_obs_and_info_contract(tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, **SMALL)
    obs, info = env.reset(seed=0)
    assert env.action_space == gym.spaces.Discrete(32)
    assert obs["image"].shape == obs["perturbation"].shape == (3, 32, 32) and obs["attribution"].shape == (32, 32)
    assert obs["budget"].tolist() == [1.0] and not obs["perturbation"].any() and obs["attribution"].max() == 1.0
    assert env.observation_space.contains(obs)
    assert info["queries"] == 2 and info["shift"] == 0.0 and info["label_kept"]  # prediction + one gradient
    image = torch.tensor(tiny_shapes[info["image_index"]].image)
    assert info["target"] == int(shapes_classifier.predict(image[None], count=False)[0])
    obs, reward, terminated, truncated, info = env.step(5)
    step = env.config.epsilon / 4
    cell = env.config.grid.to_pixels(np.eye(16)[5]).astype(bool)
    expected = np.clip(image.numpy() + step * cell, 0, 1) - image.numpy()
    np.testing.assert_allclose(obs["perturbation"], expected, atol=1e-6)
    assert obs["budget"][0] == pytest.approx(2 / 3) and info["queries"] == 4 and info["steps"] == 1
    assert set(info["rewards"]) == {"shift", "penalty"} and reward == pytest.approx(info["shift"])
    # The reward is the dissimilarity shift of the explainer's own maps.
    maps = np.abs(env.config.explainer.explain(np.stack([image.numpy(), env.adversarial_image()]), info["target"]).maps)
    assert info["shift"] == pytest.approx(float(dissimilarity("topk", maps[:1], maps[1:], k=env.config.k)[0]))


def test_negative_step_and_continuous_actions(tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=2, action_type="continuous", epsilon=0.1, step_size=0.08)
    obs, _ = env.reset(seed=1)
    action = np.zeros((3, 2, 2), np.float32)
    action[0, 0, 0], action[1, 1, 1] = 5.0, -1.0  # clipped to [-1, 1]
    obs, *_ = env.step(action)
    assert np.allclose(obs["perturbation"][0, :16, :16], np.minimum(0.08, 1 - obs["image"][0, :16, :16]), atol=1e-6)
    assert np.allclose(obs["perturbation"][1, 16:, 16:], -np.minimum(0.08, obs["image"][1, 16:, 16:]), atol=1e-6)
    obs, *_ = env.step(action)
    assert np.abs(obs["perturbation"]).max() <= np.float32(0.1)  # the second step hits the ε-ball


def test_seeded_reset_is_reproducible(tiny_shapes, shapes_classifier):
    runs = []
    for _ in range(2):
        env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, **SMALL)
        obs, _ = env.reset(seed=7)
        rewards = [env.step(a)[1] for a in (3, 20, 9)]
        obs2, _ = env.reset()
        runs.append((obs, rewards, obs2))
    for key in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][key], runs[1][0][key])
        np.testing.assert_array_equal(runs[0][2][key], runs[1][2][key])
    assert runs[0][1] == runs[1][1]


def test_return_telescopes_to_kept_shift(tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=6, dissimilarity="lens_recall", epsilon=16 / 255)
    rng = np.random.default_rng(0)
    for episode in range(2):
        _, info = env.reset(seed=episode)
        total, penalties = 0.0, 0.0
        terminated = False
        while not terminated:
            _, reward, terminated, _, info = env.step(int(rng.integers(32)))
            total += reward
            penalties += info["rewards"]["penalty"]
        assert info["steps"] == 6 and info["label_kept"]
        assert total == pytest.approx(info["kept_shift"] - info["initial_shift"] + penalties, abs=1e-9)


def _region_env(rule):
    """A 1x8x8 two-class model that looks only at the top-left 2x2 cell; its mean is 0.51, so class 1
    is predicted and one negative step of 0.05 on cell 0 flips it to class 0."""
    clf = FrozenClassifier(RegionModel(slice(0, 2), slice(0, 2)), (1, 8, 8), device="cpu", name="region")
    image = np.full((1, 8, 8), 0.5, np.float32)
    image[:, :2, :2] = 0.51
    data = ArraySource(image[None], [1])
    return AttributionAttackEnv(classifier=clf, data=data, grid=4, budget=4, epsilon=0.05, step_size=0.05,
                                k=4, on_label_change=rule)  # fmt: skip


@pytest.mark.parametrize("rule", ["revert", "penalize", "terminate"])
def test_label_kept_rule(rule):
    env = _region_env(rule)
    _, info = env.reset(seed=0)
    assert info["target"] == 1 and info["label_kept"]
    obs, reward, terminated, _, info = env.step(16)  # minus on cell 0: class 0
    assert info["label_changed"] and info["label_changes"] == 1
    assert info["rewards"] == {"shift": 0.0, "penalty": -1.0} and reward == -1.0
    if rule == "revert":
        assert info["reverted"] and info["label_kept"] and not obs["perturbation"].any() and not terminated
        assert info["prediction"] == 1
    else:
        assert not info["reverted"] and not info["label_kept"] and info["prediction"] == 0
        assert obs["perturbation"][0, 0, 0] == pytest.approx(-0.05)
        assert terminated == (rule == "terminate")
    if rule == "penalize":  # stepping back restores the label; no penalty, kept shift stays honest
        _, reward, _, _, info = env.step(0)
        assert info["label_kept"] and not info["label_changed"] and info["rewards"]["penalty"] == 0.0
        assert info["kept_shift"] == pytest.approx(info["shift"])


def test_vector_env_equals_single_envs(tiny_shapes, shapes_classifier):
    """Sub-env i seeded with seed + i plays the same episodes as a single env seeded so, across autoresets."""
    n, steps = 3, 8
    kwargs = dict(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=3, dissimilarity="spearman")
    venv = gym.make_vec("saliency_gym/AttributionAttack-v0", num_envs=n, **kwargs)
    assert isinstance(venv.unwrapped, AttributionAttackVectorEnv)
    singles = [AttributionAttackEnv(**kwargs) for _ in range(n)]
    actions = np.random.default_rng(0).integers(0, 32, size=(steps, n))
    v_obs, _ = venv.reset(seed=10)
    s_obs = [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)]
    needs_reset = [False] * n
    for t in range(steps):
        for i in range(n):
            for key in v_obs:
                np.testing.assert_allclose(v_obs[key][i], s_obs[i][key], atol=1e-5)
        v_obs, v_rew, v_term, v_trunc, v_info = venv.step(actions[t])
        for i, env in enumerate(singles):
            if needs_reset[i]:
                s_obs[i], _ = env.reset()
                needs_reset[i] = False
                assert v_rew[i] == 0.0 and not v_term[i]
                continue
            s_obs[i], reward, term, trunc, info = env.step(int(actions[t, i]))
            assert v_rew[i] == pytest.approx(reward, abs=1e-4)
            assert (v_term[i], v_trunc[i]) == (term, trunc)
            assert v_info["shift"][i] == pytest.approx(info["shift"], abs=1e-4)
            needs_reset[i] = term or trunc


def test_one_batched_query_and_explanation_per_step(tiny_shapes, shapes_classifier):
    venv = AttributionAttackVectorEnv(num_envs=4, classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=2)
    venv.reset(seed=0)
    probs_calls, explain_calls = [], []
    original_probs, explainer = shapes_classifier.probs, venv.config.explainer
    original_explain = explainer.explain
    shapes_classifier.probs = lambda x, **kw: probs_calls.append(len(x)) or original_probs(x, **kw)
    explainer.explain = lambda x, t=None: explain_calls.append(len(x)) or original_explain(x, t)
    try:
        for _ in range(3):  # episodes end at t=1; t=2 autoresets all four within the same calls
            venv.step(np.array([0, 1, 2, 3]))
    finally:
        del shapes_classifier.probs
        del explainer.explain
    assert probs_calls == [4, 4, 4] and explain_calls == [4, 4, 4]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**16),
    action_type=st.sampled_from(["cell_sign", "continuous"]),
    rule=st.sampled_from(["revert", "penalize", "terminate"]),
    epsilon=st.sampled_from([1 / 255, 8 / 255, 0.3]),
    step_size=st.floats(0.01, 0.5),
    raw=st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=5),
)
def test_perturbation_stays_in_ball_and_pixel_range(seed, action_type, rule, epsilon, step_size, raw, tiny_shapes, shapes_classifier):
    venv = AttributionAttackVectorEnv(
        num_envs=2, classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=4, action_type=action_type,
        on_label_change=rule, epsilon=epsilon, step_size=step_size,
    )  # fmt: skip
    venv.reset(seed=seed)
    for r in raw:
        if action_type == "cell_sign":
            actions = np.array([r % 8, (r // 8) % 8])
        else:
            actions = np.random.default_rng(r).uniform(-3, 3, size=(2, 3, 2, 2)).astype(np.float32)
        obs, *_ = venv.step(actions)
        core = venv.core
        adversarial = venv.adversarial_images()
        assert np.abs(core.delta.numpy()).max() <= np.float32(epsilon)
        assert np.abs(adversarial - core.images.numpy()).max() <= epsilon + 1e-6
        assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
        assert np.all(core.images.numpy() + core.delta.numpy() >= -1e-6) and np.all(core.images.numpy() + core.delta.numpy() <= 1 + 1e-6)
        assert venv.observation_space.contains(obs)
        if rule == "revert":  # the state always keeps the label
            assert (core.predictions == core.targets).all()


def test_sb3_adapter_and_ppo(tiny_shapes, shapes_classifier):
    kwargs = dict(classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=2)
    venv = SaliencySB3VecEnv("saliency_gym/AttributionAttack-Shapes-v0", num_envs=2, **kwargs)
    venv.seed(3)
    obs = venv.reset()
    assert obs["perturbation"].shape == (2, 3, 32, 32)
    venv.step(np.array([0, 5]))
    obs, rewards, dones, infos = venv.step(np.array([1, 2]))
    assert dones.all() and rewards.dtype == np.float32 and not obs["perturbation"].any()
    assert infos[0]["terminal_observation"]["budget"][0] == 0.0
    assert isinstance(infos[0]["label_kept"], bool) and "kept_shift" in infos[1] and "rewards" not in infos[1]
    continuous = SaliencySB3VecEnv("saliency_gym/AttributionAttack-v0", num_envs=2, action_type="continuous", **kwargs)
    model = PPO("MultiInputPolicy", continuous, n_steps=4, batch_size=8, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=8)
    actions, _ = model.predict(continuous.reset(), deterministic=True)
    assert actions.shape == (2, 3, 2, 2)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"colour": "red"}, TypeError, "unknown argument"),
        ({"epsilon": 0}, ValueError, "epsilon must be > 0"),
        ({"epsilon": 2}, ValueError, "epsilon must be <= 1"),
        ({"dissimilarity": "cosine"}, ValueError, "dissimilarity"),
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"k": 5000}, ValueError, "k must be <= 1024"),
        ({"w": -1}, ValueError, "w "),
        ({"explainer": "magic"}, ValueError, "unknown explainer"),
        ({"explainer": 3}, TypeError, "explainer must be"),
        ({"explainer": "integrated_gradients", "explainer_options": {"steps": 3}}, TypeError, "does not take"),
        ({"explainer_options": [1]}, TypeError, "explainer_options"),
        ({"action_type": "pixels"}, ValueError, "action_type"),
        ({"on_label_change": "ignore"}, ValueError, "on_label_change"),
        ({"label_change_penalty": 1.0}, ValueError, "label_change_penalty must be <= 0"),
        ({"budget": 0}, ValueError, "budget must be >= 1"),
        ({"step_size": -0.1}, ValueError, "step_size must be > 0"),
        ({"map_transform": "square"}, ValueError, "map_transform"),
        ({"nan_value": 3.0}, ValueError, "nan_value must be <= 2"),
        ({"grid": "big"}, TypeError, "grid must be"),
        ({"classifier": "imagenet"}, ValueError, "unknown classifier"),
        ({"data": "digits"}, ValueError, "shape"),
    ],
)
def test_bad_kwargs(kwargs, error, match):
    with pytest.raises(error, match=match):
        gym.make("saliency_gym/AttributionAttack-v0", **kwargs)


def test_explainer_instance_must_match_classifier(tiny_shapes, shapes_classifier):
    from saliency_gym.baselines import make_explainer
    from saliency_gym.zoo import load_classifier

    other = make_explainer("gradient", load_classifier("shapes", device="cpu"))
    with pytest.raises(ValueError, match="same FrozenClassifier"):
        AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, explainer=other)
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, explainer=make_explainer("gradcam", shapes_classifier), **SMALL)
    assert env.reset(seed=0)[1]["queries"] == 2


@pytest.mark.parametrize("action", [-1, 32, 2.5, "a", [1, 2]])
def test_bad_actions(action, tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, **SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)
    env2 = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, action_type="continuous", **SMALL)
    env2.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env2.step(np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="finite"):
        env2.step(np.full((3, 4, 4), np.nan))


def test_step_after_end_and_render(tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=1, render_mode="rgb_array")
    env.reset(seed=0)
    *_, terminated, _, _ = env.step(0)
    assert terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[1] > 4 * frame.shape[0] - 50
    with pytest.raises(ValueError, match="render_mode"):
        AttributionAttackEnv(data=tiny_shapes, render_mode="ansi")
