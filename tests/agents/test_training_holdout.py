"""Training on data without splits (an image folder) evaluates on a seeded held-out part of it
instead of switching evaluation off (issue 24)."""

from __future__ import annotations

import numpy as np
import pytest

import saliency_gym
from saliency_gym.agents.agent_training import HeldOutPart, holdout_split, train_agent
from saliency_gym.data import ArraySource

ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    """Hyperparameters small enough to train in seconds."""
    import yaml

    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    small = {"n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 2}
    path.write_text(yaml.safe_dump({"default": {"maskable_ppo": small}}))
    return path


def _mine(n: int) -> ArraySource:
    arrays = saliency_gym.load_dataset("shapes", "train", n=n).arrays()
    names = saliency_gym.load_dataset("shapes", "train", n=1).class_names
    return ArraySource(arrays.images, arrays.labels, class_names=names, name="mine")


def test_holdout_split_is_seeded_stratified_and_disjoint():
    data = _mine(40)
    train, held = holdout_split(data)
    again_train, again_held = holdout_split(data)
    assert isinstance(held, HeldOutPart) and np.array_equal(held.indices, again_held.indices)
    assert not set(train.indices) & set(held.indices) and len(train) + len(held) == 40
    labels = data.arrays().labels
    for c in np.unique(labels):  # 20% of every class, rounded
        assert (labels[held.indices] == c).sum() == round(0.2 * (labels == c).sum())
    np.testing.assert_array_equal(held.get_batch([0]).images[0], data[int(held.indices[0])].image)
    assert not np.array_equal(holdout_split(data, seed=1)[1].indices, held.indices)
    assert holdout_split(_mine(1)) is None


def test_folder_labels_come_from_the_class_folders_without_reading_images(tmp_path, monkeypatch):
    from saliency_gym.agents import agent_training
    from saliency_gym.data.adapters import ImageFolderSource
    from tests.models.test_model_files import write_pngs

    for cls in ("a", "b"):
        write_pngs(tmp_path / cls, 5, size=(8, 8))
    source = ImageFolderSource(tmp_path, size=8)
    monkeypatch.setattr(source, "__getitem__", lambda i: pytest.fail("an image was decoded"))
    np.testing.assert_array_equal(agent_training._labels_without_images(source), [0] * 5 + [1] * 5)


def test_training_on_data_without_splits_evaluates_on_the_held_out_part(tmp_path, tiny_config):
    data = _mine(20)
    result = train_agent(ENV, "maskable_ppo", 16, out=tmp_path / "run", config=tiny_config,
                         env_kwargs={"grid": 2, "data": data}, n_envs=4, checkpoint_every=0, eval_every=8,
                         eval_images=3, progress=False)  # fmt: skip
    assert result.evaluations and 0 <= result.evaluations[-1]["insertion_auc"] <= 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = [p for p in (tmp_path / "run" / "tb").rglob("events.out.tfevents.*")]
    tags = set()
    for path in events:
        acc = EventAccumulator(str(path))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert "eval/insertion_auc" in tags and "eval/deletion_auc" in tags


def test_too_little_data_still_says_evaluation_is_off(tmp_path, tiny_config):
    with pytest.warns(UserWarning, match="evaluation is off.*'mine'"):
        result = train_agent(ENV, "maskable_ppo", 16, out=tmp_path / "run", config=tiny_config,
                             env_kwargs={"grid": 2, "data": _mine(2)}, n_envs=4, checkpoint_every=0, eval_every=8,
                             progress=False)  # fmt: skip
    assert result.evaluations == []
