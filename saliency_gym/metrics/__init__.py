"""Metric evaluators: pure functions of (classifier, images, maps, ...) to numbers and curves."""
