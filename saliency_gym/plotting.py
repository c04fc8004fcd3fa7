"""PNG figures: images beside their saliency maps.

Uses matplotlib's non-interactive Agg backend, so it works on machines without a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _figure_module():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def to_display(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] to what ``imshow`` expects: ``(H, W, 3)`` or ``(H, W)``."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] == 1:
        return image[0]
    if image.ndim == 3:
        return np.moveaxis(image, 0, -1)
    return image


#: The label of the shared colour bar of :func:`save_saliency_grid`.
COLORBAR_LABEL = "saliency (normalised per map)"
_FONT = 10


def save_saliency_grid(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    row_titles: Sequence[str] | None = None,
    masks: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """One row per image: the image, then each method's map overlaid on it.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        maps: method name (the column title; long names are wrapped) to ``(N, H, W)`` saliency maps.
        path: where to write the PNG.
        row_titles: a label per image (e.g. class names).
        masks: optional ``(N, H, W)`` ground-truth masks, drawn as a contour on the image.
        title: figure title.

    Each map is scaled to [0, 1] on its own before it is overlaid; one colour bar on the right
    gives that scale (:data:`COLORBAR_LABEL`).
    """
    plt = _figure_module()
    fig = saliency_grid_figure(images, maps, row_titles=row_titles, masks=masks, title=title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def saliency_grid_figure(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    row_titles: Sequence[str] | None = None,
    masks: np.ndarray | None = None,
    title: str | None = None,
) -> Any:
    """The matplotlib ``Figure`` that :func:`save_saliency_grid` saves (the caller closes it)."""
    import textwrap

    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    plt = _figure_module()
    n, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols + 0.9, 2.2 * n + 0.6), squeeze=False, layout="constrained")
    cmap = "jet"
    for i in range(n):
        shown = to_display(images[i])
        axes[i, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
        if masks is not None:
            axes[i, 0].contour(masks[i].astype(float), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_ylabel(row_titles[i] if row_titles is not None else f"#{i}", fontsize=_FONT)
        for j, (method, method_maps) in enumerate(maps.items(), start=1):
            ax = axes[i, j]
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
            m = np.asarray(method_maps[i], dtype=np.float32)
            span = float(m.max() - m.min())
            normed = (m - m.min()) / span if span > 0 else np.zeros_like(m)
            ax.imshow(normed, cmap=cmap, alpha=0.5, vmin=0, vmax=1)
            if i == 0:
                ax.set_title(textwrap.fill(method, 24), fontsize=_FONT)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=_FONT)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if maps:
        bar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=axes[:, 1:].ravel().tolist(), aspect=12 * n + 8)
        bar.set_label(COLORBAR_LABEL, fontsize=_FONT - 1)
        bar.ax.tick_params(labelsize=_FONT - 1)
    if title:
        fig.suptitle(title, fontsize=_FONT + 1)
    return fig
