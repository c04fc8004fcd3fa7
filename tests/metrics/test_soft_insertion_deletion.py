"""Soft insertion/deletion (ID-ExpO): differentiable, convergent to the hard metrics, validated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from saliency_gym import FrozenClassifier
from saliency_gym.metrics.curves import auc, pixel_order
from saliency_gym.metrics.insertion_deletion import deletion_curve, insertion_curve
from saliency_gym.metrics.soft_insertion_deletion import (
    feature_deletion_curve,
    feature_insertion_curve,
    hard_insertion_deletion,
    hard_order,
    soft_insertion_deletion,
    soft_masks,
    soft_steps,
)


class TinyCNN(nn.Module):
    """A small smooth CNN (softplus) over 1x6x6 images with three classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.act = nn.Softplus()
        self.head = nn.Linear(3 * 36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)).flatten(1))


def tiny_mlp(features: int = 5, classes: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(features, 8), nn.Tanh(), nn.Linear(8, classes))


@pytest.fixture()
def image_case():
    torch.manual_seed(0)
    model = TinyCNN().double()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    e = torch.randn(3, 6, 6, dtype=torch.float64)  # distinct values: no ties at block boundaries
    return model, x, e, torch.tensor([0, 1, 2])


# ---------------------------------------------------------------------------------------- steps and masks
def test_soft_steps_counts():
    assert soft_steps(36, 6)[0] == 6 and soft_steps(36, 6)[1].tolist() == [6, 12, 18, 24, 30, 36]
    step, counts = soft_steps(36, 6, fraction=0.5)
    assert step == 6 and counts.tolist() == [6, 12, 18]
    step, counts = soft_steps(10, 4)  # 10 // 4 = 2 features per step, the hard metric's step
    assert step == 2 and counts.tolist() == [2, 4, 6, 8]
    with pytest.raises(ValueError, match="n_steps"):
        soft_steps(10, 11)
    with pytest.raises(ValueError, match="fraction"):
        soft_steps(10, 2, fraction=0.0)
    with pytest.raises(TypeError, match="n_steps"):
        soft_steps(10, 2.0)


def test_soft_masks_shape_order_and_limits():
    e = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    alphas = soft_masks(e, np.array([1, 2, 4]), temperature=1000.0)
    assert alphas.shape == (1, 3, 4)
    assert torch.allclose(alphas[0, 0], torch.tensor([1.0, 0, 0, 0]))  # the top feature only
    assert torch.allclose(alphas[0, 1], torch.tensor([1.0, 0, 1, 0]))
    assert torch.equal(alphas[0, 2], torch.ones(4))  # all features: exactly 1
    soft = soft_masks(e, np.array([2]), temperature=1.0)[0, 0]
    assert soft[0] > soft[2] > soft[1] > soft[3]  # monotone in e
    assert abs(float(soft[2] + soft[1]) - 1.0) < 1e-6  # symmetric about the threshold
    # scale-free: multiplying the map by a constant leaves the masks unchanged
    assert torch.allclose(soft_masks(5 * e, np.array([2]), 1.0), soft_masks(e, np.array([2]), 1.0))
    # a constant map is one tie: index order (the hard rule), or 1/2 everywhere without the tie rule
    constant = soft_masks(torch.zeros(1, 4), np.array([2]), temperature=1000.0)
    assert torch.allclose(constant[0, 0], torch.tensor([1.0, 1, 0, 0]))
    symmetric = soft_masks(torch.zeros(1, 4), np.array([2]), temperature=50.0, tie_break=0.0)
    assert torch.allclose(symmetric, torch.full_like(symmetric, 0.5))
    with pytest.raises(ValueError, match="temperature"):
        soft_masks(e, np.array([1]), temperature=0.0)
    with pytest.raises(ValueError, match="counts"):
        soft_masks(e, np.array([5]), temperature=1.0)
    with pytest.raises(ValueError, match="tie_break"):
        soft_masks(e, np.array([1]), temperature=1.0, tie_break=-1.0)


def test_ties_follow_the_hard_order():
    """Tied values at a step boundary go in index order, as in the hard metric's pixel order."""
    e = torch.tensor([[0.0, 2.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 3.0, 3.0, 0.0]])
    counts = np.array([1, 2, 3, 4, 5])
    order = hard_order(e)
    assert order.tolist() == pixel_order(e.numpy().reshape(2, 2, 3)).tolist()
    hard = torch.zeros(2, len(counts), 6)
    for i in range(2):
        for j, c in enumerate(counts):
            hard[i, j, order[i, :c]] = 1.0
    np.testing.assert_allclose(soft_masks(e, counts, temperature=1e3).numpy(), hard.numpy(), atol=1e-6)
    # maps (N, H, W) are ordered row-major
    np.testing.assert_allclose(soft_masks(e.reshape(2, 2, 3), counts, temperature=1e3).reshape(2, 5, 6).numpy(), hard.numpy(), atol=1e-6)
    # without the tie rule, the tied features at a boundary stay at 1/2 at any temperature
    assert float(soft_masks(e, counts, temperature=1e6, tie_break=0.0)[0, 2, 0]) == 0.5


def test_scale_is_continuous_when_ties_break():
    """A 1e-12 jitter breaks every tie of a map with a large tied region; the soft losses barely
    move at the training temperature (the mean of the non-zero gaps would change by ~2x)."""
    torch.manual_seed(4)
    model = TinyCNN().double()
    x = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    e = torch.relu(torch.randn(3, 6, 6, dtype=torch.float64))  # about half the pixels tied at 0
    assert int((e == 0).sum()) > 30
    jittered = e + 1e-12 * torch.rand(e.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = soft_insertion_deletion(model, x, e, [0, 1, 2], n_steps=6)
    b = soft_insertion_deletion(model, x, jittered, [0, 1, 2], n_steps=6)
    np.testing.assert_allclose(a.insertion.detach().numpy(), b.insertion.detach().numpy(), atol=1e-3)
    np.testing.assert_allclose(a.deletion.detach().numpy(), b.deletion.detach().numpy(), atol=1e-3)


# ---------------------------------------------------------------------------------------- differentiability
def test_gradcheck_images(image_case):
    model, x, e, y = image_case

    def losses(inputs, maps):
        out = soft_insertion_deletion(model, inputs, maps, y[:2], temperature=2.0, n_steps=4)
        return out.insertion, out.deletion

    assert torch.autograd.gradcheck(losses, (x[:2].clone().requires_grad_(True), e[:2].clone().requires_grad_(True)), fast_mode=True)


def test_gradcheck_detached_thresholds_inputs_and_parameters(image_case):
    """The authors' variant (thresholds and scale constant) is differentiable in the inputs and
    the parameters; its gradient in the map differs from the exact one."""
    model, x, e, y = image_case

    def losses(inputs, conv_weight):
        out = soft_insertion_deletion(
            lambda z: model.head(model.act(nn.functional.conv2d(z, conv_weight, model.conv.bias, padding=1)).flatten(1)),
            inputs, e[:2], y[:2], temperature=2.0, n_steps=4, detach_thresholds=True,
        )  # fmt: skip
        return out.insertion, out.deletion

    weight = model.conv.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(losses, (x[:2].clone().requires_grad_(True), weight), fast_mode=True)
    grads = []
    for detach in (True, False):
        maps = e.clone().requires_grad_(True)
        soft_insertion_deletion(model, x, maps, y, n_steps=4, detach_thresholds=detach).total.backward()
        grads.append(maps.grad)
    assert not torch.allclose(grads[0], grads[1])


def test_gradcheck_tables_direct_form():
    torch.manual_seed(1)
    model = tiny_mlp().double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    e = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)

    def losses(inputs, maps):
        out = soft_insertion_deletion(model, inputs, maps, [0, 1, 2, 0], n_steps=5, deletion_form="direct", baseline=0.0)
        return out.insertion, out.deletion

    assert torch.autograd.gradcheck(losses, (x, e), fast_mode=True)


def test_gradients_reach_parameters_and_explanations(image_case):
    model, x, e, y = image_case
    e = e.clone().requires_grad_(True)
    soft_insertion_deletion(model, x, e, y, n_steps=4).total.backward()
    assert e.grad is not None and e.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# ---------------------------------------------------------------------------------------- convergence
def test_converges_to_hard_image_metrics(image_case):
    model, x, e, y = image_case
    model, x, e = model.float(), x.float(), e.float()
    classifier = FrozenClassifier(model, (1, 6, 6), device="cpu")
    n_steps, fraction = 6, 0.5
    step, counts = soft_steps(36, n_steps, fraction)
    hard_ins = insertion_curve(classifier, x, e, y, step=step, substrate="zeros").curves[:, 1 : len(counts) + 1]
    hard_del = deletion_curve(classifier, x, e, y, step=step, substrate="zeros").curves[:, 1 : len(counts) + 1]
    errors = []
    for tau in (1.0, 10.0, 100.0, 1e4):
        soft = soft_insertion_deletion(classifier, x, e, y, temperature=tau, n_steps=n_steps, fraction=fraction)
        errors.append(
            max(np.abs(soft.insertion_probs.detach().numpy() - hard_ins).max(), np.abs(soft.deletion_probs.detach().numpy() - hard_del).max())
        )
    assert errors[-1] < 1e-4
    assert errors[0] > 10 * errors[-1] and errors == sorted(errors, reverse=True)
    hard = hard_insertion_deletion(classifier, x, e, y, n_steps=n_steps, fraction=fraction)
    np.testing.assert_allclose(soft.insertion.detach().numpy(), hard["insertion"], atol=1e-4)
    np.testing.assert_allclose(soft.deletion.detach().numpy(), hard["deletion"], atol=1e-4)


def test_converges_to_hard_metrics_on_gradcam_maps():
    """Grad-CAM maps of the shipped shapes classifier have hundreds of tied zeros; the soft curves
    still converge to the hard ones (every point, and the AUC to < 0.01) at large temperatures."""
    from saliency_gym.baselines.differentiable_explainers import make_differentiable_explainer
    from saliency_gym.data import ShapesSource
    from saliency_gym.zoo import load_classifier_module

    model, _ = load_classifier_module("shapes")
    model.eval()
    batch = ShapesSource(split="test", n=12, seed=0).arrays()
    x, y = torch.as_tensor(batch.images), torch.as_tensor(batch.labels)
    explainer = make_differentiable_explainer("gradcam", model, create_graph=False)
    e = explainer(x, y).detach()
    keep = (e.reshape(len(e), -1) == 0).sum(1).argsort(descending=True)[:3]  # the most ties
    x, y, e = x[keep], y[keep], e[keep]
    assert int((e.reshape(3, -1) == 0).sum(1).min()) > 100
    classifier = FrozenClassifier(model, tuple(x.shape[1:]), device="cpu")
    hard = hard_insertion_deletion(classifier, x, e, y, n_steps=32)
    hard_ins, hard_del = hard["insertion_result"].curves, hard["deletion_result"].curves
    for tau in (100.0, 1e6):
        with torch.no_grad():
            soft = soft_insertion_deletion(model, x, e, y, temperature=tau, n_steps=32)
        ins = np.concatenate([hard_ins[:, :1], soft.insertion_probs.numpy()], axis=1)
        dele = np.concatenate([hard_del[:, :1], soft.deletion_probs.numpy()], axis=1)
        assert np.abs(auc(ins) - auc(hard_ins)).max() < 0.01 and np.abs(auc(dele) - auc(hard_del)).max() < 0.01
    np.testing.assert_allclose(ins, hard_ins, atol=1e-4)
    np.testing.assert_allclose(dele, hard_del, atol=1e-4)
    # the symmetric rule (no tie-break) does not converge on these maps
    with torch.no_grad():
        loose = soft_insertion_deletion(model, x, e, y, temperature=1e6, n_steps=32, tie_break=0.0)
    assert np.abs(loose.insertion_probs.numpy() - hard_ins[:, 1:]).max() > 0.1


def test_converges_to_hard_table_metrics():
    torch.manual_seed(2)
    model = tiny_mlp(features=8)
    x, e, y = torch.randn(5, 8), torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    baseline = torch.linspace(-1, 1, 8)
    soft = soft_insertion_deletion(model, x, e, y, temperature=1e4, n_steps=8, baseline=baseline)
    hard = hard_insertion_deletion(model, x, e, y, n_steps=8, baseline=baseline)
    np.testing.assert_allclose(soft.insertion_probs.detach().numpy(), hard["insertion_probs"], atol=1e-5)
    np.testing.assert_allclose(soft.deletion.detach().numpy(), hard["deletion"], atol=1e-4)
    loose = soft_insertion_deletion(model, x, e, y, temperature=1.0, n_steps=8, baseline=baseline)
    assert np.abs(loose.insertion_probs.detach().numpy() - hard["insertion_probs"]).max() > 1e-3


def test_feature_curves_match_image_curves_on_unit_range_rows():
    """A row in [0, 1] viewed as a 1x1xF image: the tabular curves equal RISE's at step 1."""
    torch.manual_seed(3)
    model = tiny_mlp(features=6)
    view = nn.Sequential(nn.Flatten(), model)
    x, a = torch.rand(4, 6), torch.randn(4, 6)
    classifier = FrozenClassifier(view, (1, 1, 6), device="cpu")
    for ours, theirs in ((feature_insertion_curve, insertion_curve), (feature_deletion_curve, deletion_curve)):
        mine = ours(model, x, a, [0, 1, 2, 0], step=2)
        ref = theirs(classifier, x.view(4, 1, 1, 6), a.view(4, 1, 6), [0, 1, 2, 0], step=2, substrate="zeros")
        np.testing.assert_allclose(mine.curves, ref.curves, atol=1e-6)
        np.testing.assert_allclose(mine.auc, ref.auc, atol=1e-6)
        assert mine.fractions.tolist() == ref.fractions.tolist()


def test_feature_curves_rank_a_known_model():
    """Logit of class 1 = sum of the features; deleting the largest first drops it fastest."""
    linear = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[0.0, 0, 0, 0], [1.0, 1, 1, 1]]))
    x = torch.tensor([[4.0, 1.0, 3.0, 2.0]])
    good, bad = x.clone(), -x
    assert feature_deletion_curve(linear, x, good, [1]).auc[0] < feature_deletion_curve(linear, x, bad, [1]).auc[0]
    assert feature_insertion_curve(linear, x, good, [1]).auc[0] > feature_insertion_curve(linear, x, bad, [1]).auc[0]


# ---------------------------------------------------------------------------------------- validation
def test_bad_arguments(image_case):
    model, x, e, y = image_case
    with pytest.raises(ValueError, match="one map per input"):
        soft_insertion_deletion(model, x, e[:, :5], y)
    with pytest.raises(ValueError, match="one map per input"):
        soft_insertion_deletion(model, x, e[:2], y)
    with pytest.raises(TypeError, match="tensor"):
        soft_insertion_deletion(model, x, e.numpy(), y)
    with pytest.raises(ValueError, match="temperature"):
        soft_insertion_deletion(model, x, e, y, temperature=-1.0)
    with pytest.raises(ValueError, match="deletion_form"):
        soft_insertion_deletion(model, x, e, y, deletion_form="log")
    with pytest.raises(ValueError, match="targets"):
        soft_insertion_deletion(model, x, e, [0, 1, 7])
    with pytest.raises(ValueError, match="NaN"):
        soft_insertion_deletion(model, x, torch.full_like(e, float("nan")), y)
    with pytest.raises(ValueError, match="broadcast"):
        soft_insertion_deletion(model, x, e, y, baseline=torch.zeros(5))
    with pytest.raises(ValueError, match="tables"):
        soft_insertion_deletion(tiny_mlp(), torch.randn(2, 5), torch.randn(2, 5), [0, 1], n_steps=5, baseline="blur")
    with pytest.raises(TypeError, match="model"):
        soft_insertion_deletion("model", x, e, y)
    with pytest.raises(TypeError, match="baseline"):
        feature_insertion_curve(tiny_mlp(), torch.randn(2, 5), torch.randn(2, 5), baseline="zeros")
    with pytest.raises(ValueError, match="shape"):
        feature_deletion_curve(tiny_mlp(), torch.randn(2, 5), torch.randn(2, 4))


def test_substrate_baseline_for_images(image_case):
    model, x, e, y = image_case
    blurred = soft_insertion_deletion(model.float(), x.float(), e.float(), y, baseline="blur", n_steps=4)
    zeros = soft_insertion_deletion(model.float(), x.float(), e.float(), y, baseline="zeros", n_steps=4)
    assert not torch.allclose(blurred.insertion, zeros.insertion)
    same = soft_insertion_deletion(model.float(), x.float(), e.float(), y, baseline=0.0, n_steps=4)
    assert torch.allclose(same.insertion, zeros.insertion)
    # RISE's pairing: insertion from the blur, deletion to black
    paired = soft_insertion_deletion(model.float(), x.float(), e.float(), y, baseline="blur", deletion_baseline=0.0, n_steps=4)
    assert torch.allclose(paired.insertion, blurred.insertion) and torch.allclose(paired.deletion, zeros.deletion)
    assert not torch.allclose(paired.deletion, blurred.deletion)
