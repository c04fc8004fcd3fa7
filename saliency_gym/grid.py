"""``PatchGrid``: a ``rows x cols`` grid of cells over an ``H x W`` image.

Environments act on cells, policies rank cells, and patch-level metrics reveal cells; all of them
go through this one mapping so that "cell 5" means the same pixels everywhere. Cells are numbered
row-major. When ``H`` (or ``W``) is not a multiple of ``rows`` (``cols``), boundaries are rounded
from an even split, so cell sizes differ by at most one pixel and every pixel has exactly one cell.
"""

from __future__ import annotations

import numpy as np
import torch

from saliency_gym.types import MapBatch
from saliency_gym.validation import as_map_batch, check_int


class PatchGrid:
    """Cells of an image grid and the conversions between cells and pixels.

    Args:
        height, width: image size in pixels.
        rows, cols: number of cells per column and per row (``cols`` defaults to ``rows``).
    """

    def __init__(self, height: int, width: int, rows: int, cols: int | None = None) -> None:
        self.height = check_int("height", height, minimum=1)
        self.width = check_int("width", width, minimum=1)
        self.rows = check_int("grid rows", rows, minimum=1, maximum=self.height)
        self.cols = check_int("grid cols", rows if cols is None else cols, minimum=1, maximum=self.width)
        self.row_edges = np.round(np.linspace(0, self.height, self.rows + 1)).astype(int)
        self.col_edges = np.round(np.linspace(0, self.width, self.cols + 1)).astype(int)
        row_of = np.repeat(np.arange(self.rows), np.diff(self.row_edges))
        col_of = np.repeat(np.arange(self.cols), np.diff(self.col_edges))
        #: ``(H, W)`` int64: the cell id of every pixel.
        self.cell_index = (row_of[:, None] * self.cols + col_of[None, :]).astype(np.int64)
        self.cell_index.flags.writeable = False
        #: ``(cells,)`` number of pixels per cell.
        self.cell_sizes = np.bincount(self.cell_index.ravel(), minlength=self.num_cells)
        self._index_t: dict[torch.device, torch.Tensor] = {}

    @classmethod
    def for_shape(cls, image_shape: tuple[int, ...], rows: int, cols: int | None = None) -> PatchGrid:
        """A grid for a ``(C, H, W)`` or ``(H, W)`` image shape."""
        h, w = image_shape[-2:]
        return cls(h, w, rows, cols)

    @property
    def num_cells(self) -> int:
        return self.rows * self.cols

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def index_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """:attr:`cell_index` as a (cached) tensor on ``device``."""
        device = torch.device(device)
        if device not in self._index_t:
            self._index_t[device] = torch.from_numpy(self.cell_index.copy()).to(device)
        return self._index_t[device]

    def cell_slices(self, cell: int) -> tuple[slice, slice]:
        """Row and column slices of one cell."""
        cell = check_int("cell", cell, minimum=0, maximum=self.num_cells - 1)
        r, c = divmod(cell, self.cols)
        return (slice(self.row_edges[r], self.row_edges[r + 1]), slice(self.col_edges[c], self.col_edges[c + 1]))

    def to_pixels(self, cell_values: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Broadcast per-cell values ``(..., cells)`` to pixels ``(..., H, W)`` (same type back)."""
        if cell_values.shape[-1] != self.num_cells:
            raise ValueError(f"expected {self.num_cells} cell values in the last axis, got shape {tuple(cell_values.shape)}")
        if isinstance(cell_values, torch.Tensor):
            return cell_values[..., self.index_tensor(cell_values.device)]
        return np.asarray(cell_values)[..., self.cell_index]

    def cell_means(self, pixel_values: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Average pixel values ``(..., H, W)`` over each cell, giving ``(..., cells)``."""
        if tuple(pixel_values.shape[-2:]) != (self.height, self.width):
            raise ValueError(f"expected (..., {self.height}, {self.width}) pixel values, got {tuple(pixel_values.shape)}")
        is_numpy = not isinstance(pixel_values, torch.Tensor)
        values = pixel_values if isinstance(pixel_values, torch.Tensor) else torch.as_tensor(np.asarray(pixel_values))
        lead = values.shape[:-2]
        flat = values.reshape(-1, self.height * self.width).to(torch.float64 if values.dtype == torch.float64 else torch.float32)
        index = self.index_tensor(flat.device).reshape(-1).expand(flat.shape[0], -1)
        sums = torch.zeros(flat.shape[0], self.num_cells, dtype=flat.dtype, device=flat.device)
        sums.scatter_add_(1, index, flat)
        means = (sums / torch.as_tensor(self.cell_sizes, dtype=flat.dtype, device=flat.device)).reshape(*lead, self.num_cells)
        return means.numpy() if is_numpy else means

    def cell_scores(self, maps: MapBatch | torch.Tensor) -> np.ndarray:
        """Score each cell of each map by the map's mean over the cell: ``float64 (N, cells)``.

        ``maps`` are ``(N, H, W)`` finite saliency maps of this grid's size (NumPy or torch),
        validated as the metrics validate them.
        """
        m = as_map_batch(maps, shape=(self.height, self.width))
        scores = self.cell_means(m)
        assert isinstance(scores, np.ndarray)
        return scores

    def cell_order(self, maps: MapBatch | torch.Tensor, k: int | None = None) -> np.ndarray:
        """Cells of each map by decreasing :meth:`cell_scores`, ties by lower cell id: ``int64 (N, k)``.

        ``k`` (default: all cells) keeps the first ``k`` cells, e.g. an episode's budget.
        """
        k = self.num_cells if k is None else check_int("k", k, minimum=1, maximum=self.num_cells)
        order = np.argsort(-self.cell_scores(maps), axis=1, kind="stable")[:, :k]
        return order.astype(np.int64)

    def __repr__(self) -> str:
        return f"PatchGrid({self.height}x{self.width} pixels, {self.rows}x{self.cols} cells)"
