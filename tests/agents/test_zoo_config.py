"""The shipped hyperparameters are rl-baselines3-zoo files that rl-zoo's own loader and trainer read."""

from __future__ import annotations

import argparse
import subprocess
import sys

import gymnasium as gym
import pytest
import yaml

from saliency_gym.agents.algorithms import ALGORITHMS, load_hyperparameters, split_hyperparameters
from saliency_gym.agents.extractors import SaliencyCNN
from saliency_gym.agents.sb3_policies import class_path

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"
ZOO_ALGOS = [name for name, spec in ALGORITHMS.items() if spec.zoo_name != "ppo_mask"]  # rl-zoo has no MaskablePPO


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_every_block_has_the_zoo_keys_and_our_policy(algo):
    spec = ALGORITHMS[algo]
    data = yaml.safe_load(spec.config_file.read_text())
    assert "default" in data
    for env_id, block in data.items():
        assert env_id == "default" or env_id in gym.registry, env_id
        assert isinstance(block["n_timesteps"], int) and block["n_timesteps"] > 0
        assert block["policy"] == class_path(spec.policy_class) and block["normalize"] is False
        # plain data only: rl-zoo passes a policy_kwargs mapping through unchanged
        assert "features_extractor_class" not in block.get("policy_kwargs", {})


@pytest.mark.parametrize("algo", sorted(ALGORITHMS))
def test_the_policy_built_from_the_file_has_our_extractor(algo):
    spec = ALGORITHMS[algo]
    _, env_kwargs, kwargs = split_hyperparameters(load_hyperparameters(ENV, algo))
    env = gym.make(ENV, **env_kwargs)
    policy = spec.policy_class(env.observation_space, env.action_space, lambda _: 0.0, **kwargs["policy_kwargs"])
    assert isinstance(policy.features_extractor if algo != "dqn" else policy.q_net.features_extractor, SaliencyCNN)


def test_user_files_layer_in_either_form(tmp_path):
    zoo = tmp_path / "zoo.yml"
    zoo.write_text(yaml.safe_dump({ENV: {"n_steps": 8, "policy_kwargs": {"features_extractor_kwargs": {"channels": 8}}}}))
    params = load_hyperparameters(ENV, "ppo", zoo)
    assert params["n_steps"] == 8 and params["gamma"] == 1.0  # the rest from the shipped file
    assert params["policy_kwargs"]["features_extractor_kwargs"] == {"features_dim": 128, "channels": 8}
    nested = tmp_path / "nested.yml"
    nested.write_text(yaml.safe_dump({"default": {"ppo": {"n_steps": 4}}, ENV: {"ppo": {"n_epochs": 2}}}))
    params = load_hyperparameters(ENV, "ppo", nested)
    assert (params["n_steps"], params["n_epochs"]) == (4, 2)
    # another id's block does not apply; `default` does when the id has none
    other = tmp_path / "other.yml"
    other.write_text(yaml.safe_dump({"default": {"n_steps": 2}, "saliency_gym/SaliencyMask-Shapes-v0": {"n_steps": 3}}))
    assert load_hyperparameters(ENV, "ppo", other)["n_steps"] == 2


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"policy": "MultiInputPolicy"}, "does not fit ppo"),
        ({"normalize": True}, "normalize must be false"),
        ({"env_wrapper": "gymnasium.wrappers.TimeLimit"}, "only act in rl-zoo's trainer"),
        ({"n_steps": 8, "bogus": [1]}, None),
    ],
)
def test_keys_our_trainer_cannot_honour_are_refused(tmp_path, block, message):
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({"default": block}))
    if message is None:  # an unknown algorithm argument is SB3's to refuse, at model construction
        assert load_hyperparameters(ENV, "ppo", path)["bogus"] == [1]
        return
    with pytest.raises(ValueError, match=message):
        load_hyperparameters(ENV, "ppo", path)


rl_zoo3 = pytest.importorskip("rl_zoo3", reason="rl-zoo's own loader (the [zoo] extra)")


@pytest.mark.parametrize("algo", ZOO_ALGOS)
def test_rl_zoo_reads_our_file(algo, tmp_path):
    """rl-zoo's ExperimentManager parses each file and resolves the policy to our class."""
    from rl_zoo3.exp_manager import ExperimentManager

    spec = ALGORITHMS[algo]
    manager = ExperimentManager(argparse.Namespace(), spec.zoo_name, ENV, str(tmp_path), config=str(spec.config_file))
    hyperparams, _ = manager.read_hyperparameters()
    hyperparams, _, _, _ = manager._preprocess_hyperparams(hyperparams)
    assert hyperparams["policy"] is spec.policy_class
    assert manager.env_kwargs == {"grid": 8} and manager.n_timesteps == 64000 and not manager.normalize


def test_rl_zoo_trains_a_ppo_agent_from_our_file(tmp_path):
    """`python -m rl_zoo3.train ... -conf agents/configs/ppo.yml` trains; PPO.load opens the result."""
    from stable_baselines3 import PPO

    spec = ALGORITHMS["ppo"]
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", ENV, "--gym-packages", "saliency_gym",
           "-conf", str(spec.config_file), "-n", "64", "--env-kwargs", "grid:2",
           "-params", "n_envs:2", "n_steps:32", "batch_size:32", "n_epochs:1",
           "-f", str(tmp_path), "--eval-freq", "-1", "--seed", "0", "--device", "cpu", "--verbose", "0"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (archive,) = tmp_path.glob("ppo/*/saliency_gym-SaliencyReveal-Shapes-v0.zip")
    model = PPO.load(archive, device="cpu")
    assert type(model.policy) is spec.policy_class and isinstance(model.policy.features_extractor, SaliencyCNN)
    assert model.observation_space["image"].shape == gym.make(ENV, grid=2).observation_space["image"].shape
