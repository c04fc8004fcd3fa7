import numpy as np
import pytest
import torch

from saliency_gym import load_classifier, shipped_classifiers
from saliency_gym.checkpoint import CheckpointError, atomic_save, safe_load
from saliency_gym.classifier_training import ClassifierTrainingConfig, train_classifier
from saliency_gym.data import load_dataset
from saliency_gym.models import SmallCNN
from saliency_gym.zoo import load_classifier_module, save_classifier


def test_shipped_classifiers_present_and_small():
    from saliency_gym.zoo import CHECKPOINT_DIR

    assert {"shapes", "digits"} <= set(shipped_classifiers())
    for name in shipped_classifiers():
        assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < 2_000_000


@pytest.mark.parametrize("name, floor", [("shapes", 0.97), ("digits", 0.95)])
def test_shipped_classifier_accuracy(name, floor):
    clf = load_classifier(name, device="cpu")
    data = load_dataset(clf.meta["dataset"], "test", n=400 if name == "shapes" else None).arrays()
    assert clf.accuracy(data.images, data.labels) >= floor
    assert clf.meta["meta"]["test_accuracy"] >= floor


def test_load_by_path_and_softplus_override(tmp_path, shapes_classifier):
    model, info = load_classifier_module("shapes", activation="softplus")
    assert model.config["activation"] == "softplus"
    path = save_classifier(model, tmp_path / "mine.pt", class_names=info["class_names"],
                           input_shape=tuple(info["input_shape"]), dataset="shapes")
    clf = load_classifier(path, device="cpu")
    assert clf.class_names == shapes_classifier.class_names


def test_missing_and_unknown_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="unknown classifier 'imagenet'"):
        load_classifier("imagenet")
    with pytest.raises(FileNotFoundError):
        load_classifier(tmp_path / "nope.pt")


def test_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_classifier(bad)
    wrong = atomic_save({"format": "other"}, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="format"):
        load_classifier(wrong)
    # A checkpoint with a pickled object is refused by weights_only loading.
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "saliency_gym.classifier/v1", "obj": _Evil()}, pickled)
    with pytest.raises(CheckpointError):
        safe_load(pickled)


class _Evil:
    def __reduce__(self):
        return (print, ("executed!",))


def test_mismatched_state_dict(tmp_path):
    model = SmallCNN(3, 5)
    path = save_classifier(model, tmp_path / "m.pt", class_names=list("abcde"), input_shape=(3, 32, 32), dataset="shapes")
    payload = safe_load(path)
    payload["arch_kwargs"]["width"] = 8
    atomic_save(payload, path)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_classifier(path)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("boom")

    target = tmp_path / "ckpt.pt"
    atomic_save({"a": 1}, target)
    with pytest.raises(RuntimeError):
        atomic_save({"a": Unsaveable()}, target)
    assert safe_load(target) == {"a": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_training_is_reproducible(tmp_path):
    cfg = ClassifierTrainingConfig(dataset="digits", epochs=1, seed=5, width=4)
    a = train_classifier(cfg, out=tmp_path / "a.pt", progress=False)
    b = train_classifier(cfg, out=tmp_path / "b.pt", progress=False)
    sa, sb = safe_load(tmp_path / "a.pt")["state_dict"], safe_load(tmp_path / "b.pt")["state_dict"]
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key])
    assert a["test_accuracy"] == b["test_accuracy"]
    with pytest.raises(ValueError, match="dataset"):
        train_classifier(ClassifierTrainingConfig(dataset="mnist"), out=tmp_path / "c.pt")
    np.testing.assert_allclose(a["test_accuracy"], load_classifier(tmp_path / "a.pt").meta["meta"]["test_accuracy"])
