import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks

from saliency_gym.envs import SaliencyRevealEnv
from saliency_gym.envs.saliency import SaliencyMaskVectorEnv, SaliencyRevealVectorEnv
from saliency_gym.envs.sb3 import SaliencySB3VecEnv


def test_make_vec_uses_native_vector_env():
    venv = gym.make_vec("saliency_gym/SaliencyReveal-Shapes-v0", num_envs=3, grid=4, split="test")
    assert isinstance(venv.unwrapped, SaliencyRevealVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = venv.reset(seed=0)
    assert obs["canvas"].shape == (3, 3, 32, 32) and venv.action_space.shape == (3,)
    assert info["queries"].tolist() == [2, 2, 2]


def test_one_batched_query_per_step(tiny_shapes, shapes_classifier):
    venv = SaliencyRevealVectorEnv(num_envs=4, classifier=shapes_classifier, data=tiny_shapes, grid=2)
    venv.reset(seed=0)
    calls = []
    original = shapes_classifier.probs
    shapes_classifier.probs = lambda x, **kw: calls.append(len(x)) or original(x, **kw)
    try:
        for t in range(6):  # the episode of 4 cells ends at t=3; t=4 autoresets all four in the same query
            venv.step(np.array([t % 4] * 4))
    finally:
        del shapes_classifier.probs
    assert len(calls) == 6
    assert calls[:4] == [4, 4, 4, 4] and calls[4] == 8  # reset: images (predicted target) + substrates


@pytest.mark.parametrize("vector_cls, mode", [(SaliencyRevealVectorEnv, "reveal"), (SaliencyMaskVectorEnv, "mask")])
def test_vector_env_equals_single_envs(vector_cls, mode, tiny_shapes, shapes_classifier):
    """Sub-env i seeded with seed + i plays the same episodes as a single env seeded so, across
    autoresets, invalid actions and a stochastic substrate."""
    n, steps = 3, 14
    kwargs = dict(classifier=shapes_classifier, data=tiny_shapes, grid=2, budget=3, substrate="noise")
    venv = vector_cls(num_envs=n, **kwargs)
    singles = [gym.make(f"saliency_gym/Saliency{mode.capitalize()}-v0", **kwargs) for _ in range(n)]
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 4, size=(steps, n))
    v_obs, v_info = venv.reset(seed=10)
    s_obs = [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)]
    needs_reset = [False] * n
    for t in range(steps):
        for i in range(n):
            for key in v_obs:
                np.testing.assert_allclose(v_obs[key][i], s_obs[i][key], atol=1e-6)
        v_obs, v_rew, v_term, v_trunc, v_info = venv.step(actions[t])
        for i, env in enumerate(singles):
            if needs_reset[i]:
                s_obs[i], _ = env.reset()
                needs_reset[i] = False
                assert v_rew[i] == 0.0 and not v_term[i]
                continue
            s_obs[i], reward, term, trunc, info = env.step(int(actions[t, i]))
            assert v_rew[i] == pytest.approx(reward, abs=1e-6)
            assert (v_term[i], v_trunc[i]) == (term, trunc)
            assert v_info["score"][i] == pytest.approx(info["score"], abs=1e-5)
            if term or trunc:
                np.testing.assert_allclose(v_info["saliency"][i], info["saliency"], atol=1e-5)
                needs_reset[i] = True


def test_same_step_autoreset(tiny_shapes):
    venv = SaliencyRevealVectorEnv(num_envs=2, data=tiny_shapes, grid=2, budget=2, autoreset_mode="SameStep")
    venv.reset(seed=0)
    venv.step(np.array([0, 1]))
    obs, _, term, _, info = venv.step(np.array([1, 2]))
    assert term.all() and info["_final_obs"].all()
    assert info["final_obs"][0]["chosen"].sum() == 2
    assert obs["chosen"].sum() == 0  # already reset
    with pytest.raises(ValueError, match="NEXT_STEP or SAME_STEP"):
        SaliencyRevealVectorEnv(num_envs=2, data=tiny_shapes, autoreset_mode="Disabled")


def test_vector_bad_arguments(tiny_shapes):
    with pytest.raises(ValueError, match="num_envs"):
        SaliencyRevealVectorEnv(num_envs=0, data=tiny_shapes)
    venv = SaliencyRevealVectorEnv(num_envs=2, data=tiny_shapes, grid=2)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.array([0, 0]))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="2 integer cell id"):
        venv.step(np.array([0, 0, 0]))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        venv.step(np.array([0, 4]))
    with pytest.raises(ValueError, match="list of 2 seeds"):
        venv.reset(seed=[1, 2, 3])


def test_sb3_adapter_contract():
    venv = SaliencySB3VecEnv("saliency_gym/SaliencyMask-Shapes-v0", num_envs=2, grid=2, budget=2, split="test")
    venv.seed(3)
    obs = venv.reset()
    assert obs["image"].shape == (2, 3, 32, 32)
    masks = get_action_masks(venv)
    assert masks.shape == (2, 4) and masks.all()
    venv.step(np.array([0, 1]))
    assert get_action_masks(venv)[0].tolist() == [False, True, True, True]
    obs, rewards, dones, infos = venv.step(np.array([1, 2]))
    assert dones.all() and rewards.dtype == np.float32
    assert infos[0]["terminal_observation"]["chosen"].sum() == 2 and obs["chosen"].sum() == 0
    assert "saliency" in infos[1] and infos[1]["TimeLimit.truncated"] is False
    assert venv.get_attr("render_mode") == [None, None]
    with pytest.raises(ValueError, match="saliency-gym environment"):
        SaliencySB3VecEnv("CartPole-v1")


def test_maskable_ppo_trains_on_adapter():
    venv = SaliencySB3VecEnv("saliency_gym/SaliencyReveal-Shapes-v0", num_envs=4, grid=2, split="test")
    model = MaskablePPO("MultiInputPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    obs = venv.reset()
    actions, _ = model.predict(obs, action_masks=get_action_masks(venv), deterministic=True)
    assert actions.shape == (4,)


def test_single_env_renders(tiny_shapes):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=4, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[1] > 3 * frame.shape[0] - 50
    venv = SaliencyRevealVectorEnv(num_envs=2, data=tiny_shapes, grid=4, render_mode="rgb_array")
    venv.reset(seed=0)
    assert len(venv.render()) == 2
