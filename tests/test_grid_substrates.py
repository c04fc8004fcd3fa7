import numpy as np
import pytest
import torch

from saliency_gym.grid import PatchGrid
from saliency_gym.substrates import (
    BlurSubstrate,
    ConstantSubstrate,
    MeanSubstrate,
    NoiseSubstrate,
    make_substrate,
)


def test_grid_even_split():
    grid = PatchGrid(4, 4, 2)
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    np.testing.assert_array_equal(grid.cell_index, expected)
    assert grid.cell_slices(3) == (slice(2, 4), slice(2, 4))
    assert list(grid.cell_sizes) == [4, 4, 4, 4]


def test_grid_uneven_and_non_square():
    grid = PatchGrid(5, 7, 2, 3)
    assert grid.num_cells == 6 and grid.cell_sizes.sum() == 35
    assert np.ptp(np.diff(grid.row_edges)) <= 1 and np.ptp(np.diff(grid.col_edges)) <= 1
    values = torch.arange(6.0)
    pixels = grid.to_pixels(values)
    assert pixels.shape == (5, 7)
    torch.testing.assert_close(grid.cell_means(pixels), values)
    np.testing.assert_allclose(grid.cell_means(pixels.numpy()), values.numpy())


def test_grid_errors():
    with pytest.raises(ValueError, match="grid rows must be <= 4"):
        PatchGrid(4, 4, 5)
    with pytest.raises(ValueError, match="expected 4 cell values"):
        PatchGrid(4, 4, 2).to_pixels(torch.zeros(3))


def test_substrates_shapes_and_values():
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(make_substrate("zeros")(x), torch.zeros_like(x))
    assert torch.allclose(make_substrate(0.5)(x), torch.full_like(x, 0.5))
    mean = MeanSubstrate([0.1, 0.2, 0.3])(x)
    assert torch.allclose(mean[:, 1], torch.full((2, 8, 8), 0.2))
    blurred = BlurSubstrate(kernel_size=3, sigma=1.0)(x)
    assert blurred.shape == x.shape and blurred.std() < x.std()
    const = torch.full((1, 1, 6, 6), 0.7)
    assert torch.allclose(BlurSubstrate()(const), const)  # blur keeps constant images


def test_noise_substrate_is_seeded():
    x = torch.zeros(1, 1, 4, 4)
    a = NoiseSubstrate()(x, generator=torch.Generator().manual_seed(1))
    b = NoiseSubstrate()(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and 0 <= a.min() and a.max() <= 1


def test_image_and_callable_substrates():
    baseline = np.full((1, 2, 2), 0.25, np.float32)
    x = torch.rand(3, 1, 2, 2)
    assert torch.allclose(make_substrate(baseline)(x), torch.full_like(x, 0.25))
    flipped = make_substrate(lambda images, targets: 1 - images)
    assert torch.allclose(flipped(x), 1 - x)
    with pytest.raises(ValueError, match="expected"):
        make_substrate(np.zeros((1, 3, 3), np.float32))(x)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        make_substrate(lambda images, targets: images + 5)(x)


@pytest.mark.parametrize("spec, error", [("gauss", ValueError), (1.5, ValueError), (object(), TypeError)])
def test_bad_substrate_specs(spec, error):
    with pytest.raises(error):
        make_substrate(spec)


def test_constant_name():
    assert ConstantSubstrate(0).name == "zeros" and ConstantSubstrate(0.5).name == "constant(0.5)"


def test_grid_cell_scores_and_order():
    from saliency_gym.metrics.insertion_deletion import cell_order_from_maps

    grid = PatchGrid(4, 5, 2, 2)  # uneven columns: widths 2 and 3 (rounded even split)
    rng = np.random.default_rng(0)
    maps = rng.random((3, 4, 5))
    maps[2] = 0.5  # all cells tie: ids in increasing order
    scores = grid.cell_scores(maps)
    assert scores.shape == (3, 4) and scores.dtype == np.float64
    for cell in range(4):
        rows, cols = grid.cell_slices(cell)
        np.testing.assert_allclose(scores[:, cell], maps[:, rows, cols].mean(axis=(1, 2)))
    order = grid.cell_order(maps)
    assert order.dtype == np.int64 and order.shape == (3, 4)
    np.testing.assert_array_equal(order[2], [0, 1, 2, 3])
    for i in range(2):
        assert list(scores[i, order[i]]) == sorted(scores[i], reverse=True)
    np.testing.assert_array_equal(grid.cell_order(torch.as_tensor(maps), k=2), order[:, :2])
    np.testing.assert_array_equal(cell_order_from_maps(maps, grid, k=3), order[:, :3])
    with pytest.raises(ValueError, match="k must be <= 4"):
        grid.cell_order(maps, k=5)
    with pytest.raises(ValueError, match="spatial size"):
        grid.cell_scores(np.zeros((1, 3, 5)))
