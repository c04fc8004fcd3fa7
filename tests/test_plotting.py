"""Figures a paper can print (issue 24): sign-aware colour maps, percentile clipping, a colour bar
on every map (TensorBoard images and overlays too), crisp numbered grid cells."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from saliency_gym.envs.render import explanation_rows, overlay_rgb
from saliency_gym.plotting import (
    SIGNED_CMAP,
    UNSIGNED_CMAP,
    blend_rgb,
    grid_of,
    map_scale,
    saliency_grid_figure,
    save_saliency_grid,
)


def test_signed_maps_diverge_around_zero_and_unsigned_maps_are_sequential():
    rng = np.random.default_rng(0)
    signed = map_scale(rng.normal(size=(32, 32)))
    assert signed.signed and signed.cmap == SIGNED_CMAP and signed.vmin == -signed.vmax
    assert tuple(signed.rgb(np.array(0.0))) == tuple(signed.rgb(np.array(0.0)))
    white = signed.rgb(np.array(0.0)).astype(int)
    assert white.min() > 230  # zero is white, never mid-green
    unsigned = map_scale(rng.random((32, 32)))
    assert not unsigned.signed and unsigned.cmap == UNSIGNED_CMAP
    assert map_scale(np.abs(rng.normal(size=(8, 8))) - 1e-9).signed is False  # float noise is not a sign
    assert map_scale(rng.random((4, 4)), signed=True).signed


def test_outliers_are_clipped_at_a_percentile():
    values = np.random.default_rng(1).normal(size=(64, 64))
    values[0, 0] = 1e4  # one exploding pixel (Integrated Gradients on photos)
    scale = map_scale(values)
    assert scale.vmax < 5 and scale.unit(np.array(1e4)) == 1.0
    assert map_scale(values, clip_percentile=100).vmax == pytest.approx(1e4)
    with pytest.raises(ValueError, match="clip_percentile"):
        map_scale(values, clip_percentile=40)


def test_blending_shows_the_photo_where_nothing_is_attributed():
    image = np.full((3, 4, 4), 0.5, np.float32)
    values = np.zeros((4, 4))
    values[0, 0] = 1.0
    values[1, 1] = -1.0
    rgb = blend_rgb(image, values, map_scale(values)).astype(int)
    assert np.ptp(rgb[2, 2]) == 0  # grey where the map is zero
    assert rgb[0, 0, 0] > rgb[0, 0, 2] and rgb[1, 1, 2] > rgb[1, 1, 0]  # red positive, blue negative


def test_grid_maps_are_found_and_numbered():
    cells = np.random.default_rng(2).permutation(16).astype(float)
    cells[:3] = -1.0  # never revealed: tied at the bottom, left blank
    grid_map = np.kron(cells.reshape(4, 4), np.ones((8, 8)))
    assert grid_of(grid_map) == (4, 4)
    assert grid_of(np.random.default_rng(3).random((32, 32))) is None  # a pixel map
    images = np.random.default_rng(4).random((1, 3, 32, 32)).astype(np.float32)
    fig = saliency_grid_figure(images, {"policy": grid_map[None]})
    try:
        texts = sorted(int(t.get_text()) for t in fig.axes[1].texts)
        assert texts == list(range(1, 14))  # 13 revealed cells, ranked; 3 blank
        assert all(im.get_interpolation() == "nearest" for ax in fig.axes[:2] for im in ax.images)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_grid_figures_in_every_format(tmp_path):
    images = np.random.default_rng(5).random((2, 3, 16, 16)).astype(np.float32)
    maps = {"ig": np.random.default_rng(6).normal(size=(2, 16, 16))}
    for fmt in ("png", "pdf", "svg"):
        assert save_saliency_grid(images, maps, tmp_path / f"g.{fmt}", dpi=72).stat().st_size > 0
    with pytest.raises(ValueError, match="png, pdf, svg"):
        save_saliency_grid(images, maps, tmp_path / "g.jpg")


def test_tensorboard_rows_and_overlays_carry_a_colour_bar():
    rng = np.random.default_rng(7)
    images = rng.random((2, 3, 32, 32)).astype(np.float32)
    maps = rng.normal(size=(2, 32, 32))
    picture = explanation_rows(images, maps, ["a", "b"])
    panels = 2 * 32 * 4 + 4  # image and overlay at 4x, one gap
    assert picture.shape[1] > panels + 8  # a colour bar beside them
    bar = picture[:, panels + 1 :]
    assert (bar[..., 0].astype(int) - bar[..., 2] > 100).any() and (bar[..., 2].astype(int) - bar[..., 0] > 100).any()
    photo = rng.random((3, 200, 300)).astype(np.float32)
    overlay = overlay_rgb(photo, maps[0])
    assert overlay.shape[0] == 200 and overlay.shape[1] > 300  # the photo's own size, plus the bar
