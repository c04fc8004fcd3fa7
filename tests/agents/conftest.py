"""Fixtures shared by the agent tests."""

import pytest
import yaml


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """Hyperparameters small enough to train in seconds."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    small = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 2}
    config = {"default": {"maskable_ppo": small, "ppo": small, "recurrent_ppo": small,
                          "a2c": {"n_envs": 4, "n_steps": 8},
                          "dqn": {"n_envs": 4, "learning_starts": 16, "buffer_size": 1000, "batch_size": 16, "train_freq": 4}}}
    path.write_text(yaml.safe_dump(config))
    return path
