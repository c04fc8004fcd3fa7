"""Clear errors for wrong inputs: every boundary fails loudly, naming what was wrong and what is allowed."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import saliency_gym  # noqa: F401 - registers the environments
from saliency_gym import FrozenClassifier
from saliency_gym.checkpoint import CheckpointError, atomic_save, safe_load
from saliency_gym.data import ShapesSource
from saliency_gym.envs.episodes import check_reset_options
from saliency_gym.metrics.sparsity import gini_index
from saliency_gym.substrates import ConstantSubstrate, ImageSubstrate, make_substrate

SHAPES_ENV = "saliency_gym/SaliencyReveal-Shapes-v0"


@pytest.fixture(scope="module")
def tiny() -> ShapesSource:
    return ShapesSource("test", n=8)


def _flat(k: int = 3):
    """A callable model returning the first ``k`` pixels of each image as its scores."""
    return lambda x: x.flatten(1)[:, :k]


# --------------------------------------------------------------------- 1. classifier outputs
def test_nan_outputs_raise_naming_model_and_count():
    def model(x):
        out = x.flatten(1)[:, :3].clone()
        out[0, 1] = float("nan")
        out[1, 2] = float("inf")
        return out

    clf = FrozenClassifier(model, (1, 2, 2), device="cpu", name="broken")
    with pytest.raises(ValueError, match=r"'broken'.*2 non-finite"):
        clf.probs(torch.rand(2, 1, 2, 2))
    # the differentiable path is checked as well
    clf = FrozenClassifier(model, (1, 2, 2), device="cpu", name="broken")
    with pytest.raises(ValueError, match="non-finite"):
        clf.logits(torch.rand(2, 1, 2, 2))


def test_nan_outputs_raise_on_the_unvalidated_hot_path():
    clf = FrozenClassifier(lambda x: torch.full((x.shape[0], 3), float("nan")), (1, 2, 2), device="cpu")
    with pytest.raises(ValueError, match="3 non-finite"):
        clf.probs(torch.rand(1, 1, 2, 2), validate=False)


def test_logits_declared_as_probs_raise():
    clf = FrozenClassifier(lambda x: 5 * x.flatten(1)[:, :3] - 1, (1, 2, 2), outputs="probs", device="cpu")
    with pytest.raises(ValueError, match=r"do not look like probabilities \(row sums.*pass outputs='logits'"):
        clf.probs(torch.rand(4, 1, 2, 2))


def test_unnormalised_probs_raise():
    # values in [0, 1] but rows that do not sum to 1
    clf = FrozenClassifier(_flat(), (1, 2, 2), outputs="probs", device="cpu")
    with pytest.raises(ValueError, match="row sums"):
        clf.probs(torch.full((2, 1, 2, 2), 0.9))


def test_probs_declared_as_logits_warn():
    model = lambda x: torch.softmax(5 * x.flatten(1)[:, :3], dim=1)  # noqa: E731
    clf = FrozenClassifier(model, (1, 2, 2), device="cpu")
    with pytest.warns(UserWarning, match="look like probabilities.*outputs='probs'"):
        clf.probs(torch.rand(4, 1, 2, 2))
    # a single row proves nothing: no warning
    clf = FrozenClassifier(model, (1, 2, 2), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.probs(torch.rand(1, 1, 2, 2))


def test_good_outputs_are_silent_and_only_first_batches_are_checked():
    calls = {"n": 0}

    def model(x):
        calls["n"] += 1
        out = 5 * x.flatten(1)[:, :3] - 1
        if calls["n"] > 2:  # after the checked passes, outputs are trusted (the hot path)
            out = out.clone()
            out[:, 0] = float("nan")
        return out

    clf = FrozenClassifier(model, (1, 2, 2), device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            assert torch.isfinite(clf.probs(torch.rand(3, 1, 2, 2))).all()
    clf.probs(torch.rand(3, 1, 2, 2))  # third pass: not checked, so no error
    probs = FrozenClassifier(lambda x: torch.softmax(x.flatten(1)[:, :3], 1), (1, 2, 2), outputs="probs", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probs.probs(torch.rand(5, 1, 2, 2))


def test_shipped_classifier_passes_the_checks(shapes_classifier):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = FrozenClassifier(shapes_classifier.model, shapes_classifier.input_shape, device="cpu")
        clf.probs(torch.rand(4, *shapes_classifier.input_shape))


# --------------------------------------------------------------------- 2. substrates
@pytest.mark.parametrize(
    "substrate",
    [np.zeros((3, 32, 32), np.float32), np.float32(0.5), np.float64(0.5), np.array(0.25), torch.tensor(0.5)],
    ids=["image", "float32", "float64", "0d-array", "0d-tensor"],
)
def test_numpy_substrates_run_a_step(substrate):
    env = gym.make(SHAPES_ENV, substrate=substrate)
    env.reset(seed=0)
    _, reward, *_ = env.step(0)
    assert np.isfinite(reward)
    env.close()


def test_make_substrate_numpy_scalars():
    assert isinstance(make_substrate(np.float32(0.5)), ConstantSubstrate)
    assert make_substrate(np.float32(0.5)).value == 0.5
    assert make_substrate(np.int64(1)).value == 1.0
    assert isinstance(make_substrate(np.zeros((1, 4, 4), np.float32)), ImageSubstrate)
    for bad in (True, np.bool_(False), np.array(True), np.array("mean")):
        with pytest.raises(TypeError):
            make_substrate(bad)
    with pytest.raises(ValueError):
        make_substrate(np.float32(1.5))


# --------------------------------------------------------------------- 3. reset options
@pytest.mark.parametrize(
    "options, error, match",
    [
        ([("image_index", 1)], TypeError, "dict or None"),
        ("image_index", TypeError, "dict or None"),
        ({"image_idx": 1}, ValueError, r"unknown reset option.*image_idx.*image_index"),
        ({"image_index": True}, TypeError, "bool"),
        ({"image_index": 1.5}, TypeError, "image_index"),
        ({"image_index": 1.0}, TypeError, "image_index"),
        ({"image_index": "3"}, TypeError, "string"),
        ({"image_index": [1.5]}, TypeError, "ints"),
        ({"image_index": [True]}, TypeError, "bool"),
        ({"image_index": ["1"]}, TypeError, "ints"),
        ({"image_index": [1, 2]}, ValueError, "one per sub-environment"),
        ({"image_index": [[1]]}, ValueError, "one per sub-environment"),
        ({"image_index": -1}, ValueError, r"\[0, 7\]"),
        ({"image_index": 8}, ValueError, r"\[0, 7\]"),
    ],
)
def test_bad_reset_options_single_env(tiny, options, error, match):
    env = gym.make("saliency_gym/SaliencyReveal-v0", data=tiny, grid=4)
    with pytest.raises(error, match=match):
        env.reset(options=options)
    env.close()


def test_good_reset_options_single_env(tiny):
    env = gym.make("saliency_gym/SaliencyReveal-v0", data=tiny, grid=4)
    for options, expected in [
        ({"image_index": 5}, 5),
        ({"image_index": np.int64(2)}, 2),
        ({"image_index": [3]}, 3),
        ({"image_index": np.array([4])}, 4),
        ({"image_index": torch.tensor(6)}, 6),
    ]:
        _, info = env.reset(options=options)
        assert info["image_index"] == expected
    env.reset(options={})
    env.reset(options={"image_index": None})
    env.close()


def test_reset_options_vector_env(tiny):
    env = gym.make_vec("saliency_gym/SaliencyReveal-v0", num_envs=2, data=tiny, grid=4)
    _, info = env.reset(options={"image_index": [1, 6]})
    assert list(info["image_index"]) == [1, 6]
    _, info = env.reset(options={"image_index": 3})
    assert list(info["image_index"]) == [3, 3]
    _, info = env.reset(options={"image_index": np.array([7, 0])})
    assert list(info["image_index"]) == [7, 0]
    for options, error in [
        ({"image_index": [1]}, ValueError),
        ({"image_index": [1, 2, 3]}, ValueError),
        ({"image_index": [1, 2.5]}, TypeError),
        ({"image_index": [1, True]}, TypeError),
        ({"image_index": [1, 8]}, ValueError),
        ({"seed": 3}, ValueError),
        (["image_index"], TypeError),
    ]:
        with pytest.raises(error):
            env.reset(options=options)
    env.close()


def test_check_reset_options_directly():
    assert check_reset_options(None, 2, 5) is None
    assert check_reset_options({}, 2, 5) is None
    np.testing.assert_array_equal(check_reset_options({"image_index": 4}, 3, 5), [4, 4, 4])
    with pytest.raises(ValueError, match="allowed keys: \\['image_index'\\]"):
        check_reset_options({"foo": 1}, 1, 5)


# --------------------------------------------------------------------- 4. gini on empty batches
def test_gini_index_empty_batch():
    out = gini_index(np.zeros((0, 4, 4)))
    assert out.shape == (0,) and out.dtype == np.float64
    assert gini_index(torch.zeros(0, 3, 3)).shape == (0,)
    np.testing.assert_allclose(gini_index(np.ones((2, 2, 2))), [0.0, 0.0])


# --------------------------------------------------------------------- 5. untrusted checkpoints
class _Arbitrary:
    """Stands for any pickled object a weights-only load refuses."""

    def __init__(self) -> None:
        self.payload = 1


def test_untrusted_checkpoint_message_never_suggests_weights_only_false(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "saliency-gym-classifier", "obj": _Arbitrary()}, path)
    with pytest.raises(CheckpointError) as info:
        safe_load(path)
    message = str(info.value)
    assert "weights_only=False" not in message
    assert "weights_only" not in message.replace("weights-only", "")
    assert "refuses" in message and "not written by saliency-gym" in message
    assert "_Arbitrary" in message  # what was refused is still named
    assert info.value.__cause__ is None and info.value.__suppress_context__  # torch's advice is not chained


def test_garbage_and_truncated_checkpoints_still_say_corrupt(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt") as info:
        safe_load(garbage)
    assert "weights_only=False" not in str(info.value)
    good = atomic_save({"format": "x", "w": torch.zeros(4)}, tmp_path / "good.pt")
    assert safe_load(good, expected_format="x")["w"].shape == (4,)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="corrupt"):
        safe_load(truncated)
