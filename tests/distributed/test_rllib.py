"""RLlib training (``train --engine ray``): masked PPO never takes a masked action, resumes from its
checkpoint, and its module is a Policy of the policy explainer.

One tiny run (grid 2: four cells, so an unmasked policy would re-choose a cell on most steps) on
the shared local Ray instance of ``ray_local``; every Ray test shares one xdist worker.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

pytestmark = pytest.mark.xdist_group("ray")
pytest.importorskip("ray.rllib", reason="the RLlib tests need the [ray] extra")

from ray.rllib.core.columns import Columns  # noqa: E402
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec  # noqa: E402

from saliency_gym.distributed.rllib_module import SaliencyMaskingTorchModule, apply_action_mask  # noqa: E402
from saliency_gym.distributed.rllib_policy import load_rllib_policy, module_path  # noqa: E402
from saliency_gym.distributed.rllib_training import train_rllib  # noqa: E402

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"
ENV_KWARGS = {"grid": 2}
TINY = {"train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1}
RUN = dict(num_env_runners=1, num_envs_per_env_runner=4, env_kwargs=ENV_KWARGS, hyperparameters=TINY,
           checkpoint_every=64, eval_every=0, eval_images=4, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def trained(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("rllib") / "run"
    result = train_rllib(ENV, 128, out=out, **RUN)
    return out, result


def test_masked_ppo_never_takes_a_masked_action(trained):
    out, result = trained
    assert result.num_timesteps >= 128 and result.iterations == 2
    # Counted by an EnvRunner callback on every sampled step (the env flags a re-chosen cell).
    assert result.invalid_actions == 0
    assert len(result.evaluations) == 1 and 0.0 <= result.evaluations[0]["insertion_auc"] <= 1.0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tb")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "eval/insertion_auc",
        "eval/deletion_auc",
        "rollout/ep_rew_mean",
        "train/policy_loss",
    } <= tags
    assert events.Scalars("eval/insertion_auc")[-1].value == pytest.approx(
        result.evaluations[0]["insertion_auc"]
    )
    # The trained module's exploration distribution gives masked cells probability 0 exactly.
    module = RLModule.from_checkpoint(str(module_path(out)))
    venv = gym.make_vec(
        ENV,
        num_envs=4,
        vectorization_mode="vector_entry_point",
        observe_action_mask=True,
        **ENV_KWARGS,
    )
    obs, _ = venv.reset(seed=3)
    torch.manual_seed(0)
    checked = 0
    for _ in range(10):  # past episode ends: terminal observations have no allowed cell
        batch = {key: torch.as_tensor(value) for key, value in obs.items()}
        with torch.no_grad():
            logits = module.forward_exploration({Columns.OBS: batch})[Columns.ACTION_DIST_INPUTS]
        dist = module.get_exploration_action_dist_cls().from_logits(logits)
        actions = dist.sample().numpy()
        probs = torch.softmax(logits, dim=1).numpy()
        allowed = obs["action_mask"] > 0.5
        live = allowed.any(axis=1)
        assert np.all(allowed[live, actions[live]])
        checked += int(live.sum())
        assert np.all(probs[live][~allowed[live]] == 0.0)
        obs, _, _, _, info = venv.step(actions)
        assert not np.any(info["invalid_action"][live])
    venv.close()
    assert (
        checked == 32
    )  # two episodes of four steps per env (the NEXT_STEP reset steps are not live)


def test_checkpoint_resumes(trained):
    out, first = trained
    last = json.loads((out / "checkpoints" / "last.json").read_text())
    assert last["path"] == "step_128" and (out / "checkpoints" / "step_128").is_dir()
    result = train_rllib(ENV, 192, out=out, resume=True, **RUN)
    # One more iteration from step 128: the algorithm's own step counter was restored with it.
    assert result.iterations == 1 and result.num_timesteps == 192
    assert result.checkpoint == out / "checkpoints" / "step_192" and result.invalid_actions == 0
    # RLlib's seeding switched torch's deterministic mode on in this process; training restores it
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError, match="settings differ"):
        train_rllib(ENV, 256, out=out, resume=True, **{**RUN, "env_kwargs": {"grid": 3}})


def test_module_is_a_policy_of_the_policy_explainer(trained, shapes_classifier):
    from saliency_gym.agents import PolicyExplainer
    from saliency_gym.data import ShapesSource

    out, _ = trained
    policy, settings = load_rllib_policy(out, device="cpu")
    assert settings["mode"] == "reveal" and settings["grid"] == (2, 2) and settings["env_id"] == ENV
    images = ShapesSource("test", n=3).arrays().images
    explainer = PolicyExplainer(
        shapes_classifier, out
    )  # the run folder, through the explainer's hook
    explanation = explainer.explain(images)
    assert explanation.maps.shape == (3, 32, 32) and explainer.grid == (2, 2)
    core = explainer.rollout(torch.as_tensor(images), torch.as_tensor(explanation.targets))
    assert np.all(np.sort(core.order, axis=1) == np.arange(4))  # every cell exactly once


def test_module_masks_attack_actions_and_rejects_bad_spaces():
    env = gym.make(
        "saliency_gym/AttributionAttack-Shapes-v0", grid=2, budget=2, observe_action_mask=True
    )
    spec = RLModuleSpec(module_class=SaliencyMaskingTorchModule, observation_space=env.observation_space,
                        action_space=env.action_space, model_config={"grid": (2, 2)})  # fmt: skip
    module = spec.build()
    assert module.actions_per_cell == 2
    obs, _ = env.reset(seed=0)
    batch = {key: torch.as_tensor(value)[None] for key, value in obs.items()}
    batch["action_mask"] = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    out = module.forward_train({Columns.OBS: batch})
    logits = out[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (1, 8) and torch.all(
        logits[0, [1, 3, 4, 5, 6]] == torch.finfo(logits.dtype).min
    )
    assert module.compute_values({Columns.OBS: batch}, out[Columns.EMBEDDINGS]).shape == (1,)
    no_mask = gym.spaces.Dict(
        {k: v for k, v in env.observation_space.spaces.items() if k != "action_mask"}
    )
    with pytest.raises(ValueError, match="observe_action_mask=True"):
        RLModuleSpec(module_class=SaliencyMaskingTorchModule, observation_space=no_mask,
                     action_space=env.action_space, model_config={"grid": (2, 2)}).build()  # fmt: skip
    fully_masked = apply_action_mask(torch.zeros(1, 3), torch.zeros(1, 3))
    assert torch.isfinite(
        torch.log_softmax(fully_masked, dim=1)
    ).all()  # no NaN at terminal observations


def test_train_rllib_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown saliency-gym environment"):
        train_rllib("CartPole-v1", 10, out=tmp_path / "a")
    with pytest.raises(ValueError, match="unknown PPO hyperparameter"):
        train_rllib(ENV, 10, out=tmp_path / "b", hyperparameters={"learning_rate": 1e-3})
    with pytest.raises(ValueError, match="observe_action_mask"):
        train_rllib(ENV, 10, out=tmp_path / "c", env_kwargs={"observe_action_mask": False})
    with pytest.raises(ValueError, match="discrete actions"):
        train_rllib("saliency_gym/AttributionAttack-Shapes-v0", 10, out=tmp_path / "d",
                    env_kwargs={"action_type": "continuous", "grid": 2})  # fmt: skip
    with pytest.raises(FileNotFoundError, match="resume"):
        train_rllib(ENV, 10, out=tmp_path / "e", resume=True)
