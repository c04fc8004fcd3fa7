"""Tabular sources (scikit-learn's breast cancer and wine) and the tabular MLP's checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_gym.data.tabular import (
    ArrayTabularSource,
    TabularBatch,
    TabularSource,
    available_tabular_datasets,
    load_tabular,
)
from saliency_gym.models import TabularMLP, build_model
from saliency_gym.zoo import load_classifier_module, save_classifier


@pytest.mark.parametrize(("name", "features", "classes", "rows"), [("breast_cancer", 30, 2, 569), ("wine", 13, 3, 178)])
def test_sources_shapes_splits_and_standardisation(name, features, classes, rows):
    splits = {s: load_tabular(name, s) for s in ("train", "val", "test")}
    assert sum(len(s) for s in splits.values()) == rows
    for source in splits.values():
        assert isinstance(source, TabularSource)
        assert source.num_features == features and source.num_classes == classes
        batch = source.arrays()
        assert isinstance(batch, TabularBatch)
        assert batch.features.dtype == np.float32 and batch.features.shape == (len(source), features)
        assert batch.labels.dtype == np.int64 and set(np.unique(batch.labels)) == set(range(classes))
        sample = source[0]
        assert sample.features.shape == (features,) and isinstance(sample.label, int)
    train = splits["train"].arrays().features
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-4)
    # val and test use the training statistics, and no row is in two splits
    raw = {s: splits[s].arrays().features * splits["train"].std + splits["train"].mean for s in splits}
    seen = {tuple(np.round(r, 3)) for r in raw["train"]}
    assert not any(tuple(np.round(r, 3)) in seen for r in raw["test"])


def test_split_is_fixed_and_capped():
    a, b = load_tabular("wine", "test").arrays(), load_tabular("wine", "test").arrays()
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    capped = load_tabular("wine", "test", n=5)
    assert len(capped) == 5
    np.testing.assert_array_equal(capped.arrays().features, a.features[:5])
    assert not capped[0].features.flags.writeable  # samples are read-only views


def test_sources_reject_bad_arguments():
    assert available_tabular_datasets() == ["breast_cancer", "wine"]
    with pytest.raises(ValueError, match="unknown tabular dataset"):
        load_tabular("iris")
    with pytest.raises(ValueError, match="split"):
        load_tabular("wine", "dev")
    with pytest.raises(TypeError, match="string"):
        load_tabular(3)
    source = load_tabular("wine", "val")
    with pytest.raises(IndexError):
        source[len(source)]
    with pytest.raises(TypeError, match="integer"):
        source[1.0]
    with pytest.raises(ValueError, match=r"\(N, F\)"):
        ArrayTabularSource(np.zeros((2, 3, 4)), [0, 1])
    with pytest.raises(TypeError, match="floating"):
        ArrayTabularSource(np.zeros((2, 3), dtype=np.int64), [0, 1])
    with pytest.raises(ValueError, match="finite"):
        ArrayTabularSource(np.full((2, 3), np.nan), [0, 1])
    with pytest.raises(ValueError, match="labels"):
        ArrayTabularSource(np.zeros((2, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="feature names"):
        ArrayTabularSource(np.zeros((2, 3)), [0, 1], feature_names=["a"])


def test_array_source_batches():
    source = ArrayTabularSource(np.arange(12, dtype=np.float64).reshape(4, 3), [0, 1, 2, 1], name="toy")
    batch = source.get_batch([3, 0])
    np.testing.assert_array_equal(batch.labels, [1, 0])
    assert batch.features.dtype == np.float32 and source.class_names == ("0", "1", "2")
    assert source.get_batch([]).features.shape == (0, 3)


def test_mlp_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TabularMLP(13, 3, hidden=(16,))
    path = save_classifier(model, tmp_path / "mlp.pt", class_names=["a", "b", "c"], input_shape=(1, 1, 13), dataset="wine")
    loaded, info = load_classifier_module(path)
    assert isinstance(loaded, TabularMLP) and info["dataset"] == "wine"
    x = torch.randn(4, 13)
    torch.testing.assert_close(loaded(x), model(x))
    torch.testing.assert_close(loaded(x.view(4, 1, 1, 13)), model(x))  # image-shaped view is flattened
    assert isinstance(build_model("TabularMLP", num_features=5, num_classes=2), TabularMLP)
    with pytest.raises(ValueError, match="13 features"):
        model(torch.randn(2, 12))
    with pytest.raises(TypeError, match="hidden"):
        TabularMLP(3, 2, hidden=8)
