"""The ai-benchmark photo collections: labels, splits, recovered masks, and the missing-package error."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from saliency_gym.data import ai_benchmark_photos as abp
from saliency_gym.data import load_dataset
from saliency_gym.data.photos import COLLECTIONS, PhotosSource, imagenet_class_names


def test_object_labels_are_distinct_imagenet_classes() -> None:
    names = imagenet_class_names()
    assert len(abp.OBJECT_LABELS) == 100 and len(set(abp.OBJECT_LABELS)) == 100
    assert all(label in names for label in abp.OBJECT_LABELS)
    for index, (ours, _model) in abp.OBJECT_DISAGREEMENTS.items():
        assert abp.OBJECT_LABELS[index] == ours


def test_splits_follow_the_fixed_rule() -> None:
    train, test = abp.OBJECT_SPLITS["train"], abp.OBJECT_SPLITS["test"]
    assert len(train) == 40 and len(test) == 60 and not set(train) & set(test)
    assert sorted(train + test) == list(range(100)) and all(i % 5 < 2 for i in train)
    source = PhotosSource("train")
    assert source.photos == tuple(map(str, train)) and not source.has_masks and source.has_label
    assert [source[k].label for k in range(3)] == [imagenet_class_names().index(abp.OBJECT_LABELS[i]) for i in train[:3]]


def test_collections_and_their_splits() -> None:
    assert set(COLLECTIONS) == {"objects", "masked", "boxed", "street"}
    assert len(PhotosSource("test", collection="masked")) == 29
    street = PhotosSource("train", collection="street")
    assert len(street) == 100 and not street.has_label and street[0].mask is None
    with pytest.raises(ValueError, match="splits"):
        PhotosSource("train", collection="masked")  # localisation only
    with pytest.raises(ValueError, match="collection"):
        PhotosSource("test", collection="cats")


def test_recovered_masks_cover_the_cat() -> None:
    source = load_dataset("photos", split="test", collection="masked")
    areas = []
    for k in range(len(source)):
        sample = source[k]
        assert sample.mask is not None and sample.mask.shape == (224, 224) and sample.mask.dtype == bool
        areas.append(sample.mask.mean())
    # measured: 0.028 (a small cat behind a road sign) to 0.63 (a cat filling a washbasin)
    assert 0.02 < min(areas) and max(areas) < 0.7
    # photo 0: a kitten at a window fills the lower left; its mask is one region, solid inside
    mask = abp.overlay_mask(0)
    height, width = mask.shape
    assert mask[int(0.6 * height), int(0.3 * width)] and not mask[int(0.1 * height), int(0.9 * width)]
    from scipy import ndimage

    assert ndimage.label(mask)[1] == 1 and np.array_equal(ndimage.binary_fill_holes(mask), mask)


def test_mask_in_region_matches_the_render_geometry() -> None:
    mask = np.zeros((100, 200), dtype=bool)
    mask[:, 100:] = True  # the right half
    view = abp.mask_in_region(mask, (50.0, 0.0, 150.0, 100.0), 10)  # a centre square
    assert view[:, :5].sum() == 0 and view[:, 5:].all()


def test_augmented_object_views_are_seeded() -> None:
    a = PhotosSource("train", augment=True, n=4, seed=1)
    b = PhotosSource("train", augment=True, n=4, seed=1)
    c = PhotosSource("train", augment=True, n=4, seed=2)
    assert np.array_equal(a[2].image, b[2].image) and not np.array_equal(a[2].image, c[2].image)


def test_missing_ai_benchmark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ai_benchmark" else real_find_spec(name, *a)
    )
    abp.data_root.cache_clear()
    try:
        with pytest.raises(ImportError, match=r"saliency-gym\[imagenet\]"):
            PhotosSource("test")
    finally:
        abp.data_root.cache_clear()
