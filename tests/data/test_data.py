import numpy as np
import pytest
import torch
from PIL import Image

from saliency_gym.data import (
    ArraySource,
    DigitsSource,
    ImageFolderSource,
    ShapesSource,
    TorchDatasetSource,
    load_dataset,
)
from saliency_gym.data.shapes import SHAPE_CLASSES, dilate, shape_mask


def test_shapes_deterministic_by_seed():
    a, b = ShapesSource("test", n=8, seed=3), ShapesSource("test", n=8, seed=3)
    np.testing.assert_array_equal(a.arrays().images, b.arrays().images)
    np.testing.assert_array_equal(a.arrays().masks, b.arrays().masks)
    c = ShapesSource("test", n=8, seed=4)
    assert not np.array_equal(a.arrays().images, c.arrays().images)


def test_shapes_sample_independent_of_n_and_splits_disjoint():
    small, large = ShapesSource("train", n=3), ShapesSource("train", n=10)
    np.testing.assert_array_equal(small[2].image, large[2].image)
    assert not np.array_equal(ShapesSource("test", n=3)[0].image, small[0].image)


def test_shapes_contract():
    src = ShapesSource("test", n=10)
    batch = src.arrays()
    assert batch.images.dtype == np.float32 and batch.images.shape == (10, 3, 32, 32)
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    assert batch.masks.dtype == bool and batch.masks.shape == (10, 32, 32)
    assert list(batch.labels) == [i % len(SHAPE_CLASSES) for i in range(10)]
    assert src.has_masks and src.num_classes == 5
    # Samples are read-only views: nobody can corrupt the shared data.
    with pytest.raises(ValueError):
        src[0].image[0, 0, 0] = 1.0


def test_shapes_mask_is_exactly_the_shape_pixels():
    """Inside the mask every pixel has the shape's colour (up to its +-0.03 shading); distractors
    never touch the shape, so the pixels next to it are never of that colour."""
    batch = ShapesSource("test", n=10, seed=1).arrays()
    for image, mask in zip(batch.images, batch.masks, strict=True):
        assert 0.02 < mask.mean() < 0.4
        inside = image[:, mask]
        assert (inside.max(axis=1) - inside.min(axis=1)).max() <= 0.06 + 1e-6
        colour = inside.mean(axis=1)
        ring = dilate(mask, 1) & ~mask
        distance = np.abs(image[:, ring] - colour[:, None]).mean(axis=0)
        assert np.median(distance) > 0.1


def test_shape_mask_geometry():
    circle = shape_mask("circle", 16, 16, 8, 0.0, 32, 32)
    assert abs(circle.sum() - np.pi * 64) < 12
    ring = shape_mask("ring", 16, 16, 8, 0.0, 32, 32)
    assert not ring[16, 16] and circle[16, 16] and ring.sum() < circle.sum()
    square = shape_mask("square", 16, 16, 8 * np.sqrt(2), 0.0, 32, 32)
    assert square.sum() == 16 * 16
    with pytest.raises(ValueError, match="unknown shape"):
        shape_mask("hexagon", 16, 16, 8, 0.0, 32, 32)


def test_shapes64_variant():
    src = load_dataset("shapes64", "test", n=3)
    assert src.image_shape == (3, 64, 64) and src.name == "shapes64"


def test_digits_split_fixed_and_disjoint():
    train, val, test = (DigitsSource(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (1295, 143, 359)
    assert test.image_shape == (1, 32, 32) and not test.has_masks
    b = test.arrays()
    assert 0 <= b.images.min() and b.images.max() <= 1
    assert set(b.labels) == set(range(10))
    np.testing.assert_array_equal(DigitsSource("test").arrays().images, b.images)


def test_load_dataset_errors():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="split='dev'"):
        load_dataset("shapes", split="dev")
    with pytest.raises(ValueError, match="n must be >= 1"):
        load_dataset("shapes", n=0)
    with pytest.raises(TypeError):
        load_dataset(3)


def test_array_source_validation():
    images = np.random.default_rng(0).random((4, 1, 5, 5)).astype(np.float32)
    src = ArraySource(images, [0, 1, 0, 1])
    assert src.class_names == ("0", "1") and src[1].label == 1 and src[-1].label == 1
    with pytest.raises(IndexError):
        src[4]
    with pytest.raises(TypeError, match="uint8"):
        ArraySource((images * 255).astype(np.uint8), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ArraySource(images * 2, [0, 1, 0, 1])
    with pytest.raises(ValueError, match="labels must have shape"):
        ArraySource(images, [0, 1])
    with pytest.raises(ValueError, match="masks must have shape"):
        ArraySource(images, [0, 1, 0, 1], masks=np.zeros((4, 4, 4), bool))
    with pytest.raises(ValueError, match="class names"):
        ArraySource(images, [0, 1, 2, 3], class_names=["a", "b"])


class _TinyDataset(torch.utils.data.Dataset):
    def __init__(self, with_mask: bool = False):
        self.with_mask = with_mask

    def __len__(self):
        return 3

    def __getitem__(self, i):
        image = torch.full((3, 6, 6), i / 3)
        if self.with_mask:
            return {"image": image, "label": torch.tensor(i % 2), "mask": torch.ones(6, 6)}
        return image, i % 2


def test_torch_dataset_adapter():
    src = TorchDatasetSource(_TinyDataset(), ["a", "b"])
    assert len(src) == 3 and src.image_shape == (3, 6, 6) and not src.has_masks
    batch = src.get_batch([0, 2])
    assert batch.images.shape == (2, 3, 6, 6) and list(batch.labels) == [0, 0]
    masked = TorchDatasetSource(_TinyDataset(with_mask=True), ["a", "b"])
    assert masked.has_masks and masked.get_batch([1]).masks.shape == (1, 6, 6)
    with pytest.raises(TypeError, match="map-style"):
        TorchDatasetSource(object(), ["a", "b"])


def test_image_folder_adapter(tmp_path):
    for cls, value in (("cat", 40), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.fromarray(np.full((10, 12, 3), value + k, np.uint8)).save(tmp_path / cls / f"{k}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, size=8)
    assert src.class_names == ("cat", "dog") and len(src) == 4
    sample = src[3]
    assert sample.image.shape == (3, 8, 8) and sample.label == 1
    assert np.allclose(sample.image, 201 / 255, atol=1e-6)
    gray = ImageFolderSource(tmp_path, size=(4, 6), mode="L")
    assert gray[0].image.shape == (1, 4, 6)
    with pytest.raises(FileNotFoundError):
        ImageFolderSource(tmp_path / "missing")
    with pytest.raises(ValueError, match="two class subfolders"):
        ImageFolderSource(tmp_path / "cat")


def test_one_label_check_for_sources_and_targets():
    from saliency_gym.validation import as_label_array

    np.testing.assert_array_equal(as_label_array(2, n=3, num_classes=4), [2, 2, 2])
    np.testing.assert_array_equal(as_label_array(torch.tensor([0, 3]), n=2, num_classes=4), [0, 3])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        as_label_array(2, n=3, allow_scalar=False)
    with pytest.raises(ValueError, match="non-negative class ids"):
        as_label_array([0, -1], n=2)
    with pytest.raises(ValueError, match=r"targets must be class ids in \[0, 3\]"):
        as_label_array([0, 4], n=2, num_classes=4, name="targets")
    with pytest.raises(TypeError, match="labels must be integers"):
        as_label_array([0.5, 1.0], n=2)
    images = np.zeros((2, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="labels go up to 2 but only 2 class names"):
        ArraySource(images, [0, 2], class_names=["a", "b"])
    source = ArraySource(images, [0, 2])
    assert source.class_names == ("0", "1", "2") and source.get_batch([1]).labels.tolist() == [2]
