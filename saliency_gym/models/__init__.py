"""Classifier architectures that saliency-gym trains and ships."""

from saliency_gym.models.cnn import ARCHITECTURES, SmallCNN, build_model

__all__ = ["ARCHITECTURES", "SmallCNN", "build_model"]
