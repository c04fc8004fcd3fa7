"""Figures of images beside their saliency maps, in print quality (PNG, PDF or SVG).

Colour conventions follow Captum's ``visualize_image_attr``, so a map reads the same here as in the
papers that use it:

- **sign**: a *signed* map (one with negative values: Integrated Gradients, DeepLIFT,
  Input x Gradient, GradientSHAP, occlusion) is drawn with a diverging colour map
  (:data:`SIGNED_CMAP`, blue negative, white zero, red positive) centred at zero; an *unsigned*
  map (Grad-CAM, RISE, a policy's reveal order) with a sequential, perceptually uniform one
  (:data:`UNSIGNED_CMAP`, dark low, bright high). Zero is never "mid-green".
- **outliers**: the colour range is clipped at the :data:`CLIP_PERCENTILE` th percentile (of
  ``|a|`` for signed maps, of ``a`` at both ends for unsigned ones), so one extreme pixel does not
  wash the rest of the map out (Integrated Gradients on 224 px photos).
- **blending**: a map is drawn over a grey copy of the image with an opacity that grows with the
  map's magnitude (Captum's ``alpha_scaling``), so where nothing is attributed the photo shows.
- **a colour bar on every map**, in the map's own units, so two maps are never compared by colour
  alone.
- **grid maps** (a policy's cells, occlusion patches) are drawn with nearest interpolation, cell
  borders and, up to :data:`NUMBERED_CELLS` cells, each cell's rank (1 = most salient; for a
  reveal-order map, the step it was revealed at).

:class:`MapScale` is the one place these rules live; :mod:`saliency_gym.envs.render` uses it for
environment frames, TensorBoard images and per-image overlays. Uses matplotlib's non-interactive
Agg backend, so it works on machines without a display.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Diverging colour map of signed maps (zero is white).
SIGNED_CMAP = "RdBu_r"
#: Sequential, perceptually uniform colour map of unsigned maps (prints in grey scale too).
UNSIGNED_CMAP = "inferno"
#: Percentile at which a map's colour range is clipped (Captum clips outliers the same way).
CLIP_PERCENTILE = 99.0
#: A map is signed when its most negative value exceeds this share of its largest magnitude
#: (float noise around zero of an unsigned method does not make it signed).
SIGN_TOLERANCE = 1e-3
#: Grid maps with at most this many cells get each cell's rank written on it.
NUMBERED_CELLS = 64
#: Largest grid (cells per side) recognised in a map that is constant on cells; cells must also be
#: at least :data:`MIN_CELL_PIXELS` a side (finer blocks, e.g. occlusion's strides, are pixel maps).
MAX_GRID_SIDE = 16
MIN_CELL_PIXELS = 4
#: Figure formats the commands write.
FIGURE_FORMATS = ("png", "pdf", "svg")
#: Resolution of raster figures (PNG) by default; print wants 300.
DEFAULT_DPI = 200
#: The label of the colour bars of :func:`save_saliency_grid` (in each map's own units).
COLORBAR_LABEL = "attribution"
_FONT = 10
_ALPHA_MIN, _ALPHA_MAX = 0.15, 0.85


def _figure_module() -> Any:
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


def to_grey(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] to an ``(H, W)`` luminance in [0, 1] (ITU-R 601 weights)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        return image
    if image.shape[0] == 3:
        return np.tensordot(np.array([0.299, 0.587, 0.114], np.float32), image, axes=1)
    return image.mean(axis=0)


@dataclass(frozen=True)
class MapScale:
    """How the values of one map (or of maps drawn alike) become colours.

    ``signed`` maps use :data:`SIGNED_CMAP` over ``[-vmax, vmax]``; unsigned ones
    :data:`UNSIGNED_CMAP` over ``[vmin, vmax]``. Values outside are clipped (:attr:`clipped` tells
    a reader the range was cut at a percentile).
    """

    signed: bool
    vmin: float
    vmax: float
    cmap: str
    clipped: bool = True

    def unit(self, values: np.ndarray) -> np.ndarray:
        """``values`` as positions in [0, 1] along the colour map (clipped)."""
        span = self.vmax - self.vmin
        return np.clip((np.asarray(values, np.float64) - self.vmin) / span, 0.0, 1.0)

    def magnitude(self, values: np.ndarray) -> np.ndarray:
        """How strong each value is, in [0, 1]: ``|a| / vmax`` for signed maps, the position along
        the colour map for unsigned ones (the opacity of blended overlays)."""
        if self.signed:
            return np.clip(np.abs(np.asarray(values, np.float64)) / self.vmax, 0.0, 1.0)
        return self.unit(values)

    def rgb(self, values: np.ndarray) -> np.ndarray:
        """``(..., 3)`` uint8 colours of ``values``."""
        return colormap_rgb(self.cmap, self.unit(values))

    def norm(self) -> Any:
        """The matplotlib ``Normalize`` of this scale."""
        from matplotlib.colors import Normalize

        return Normalize(self.vmin, self.vmax, clip=True)


def is_signed(maps: np.ndarray, tolerance: float = SIGN_TOLERANCE) -> bool:
    """Whether ``maps`` hold meaningfully negative values (see :data:`SIGN_TOLERANCE`)."""
    values = np.asarray(maps, np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return False
    largest = float(np.abs(finite).max())
    return largest > 0 and float(finite.min()) < -tolerance * largest


def map_scale(maps: np.ndarray, *, signed: bool | None = None, clip_percentile: float = CLIP_PERCENTILE) -> MapScale:
    """The :class:`MapScale` of ``maps`` (one map, or several to be drawn alike).

    Args:
        maps: the values, any shape (non-finite values are ignored).
        signed: draw as signed (diverging, centred at zero) or unsigned; ``None``: signed when the
            maps have negative values (:func:`is_signed`).
        clip_percentile: signed: the range is ``±`` this percentile of ``|a|``; unsigned: from the
            ``100 - clip_percentile`` th to the ``clip_percentile`` th percentile. ``100`` keeps
            the full range.
    """
    if not 50.0 < float(clip_percentile) <= 100.0:
        raise ValueError(f"clip_percentile must lie in (50, 100], got {clip_percentile}")
    values = np.asarray(maps, np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        finite = np.zeros(1)
    signed = is_signed(finite) if signed is None else bool(signed)
    clipped = clip_percentile < 100.0
    if signed:
        top = float(np.percentile(np.abs(finite), clip_percentile))
        if not top > 0:
            top = float(np.abs(finite).max()) or 1.0
        return MapScale(True, -top, top, SIGNED_CMAP, clipped)
    low = float(np.percentile(finite, 100.0 - clip_percentile))
    high = float(np.percentile(finite, clip_percentile))
    if not high > low:
        low, high = float(finite.min()), float(finite.max())
    if not high > low:  # a constant map
        low, high = (low - 1.0, low) if low > 0 else (low, low + 1.0)
    return MapScale(False, low, high, UNSIGNED_CMAP, clipped)


_LUTS: dict[str, np.ndarray] = {}


def colormap_rgb(cmap: str, unit: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours of positions ``unit`` in [0, 1] along the matplotlib colour map
    ``cmap`` (a 256-entry lookup table, no figure)."""
    if cmap not in _LUTS:
        import matplotlib

        _LUTS[cmap] = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    index = np.clip(np.rint(np.asarray(unit, np.float64) * 255), 0, 255).astype(np.int64)
    return _LUTS[cmap][index]


def blend_rgb(image: np.ndarray, values: np.ndarray, scale: MapScale) -> np.ndarray:
    """``(H, W, 3)`` uint8: ``values`` in ``scale``'s colours over a grey copy of ``image``
    (``(C, H, W)`` in [0, 1], same ``H, W``), opaque where the map is strong."""
    grey = to_grey(image)[..., None].astype(np.float64) * 255.0
    grey = 64.0 + 0.75 * grey  # lightened, so the colours dominate and print
    alpha = (_ALPHA_MIN + (_ALPHA_MAX - _ALPHA_MIN) * scale.magnitude(values))[..., None]
    return np.clip((1.0 - alpha) * grey + alpha * scale.rgb(values), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ grid maps
def grid_of(maps: np.ndarray, max_side: int = MAX_GRID_SIDE) -> tuple[int, int] | None:
    """The coarsest :class:`~saliency_gym.grid.PatchGrid` ``(rows, cols)`` on whose cells every map of
    ``maps`` (``(H, W)`` or ``(N, H, W)``) is constant, or ``None`` when there is none with at most
    ``max_side`` cells per side and :data:`MIN_CELL_PIXELS` pixels per cell side (a pixel map)."""
    maps = np.asarray(maps)
    maps = maps[None] if maps.ndim == 2 else maps
    _, h, w = maps.shape
    row_changes = np.flatnonzero(np.any(maps[:, 1:, :] != maps[:, :-1, :], axis=(0, 2))) + 1
    col_changes = np.flatnonzero(np.any(maps[:, :, 1:] != maps[:, :, :-1], axis=(0, 1))) + 1
    rows = _fitting_cells(row_changes, h, max_side)
    cols = _fitting_cells(col_changes, w, max_side)
    if rows is None or cols is None or rows * cols <= 1:
        return None
    return rows, cols


def _fitting_cells(changes: np.ndarray, size: int, max_side: int) -> int | None:
    """The fewest cells ``k`` along a side of ``size`` pixels whose edges (as PatchGrid draws them)
    include every position where the map changes."""
    for k in range(1, min(max_side, size // MIN_CELL_PIXELS) + 1):
        edges = set(np.round(np.linspace(0, size, k + 1)).astype(int)[1:-1].tolist())
        if edges.issuperset(changes.tolist()):
            return k
    return None


def _draw_grid(ax: Any, values: np.ndarray, grid: tuple[int, int], scale: MapScale) -> None:
    """Cell borders and, for small grids, each cell's rank (1 = largest value; cells tied at the
    smallest value, e.g. never revealed, are left blank)."""
    from saliency_gym.grid import PatchGrid

    h, w = values.shape
    patch = PatchGrid(h, w, *grid)
    for edge in patch.row_edges[1:-1]:
        ax.axhline(edge - 0.5, color="white", linewidth=0.4, alpha=0.7)
    for edge in patch.col_edges[1:-1]:
        ax.axvline(edge - 0.5, color="white", linewidth=0.4, alpha=0.7)
    if patch.num_cells > NUMBERED_CELLS:
        return
    cells = np.asarray(patch.cell_means(values.astype(np.float64)))
    order = np.argsort(-cells, kind="stable")
    lowest = cells.min()
    blank = np.isclose(cells, lowest) if np.isclose(cells, lowest).sum() > 1 else np.zeros_like(cells, bool)
    size = max(4.0, min(8.0, 40.0 / max(grid)))
    for rank, cell in enumerate(order, start=1):
        if blank[cell]:
            continue
        r, c = divmod(int(cell), patch.cols)
        y = (patch.row_edges[r] + patch.row_edges[r + 1] - 1) / 2
        x = (patch.col_edges[c] + patch.col_edges[c + 1] - 1) / 2
        ink = "black" if scale.magnitude(cells[cell]) > 0.6 and not scale.signed else "white"
        if scale.signed:
            ink = "white" if scale.magnitude(cells[cell]) > 0.5 else "black"
        ax.text(x, y, str(rank), ha="center", va="center", fontsize=size, color=ink)


# ------------------------------------------------------------------------------ figures
def check_figure_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FIGURE_FORMATS` (``ValueError`` listing them otherwise)."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"figure format {fmt!r} is not supported; choose one of {', '.join(FIGURE_FORMATS)}")
    return fmt


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = DEFAULT_DPI) -> Path:
    """Save ``fig`` to ``path`` in the format its suffix names (:data:`FIGURE_FORMATS`) and close it.

    ``dpi`` applies to raster output (PNG; also to images embedded in a PDF or SVG)."""
    plt = _figure_module()
    path = Path(path)
    check_figure_format(path.suffix.lstrip(".").lower())
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 2400:
        raise ValueError(f"dpi must be an int in [10, 2400], got {dpi!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
    finally:
        plt.close(fig)
    return path


def save_saliency_grid(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    row_titles: Sequence[str] | None = None,
    masks: np.ndarray | None = None,
    title: str | None = None,
    dpi: int = DEFAULT_DPI,
    grids: Mapping[str, tuple[int, int] | None] | None = None,
    clip_percentile: float = CLIP_PERCENTILE,
) -> Path:
    """One row per image: the image, then each method's map over it, each with its colour bar.

    Args:
        images: ``(N, C, H, W)`` in [0, 1].
        maps: method name (the column title; long names are wrapped) to ``(N, H, W)`` saliency maps.
        path: where to write; the suffix picks the format (``.png``, ``.pdf`` or ``.svg``).
        row_titles: a label per image (e.g. class names).
        masks: optional ``(N, H, W)`` ground-truth masks, drawn as a contour on the image.
        title: figure title.
        dpi: resolution of raster output.
        grids: per method, the ``(rows, cols)`` grid its maps are constant on (drawn as cells);
            methods not named are checked for one (:func:`grid_of`).
        clip_percentile: outlier clipping of every map's colour range (:func:`map_scale`).

    Whether a method's maps are signed is decided over its whole column, so a column is drawn with
    one colour map; each map's range is its own (written on its colour bar).
    """
    fig = saliency_grid_figure(images, maps, row_titles=row_titles, masks=masks, title=title, grids=grids,
                               clip_percentile=clip_percentile)  # fmt: skip
    return save_figure(fig, path, dpi=dpi)


def saliency_grid_figure(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    row_titles: Sequence[str] | None = None,
    masks: np.ndarray | None = None,
    title: str | None = None,
    grids: Mapping[str, tuple[int, int] | None] | None = None,
    clip_percentile: float = CLIP_PERCENTILE,
) -> Any:
    """The matplotlib ``Figure`` that :func:`save_saliency_grid` saves (the caller closes it)."""
    import textwrap

    from matplotlib.cm import ScalarMappable

    plt = _figure_module()
    images = np.asarray(images)
    n, cols = len(images), 1 + len(maps)
    for method, method_maps in maps.items():
        if np.shape(method_maps)[0] != n or np.shape(method_maps)[-2:] != images.shape[-2:]:
            raise ValueError(f"maps of {method!r} have shape {np.shape(method_maps)}; expected ({n}, {images.shape[-2]}, {images.shape[-1]})")
    signed = {m: is_signed(v) for m, v in maps.items()}
    grid_by_method = {m: (grids or {}).get(m) or grid_of(np.asarray(v)) for m, v in maps.items()}
    fig, axes = plt.subplots(n, cols, figsize=(2.5 * cols + 0.4, 2.2 * n + 0.6), squeeze=False, layout="constrained")
    for i in range(n):
        shown = to_display(images[i])
        axes[i, 0].imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        if masks is not None:
            axes[i, 0].contour(masks[i].astype(float), levels=[0.5], colors="white", linewidths=0.8)
        axes[i, 0].set_ylabel(row_titles[i] if row_titles is not None else f"#{i}", fontsize=_FONT)
        for j, (method, method_maps) in enumerate(maps.items(), start=1):
            ax = axes[i, j]
            m = np.asarray(method_maps[i], dtype=np.float32)
            scale = map_scale(m, signed=signed[method], clip_percentile=clip_percentile)
            ax.imshow(blend_rgb(images[i], m, scale), interpolation="nearest")
            grid = grid_by_method[method]
            if grid is not None:
                _draw_grid(ax, m, grid, scale)
            bar = fig.colorbar(ScalarMappable(scale.norm(), scale.cmap), ax=ax, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=_FONT - 3)
            bar.formatter.set_powerlimits((-2, 3))
            bar.ax.yaxis.get_offset_text().set_fontsize(_FONT - 3)
            if i == 0:
                bar.set_label(COLORBAR_LABEL, fontsize=_FONT - 3)
                ax.set_title(textwrap.fill(method, 24), fontsize=_FONT)
        if i == 0:
            axes[i, 0].set_title("image", fontsize=_FONT)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    caption = f"colour range clipped at the {clip_percentile:g}th percentile of each map" if clip_percentile < 100 else ""
    if any(signed.values()):
        caption += ("; " if caption else "") + "signed maps: blue negative, red positive"
    if title or caption:
        fig.suptitle("\n".join(t for t in (title, caption) if t), fontsize=_FONT + 1 if not caption else _FONT)
    return fig
