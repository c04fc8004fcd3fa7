"""The ``observe_action_mask`` option: an ``"action_mask"`` observation entry equal to ``action_masks()``.

RLlib's action-masking modules read the mask from the observation; the option adds it for both
families, their single and native vector environments, and changes nothing when off.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

SALIENCY = "saliency_gym/SaliencyReveal-v0"
MASK = "saliency_gym/SaliencyMask-v0"
ATTACK = "saliency_gym/AttributionAttack-v0"
SMALL = {SALIENCY: dict(grid=3), MASK: dict(grid=3, budget=4), ATTACK: dict(grid=3, budget=3)}


@pytest.mark.parametrize("env_id", [SALIENCY, MASK, ATTACK])
def test_checker_passes_and_mask_is_action_masks(env_id, tiny_shapes, shapes_classifier):
    env = gym.make(
        env_id,
        classifier=shapes_classifier,
        data=tiny_shapes,
        observe_action_mask=True,
        **SMALL[env_id],
    )
    gym_check_env(env.unwrapped, skip_render_check=True)
    n_actions = env.action_space.n
    assert env.observation_space["action_mask"] == gym.spaces.Box(
        0.0, 1.0, (n_actions,), np.float32
    )
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        assert env.observation_space.contains(obs)
        expected = env.unwrapped.action_masks()
        assert expected.shape == (n_actions,) and expected.dtype == bool
        np.testing.assert_array_equal(obs["action_mask"], expected.astype(np.float32))
        obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(expected))))
        if terminated or truncated:
            obs, _ = env.reset()
    if env_id != ATTACK:  # a chosen cell is masked from then on
        assert obs["action_mask"].sum() == n_actions - 3


@pytest.mark.parametrize("env_id", [SALIENCY, ATTACK])
def test_vector_env_mask_follows_autoreset(env_id, tiny_shapes, shapes_classifier):
    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", classifier=shapes_classifier,
                        data=tiny_shapes, observe_action_mask=True, **SMALL[env_id])  # fmt: skip
    assert (
        venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    )  # what RLlib expects
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(12):  # past the ends of episodes: NEXT_STEP resets restore the full mask
        assert venv.observation_space.contains(obs)
        masks = venv.unwrapped.action_masks()
        np.testing.assert_array_equal(obs["action_mask"], masks.astype(np.float32))
        actions = np.array([rng.choice(np.flatnonzero(row)) if row.any() else 0 for row in masks])
        obs, *_ = venv.step(actions)
    venv.close()


def test_off_by_default_and_validated(tiny_shapes, shapes_classifier):
    env = gym.make(SALIENCY, classifier=shapes_classifier, data=tiny_shapes, grid=3)
    obs, _ = env.reset(seed=0)
    assert "action_mask" not in obs and "action_mask" not in env.observation_space.spaces
    with pytest.raises(TypeError, match="observe_action_mask must be a bool"):
        gym.make(
            SALIENCY, classifier=shapes_classifier, data=tiny_shapes, observe_action_mask="yes"
        )
    with pytest.raises(ValueError, match="cell_sign"):
        gym.make(
            ATTACK,
            classifier=shapes_classifier,
            data=tiny_shapes,
            action_type="continuous",
            observe_action_mask=True,
        )


def test_single_matches_vector_sub_env(tiny_shapes, shapes_classifier):
    """Sub-env 0 of a vector env reset with seed s sees the masks of a single env reset with s."""
    kwargs = dict(classifier=shapes_classifier, data=tiny_shapes, observe_action_mask=True, grid=3)
    env = gym.make(SALIENCY, **kwargs)
    venv = gym.make_vec(SALIENCY, num_envs=2, vectorization_mode="vector_entry_point", **kwargs)
    obs, _ = env.reset(seed=5)
    vobs, _ = venv.reset(seed=5)
    for action in (4, 0, 8):
        np.testing.assert_array_equal(obs["action_mask"], vobs["action_mask"][0])
        obs, *_ = env.step(action)
        vobs, *_ = venv.step(np.array([action, action]))
    np.testing.assert_array_equal(obs["action_mask"], vobs["action_mask"][0])
