"""The saliency-search environments' ``observe_features``: the classifier's own pooled evidence."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import saliency_gym
from saliency_gym.classifier import FeatureTap
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.layers import resolve_named_layer


@pytest.fixture(scope="module")
def shapes_classifier():
    return saliency_gym.load_classifier("shapes", device="cpu")


def test_probs_and_features_is_one_forward_pass_of_the_classifier(shapes_classifier):
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    name, layer = resolve_named_layer(shapes_classifier.module, None)
    before = shapes_classifier.queries
    probs, features = shapes_classifier.probs_and_features(images, layer, (8, 8))
    assert shapes_classifier.queries - before == 5  # counted like probs
    torch.testing.assert_close(probs, shapes_classifier.probs(images, count=False), atol=1e-5, rtol=1e-4)
    # The (optimised) tap equals the eager layer output, average-pooled to the grid by hand.
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        shapes_classifier.module(images)
    handle.remove()
    h, w = captured[0].shape[-2:]
    by_hand = captured[0].reshape(5, -1, 8, h // 8, 8, w // 8).mean(dim=(3, 5))
    assert features.shape == (5, captured[0].shape[1], 8, 8)
    torch.testing.assert_close(features, by_hand, atol=1e-4, rtol=1e-4)
    assert name == "features.13"


def test_feature_tap_refuses_a_layer_without_a_spatial_output(shapes_classifier):
    tap = FeatureTap(shapes_classifier.module, shapes_classifier.module.classifier, (2, 2))
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        tap(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("mode", ["Reveal", "Mask"])
@pytest.mark.parametrize("observe", [True, "image", "canvas"])
def test_feature_observations_pass_the_checkers(mode, observe, tiny_shapes):
    env = gym.make(f"saliency_gym/Saliency{mode}-Shapes-v0", data=tiny_shapes, observe_features=observe)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    keys = {k for k in obs if k.endswith("_features")}
    expected = {True: {"image_features", "canvas_features"}, "image": {"image_features"}, "canvas": {"canvas_features"}}
    assert keys == expected[observe]
    for key in keys:
        assert obs[key].shape == (64, 8, 8) and obs[key].dtype == np.float32
        assert env.observation_space[key].contains(obs[key])


def test_canvas_features_come_from_the_scoring_query(tiny_shapes):
    env = gym.make("saliency_gym/SaliencyReveal-Shapes-v0", data=tiny_shapes, observe_features="both", target="label")
    obs, info = env.reset(seed=3)
    core = env.unwrapped.core
    clf = core.cfg.classifier
    layer = core.cfg.feature_layer
    # Reveal with a known target: the image is queried for its features (1) and the substrate (1).
    assert info["queries"] == 2
    _, image_features = clf.probs_and_features(core.images[:1], layer, (8, 8), count=False)
    np.testing.assert_allclose(obs["image_features"], image_features[0].numpy(), atol=1e-5)
    _, start_features = clf.probs_and_features(core.substrates[:1], layer, (8, 8), count=False)
    np.testing.assert_allclose(obs["canvas_features"], start_features[0].numpy(), atol=1e-5)
    obs, _, _, _, info = env.step(27)
    assert info["queries"] == 3  # the step's one query gave both the reward and the features
    _, canvas_features = clf.probs_and_features(torch.as_tensor(obs["canvas"])[None], layer, (8, 8), count=False)
    np.testing.assert_allclose(obs["canvas_features"], canvas_features[0].numpy(), atol=1e-5)
    # Without feature observations the same reset costs one query (the substrate).
    plain = gym.make("saliency_gym/SaliencyReveal-Shapes-v0", data=tiny_shapes, target="label")
    assert plain.reset(seed=3)[1]["queries"] == 1


def test_vector_env_batches_the_features(tiny_shapes):
    venv = gym.make_vec("saliency_gym/SaliencyMask-Shapes-v0", num_envs=3, data=tiny_shapes, observe_features=True)
    obs, _ = venv.reset(seed=0)
    assert obs["image_features"].shape == (3, 64, 8, 8)
    # Masking starts from the image: canvas features equal image features at reset.
    np.testing.assert_allclose(obs["image_features"], obs["canvas_features"])
    obs, *_ = venv.step(np.array([0, 1, 2]))
    assert not np.allclose(obs["image_features"], obs["canvas_features"])


def test_a_coarser_grid_pools_the_features(tiny_shapes):
    env = gym.make("saliency_gym/SaliencyReveal-Shapes-v0", data=tiny_shapes, observe_features="image", grid=4)
    obs, _ = env.reset(seed=0)
    assert obs["image_features"].shape == (64, 4, 4)


def test_seeded_resets_reproduce_the_features(tiny_shapes):
    env = gym.make("saliency_gym/SaliencyReveal-Shapes-v0", data=tiny_shapes, observe_features=True)
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    for key in ("image_features", "canvas_features"):
        np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"observe_features": "pixels"}, ValueError, "observe_features"),
        ({"observe_features": 1}, TypeError, "observe_features"),
        ({"observe_features": True, "feature_layer": "nope"}, ValueError, "no submodule 'nope'"),
        ({"observe_features": True, "feature_layer": 3}, TypeError, "feature_layer"),
        ({"feature_layer": "features.13"}, ValueError, "observe_features is off"),
        ({"observe_features": True, "feature_layer": "classifier"}, ValueError, r"\(N, C, h, w\)"),
    ],
)
def test_bad_feature_options_say_what_is_allowed(kwargs, error, match):
    with pytest.raises(error, match=match):
        SaliencySearchConfig.from_kwargs("reveal", classifier="shapes", **kwargs)


def test_a_named_layer_is_observed(tiny_shapes):
    env = gym.make("saliency_gym/SaliencyReveal-Shapes-v0", data=tiny_shapes, observe_features="image", feature_layer="features.6")
    obs, _ = env.reset(seed=0)
    assert obs["image_features"].shape == (32, 8, 8)  # the second block's 2 * width channels
