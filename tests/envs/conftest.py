import warnings

import pytest

from saliency_gym.data import ShapesSource


@pytest.fixture(scope="session")
def tiny_shapes() -> ShapesSource:
    """Eight test images: episodes draw from a small pool so tests are quick and repeatable."""
    return ShapesSource("test", n=8)


@pytest.fixture(autouse=True)
def _quiet_sb3_image_warnings():
    # SB3's checker warns that float (C, H, W) boxes are not uint8 images; our extractors expect floats.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(image|unconventional shape|36x36).*", category=UserWarning)
        yield
