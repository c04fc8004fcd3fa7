"""The bench suite's seconds (median and IQR, not a t-interval), dataset labels and meta (issue 24)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from saliency_gym.benchmarks import suite
from saliency_gym.benchmarks.suite import data_label, format_seconds, seconds_summary
from saliency_gym.data import ArraySource


def test_seconds_summary_hand_values():
    # NumPy's linear percentiles: sorted [1, 2, 3, 10] -> q1 = 1.75, median 2.5, q3 = 4.75.
    assert seconds_summary([10.0, 1.0, 3.0, 2.0]) == (2.5, 1.75, 4.75)
    assert seconds_summary([0.2]) == (0.2, 0.2, 0.2)
    assert seconds_summary(np.array([0.1, np.nan, 0.3])) == pytest.approx((0.2, 0.15, 0.25))
    assert all(math.isnan(v) for v in seconds_summary([]))


def test_the_issues_two_chunks_no_longer_read_as_an_interval_past_zero():
    """Two chunks of 0.2 and 2.86 s gave ``1.5298 ± 2.2791`` (a t-interval with 1 degree of freedom
    reaching below zero); the IQR stays inside what was measured."""
    median, q1, q3 = seconds_summary([0.1991, 2.8605])
    assert 0.1991 <= q1 <= median <= q3 <= 2.8605
    assert format_seconds(median, q1, q3) == "1.53 s (IQR 0.86–2.20)"  # quartiles on the median's decimals


@pytest.mark.parametrize(("values", "text"), [
    ([0.153, 0.141, 0.170, 0.160], "0.157 s (IQR 0.150–0.163)"),
    ([12.4, 11.9, 13.0], "12.4 s (IQR 12.2–12.7)"),
    ([0.00153, 0.00141, 0.00171], "0.00153 s (IQR 0.00147–0.00162)"),
    ([1530.0, 1490.0, 1610.0], "1,530 s (IQR 1,510–1,570)"),
    ([0.25, 0.25], "0.250 s"),  # no spread: no "± 0.0000", no "(IQR 0.250–0.250)"
    ([0.5], "0.500 s"),
    ([], "n/a"),
])  # fmt: skip
def test_format_seconds(values, text):
    assert format_seconds(*seconds_summary(values)) == text


def test_own_data_is_labelled_by_its_name(shapes_classifier):
    folder = ArraySource(np.zeros((1, 3, 32, 32), dtype=np.float32), np.zeros(1, dtype=np.int64),
                         class_names=shapes_classifier.class_names, name="my_photos")  # fmt: skip
    shapes_classifier_named_build = type("C", (), {"name": "build"})()
    assert data_label(shapes_classifier_named_build, folder) == "my_photos"  # not "build/my_photos"
    images = np.zeros((1, 3, 32, 32), dtype=np.float32)
    shipped = ArraySource(images, np.zeros(1, dtype=np.int64), class_names=folder.class_names, name="shapes")
    assert data_label(shapes_classifier_named_build, shipped) == "shapes (model build)"
    ctx = suite.DatasetContext("shapes (model My/Net)", shapes_classifier, shipped, images, None, np.zeros(1))
    assert ctx.stem == "shapes_model_My_Net"


def _row(dataset: str, method: str) -> suite.MethodResult:
    return suite.MethodResult(dataset, method, 2, 0.5, 0.1, 0.2, 0.1, None, None, 10.0, 0.0, *seconds_summary([0.2, 0.3]))


def test_meta_lists_each_dataset_once_and_tables_show_the_iqr(tmp_path):
    rows = [_row("shapes", m) for m in ("rise", "gradcam", "centre")] + [_row("my_photos", "rise")]
    assert suite.dataset_labels(rows) == ["shapes", "my_photos"]
    suite.write_results(rows, tmp_path, {"datasets": [r.dataset for r in rows]})
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["datasets"] == ["shapes", "my_photos"]
    table = (tmp_path / "results.md").read_text()
    assert "0.250 s (IQR 0.225–0.275)" in table and "±" not in table.split("|")[-2]
    assert set(suite.TIMING_FIELDS) <= set(json.loads((tmp_path / "results.json").read_text())["results"][0])
