"""The transfer benchmark at smoke-test size: the shapes agents explain another classifier's images."""

from saliency_gym.benchmarks.bench_transfer import to_markdown, transfer_table


def test_transfer_table_rows():
    rows = transfer_table(images=4, classifiers=("shapes_robust",))
    assert [r["method"] for r in rows] == ["agent", "gradcam", "random"]
    assert all(r["classifier"] == "shapes_robust" and r["images"] == 4 for r in rows)
    assert all(0.0 <= r["insertion_auc"] <= 1.0 and 0.0 <= r["deletion_auc"] <= 1.0 for r in rows)
    assert to_markdown(rows).count("| shapes_robust |") == 3
