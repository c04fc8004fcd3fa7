"""The attribution-attack benchmark (issue 23) on a tiny setting: four shapes images, the gradient
explainer, ε = 8/255, classical attacks against a tiny trained attack agent."""

import csv
import json
import math

import numpy as np
import pytest
import yaml

from saliency_gym.agents.agent_training import train_agent
from saliency_gym.benchmarks.bench_attacks import PAIRED_WITH, main, markdown

ENV = "saliency_gym/AttributionAttack-Shapes-v0"
ATTACKS = ("random", "topk", "pattern_start", "random_policy", "agent")
FILES = ("attacks.md", "attacks.csv", "attacks.json", "attacks.png", "attack_examples.png")


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory):
    """A folder of run folders holding one tiny agent, ``shapes_gradient`` (one rollout)."""
    root = tmp_path_factory.mktemp("attack_agents")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({ENV: {"n_steps": 8, "batch_size": 32, "n_epochs": 1}}))
    train_agent(
        ENV, timesteps=32, out=root / "agents" / "shapes_gradient", n_envs=4, eval_every=0,
        progress=False, env_kwargs={"explainer": "gradient"}, config=config, checkpoint_every=0,
    )  # fmt: skip
    return root / "agents"


@pytest.fixture(scope="module")
def bench(agent_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "attacks"
    argv = ["--datasets", "shapes", "--models", "shapes", "--methods", "gradient", "--eps", "8",
            "--images", "4", "--attacks", *ATTACKS, "--agent-dir", str(agent_dir), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


def test_writes_every_file(bench):
    for name in FILES:
        assert (bench / name).is_file() and (bench / name).stat().st_size > 0, name
    with open(bench / "attacks.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["attack"] for row in rows] == list(ATTACKS)


def test_json_rows(bench):
    data = json.loads((bench / "attacks.json").read_text())
    assert "4 test images" in data["settings"]
    rows = {row["attack"]: row for row in data["rows"]}
    assert set(rows) == set(ATTACKS) and len(data["rows"]) == len(ATTACKS)
    for row in rows.values():
        assert (row["dataset"], row["model"], row["method"]) == ("shapes", "shapes", "gradient")
        assert row["eps_255"] == 8 and row["images"] == 4
        assert row["max_linf_255"] <= 8 + 1e-4
        for metric in ("topk", "lens_recall", "topk_div"):
            assert math.isnan(row[metric]) or 0.0 <= row[metric] <= 1.0
    for attack in ("agent", "topk", "random_policy"):
        assert rows[attack]["label_kept"] == 1.0, attack
    assert rows["topk"]["explanations"] == 9  # the original map and 8 steps
    assert rows["random"]["explanations"] == 2
    assert 1 <= rows["agent"]["explanations"] <= 9  # the budget of 8 steps
    assert 1 <= rows["random_policy"]["explanations"] <= 9
    assert 1 <= rows["pattern_start"]["explanations"] <= 2  # the original map and the start's: no step
    # Ghorbani's white-box attack moves the map further than one random-sign perturbation.
    assert rows["topk"]["topk"] < rows["random"]["topk"]
    # Paired differences are on the agent's row only.
    for other in PAIRED_WITH:
        assert np.isfinite(rows["agent"][f"agent_minus_{other}"]) or rows[other]["label_kept"] == 0
        assert rows["agent"][f"agent_minus_{other}_ci"] >= 0 or math.isnan(
            rows["agent"][f"agent_minus_{other}_ci"]
        )
        for attack in ("random", "topk", "random_policy"):
            assert math.isnan(rows[attack][f"agent_minus_{other}"])


def test_markdown_report(bench):
    text = (bench / "attacks.md").read_text()
    assert "− Ghorbani top-k" in text and "− random sign" in text and "− random policy" in text
    table = [
        line for line in text.splitlines() if line.startswith("| shapes | shapes | gradient |")
    ]
    assert len(table) == len(ATTACKS) + 1  # one row per attack, one paired row


def _row(attack, **paired):
    row = {"dataset": "shapes", "model": "shapes", "method": "gradient", "attack": attack, "eps_255": 8.0,
           "label_kept": 1.0, "max_linf_255": 8.0, "topk": 0.5, "lens_recall": 0.7, "topk_div": 0.4,
           "explanations": 9.0, "queries": 18.0, "seconds": 0.1}  # fmt: skip
    for other in PAIRED_WITH:
        mean, half = paired.get(other, (float("nan"), float("nan")))
        row[f"agent_minus_{other}"], row[f"agent_minus_{other}_ci"] = mean, half
    return row


def _paired_cells(text):
    lines = [
        line for line in text.splitlines() if line.startswith("| shapes | shapes | gradient | 8 |")
    ]
    assert len(lines) == 1
    return [cell.strip() for cell in lines[0].strip("|").split("|")][4:]


@pytest.mark.parametrize(
    "mean, half, bold",
    [
        (-0.2, 0.1, True),
        (0.3, 0.05, True),
        (-0.05, 0.1, False),
        (0.08, 0.2, False),
        (-0.25, 0.25, False),
    ],
)
def test_markdown_bold_when_the_interval_excludes_zero(mean, half, bold):
    rows = [_row("topk"), _row("agent", random=(mean, half), topk=(0.5, 0.1))]
    text = markdown(rows, "header")
    assert text.startswith("header\n")
    cells = _paired_cells(text)
    assert len(cells) == len(PAIRED_WITH) == 4
    random_cell = cells[PAIRED_WITH.index("random")]
    assert random_cell.startswith("**") == bold and random_cell.endswith("**") == bold
    assert f"{mean:+.3f} ± {half:.3f}" in random_cell
    assert cells[PAIRED_WITH.index("topk")] == "**+0.500 ± 0.100**"
    assert cells[PAIRED_WITH.index("random_policy")] == "—"  # not computed


def test_markdown_without_agent_has_no_paired_table():
    text = markdown([_row("topk"), _row("random")], "h")
    assert "Ghorbani top-k" not in text
    assert text.count("| shapes | shapes | gradient |") == 2
