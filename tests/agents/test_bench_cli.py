import csv
import json

import pytest

from saliency_gym.benchmarks.suite import run_suite
from saliency_gym.cli.main import main


def test_bench_quick_writes_well_formed_tables(tmp_path):
    results = run_suite("quick", ("shapes",), tmp_path, images=2)
    methods = {r.method for r in results}
    assert {"greedy-reveal", "rise-500", "gradcam", "random-policy"} <= methods
    # honest baselines: the centre prior and each shipped agent's own mean map, and the agent's
    # paired differences with both (issue 21)
    assert {"centre", "agent-reveal", "agent-reveal (mean map)", "agent-mask (mean map)"} <= methods
    by_name = {r.method: r for r in results}
    assert by_name["centre"].queries_per_image == 0 and by_name["agent-reveal (mean map)"].queries_per_image == 0
    agent, centre = by_name["agent-reveal"], by_name["centre"]
    assert agent.insertion_minus_centre == pytest.approx(agent.insertion_auc - centre.insertion_auc)
    assert agent.deletion_minus_mean_map is not None and agent.insertion_minus_mean_map_ci is not None
    assert by_name["gradcam"].insertion_minus_centre is None
    md = (tmp_path / "results.md").read_text().splitlines()
    assert md[0].startswith("| dataset | method |") and len(md) == 2 + len(results)
    assert "insertion − centre ↑" in md[0] and "insertion − own mean map ↑" in md[0]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert len(rows) == len(results) and {"insertion_auc", "queries_per_image", "seconds_q1", "seconds_q3", "insertion_minus_centre"} <= set(rows[0])
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"]["images"] == 2 and len(data["results"]) == len(results)
    for r in results:
        assert 0 <= r.insertion_auc <= 1 and 0 <= r.deletion_auc <= 1 and 0 <= r.pointing_game <= 1
    for png in ("curves_shapes.png", "overlays_shapes.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="size"):
        run_suite("huge", ("shapes",), tmp_path)


@pytest.mark.parametrize("command", ["train", "bench"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and "usage" in capsys.readouterr().out


def test_train_cli_bad_algo(capsys):
    assert main(["train", "--algo", "sac", "--timesteps", "10"]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
