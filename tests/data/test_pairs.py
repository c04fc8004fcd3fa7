"""The one-vs-one shape-pairs data: pairs differ exactly on the mask, deterministic, registered."""

from __future__ import annotations

import numpy as np
import pytest

from saliency_gym.data import load_dataset
from saliency_gym.data.pairs import PAIR_CLASSES, ShapePairsSource


def test_pairs_differ_exactly_on_the_mark():
    source = ShapePairsSource(split="test", n=40, seed=3)
    batch = source.arrays()
    assert batch.images.shape == (40, 3, 32, 32) and batch.images.dtype == np.float32
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    np.testing.assert_array_equal(batch.labels, np.arange(40) % 2)
    plain, marked = batch.images[0::2], batch.images[1::2]
    differs = (plain != marked).any(axis=1)
    np.testing.assert_array_equal(differs, batch.masks[0::2])
    np.testing.assert_array_equal(batch.masks[0::2], batch.masks[1::2])
    areas = batch.masks.reshape(40, -1).sum(1)
    assert areas.min() >= 5 and areas.max() <= 13  # a small mark (~9 pixels of 1024)
    assert source.pair_of(4) == 5 and source.pair_of(5) == 4


def test_deterministic_lazy_and_split_disjoint():
    a = ShapePairsSource(split="train", n=10, seed=0)
    b = ShapePairsSource(split="train", n=1000, seed=0)
    assert len(b._cache) == 0  # lazy: nothing rendered before access
    np.testing.assert_array_equal(a[7].image, b[7].image)  # independent of n and access order
    assert set(b._cache) == {6, 7}  # rendering a pair caches both of its images
    other_seed = ShapePairsSource(split="train", n=10, seed=1)
    assert not np.array_equal(a[7].image, other_seed[7].image)
    test = ShapePairsSource(split="test", n=10, seed=0)
    assert not np.array_equal(a[2].image, test[2].image)
    with pytest.raises(ValueError, match="split"):
        ShapePairsSource(split="nope")
    with pytest.raises(ValueError, match="mark_radius"):
        ShapePairsSource(mark_radius=100.0)


def test_odd_length_keeps_last_plain_image():
    source = ShapePairsSource(split="val", n=3)
    assert [source[i].label for i in range(3)] == [0, 1, 0]
    with pytest.raises(IndexError):
        source[3]


def test_registered_as_shape_pairs():
    source = load_dataset("shape_pairs", split="val", n=6)
    assert isinstance(source, ShapePairsSource) and source.class_names == PAIR_CLASSES
    assert source.has_masks and source.image_shape == (3, 32, 32)
