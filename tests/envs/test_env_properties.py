"""Property-based checks: no sequence of actions, valid or not, corrupts an episode's state."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saliency_gym.envs.saliency import SaliencyMaskVectorEnv, SaliencyRevealVectorEnv

_ENVS: dict[str, object] = {}


def _env(mode: str, tiny_shapes):
    if mode not in _ENVS:
        cls = SaliencyRevealVectorEnv if mode == "reveal" else SaliencyMaskVectorEnv
        _ENVS[mode] = cls(num_envs=2, data=tiny_shapes, grid=3, budget=5, max_steps=7)
    return _ENVS[mode]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.sampled_from(["reveal", "mask"]),
    seed=st.integers(0, 2**16),
    actions=st.lists(st.lists(st.integers(-2, 10), min_size=2, max_size=2), min_size=1, max_size=20),
)
def test_random_action_sequences_keep_state_consistent(mode, seed, actions, tiny_shapes):
    venv = _env(mode, tiny_shapes)
    venv.reset(seed=seed)
    core = venv.core
    for pair in actions:
        before = {k: v.copy() for k, v in core.observation().items()}
        chosen_before = core.chosen.copy()
        if min(pair) < 0 or max(pair) >= 9:
            with pytest.raises(ValueError):
                venv.step(np.array(pair))
            after = core.observation()
            for key in before:  # a rejected action changes nothing
                np.testing.assert_array_equal(before[key], after[key])
            continue
        obs, rewards, term, trunc, info = venv.step(np.array(pair))
        for i in range(2):
            if info["invalid_action"][i]:
                assert chosen_before[i, pair[i]] and rewards[i] < 0
        # Invariants after every step, for every sub-environment.
        assert (core.chosen.sum(axis=1) == core.n_chosen).all()
        assert (core.n_chosen <= 5).all() and (core.steps <= 7).all()
        expected = torch.where(
            torch.from_numpy(core.chosen)[:, core.cfg.grid.index_tensor()].unsqueeze(1),
            core.substrates if mode == "mask" else core.images,
            core.images if mode == "mask" else core.substrates,
        )
        np.testing.assert_allclose(core.canvas_np, expected.numpy(), atol=1e-6)
        for i in range(2):
            k = core.n_chosen[i]
            assert sorted(core.order[i, :k].tolist()) == np.flatnonzero(core.chosen[i]).tolist()
        assert venv.observation_space.contains(obs)
