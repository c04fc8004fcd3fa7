"""Data sources: seeded samples of image, label and evidence mask."""

from saliency_gym.data.adapters import ImageFolderSource, TorchDatasetSource
from saliency_gym.data.base import ArraySource, Batch, DataSource, Sample
from saliency_gym.data.cluttered import ClutteredShapesSource
from saliency_gym.data.digits import DIGIT_CLASSES, DigitsSource
from saliency_gym.data.photos import PhotosSource
from saliency_gym.data.registry import available_datasets, load_dataset
from saliency_gym.data.shapes import SHAPE_CLASSES, ShapesSource
from saliency_gym.data.tabular import TabularSource, available_tabular_datasets, load_tabular

__all__ = [
    "ArraySource",
    "Batch",
    "ClutteredShapesSource",
    "DIGIT_CLASSES",
    "DataSource",
    "DigitsSource",
    "ImageFolderSource",
    "PhotosSource",
    "SHAPE_CLASSES",
    "Sample",
    "ShapesSource",
    "TabularSource",
    "TorchDatasetSource",
    "available_datasets",
    "available_tabular_datasets",
    "load_dataset",
    "load_tabular",
]
