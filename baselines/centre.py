"""The centre prior: the same centre-out map for every image, at no query.

Most data sets put the object near the middle of the picture (ours do: the shapes and digits are
drawn around the centre, photographs are framed on their subject), so "the centre matters most" is
an explanation that knows nothing about the image or the model and still scores well on insertion
and deletion. A learned policy that ignores the image converges to such a prior; benchmarks show
this row beside every agent so that an agent is credited only for what it adds to it (issue 21).

The map is minus the Euclidean distance of each pixel (or, with ``grid=``, of each grid cell's
centre) to the image centre, in pixels, so the centre ranks first. Equal distances tie exactly; as
everywhere in saliency-gym (the metrics' stable sorts, :meth:`~saliency_gym.grid.PatchGrid.cell_order`)
a tie is broken by the lower row-major index, so the order is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import ClassifierLike
from saliency_gym.grid import PatchGrid


def centre_distances(height: int, width: int, grid: tuple[int, int] | None = None) -> np.ndarray:
    """``float64 (height, width)``: the distance of each pixel to the image centre, or with
    ``grid=(rows, cols)`` the distance of the centre of the pixel's cell (cells as
    :class:`~saliency_gym.grid.PatchGrid` draws them, so uneven cells have their true centres).

    Pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``, so its centre is ``(i + 1/2, j + 1/2)`` and
    the image centre is ``(height / 2, width / 2)``; a cell spanning rows ``[r0, r1)`` has its centre
    at ``(r0 + r1) / 2``.
    """
    if grid is None:
        rows = np.arange(height) + 0.5
        cols = np.arange(width) + 0.5
    else:
        cells = PatchGrid(height, width, *grid)
        row_centres = (cells.row_edges[:-1] + cells.row_edges[1:]) / 2
        col_centres = (cells.col_edges[:-1] + cells.col_edges[1:]) / 2
        rows = np.repeat(row_centres, np.diff(cells.row_edges))
        cols = np.repeat(col_centres, np.diff(cells.col_edges))
    return np.hypot(rows[:, None] - height / 2, cols[None, :] - width / 2)


def _check_grid(grid: Any) -> tuple[int, int] | None:
    if grid is None:
        return None
    if isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        grid = (int(grid), int(grid))
    if not isinstance(grid, (tuple, list)) or len(grid) != 2:
        raise TypeError(f"grid must be None, an int or a (rows, cols) pair, got {grid!r}")
    for value in grid:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"grid must hold ints, got {grid!r}")
        if value < 1:
            raise ValueError(f"grid must hold positive ints, got {tuple(grid)}")
    return int(grid[0]), int(grid[1])


class CentrePriorExplainer(Explainer):
    """Minus the distance to the image centre: the same map for every image, target and model.

    Args:
        classifier: the model "explained" (only its input shape and device are used).
        grid: ``None`` (default) ranks pixels; ``(rows, cols)`` (or one int for a square grid)
            ranks grid cells by the distance of each cell's centre, every pixel of a cell taking
            its cell's value, so the map is a centre-out *cell order* (what a policy on that grid
            would play; see :class:`~saliency_gym.agents.policies.AttributionOrderPolicy`).

    It never queries the classifier (``expected_queries() == 0``; only explaining the predicted
    class, ``targets=None``, costs the usual one query per image) and needs no gradients.
    """

    name = "centre"

    def __init__(
        self, classifier: ClassifierLike, grid: int | tuple[int, int] | None = None, *, input_shape: Sequence[int] | None = None
    ) -> None:
        super().__init__(classifier, input_shape=input_shape)
        self.grid = _check_grid(grid)
        _, height, width = self.classifier.input_shape
        if self.grid is not None and (self.grid[0] > height or self.grid[1] > width):
            raise ValueError(f"grid {self.grid} has more cells per side than the {height}x{width} image has pixels")
        self._map = torch.from_numpy(-centre_distances(height, width, self.grid)).float()

    @property
    def saliency(self) -> np.ndarray:
        """The ``float32 (H, W)`` map every image gets."""
        return self._map.numpy().copy()

    def expected_queries(self) -> int:
        """Forward passes one image costs: none."""
        return 0

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        return self._map.to(images.device).expand(n, -1, -1).clone()

    def __repr__(self) -> str:
        return f"CentrePriorExplainer(classifier={self.classifier.name!r}, grid={self.grid})"
