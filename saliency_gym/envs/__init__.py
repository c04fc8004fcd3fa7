"""Gymnasium environments (registered on ``import saliency_gym``)."""
