"""``rgb_array`` frames of the episodes of every family (what the engines' ``render_frame`` draws).

Saliency search: image | canvas | saliency so far. Attribution attack: image | perturbed image |
original map | current map. Each panel has a title strip above it ("image: <target class>",
"canvas (step k, score 0.83)", ...), drawn with matplotlib's FreeType bindings (no figure, so a
frame costs about a millisecond per label). :func:`show_frame` draws a frame in a matplotlib window
(``render_mode="human"``).

Maps are coloured by the figures' rules (:class:`saliency_gym.plotting.MapScale`: a diverging map
centred at zero for signed maps, a sequential perceptually uniform one for unsigned maps, outliers
clipped at a percentile). :func:`overlay_rgb` and :func:`explanation_rows` (per-image overlays,
TensorBoard images) blend a map over its image and add a colour bar in the map's units.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from saliency_gym.plotting import MapScale, blend_rgb, colormap_rgb, map_scale

if TYPE_CHECKING:
    from saliency_gym.envs.attack_core import AttributionAttackCore
    from saliency_gym.envs.core import SaliencySearchCore

#: Each image pixel is drawn as a ``SCALE x SCALE`` block so 32x32 images are visible.
SCALE = 4
_GAP = 4
#: Height in pixels of the title strip over each panel.
LABEL_HEIGHT = 14
_FONT_SIZES = (9, 8, 7)
_font: Any = None


def to_rgb(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` floats in [0, 1] to ``(H, W, 3)`` uint8."""
    hwc = np.moveaxis(np.asarray(image, dtype=np.float32), 0, -1)
    if hwc.shape[-1] == 1:
        hwc = np.repeat(hwc, 3, axis=-1)
    elif hwc.shape[-1] != 3:
        hwc = np.repeat(hwc.mean(axis=-1, keepdims=True), 3, axis=-1)
    return (np.clip(hwc, 0, 1) * 255).astype(np.uint8)


def heatmap_rgb(values: np.ndarray, scale: MapScale | None = None) -> np.ndarray:
    """``(H, W)`` values to an ``(H, W, 3)`` uint8 heat map in the colours of
    :class:`~saliency_gym.plotting.MapScale` (diverging and centred at zero for a signed map,
    sequential for an unsigned one, outliers clipped); ``scale``: the map's own by default."""
    values = np.asarray(values, dtype=np.float64)
    return (scale or map_scale(values)).rgb(values)


#: Width in pixels of the colour ramp of :func:`colorbar_strip`.
COLORBAR_WIDTH = 8


def colorbar_strip(height: int, scale: MapScale) -> np.ndarray:
    """A white ``(height, w, 3)`` uint8 colour bar of ``scale``: a vertical ramp (high at the top)
    with the top, zero (signed) or middle, and bottom values written beside it."""
    top_pad = LABEL_HEIGHT // 2
    ramp_h = max(height - 2 * top_pad, 8)
    unit = np.linspace(1.0, 0.0, ramp_h)[:, None].repeat(COLORBAR_WIDTH, axis=1)
    ramp = colormap_rgb(scale.cmap, unit)
    labels = [(0, scale.vmax), (ramp_h - 1, scale.vmin)]
    middle = 0.0 if scale.signed else (scale.vmin + scale.vmax) / 2
    labels.insert(1, (int(round((1.0 - float(scale.unit(np.array(middle)))) * (ramp_h - 1))), middle))
    texts = [(row, _number(value)) for row, value in labels]
    bitmaps = [_text_bitmap(text, 64) for _, text in texts]
    text_w = max(b.shape[1] for b in bitmaps) + 3
    strip = np.full((height, COLORBAR_WIDTH + text_w + 2, 3), 255, np.uint8)
    strip[top_pad : top_pad + ramp_h, 1 : 1 + COLORBAR_WIDTH] = ramp[: height - top_pad]
    for (row, _), ink in zip(texts, bitmaps, strict=True):
        h, w = ink.shape
        y = int(np.clip(top_pad + row - h // 2, 0, height - h))
        x = COLORBAR_WIDTH + 4
        strip[y : y + h, x : x + w] = np.minimum(strip[y : y + h, x : x + w], (255 - ink)[..., None])
    return strip


def _number(value: float) -> str:
    """A colour-bar label: 3 significant digits, scientific notation for tiny or huge values."""
    if value == 0:
        return "0"
    return f"{value:.2e}" if not 1e-2 <= abs(value) < 1e4 else f"{value:.3g}"


def overlay_rgb(
    image: np.ndarray, saliency: np.ndarray, *, nearest: bool = False, colorbar: bool = True,
    scale: MapScale | None = None,
) -> np.ndarray:  # fmt: skip
    """``(H', W', 3)`` uint8: ``saliency`` blended over ``image`` (``(C, H, W)`` in [0, 1]) at the
    image's size, as the figures blend it (:func:`saliency_gym.plotting.blend_rgb`), with a colour
    bar on the right.

    A map of another size than the image is resized to it (bilinear, or ``nearest`` for a map that
    is constant on grid cells, so cells stay crisp); its colour scale (sign, clipping) is computed
    on the map itself unless ``scale`` is given.
    """
    image = np.asarray(image, dtype=np.float32)
    values = np.asarray(saliency, dtype=np.float32)
    if image.ndim != 3 or values.ndim != 2:
        raise ValueError(f"expected an image (C, H, W) and a map (H, W), got {image.shape} and {values.shape}")
    scale = scale or map_scale(values)
    h, w = image.shape[-2:]
    if values.shape != (h, w):
        from PIL import Image

        resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
        values = np.asarray(Image.fromarray(values).resize((w, h), resample), dtype=np.float32)
    blended = blend_rgb(image, values, scale)
    if not colorbar:
        return blended
    return np.concatenate([blended, colorbar_strip(h, scale)], axis=1)


def _class_name(core: Any, cls: int) -> str | None:
    """The name of class ``cls`` if the classifier has class names, else ``None``."""
    names = getattr(getattr(getattr(core, "config", None), "classifier", None), "class_names", None)
    if names is None or not 0 <= int(cls) < len(names):
        return None
    return str(names[int(cls)])


def _image_title(core: Any, i: int) -> str:
    name = _class_name(core, int(core.targets[i]))
    return "image" if name is None else f"image: {name}"


def render_episode(core: SaliencySearchCore, i: int) -> np.ndarray:
    """The frame of episode ``i``: the image, the canvas and the saliency of the chosen cells."""
    image = to_rgb(core.images_np[i])
    canvas = to_rgb(core.canvas_np[i])
    saliency = heatmap_rgb(core.saliency_map(i))
    chosen = np.asarray(core.cfg.grid.to_pixels(core.chosen[i]), bool)
    saliency[~chosen] = (saliency[~chosen] * 0.25).astype(np.uint8)  # dim cells not chosen yet
    titles = [
        _image_title(core, i),
        f"canvas (step {int(core.steps[i])}, score {float(core.scores[i]):.2f})",
        "saliency",
    ]
    return _side_by_side([image, canvas, saliency], titles)


def explanation_rows(
    images: np.ndarray, maps: np.ndarray, titles: list[str] | None = None
) -> np.ndarray:
    """One ``(H', W', 3)`` uint8 picture of several explanations, a row each: the image and its
    saliency map blended over it (:func:`overlay_rgb`: sign-aware colours, outliers clipped), a
    colour bar in the map's units beside it, titled ``titles[i]`` when given.

    For TensorBoard's image tab (the training run's example maps) and anywhere a figure without
    matplotlib will do. Small images are enlarged by whole pixels (nearest: cells stay crisp) to
    about 128 pixels a side.
    """
    if (
        images.ndim != 4
        or maps.ndim != 3
        or images.shape[0] != maps.shape[0]
        or images.shape[-2:] != maps.shape[-2:]
    ):
        raise ValueError(
            f"images (N, C, H, W) and maps (N, H, W) must agree, got {images.shape} and {maps.shape}"
        )
    scale = max(1, 128 // max(images.shape[-2:]))
    rows = []
    for i in range(images.shape[0]):
        title = titles[i] if titles is not None else "image"
        values = np.asarray(maps[i], np.float64)
        map_colours = map_scale(values)
        panels = _side_by_side(
            [to_rgb(images[i]), overlay_rgb(images[i], values, colorbar=False, scale=map_colours)],
            [title, "saliency"], scale=scale,
        )  # fmt: skip
        bar = colorbar_strip(panels.shape[0] - LABEL_HEIGHT, map_colours)
        bar = np.concatenate([np.full((LABEL_HEIGHT, bar.shape[1], 3), 255, np.uint8), bar], axis=0)
        rows.append(np.concatenate([panels, bar], axis=1))
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows]
    gap = np.full((_GAP, width, 3), 255, np.uint8)
    return np.concatenate([part for row in rows for part in (row, gap)][:-1], axis=0)


def render_attack(core: AttributionAttackCore, i: int) -> np.ndarray:
    """The frame of attack episode ``i``: image | perturbed image | original map | current map
    (both maps on one colour scale, so a change of colour is a change of value)."""
    image = to_rgb(core.images_np[i])
    perturbed = to_rgb(np.clip(core.images_np[i] + core.delta_np[i], 0.0, 1.0))
    titles = [
        _image_title(core, i),
        f"perturbed (step {int(core.steps[i])})",
        "original map",
        "current map",
    ]
    both = map_scale(np.stack([core.original_maps[i], core.maps[i]]))
    return _side_by_side(
        [image, perturbed, heatmap_rgb(core.original_maps[i], both), heatmap_rgb(core.maps[i], both)], titles
    )


def _get_font() -> Any:
    global _font
    if _font is None:
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        _font = FT2Font(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")))
    return _font


def _text_bitmap(text: str, max_width: int) -> np.ndarray:
    """``text`` as an ``(h, w)`` uint8 coverage bitmap (255 = ink), at the largest of the font sizes
    that fits ``max_width`` pixels (cropped at the smallest if none does)."""
    font = _get_font()
    bitmap = np.zeros((0, 0), np.uint8)
    for size in _FONT_SIZES:
        font.set_size(size, 72)
        font.set_text(text, 0.0)
        font.draw_glyphs_to_bitmap(antialiased=True)
        bitmap = np.asarray(font.get_image(), dtype=np.uint8)
        if bitmap.shape[1] <= max_width:
            break
    return bitmap[:LABEL_HEIGHT, :max_width]


def label_strip(text: str, width: int) -> np.ndarray:
    """A white ``(LABEL_HEIGHT, width, 3)`` uint8 strip with ``text`` centred on it in black."""
    strip = np.full((LABEL_HEIGHT, width), 255, np.uint8)
    ink = _text_bitmap(text, width - 2)
    h, w = ink.shape
    top, left = (LABEL_HEIGHT - h) // 2, (width - w) // 2
    strip[top : top + h, left : left + w] = 255 - ink
    return np.repeat(strip[..., None], 3, axis=-1)


def _side_by_side(panels: list[np.ndarray], titles: list[str] | None = None, scale: int = SCALE) -> np.ndarray:
    """``(H, W, 3)`` panels in a row, white gaps between them, each pixel drawn ``scale`` times
    (nearest), with a title strip over each panel when ``titles`` is given."""
    gap = np.full((panels[0].shape[0], _GAP // scale or 1, 3), 255, np.uint8)
    parts: list[np.ndarray] = []
    for panel in panels:
        parts.extend([gap, panel] if parts else [panel])
    frame = np.kron(np.concatenate(parts, axis=1), np.ones((scale, scale, 1), np.uint8))
    if titles is None:
        return frame
    strip = np.full((LABEL_HEIGHT, frame.shape[1], 3), 255, np.uint8)
    panel_w, gap_w = panels[0].shape[1] * scale, gap.shape[1] * scale
    for k, title in enumerate(titles):
        left = k * (panel_w + gap_w)
        strip[:, left : left + panel_w] = label_strip(title, panel_w)
    return np.concatenate([strip, frame], axis=0)


# ---------------------------------------------------------------------- render_mode="human"
HUMAN_MODE_ERROR = (
    "render_mode='human' needs a matplotlib GUI backend (a display and e.g. `pip install pyqt6`, or tk, "
    "with MPLBACKEND=QtAgg / TkAgg), but the current backend is {backend!r}; use render_mode='rgb_array' "
    "to get the frames as arrays"
)
_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def _is_interactive_backend(backend: str) -> bool:
    name = backend.lower()
    if name in _NON_INTERACTIVE or name.startswith("module://matplotlib_inline"):
        return False
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        interactive = {b.lower() for b in backend_registry.list_builtin(BackendFilter.INTERACTIVE)}
        return name in interactive or name.startswith("module://")
    except ImportError:  # matplotlib < 3.9
        return True


class HumanViewer:
    """A matplotlib window showing the latest frame (``render_mode="human"``)."""

    def __init__(self, title: str = "saliency-gym", *, strict: bool = False) -> None:
        self.title = title
        self.strict = strict
        self._warned = False
        self._fig: Any = None
        self._image: Any = None

    def show(self, frame: np.ndarray, fps: float = 4.0) -> None:
        """Draw ``frame`` in the window (opened on first use).

        Without a GUI backend (e.g. matplotlib's Agg on a machine with no display) nothing can be
        shown: the first call warns (``UserWarning`` with :data:`HUMAN_MODE_ERROR`, what to install
        or set) and later calls do nothing, or raises ``RuntimeError`` with that message when the
        viewer is ``strict``. It does not raise by default because Gymnasium's ``check_env`` renders
        every declared render mode, so a raising ``"human"`` mode would fail it on headless machines.
        """
        import matplotlib
        import matplotlib.pyplot as plt

        backend = str(matplotlib.get_backend())
        if not _is_interactive_backend(backend):
            message = HUMAN_MODE_ERROR.format(backend=backend)
            if self.strict:
                raise RuntimeError(message)
            if not self._warned:
                warnings.warn(message, UserWarning, stacklevel=3)
                self._warned = True
            return
        if self._fig is None or not plt.fignum_exists(self._fig.number):
            self._fig = plt.figure(self.title, figsize=(frame.shape[1] / 100, frame.shape[0] / 100))
            ax = self._fig.add_axes((0, 0, 1, 1))
            ax.set_axis_off()
            self._image = ax.imshow(frame)
        else:
            self._image.set_data(frame)
        plt.pause(1.0 / fps)

    def close(self) -> None:
        if self._fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self._fig)
            self._fig = None
