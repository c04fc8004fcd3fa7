import numpy as np
import pytest
import torch

from saliency_gym.baselines import make_explainer
from saliency_gym.baselines.attack_policies import RandomSignPolicy, WhiteBoxAttackPolicy
from saliency_gym.baselines.attacks import (
    ATTACKS,
    attribution_similarities,
    differentiable_attribution,
    fragility_attack,
    lens_topk_attack,
    load_surrogate,
    mass_center_attack,
    random_sign_attack,
    run_attack,
    topk_attack,
)
from saliency_gym.data import load_dataset
from saliency_gym.envs.attack import AttributionAttackEnv

EPS = 8 / 255


@pytest.fixture(scope="module")
def batch():
    return load_dataset("shapes", "test", n=8).arrays()


@pytest.fixture(scope="module")
def gradient(shapes_classifier):
    return make_explainer("gradient", shapes_classifier)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_stay_in_ball_and_report_labels(attack, gradient, batch):
    result = run_attack(attack, gradient, batch.images, EPS, **({} if attack == "random" else {"steps": 2}))
    assert result.adversarial.shape == batch.images.shape and result.adversarial.dtype == np.float32
    assert np.abs(result.perturbation).max() <= EPS + 1e-6
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    predictions = gradient.classifier.predict(result.adversarial, count=False).numpy()
    np.testing.assert_array_equal(result.predictions, predictions)
    original = gradient.classifier.predict(batch.images, count=False).numpy()
    np.testing.assert_array_equal(result.label_kept, predictions == original)
    np.testing.assert_array_equal(result.targets, original)
    # The maps reported are the explainer's own, for the original predictions.
    np.testing.assert_allclose(result.adversarial_maps, np.abs(gradient.explain(result.adversarial, original).maps), atol=1e-5)
    if attack != "random":
        assert result.label_kept.all()  # white-box attacks only return label-kept iterates (or the image)
        unchanged = ~result.changed
        np.testing.assert_array_equal(result.adversarial[unchanged], batch.images[unchanged])
    assert result.queries > 0 and result.attack == attack


def test_white_box_beats_random_sign(gradient, batch):
    """On a fixed seed, Ghorbani et al.'s top-k attack lowers top-k intersection far more than random sign."""
    k = 102
    random = random_sign_attack(gradient, batch.images, EPS, seed=0)
    white = topk_attack(gradient, batch.images, EPS, steps=3, k=k)
    random_topk = attribution_similarities(random.original_maps, random.adversarial_maps, k)["topk"][random.label_kept]
    white_topk = attribution_similarities(white.original_maps, white.adversarial_maps, k)["topk"]
    assert white_topk.mean() < random_topk.mean() - 0.15
    lens = lens_topk_attack(gradient, batch.images, EPS, steps=3, k=k)
    lens_recall = attribution_similarities(lens.original_maps, lens.adversarial_maps, k)["lens_recall"]
    assert lens_recall.mean() < attribution_similarities(random.original_maps, random.adversarial_maps, k)["lens_recall"].mean()
    assert mass_center_attack(gradient, batch.images[:2], EPS, steps=1, k=k).label_kept.all()


def test_locality_aware_metric_is_gentler_on_random_noise(gradient, batch):
    """LENS's observation: random perturbations move top pixels to neighbours, which top-k
    intersection counts as lost and LENS recall does not."""
    result = random_sign_attack(gradient, batch.images, 4 / 255, seed=1)
    sims = attribution_similarities(result.original_maps, result.adversarial_maps, k=102)
    assert sims["lens_recall"].mean() > sims["topk"].mean() + 0.1


def test_random_sign_is_seeded(gradient, batch):
    a = random_sign_attack(gradient, batch.images[:2], EPS, seed=3)
    b = random_sign_attack(gradient, batch.images[:2], EPS, seed=3)
    c = random_sign_attack(gradient, batch.images[:2], EPS, seed=4)
    np.testing.assert_array_equal(a.adversarial, b.adversarial)
    assert not np.array_equal(a.adversarial, c.adversarial)


@pytest.mark.parametrize("method", ["gradient", "input_x_gradient", "gradcam"])
def test_differentiable_attribution_matches_explainer(method, shapes_classifier, batch):
    """With the classifier's own (ReLU) module as the surrogate, the differentiable map is the explainer's map."""
    explainer = make_explainer(method, shapes_classifier)
    x = torch.tensor(batch.images[:3])
    targets = torch.tensor(batch.labels[:3])
    ours = differentiable_attribution(explainer, shapes_classifier.module, x.clone().requires_grad_(True), targets)
    np.testing.assert_allclose(ours.detach().numpy(), explainer.explain(x, targets).maps, atol=1e-4)


def test_surrogate_gives_second_derivatives(shapes_classifier, batch):
    """ReLU maps have zero gradient w.r.t. the input almost everywhere for vanilla gradients; softplus does not."""
    explainer = make_explainer("gradient", shapes_classifier)
    surrogate = load_surrogate(shapes_classifier)
    assert any(isinstance(m, torch.nn.Softplus) for m in surrogate.modules())
    x = torch.tensor(batch.images[:2]).requires_grad_(True)
    targets = torch.tensor(batch.labels[:2])
    maps = differentiable_attribution(explainer, surrogate, x, targets)
    (grad,) = torch.autograd.grad(maps.sum(), x)
    assert grad.abs().sum() > 0
    ig = make_explainer("integrated_gradients", shapes_classifier, n_steps=4)
    sg = make_explainer("smoothgrad", shapes_classifier, nt_samples=3)
    for e in (ig, sg):
        maps = differentiable_attribution(e, surrogate, x, targets)
        assert maps.shape == (2, 32, 32) and torch.autograd.grad(maps.sum(), x)[0].abs().sum() > 0


def test_robust_model_attributions_are_harder_to_move(batch):
    """The PGD-trained classifier's gradient maps move less under the same top-k attack."""
    from saliency_gym.zoo import load_classifier

    moved = {}
    for name in ("shapes", "shapes_robust"):
        explainer = make_explainer("gradient", load_classifier(name, device="cpu"))
        result = topk_attack(explainer, batch.images, EPS, steps=2, k=102)
        moved[name] = attribution_similarities(result.original_maps, result.adversarial_maps, 102)["topk"].mean()
    assert moved["shapes_robust"] > moved["shapes"] + 0.1


def test_bad_arguments(gradient, shapes_classifier, batch):
    with pytest.raises(ValueError, match="attack"):
        run_attack("fgsm", gradient, batch.images, EPS)
    with pytest.raises(ValueError, match="white-box"):
        topk_attack(make_explainer("occlusion", shapes_classifier), batch.images, EPS)
    with pytest.raises(ValueError, match="epsilon"):
        random_sign_attack(gradient, batch.images, -0.1)
    with pytest.raises(ValueError, match="objective"):
        fragility_attack(gradient, batch.images, EPS, objective="center")
    with pytest.raises(ValueError, match="select_by"):
        fragility_attack(gradient, batch.images, EPS, select_by="cosine")
    with pytest.raises(TypeError, match="Explainer"):
        random_sign_attack(object(), batch.images, EPS)
    with pytest.raises(ValueError, match="per-image shape"):
        random_sign_attack(gradient, batch.images[:, :, :16], EPS)


def test_policies_act_in_the_environment(shapes_classifier, batch):
    from saliency_gym.data import ArraySource

    data = ArraySource(batch.images, batch.labels)
    env = AttributionAttackEnv(classifier=shapes_classifier, data=data, grid=4, budget=3)
    policy = RandomSignPolicy(env.action_space, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        action, _ = policy.predict(obs)
        obs, *_ = env.step(action)
    env = AttributionAttackEnv(classifier=shapes_classifier, data=data, grid=32, budget=3, action_type="continuous", step_size=EPS / 2)
    white = WhiteBoxAttackPolicy(env.config.explainer, objective="topk", k=env.config.k)
    random = RandomSignPolicy(env.action_space, seed=0)
    shifts = {}
    for name, pol in (("white", white), ("random", random)):
        total = 0.0
        for image_index in range(2):
            obs, _ = env.reset(options={"image_index": image_index})
            for _ in range(3):
                action, _ = pol.predict(obs)
                assert env.action_space.contains(action.astype(np.float32))
                obs, _, _, _, info = env.step(action)
            total += info["kept_shift"]
        shifts[name] = total / 2
    assert shifts["white"] > shifts["random"]
    with pytest.raises(TypeError, match="action_space"):
        RandomSignPolicy("discrete")
