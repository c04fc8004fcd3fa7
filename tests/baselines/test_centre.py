"""The centre prior (``make_explainer("centre", ...)``): hand-computed maps, no query, a cell order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from saliency_gym import FrozenClassifier
from saliency_gym.baselines import CentrePriorExplainer, centre_distances
from saliency_gym.explainers import make_explainer
from saliency_gym.grid import PatchGrid
from tests.conftest import RegionModel


def _classifier(h: int, w: int) -> FrozenClassifier:
    return FrozenClassifier(RegionModel(slice(0, 1), slice(0, 1)), (1, h, w), device="cpu", name="region")


def test_3x3_map_by_hand():
    r2 = math.sqrt(2)
    expected = -np.array([[r2, 1, r2], [1, 0, 1], [r2, 1, r2]], np.float32)
    explanation = CentrePriorExplainer(_classifier(3, 3)).explain(torch.rand(2, 1, 3, 3), [0, 1])
    np.testing.assert_allclose(explanation.maps, np.stack([expected, expected]), rtol=1e-6)
    assert explanation.queries == 0 and explanation.method == "centre"


def test_4x4_map_by_hand_and_its_ties_keep_row_major_order():
    inner, edge, corner = math.sqrt(0.5), math.sqrt(2.5), math.sqrt(4.5)  # offsets 0.5 and 1.5 from the centre
    expected = -np.array([[corner, edge, edge, corner], [edge, inner, inner, edge],
                          [edge, inner, inner, edge], [corner, edge, edge, corner]])  # fmt: skip
    np.testing.assert_allclose(centre_distances(4, 4), -expected)
    maps = CentrePriorExplainer(_classifier(4, 4)).explain(torch.rand(1, 1, 4, 4), 0).maps
    np.testing.assert_allclose(maps[0], expected, rtol=1e-6)
    # the metrics' stable sort breaks the exact ties by the lower row-major index
    order = np.argsort(-maps[0].ravel(), kind="stable")
    assert order[:4].tolist() == [5, 6, 9, 10] and order[-4:].tolist() == [0, 3, 12, 15]


def test_grid_ranks_cells_by_their_centres():
    # 6x6 pixels, 3x3 cells of 2x2: cell centres at 1, 3, 5, the image centre at 3
    r2 = math.sqrt(2)
    cells = -2 * np.array([[r2, 1, r2], [1, 0, 1], [r2, 1, r2]])
    maps = CentrePriorExplainer(_classifier(6, 6), grid=(3, 3)).explain(torch.rand(1, 1, 6, 6), 0).maps
    np.testing.assert_allclose(maps[0], np.kron(cells, np.ones((2, 2))), rtol=1e-6)
    # uneven cells keep their true centres: 5 pixels in 2 cells are [0, 2) and [2, 5), centres 1
    # and 3.5 against 2.5, so the second cell is nearer
    np.testing.assert_allclose(centre_distances(5, 1, grid=(2, 1))[:, 0], [1.5, 1.5, 1.0, 1.0, 1.0])


def test_as_a_cell_order_the_four_middle_cells_come_first(shapes_classifier):
    grid = PatchGrid(32, 32, 8)
    maps = make_explainer("centre", shapes_classifier, grid=8).explain(np.zeros((1, 3, 32, 32), np.float32), 0).maps
    order = grid.cell_order(maps)[0]
    assert order[:4].tolist() == [27, 28, 35, 36] and sorted(order[-4:].tolist()) == [0, 7, 56, 63]
    pixel_order = grid.cell_order(make_explainer("centre", shapes_classifier).explain(np.zeros((1, 3, 32, 32), np.float32), 0).maps)[0]
    assert pixel_order[:4].tolist() == [27, 28, 35, 36]


def test_registry_zero_queries_and_no_gradients(shapes_classifier, shapes_small):
    explainer = make_explainer("centre", shapes_classifier)
    assert isinstance(explainer, CentrePriorExplainer) and explainer.grid is None
    assert explainer.expected_queries() == 0 and not explainer.needs_gradients
    batch = shapes_small.get_batch(range(3))
    explanation = explainer.explain(batch.images, batch.labels)
    assert explanation.queries == 0 and explanation.maps.shape == (3, 32, 32) and explanation.maps.dtype == np.float32
    assert (explanation.maps == explanation.maps[0]).all()  # the same map for every image
    assert explainer.explain(batch.images).queries == 3  # only the predictions, as for every explainer
    assert make_explainer("centre", shapes_classifier, grid=(4, 8)).grid == (4, 8)


def test_bad_grids_are_refused():
    classifier = _classifier(4, 4)
    with pytest.raises(ValueError, match="positive"):
        CentrePriorExplainer(classifier, grid=(0, 2))
    with pytest.raises(TypeError, match="grid"):
        CentrePriorExplainer(classifier, grid="8")
    with pytest.raises(TypeError, match="ints"):
        CentrePriorExplainer(classifier, grid=(2.0, 2))
    with pytest.raises(ValueError, match="more cells"):
        CentrePriorExplainer(classifier, grid=(5, 5))
