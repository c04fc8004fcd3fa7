import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier


def _linear_classifier(**kwargs) -> FrozenClassifier:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    kwargs.setdefault("device", "cpu")
    return FrozenClassifier(model, (3, 4, 4), **kwargs)


def test_batching_equals_one_by_one():
    clf = _linear_classifier(batch_size=3)
    x = torch.rand(10, 3, 4, 4)
    batched = clf.probs(x)
    single = torch.stack([clf.probs(x[i]) for i in range(10)])
    torch.testing.assert_close(batched, single)
    assert torch.allclose(batched.sum(1), torch.ones(10))


def test_query_counting():
    clf = _linear_classifier(batch_size=4)
    clf.probs(torch.rand(10, 3, 4, 4))
    clf.predict(np.random.rand(2, 3, 4, 4).astype(np.float32))
    clf.logits(torch.rand(5, 3, 4, 4))
    clf.probs(torch.rand(3, 3, 4, 4), count=False)
    assert clf.queries == 17
    assert clf.reset_queries() == 17 and clf.queries == 0


def test_frozen_parameters_and_inference_mode():
    clf = _linear_classifier()
    assert all(not p.requires_grad for p in clf.module.parameters())
    assert not clf.module.training
    out = clf.probs(torch.rand(2, 3, 4, 4))
    assert out.is_inference()


def test_logits_are_differentiable_wrt_inputs():
    clf = _linear_classifier()
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    clf.logits(x)[:, 1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_probs_output_and_normalize():
    model = lambda x: torch.softmax(x.flatten(1)[:, :2], dim=1)  # noqa: E731
    clf = FrozenClassifier(model, (1, 2, 1), outputs="probs", device="cpu")
    x = torch.tensor([[[[0.2], [0.9]]]])
    torch.testing.assert_close(clf.probs(x), model(x))
    norm = FrozenClassifier(model, (1, 2, 1), outputs="probs", normalize=([0.5], [0.5]), device="cpu")
    torch.testing.assert_close(norm.probs(x), model((x - 0.5) / 0.5))
    assert clf.num_classes == 2


def test_device_argument():
    clf = _linear_classifier()
    assert clf.device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            _linear_classifier(device="cuda")
        assert FrozenClassifier(nn.Flatten(), (1, 1, 2), device=None).device.type == "cpu"
    with pytest.raises(ValueError, match="not a valid torch device"):
        _linear_classifier(device="tpu9")


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.rand(2, 3, 5, 5), ValueError, r"per-image shape"),
        (torch.rand(3, 4), ValueError, r"\(N, C, H, W\)"),
        (torch.randint(0, 255, (2, 3, 4, 4), dtype=torch.uint8), TypeError, "uint8"),
        (torch.rand(2, 3, 4, 4) * 3, ValueError, r"\[0, 1\]"),
        (torch.full((1, 3, 4, 4), float("nan")), ValueError, "NaN"),
        ([[0.5]], TypeError, "numpy array or torch tensor"),
    ],
)
def test_bad_inputs(bad, error, match):
    with pytest.raises(error, match=match):
        _linear_classifier().probs(bad)


def test_bad_construction():
    with pytest.raises(TypeError, match="callable"):
        FrozenClassifier(42, (1, 2, 2))
    with pytest.raises(ValueError, match="input_shape"):
        FrozenClassifier(nn.Flatten(), (2, 2))
    with pytest.raises(ValueError, match="outputs"):
        FrozenClassifier(nn.Flatten(), (1, 2, 2), outputs="scores")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        FrozenClassifier(nn.Flatten(), (1, 2, 2), batch_size=0)
    wrong = FrozenClassifier(nn.Flatten(), (1, 2, 2), num_classes=3, device="cpu")
    with pytest.raises(ValueError, match="expected 3 classes"):
        wrong.probs(torch.rand(1, 1, 2, 2))


def test_optimized_inference_matches_eager():
    from saliency_gym import load_classifier

    fast = load_classifier("shapes", device="cpu", optimize=True)
    eager = load_classifier("shapes", device="cpu", optimize=False)
    x = torch.rand(37, 3, 32, 32)
    torch.testing.assert_close(fast.probs(x), eager.probs(x), atol=1e-5, rtol=1e-4)
    assert fast.queries == 37
    with pytest.raises(TypeError, match="optimize=True needs an nn.Module"):
        FrozenClassifier(lambda x: x.flatten(1), (1, 2, 1), optimize=True)


class _Untraceable(nn.Module):
    """Refuses TorchScript tracing; with ``branch`` its forward also has data-dependent control
    flow, which ``torch.fx`` symbolic tracing cannot follow either."""

    def __init__(self, branch: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * 4 * 4, 3)
        self.branch = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing():
            raise RuntimeError("this model cannot be traced")
        logits = self.linear(x.flatten(1))
        if self.branch and logits.sum() > 0:  # data-dependent: needs a concrete value
            return logits * 2
        return logits


@pytest.mark.parametrize(("branch", "fallback"), [(False, "torch.fx"), (True, "eager module")])
def test_optimize_warns_when_tracing_fails_and_stays_correct(branch, fallback):
    model = _Untraceable(branch)
    fast = FrozenClassifier(model, (3, 4, 4), device="cpu", optimize=True)
    eager = FrozenClassifier(_Untraceable(branch), (3, 4, 4), device="cpu")
    x = torch.rand(5, 3, 4, 4)
    with pytest.warns(UserWarning, match=f"TorchScript tracing of _Untraceable failed.*cannot be traced.*{fallback}"):
        probs = fast.probs(x)
    torch.testing.assert_close(probs, eager.probs(x))
    assert fast.queries == 5
