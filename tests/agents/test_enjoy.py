"""`saliency-gym enjoy`: deterministic rollouts of an agent, recorded with Gymnasium's RecordVideo."""

from __future__ import annotations

import pytest

from saliency_gym.agents.rollout_video import record_agent_episodes
from saliency_gym.cli.main import main


def test_played_episodes_are_reproducible_and_score_like_the_explainer():
    first = record_agent_episodes("shapes_reveal", episodes=2, video_folder=None, seed=3, device="cpu")
    again = record_agent_episodes("shapes_reveal", episodes=2, video_folder=None, seed=3, device="cpu")
    assert [r.episode_return for r in first] == [r.episode_return for r in again]
    assert all(r.length == 64 and r.video is None and 0.0 < r.episode_return < 1.5 for r in first)


def test_videos_are_written_one_per_episode(tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo writes MP4 through moviepy (the [zoo] extra)")
    records = record_agent_episodes("shapes_reveal", episodes=2, video_folder=tmp_path / "v", fps=8, device="cpu")
    for record in records:
        assert record.video is not None and record.video.is_file() and record.video.stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path / "v").glob("*.mp4")) == ["shapes_reveal-episode-0.mp4", "shapes_reveal-episode-1.mp4"]


def test_cli_prints_returns_and_refuses_bad_values(tmp_path, capsys):
    assert main(["enjoy", "--agent", "digits_mask", "--episodes", "1", "--no-video", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "episode 0: class" in out and "mean return" in out
    with pytest.raises(SystemExit):
        main(["enjoy", "--episodes", "0"])
    assert main(["enjoy", "--agent", "no_such_agent", "--no-video"]) == 2
    assert "no_such_agent" in capsys.readouterr().err
    with pytest.raises(ValueError, match="episodes must be a positive int"):
        record_agent_episodes("shapes_reveal", episodes=0, video_folder=None)
