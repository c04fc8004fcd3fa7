"""``rgb_array`` frames of the episodes of every family (what the engines' ``render_frame`` draws).

Saliency search: image | canvas | saliency so far. Attribution attack: image | perturbed image |
original map | current map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from saliency_gym.envs.attack_core import AttributionAttackCore
    from saliency_gym.envs.core import SaliencySearchCore

#: Each image pixel is drawn as a ``SCALE x SCALE`` block so 32x32 images are visible.
SCALE = 4
_GAP = 4


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` floats in [0, 1] to ``(H, W, 3)`` uint8."""
    hwc = np.moveaxis(image, 0, -1)
    if hwc.shape[-1] == 1:
        hwc = np.repeat(hwc, 3, axis=-1)
    elif hwc.shape[-1] != 3:
        hwc = np.repeat(hwc.mean(axis=-1, keepdims=True), 3, axis=-1)
    return (np.clip(hwc, 0, 1) * 255).astype(np.uint8)


def _heatmap(values: np.ndarray) -> np.ndarray:
    """``(H, W)`` values to a blue (low) - red (high) ``(H, W, 3)`` uint8 heat map."""
    span = float(values.max() - values.min())
    t = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    rgb = np.stack([t, 1.0 - np.abs(2.0 * t - 1.0), 1.0 - t], axis=-1)
    return (rgb * 255).astype(np.uint8)


def render_episode(core: SaliencySearchCore, i: int) -> np.ndarray:
    """The frame of episode ``i``: the image, the canvas and the saliency of the chosen cells."""
    image = _to_rgb(core.images_np[i])
    canvas = _to_rgb(core.canvas_np[i])
    saliency = _heatmap(core.saliency_map(i))
    chosen = np.asarray(core.cfg.grid.to_pixels(core.chosen[i]), bool)
    saliency[~chosen] = (saliency[~chosen] * 0.25).astype(np.uint8)  # dim cells not chosen yet
    return _side_by_side([image, canvas, saliency])


def render_attack(core: AttributionAttackCore, i: int) -> np.ndarray:
    """The frame of attack episode ``i``: image | perturbed image | original map | current map."""
    image = _to_rgb(core.images_np[i])
    perturbed = _to_rgb(np.clip(core.images_np[i] + core.delta_np[i], 0.0, 1.0))
    return _side_by_side([image, perturbed, _heatmap(core.original_maps[i]), _heatmap(core.maps[i])])


def _side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """``(H, W, 3)`` panels in a row, white gaps between them, each pixel drawn ``SCALE`` times."""
    gap = np.full((panels[0].shape[0], _GAP // SCALE or 1, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for panel in panels:
        parts.extend([gap, panel] if parts else [panel])
    return np.kron(np.concatenate(parts, axis=1), np.ones((SCALE, SCALE, 1), np.uint8))
