"""The cluttered shapes data (issue 21, "data where a prior fails"), its classifier and its ids."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from saliency_gym import load_classifier
from saliency_gym.classifier_training import ClassifierTrainingConfig
from saliency_gym.data import load_dataset
from saliency_gym.data.cluttered import (
    FRAGMENT_FILL,
    FRAGMENT_GAP,
    FRAGMENT_SIDE,
    TARGET_GAP,
    ClutteredShapesSource,
    fragment_bank,
)
from saliency_gym.data.shapes import SHAPE_CLASSES, dilate
from saliency_gym.models import SmallCNN

CLUTTERED_IDS = [
    "saliency_gym/SaliencyReveal-ShapesCluttered-v0",
    "saliency_gym/SaliencyMask-ShapesCluttered-v0",
    "saliency_gym/AttributionAttack-ShapesCluttered-v0",
]


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """500 rendered test scenes: (image, mask, clutter map)."""
    source = ClutteredShapesSource("test", n=500)
    return [source.render(i) for i in range(len(source))]


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def test_registered_contract_and_read_only():
    source = load_dataset("shapes_cluttered", "test", n=10)
    assert isinstance(source, ClutteredShapesSource) and source.name == "shapes_cluttered"
    batch = source.arrays()
    assert batch.images.dtype == np.float32 and batch.images.shape == (10, 3, 64, 64)
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.masks.dtype == bool and batch.masks.shape == (10, 64, 64)
    assert list(batch.labels) == [i % len(SHAPE_CLASSES) for i in range(10)]
    assert source.class_names == SHAPE_CLASSES and source.has_masks
    with pytest.raises(ValueError):
        source[0].image[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="size"):
        ClutteredShapesSource(size=32)


def test_deterministic_per_seed_independent_of_n_and_splits_disjoint():
    a, b = ClutteredShapesSource("train", n=6, seed=3), ClutteredShapesSource("train", n=40, seed=3)
    for i in range(6):
        np.testing.assert_array_equal(a[i].image, b[i].image)
        np.testing.assert_array_equal(a[i].mask, b[i].mask)
    assert not np.array_equal(a[0].image, ClutteredShapesSource("train", n=6, seed=4)[0].image)
    assert not np.array_equal(a[0].image, ClutteredShapesSource("val", n=6, seed=3)[0].image)
    # Another stream than the shapes data at the same size, seed and index.
    assert not np.array_equal(a[0].mask, load_dataset("shapes64", "train", n=1, seed=3)[0].mask)


def test_mask_is_exactly_the_target_pixels(scenes):
    """The mask is the only painted region of its colour near it: one shaded colour inside, and
    no fragment within the target gap, so every pixel next to it is background."""
    for image, mask, clutter in scenes[:100]:
        inside = image[:, mask]
        assert (inside.max(axis=1) - inside.min(axis=1)).max() <= 0.06 + 1e-6
        assert not (clutter > 0)[dilate(mask, TARGET_GAP)].any()
        ring = dilate(mask, 1) & ~mask
        distance = np.abs(image[:, ring] - inside.mean(axis=1)[:, None]).mean(axis=0)
        assert np.median(distance) > 0.1


def test_target_fully_inside_and_anywhere(scenes):
    boxes = np.array([_box(mask) for _, mask, _ in scenes])  # top, bottom, left, right
    heights, widths = boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]
    areas = np.array([mask.sum() for _, mask, _ in scenes])
    # Never cut by a border: even the smallest target keeps its full size.
    assert heights.min() >= 10 and widths.min() >= 10 and areas.min() >= 80
    centres = np.stack([(boxes[:, 0] + boxes[:, 1]) / 2, (boxes[:, 2] + boxes[:, 3]) / 2], axis=1)
    quadrants = np.bincount(2 * (centres[:, 0] >= 32) + (centres[:, 1] >= 32), minlength=4)
    assert quadrants.min() >= 80, quadrants  # 125 expected in each
    # Borders included: some targets touch (within a pixel of) every side of the image.
    assert boxes[:, 0].min() <= 1 and boxes[:, 1].max() >= 63 and boxes[:, 2].min() <= 1 and boxes[:, 3].max() >= 63


def test_clutter_never_forms_a_shape(scenes):
    """Each fragment is smaller than any target, apart from every other fragment, and cut."""
    smallest_target = min(min(b - a, d - c) for a, b, c, d in (_box(m) for _, m, _ in scenes))
    counts = []
    for _, _, clutter in scenes[:200]:
        counts.append(clutter.max())
        for k in range(1, clutter.max() + 1):
            fragment = clutter == k
            top, bottom, left, right = _box(fragment)
            assert max(bottom - top, right - left) <= FRAGMENT_SIDE[1] < smallest_target
            assert fragment.sum() <= FRAGMENT_FILL[1] * FRAGMENT_SIDE[1] ** 2
            others = (clutter > 0) & ~fragment
            assert not others[dilate(fragment, FRAGMENT_GAP)].any()
    assert min(counts) >= 3 and np.mean(counts) >= 7
    windows, sides = fragment_bank(64)
    for window, side in zip(windows, sides, strict=True):
        cut = window[:side, :side]
        assert FRAGMENT_FILL[0] <= cut.mean() <= FRAGMENT_FILL[1]
        assert not window[side:].any() and not window[:, side:].any()
        # The shape goes on past the window: it reaches the window's border.
        assert cut[0].any() or cut[-1].any() or cut[:, 0].any() or cut[:, -1].any()


def test_shipped_classifier_accuracy_and_gradcam_layer():
    from saliency_gym.baselines.gradcam import GradCAMExplainer

    classifier = load_classifier("shapes_cluttered", device="cpu")
    assert classifier.input_shape == (3, 64, 64) and tuple(classifier.class_names) == SHAPE_CLASSES
    batch = load_dataset("shapes_cluttered", "test", n=300).arrays()
    accuracy = (classifier.predict(batch.images).numpy() == batch.labels).mean()
    assert accuracy >= 0.95
    explainer = GradCAMExplainer(classifier)
    assert explainer.layer is classifier.module.features[-1]  # the last conv block, an 8x8 map


def test_training_recipe_and_architecture():
    cfg = ClassifierTrainingConfig(dataset="shapes_cluttered")
    assert cfg.validate().architecture() == {"width": 16, "stem_stride": 2, "pool": "max"}
    assert ClassifierTrainingConfig(dataset="shapes", width=8).architecture() == {"width": 8}
    assert cfg.replace(pool="avg", stem_stride=1).architecture()["pool"] == "avg"
    with pytest.raises(ValueError, match="pool"):
        cfg.replace(pool="mean").validate()
    with pytest.raises(ValueError, match="stem_stride"):
        cfg.replace(stem_stride=3).validate()
    model = SmallCNN(3, 5, width=4, stem_stride=2, pool="max")
    assert model.features(torch.zeros(1, 3, 64, 64)).shape == (1, 16, 8, 8)
    assert model.config == {"in_channels": 3, "num_classes": 5, "width": 4, "activation": "relu",
                            "stem_stride": 2, "pool": "max"}  # fmt: skip
    # The defaults stay implicit, so the older checkpoints' recipes write the same arguments.
    assert set(SmallCNN(3, 5).config) == {"in_channels", "num_classes", "width", "activation"}


@pytest.mark.filterwarnings("ignore:.*(image|unconventional shape).*:UserWarning")
@pytest.mark.parametrize("env_id", CLUTTERED_IDS)
def test_registered_envs_pass_the_checkers(env_id):
    env = gym.make(env_id, split="test")
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (3, 64, 64)
    if "Attack" not in env_id:
        assert env.action_space == gym.spaces.Discrete(64)  # the 8x8 grid of 8-pixel cells
    small = {"grid": 4, "budget": 3} if "Attack" in env_id else {"grid": 4}
    checked = gym.make(env_id, split="test", **small)
    gym_check_env(checked.unwrapped, skip_render_check=True)
    sb3_check_env(checked.unwrapped, warn=True)
