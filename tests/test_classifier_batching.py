"""FrozenClassifier batching and device options: the automatic batch size and its memory budget,
the channels_last / mixed-precision plumbing (checked on a CPU, where amp is a no-op), the optimised
path on a ResNet-like module, and the explainers and metrics that follow the classifier's cap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier
from saliency_gym.baselines import RISEExplainer, generate_rise_masks
from saliency_gym.baselines import rise as rise_module
from saliency_gym.classifier import AUTO_MAX_BATCH_CPU, AUTO_MEMORY_BUDGET_CPU
from saliency_gym.metrics.insertion_deletion import insertion_curve


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (
            None
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNetLike(nn.Module):
    """A small residual network (stem, two stages of basic blocks, global pooling, linear head)."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.stages = nn.Sequential(_Block(8, 8, 1), _Block(8, 16, 2))
        self.head = nn.Linear(16, classes)
        for module in self.modules():  # non-trivial batch-norm statistics, so folding them matters
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.data.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean((2, 3)))


def _resnet_classifier(**kwargs) -> FrozenClassifier:
    kwargs.setdefault("device", "cpu")
    return FrozenClassifier(ResNetLike(), (3, 24, 24), **kwargs)


# ---------------------------------------------------------------------------------- auto batch
def test_auto_is_the_default_and_is_lazy_and_uncounted():
    clf = _resnet_classifier()
    assert clf.auto_batch_size and clf.activation_bytes_per_image is None
    size = clf.batch_size  # runs the probe pass
    assert 1 <= size <= AUTO_MAX_BATCH_CPU
    assert clf.activation_bytes_per_image is not None and clf.activation_bytes_per_image > 0
    assert clf.queries == 0  # the probe is not a query
    assert clf.batch_size == size  # measured once


def test_auto_batch_size_follows_the_memory_budget():
    generous = _resnet_classifier()
    size = generous.batch_size
    per_image = generous.activation_bytes_per_image
    assert per_image is not None
    assert size == min(AUTO_MAX_BATCH_CPU, AUTO_MEMORY_BUDGET_CPU // per_image)
    # The CPU estimate covers at least the image and the stem's output (8 x 12 x 12 floats).
    assert per_image >= 3 * 24 * 24 * 4 + 8 * 12 * 12 * 4
    tight = _resnet_classifier(memory_budget=5 * per_image + 1)
    assert tight.batch_size == 5
    tiny = _resnet_classifier(memory_budget=1)
    assert tiny.batch_size == 1  # never below one image
    x = torch.rand(7, 3, 24, 24)
    torch.testing.assert_close(tight.probs(x), generous.probs(x), atol=1e-6, rtol=1e-5)
    assert tight.queries == 7


def test_auto_batch_size_grows_with_the_image_size():
    small = FrozenClassifier(ResNetLike(), (3, 24, 24), device="cpu", memory_budget=1 << 22)
    large = FrozenClassifier(ResNetLike(), (3, 96, 96), device="cpu", memory_budget=1 << 22)
    assert large.activation_bytes_per_image is None
    assert large.batch_size < small.batch_size
    assert large.activation_bytes_per_image > 10 * small.activation_bytes_per_image


def test_auto_batch_for_a_plain_callable():
    clf = FrozenClassifier(
        lambda x: x.flatten(1)[:, :3], (1, 4, 4), device="cpu", memory_budget=20480
    )
    assert (
        clf.batch_size == 10
    )  # 32 x the input image (64 bytes) per image: 2048 bytes, budget 20480
    assert clf.probs(torch.rand(25, 1, 4, 4)).shape == (25, 3)


def test_auto_batch_for_a_scripted_module():
    traced = torch.jit.trace(ResNetLike().eval(), torch.rand(1, 3, 24, 24))
    clf = FrozenClassifier(traced, (3, 24, 24), device="cpu")
    assert clf.batch_size >= 1
    assert clf.activation_bytes_per_image == 32 * 3 * 24 * 24 * 4  # hooks do not fire: heuristic
    assert clf.probs(torch.rand(3, 3, 24, 24)).shape == (3, 5)


def test_explicit_batch_size_and_setter():
    clf = _resnet_classifier(batch_size=3)
    assert (
        clf.batch_size == 3 and not clf.auto_batch_size and clf.activation_bytes_per_image is None
    )
    clf.batch_size = "auto"
    assert clf.auto_batch_size and clf.batch_size >= 1
    clf.batch_size = 4
    assert clf.batch_size == 4 and not clf.auto_batch_size


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"batch_size": "big"}, ValueError, "'auto'"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"memory_budget": 0}, ValueError, "memory_budget"),
        ({"memory_budget": "1GB"}, TypeError, "memory_budget"),
        ({"amp": "yes"}, TypeError, "amp"),
        ({"channels_last": 1}, TypeError, "channels_last"),
        ({"amp_dtype": torch.float64}, ValueError, "amp_dtype"),
    ],
)
def test_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        _resnet_classifier(**options)


def test_moving_re_measures_the_auto_batch_size():
    clf = _resnet_classifier()
    assert clf.batch_size >= 1
    clf.to("cpu")
    assert clf.activation_bytes_per_image is None  # measured again on the next use
    assert clf.batch_size >= 1 and clf.activation_bytes_per_image is not None
    fixed = _resnet_classifier(batch_size=6).to("cpu")
    assert fixed.batch_size == 6


# ---------------------------------------------------------------------------------- device options
def test_amp_and_channels_last_default_off_on_cpu():
    clf = _resnet_classifier()
    assert not clf.amp and not clf.channels_last
    forced = _resnet_classifier(amp=True, amp_dtype=torch.float16)
    assert not forced.amp  # autocast only ever runs on CUDA
    assert forced.amp_dtype == torch.float16
    x = torch.rand(4, 3, 24, 24)
    torch.testing.assert_close(forced.probs(x), clf.probs(x))


@pytest.mark.parametrize("optimize", [False, True])
def test_channels_last_on_cpu_gives_the_same_values(optimize):
    eager = _resnet_classifier()
    cl = _resnet_classifier(channels_last=True, optimize=optimize)
    assert cl.channels_last
    assert cl.module.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(5, 3, 24, 24)
    out = cl.probs(x)
    assert out.dtype == torch.float32 and out.shape == (5, 5)
    torch.testing.assert_close(out, eager.probs(x), atol=1e-5, rtol=1e-4)
    x.requires_grad_(True)
    cl.logits(x)[:, 0].sum().backward()  # gradients flow through the channels_last module
    assert x.grad is not None and x.grad.dtype == torch.float32


def test_channels_last_survives_a_move():
    clf = _resnet_classifier(channels_last=True).to("cpu")
    assert clf.module.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = _resnet_classifier().to("cpu")
    assert plain.module.stem[0].weight.is_contiguous()


def test_amp_on_cuda_is_float32_out():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    clf = _resnet_classifier(device="cuda")
    assert clf.amp and clf.channels_last
    out = clf.probs(torch.rand(3, 3, 24, 24))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.sum(1), torch.ones(3, device=out.device))


# ---------------------------------------------------------------------------------- optimised path
def test_optimized_resnet_like_equals_eager():
    eager = _resnet_classifier(batch_size=8)
    fast = _resnet_classifier(batch_size=8, optimize=True)
    x = torch.rand(19, 3, 24, 24)
    with torch.inference_mode():
        reference = eager.module(x)
        traced = fast._inference_model()(x)
    assert traced is not None and not isinstance(
        fast._inference_model(), ResNetLike
    )  # really traced
    torch.testing.assert_close(traced, reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.probs(x), eager.probs(x), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------- followers
def test_rise_follows_the_classifier_batch_size():
    clf = _resnet_classifier(batch_size=16)
    assert clf.num_classes == 5  # known before recording (reading it costs one uncounted image)
    calls: list[int] = []
    original = clf.probs

    def recording(images, **kwargs):
        calls.append(len(images))
        return original(images, **kwargs)

    clf.probs = recording  # type: ignore[method-assign]
    explainer = RISEExplainer(clf, n_masks=40, grid_size=3, seed=0)
    assert explainer.batch_size is None
    explainer.explain(torch.rand(2, 3, 24, 24), [0, 1])
    assert max(calls) <= 16 and sum(calls) == 80


def test_rise_streamed_masks_equal_cached_masks(monkeypatch):
    clf = _resnet_classifier(batch_size=7)
    images = torch.rand(3, 3, 24, 24)
    cached = RISEExplainer(clf, n_masks=30, grid_size=4, seed=3)
    expected = cached.explain(images, [0, 1, 2]).maps
    monkeypatch.setattr(rise_module, "MASK_CACHE_BYTES", 0)  # too small: masks built per chunk
    monkeypatch.setattr(rise_module, "MASK_BLOCK", 4)  # blocks of max(7, 4) masks: 7, 7, 7, 7, 2
    streamed = RISEExplainer(clf, n_masks=30, grid_size=4, seed=3)
    maps = streamed.explain(images, [0, 1, 2]).maps
    assert streamed._masks is None  # never materialised in full
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    # Chunks of the draws are exactly the slices of the full set.
    full = generate_rise_masks(30, 4, 0.5, 24, 24, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(streamed._draws_for(24, 24).build(7, 19), full[7:19], atol=0, rtol=0)
    torch.testing.assert_close(streamed.masks, full, atol=0, rtol=0)


def test_insertion_curve_follows_the_classifier_batch_size():
    clf = _resnet_classifier(batch_size=5)
    assert clf.num_classes == 5  # known before recording (reading it costs one uncounted image)
    calls: list[int] = []
    original = clf.probs

    def recording(images, **kwargs):
        calls.append(len(images))
        return original(images, **kwargs)

    clf.probs = recording  # type: ignore[method-assign]
    result = insertion_curve(
        clf, torch.rand(2, 3, 24, 24), np.random.rand(2, 24, 24), [0, 1], step=96
    )
    assert result.curves.shape == (2, 7)
    assert max(calls) <= 5 and sum(calls) == 14
