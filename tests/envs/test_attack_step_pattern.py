"""The attribution-attack options of issue 23: ``step_pattern="noise"`` (local random-sign cell
steps, seeded by ``pattern_seed``), ``observe_original`` (the original map in the observation),
their validation, the checkers, and ``episode_kwargs()`` (what rebuilds an attack environment)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from saliency_gym.envs.attack import AttributionAttackEnv
from saliency_gym.envs.attack_config import STEP_PATTERNS, AttributionAttackConfig, default_config

ENV = "saliency_gym/AttributionAttack-Shapes-v0"
STEP = 8 / 255
#: One step of ``STEP`` reaches the ε-ball's boundary and is never projected back.
NOISE = dict(grid=4, budget=4, epsilon=STEP, step_size=STEP, step_pattern="noise")


def _env(data, classifier, **kwargs):
    return AttributionAttackEnv(classifier=classifier, data=data, **{**NOISE, **kwargs})


def _cell(env, a):
    """Boolean ``(H, W)`` pixels of cell ``a``."""
    return env.config.grid.to_pixels(np.eye(env.config.grid.num_cells)[a]).astype(bool)


def test_defaults():
    defaults = default_config()
    assert defaults["step_pattern"] == "uniform" and defaults["pattern_seed"] == 0
    assert defaults["observe_original"] is False
    assert STEP_PATTERNS == ("uniform", "noise")


def test_noise_step_moves_only_the_cell_by_random_signs(tiny_shapes, shapes_classifier):
    env = _env(tiny_shapes, shapes_classifier)
    signs = env.core.step_signs.cpu().numpy()
    assert signs.shape == (3, 32, 32) and set(np.unique(signs)) == {-1.0, 1.0}
    cells, a = env.config.grid.num_cells, 5
    cell = _cell(env, a)
    # The step itself: +-step_size times the fixed signs inside the cell, zero outside.
    step = env.core.action_to_step(np.array([a])).cpu().numpy()[0]
    assert not step[:, ~cell].any()
    np.testing.assert_allclose(np.abs(step[:, cell]), STEP, rtol=1e-6)
    np.testing.assert_allclose(step[:, cell], STEP * signs[:, cell], rtol=1e-6)
    assert (step[:, cell] > 0).any() and (step[:, cell] < 0).any()  # mixed signs, per pixel
    assert (signs[0][cell] != signs[1][cell]).any()  # and per channel
    minus = env.core.action_to_step(np.array([cells + a])).cpu().numpy()[0]
    np.testing.assert_array_equal(minus, -step)

    # Through the environment: the same perturbation, clipped to the pixel range only.
    obs, _ = env.reset(seed=0)
    image = obs["image"]
    obs, *_ = env.step(a)
    expected = np.clip(image + STEP * signs * cell, 0.0, 1.0) - image
    np.testing.assert_allclose(obs["perturbation"], expected, atol=1e-6)
    assert not obs["perturbation"][:, ~cell].any()
    # Where the pixel range does not cut it, every channel of every pixel moved by exactly the step.
    up, down = image[:, cell] + STEP * signs[:, cell], image[:, cell] - STEP * signs[:, cell]
    free = (up >= 0) & (up <= 1) & (down >= 0) & (down <= 1)
    assert free.mean() > 0.5
    moved = obs["perturbation"][:, cell]
    np.testing.assert_allclose(np.abs(moved[free]), STEP, rtol=1e-5)
    assert (moved > 0).any() and (moved < 0).any()

    # The opposite action of the same cell from the same start: the negated step.
    env.reset(seed=0)
    back, *_ = env.step(cells + a)
    expected_back = np.clip(image - STEP * signs * cell, 0.0, 1.0) - image
    np.testing.assert_allclose(back["perturbation"], expected_back, atol=1e-6)
    np.testing.assert_allclose(back["perturbation"][:, cell][free], -moved[free], atol=1e-6)


def test_noise_pattern_is_fixed_by_pattern_seed(tiny_shapes, shapes_classifier):
    a = _env(tiny_shapes, shapes_classifier)
    b = _env(tiny_shapes, shapes_classifier, pattern_seed=0)
    c = _env(tiny_shapes, shapes_classifier, pattern_seed=1)
    assert a.config.pattern_seed == 0 and c.config.pattern_seed == 1
    torch.testing.assert_close(a.core.step_signs, b.core.step_signs)
    assert not torch.equal(a.core.step_signs, c.core.step_signs)
    # Fixed across episodes (a policy can learn it) and the same in the vector environment.
    before = a.core.step_signs.clone()
    a.reset(seed=3)
    a.step(1)
    a.reset(seed=4)
    torch.testing.assert_close(a.core.step_signs, before)
    vec = gym.make_vec(ENV, num_envs=2, classifier=shapes_classifier, data=tiny_shapes, **NOISE)
    try:
        torch.testing.assert_close(vec.unwrapped.core.step_signs, before)
    finally:
        vec.close()
    # Same seed, same steps: the same perturbations.
    perturbations = []
    for env in (a, b, c):
        env.reset(seed=0)
        obs, *_ = env.step(7)
        perturbations.append(obs["perturbation"])
    np.testing.assert_array_equal(perturbations[0], perturbations[1])
    assert not np.array_equal(perturbations[0], perturbations[2])


def test_uniform_pattern_keeps_the_plain_cell_step(tiny_shapes, shapes_classifier):
    env = _env(tiny_shapes, shapes_classifier, step_pattern="uniform", pattern_seed=5)
    assert env.config.step_pattern == "uniform"
    assert torch.equal(env.core.step_signs, torch.ones_like(env.core.step_signs))
    obs, _ = env.reset(seed=0)
    image = obs["image"]
    obs, *_ = env.step(5)
    cell = _cell(env, 5)
    np.testing.assert_allclose(
        obs["perturbation"], np.clip(image + STEP * cell, 0.0, 1.0) - image, atol=1e-6
    )
    assert (obs["perturbation"] >= 0).all()
    assert obs["perturbation"][:, cell].max() == pytest.approx(STEP)
    # The default is "uniform".
    default = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=2)
    assert default.config.step_pattern == "uniform"
    assert torch.equal(default.core.step_signs, torch.ones_like(default.core.step_signs))


def test_observe_original(tiny_shapes, shapes_classifier):
    env = _env(tiny_shapes, shapes_classifier, observe_original=True)
    space = env.observation_space["original_attribution"]
    assert space == gym.spaces.Box(-1.0, 1.0, (32, 32), np.float32)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    original = obs["original_attribution"].copy()
    np.testing.assert_array_equal(original, obs["attribution"])
    moved = False
    rng = np.random.default_rng(0)
    terminated = False
    while not terminated:
        obs, _, terminated, _, info = env.step(int(rng.integers(env.action_space.n)))
        assert env.observation_space.contains(obs)
        np.testing.assert_array_equal(obs["original_attribution"], original)
        moved |= not np.array_equal(obs["attribution"], original)
    assert moved and info["shift"] > 0
    # A new episode on another image observes that image's map.
    obs, _ = env.reset(seed=1, options={"image_index": 3})
    np.testing.assert_array_equal(obs["original_attribution"], obs["attribution"])
    # Off by default.
    plain = _env(tiny_shapes, shapes_classifier)
    assert "original_attribution" not in plain.observation_space.spaces
    assert "original_attribution" not in plain.reset(seed=0)[0]


def test_observe_original_in_the_vector_env(tiny_shapes, shapes_classifier):
    vec = gym.make_vec(
        ENV,
        num_envs=2,
        classifier=shapes_classifier,
        data=tiny_shapes,
        observe_original=True,
        **NOISE,
    )
    try:
        obs, _ = vec.reset(seed=0)
        assert obs["original_attribution"].shape == (2, 32, 32)
        np.testing.assert_array_equal(obs["original_attribution"], obs["attribution"])
        original = obs["original_attribution"].copy()
        obs, *_ = vec.step(np.array([0, 20]))
        np.testing.assert_array_equal(obs["original_attribution"], original)
    finally:
        vec.close()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"step_pattern": "bogus"}, ValueError, r"step_pattern.*uniform.*noise"),
        ({"step_pattern": "noise", "action_type": "continuous"}, ValueError, "step_pattern"),
        ({"pattern_seed": -1}, (ValueError, TypeError), "pattern_seed"),
        ({"pattern_seed": 1.5}, (ValueError, TypeError), "pattern_seed"),
        ({"pattern_seed": True}, (ValueError, TypeError), "pattern_seed"),
        ({"observe_original": "yes"}, (TypeError, ValueError), "observe_original"),
    ],
)
def test_validation(kwargs, error, match, tiny_shapes, shapes_classifier):
    with pytest.raises(error, match=match):
        AttributionAttackEnv(
            classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=2, **kwargs
        )
    with pytest.raises(error, match=match):
        AttributionAttackConfig.from_kwargs(
            classifier=shapes_classifier, data=tiny_shapes, **kwargs
        )


def test_uniform_continuous_is_still_allowed(tiny_shapes, shapes_classifier):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=2,
                               action_type="continuous", step_pattern="uniform", observe_original=True)  # fmt: skip
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs) and "original_attribution" in obs


def test_checkers_pass_with_noise_and_original(tiny_shapes):
    kwargs = dict(
        step_pattern="noise",
        observe_original=True,
        grid=4,
        step_size=8 / 255,
        budget=4,
        data=tiny_shapes,
    )
    env = gym.make(ENV, **kwargs)
    rendered = gym.make(ENV, render_mode="rgb_array", **kwargs)
    try:
        gym_check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=True)
        rendered.reset(seed=0)
        rendered.step(3)
        frame = rendered.render()
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8
    finally:
        env.close()
        rendered.close()


def test_episode_kwargs_round_trip(tiny_shapes, shapes_classifier):
    source = AttributionAttackEnv(
        classifier=shapes_classifier, data=tiny_shapes, grid=(2, 4), budget=5, step_size=3 / 255, step_pattern="noise",
        pattern_seed=7, observe_original=True, dissimilarity="lens_recall", k=50, w=2, map_transform="none",
        on_label_change="penalize", label_change_penalty=-0.5, observe_action_mask=True, epsilon=6 / 255,
    )  # fmt: skip
    kwargs = source.config.episode_kwargs()
    assert not {"classifier", "data", "explainer", "epsilon"} & set(kwargs)
    assert kwargs["step_pattern"] == "noise" and kwargs["pattern_seed"] == 7
    assert kwargs["observe_original"] is True and kwargs["budget"] == 5
    assert kwargs["step_size"] == pytest.approx(3 / 255) and tuple(kwargs["grid"]) == (2, 4)
    rebuilt = gym.make(ENV, data=tiny_shapes, **kwargs)
    try:
        assert rebuilt.unwrapped.config.episode_kwargs() == kwargs
        torch.testing.assert_close(rebuilt.unwrapped.core.step_signs, source.core.step_signs)
        assert set(rebuilt.observation_space.spaces) == set(source.observation_space.spaces)
    finally:
        rebuilt.close()
    # Through JSON (how agent files store environment arguments): the grid comes back as a list.
    through_json = json.loads(json.dumps(kwargs))
    again = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, **through_json)
    assert again.config.episode_kwargs() == kwargs
    # The defaults round-trip too, and every key is an environment argument.
    plain = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes)
    defaults = plain.config.episode_kwargs()
    assert set(defaults) <= set(default_config())
    again = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, **defaults)
    assert again.config.episode_kwargs() == defaults


def test_pattern_start_begins_at_the_projected_pattern(tiny_shapes, shapes_classifier):
    """``start="pattern"``: the episode starts at ``epsilon * step_signs`` (projected into [0, 1]),
    explained, with its shift as the initial shift; ``info["explanations"]`` counts both maps."""
    env = _env(tiny_shapes, shapes_classifier, start="pattern", observe_original=True)
    obs, info = env.reset(seed=0)
    image, signs = obs["image"], env.core.step_signs.cpu().numpy()
    if info["label_kept"] and np.abs(obs["perturbation"]).max() > 0:
        expected = np.clip(image + STEP * signs, 0.0, 1.0) - image
        np.testing.assert_allclose(obs["perturbation"], expected, atol=1e-6)
        assert info["explanations"] == 2 and info["queries"] >= 3
        assert info["initial_shift"] == pytest.approx(info["shift"]) == pytest.approx(info["kept_shift"])
        assert not np.array_equal(obs["attribution"], obs["original_attribution"])
    # A step that reverts nothing adds one explanation; the return telescopes from the start's shift.
    start_shift = info["kept_shift"]
    total = 0.0
    for _ in range(env.config.budget):
        obs, reward, terminated, _, info = env.step(0)
        total += reward
    assert info["explanations"] <= 2 + env.config.budget
    assert total == pytest.approx(info["kept_shift"] - start_shift)


def test_zero_start_is_the_default_and_start_is_checked(tiny_shapes, shapes_classifier):
    assert default_config()["start"] == "zero"
    env = _env(tiny_shapes, shapes_classifier)
    obs, info = env.reset(seed=0)
    assert not obs["perturbation"].any() and info["explanations"] == 1 and info["shift"] == 0.0
    with pytest.raises(ValueError, match="start"):
        _env(tiny_shapes, shapes_classifier, start="random")


@pytest.mark.parametrize("reward", ["kept", "best"])
def test_reward_modes_telescope(tiny_shapes, shapes_classifier, reward):
    """``reward="kept"``: the return is the last kept shift minus the start's; ``"best"``: the best
    kept shift of the episode minus the start's, and no step is ever punished."""
    env = _env(tiny_shapes, shapes_classifier, reward=reward, budget=6)
    _, info = env.reset(seed=3)
    rng = np.random.default_rng(0)
    rewards, kept = [], [info["kept_shift"]]
    for _ in range(env.config.budget):
        _, r, _, _, info = env.step(int(rng.integers(env.action_space.n)))
        rewards.append(r)
        kept.append(info["kept_shift"])
    assert info["best_shift"] == pytest.approx(max(kept))
    if reward == "best":
        assert min(rewards) >= 0.0
        assert sum(rewards) == pytest.approx(max(kept) - kept[0])
    else:
        assert sum(rewards) == pytest.approx(kept[-1] - kept[0])
    with pytest.raises(ValueError, match="reward"):
        _env(tiny_shapes, shapes_classifier, reward="last")
