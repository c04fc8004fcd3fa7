"""Data sources: seeded samples of image, label and evidence mask."""

from saliency_gym.data.adapters import ImageFolderSource, TorchDatasetSource
from saliency_gym.data.base import ArraySource, Batch, DataSource, Sample
from saliency_gym.data.digits import DIGIT_CLASSES, DigitsSource
from saliency_gym.data.registry import available_datasets, load_dataset
from saliency_gym.data.shapes import SHAPE_CLASSES, ShapesSource

__all__ = [
    "ArraySource",
    "Batch",
    "DIGIT_CLASSES",
    "DataSource",
    "DigitsSource",
    "ImageFolderSource",
    "SHAPE_CLASSES",
    "Sample",
    "ShapesSource",
    "TorchDatasetSource",
    "available_datasets",
    "load_dataset",
]
