"""Watch a trained agent: roll it out in its environment and record videos (rl-zoo's ``enjoy``).

Each episode runs in a single environment made with the agent's own training settings (``render_mode
="rgb_array"``) and wrapped in Gymnasium's ``RecordVideo``, so every frame the environment renders
(the image with the cells revealed or masked so far, and the evidence curve) becomes one video frame.
The agent acts deterministically on the allowed cells through :class:`AgentPolicy`, exactly as it
does when it explains. Writing MP4 needs ``moviepy`` (the ``[zoo]`` extra); with ``video_folder=None``
the episodes are only played and scored.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from saliency_gym.agents.agent_checkpoints import agent_env
from saliency_gym.agents.policy_explainer import open_agent
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.runs import check_output_dir
from saliency_gym.validation import resolve_device

__all__ = ["EpisodeRecord", "record_agent_episodes"]


@dataclass(frozen=True)
class EpisodeRecord:
    """One played episode: its return (the episode's insertion or deletion AUC, the environment's
    reward sum), its length, the explained class and the video file (``None`` when not recorded)."""

    episode: int
    episode_return: float
    length: int
    target: int
    video: Path | None


def record_agent_episodes(
    agent: str | os.PathLike[str],
    *,
    episodes: int = 4,
    video_folder: str | os.PathLike[str] | None = "videos",
    seed: int = 0,
    env_overrides: dict[str, Any] | None = None,
    fps: int | None = None,
    device: str | None = None,
    classifier: FrozenClassifier | None = None,
) -> list[EpisodeRecord]:
    """Play ``episodes`` episodes of ``agent`` (a shipped name, a ``.pt``/``.zip`` file or a run folder).

    Args:
        agent: the agent to watch; one trained on your own model and images reopens them from its
            metadata (:func:`~saliency_gym.agents.policy_explainer.open_agent`).
        episodes: how many episodes (images) to play; episode ``e`` is reset with ``seed + e``.
        video_folder: where ``RecordVideo`` writes ``<agent>-episode-<e>.mp4`` (created if needed;
            videos of the same name are replaced); ``None`` plays without recording.
        seed: the first episode's reset seed (the episodes are reproducible).
        env_overrides: environment keyword arguments over the agent's training ones (e.g.
            ``{"split": "test"}``, the default, to watch held-out images).
        fps: frames per second of the video (default: the environment's ``render_fps``).
        device: where the policy runs (default: CUDA when available).
        classifier: the model to play against instead of the agent's own (it must take the same
            input shape; an agent trained on your own model then needs no model file).
    """
    if not isinstance(episodes, int) or isinstance(episodes, bool) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if fps is not None and (not isinstance(fps, int) or fps < 1):
        raise ValueError(f"fps must be a positive int, got {fps!r}")
    policy, info = open_agent(agent, classifier, device=str(resolve_device(device)), need_data=True)
    chosen = {} if classifier is None else {"classifier": classifier}
    overrides = {"split": "test", **info["env_overrides"], **chosen, **(env_overrides or {})}
    env: gym.Env = agent_env(info, render_mode="rgb_array", **overrides)
    prefix = policy.name
    folder: Path | None = None
    if video_folder is not None:
        folder = check_output_dir(video_folder)
        if fps is not None:
            env.metadata = {**env.metadata, "render_fps": fps}
        with warnings.catch_warnings():  # the folder exists: check_output_dir made it writable
            warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
            env = gym.wrappers.RecordVideo(env, str(folder), episode_trigger=lambda _: True, name_prefix=prefix,
                                           disable_logger=True)  # fmt: skip
    records = []
    try:
        for e in range(episodes):
            obs, reset_info = env.reset(seed=seed + e)
            policy.reset(env.unwrapped.core)  # type: ignore[attr-defined]
            total, length, done = 0.0, 0, False
            while not done:
                batch = {key: np.asarray(value)[None] for key, value in obs.items()}
                masks = np.asarray(env.unwrapped.action_masks())[None]  # type: ignore[attr-defined]
                action = int(policy.act(batch, masks)[0])
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            video = folder / f"{prefix}-episode-{e}.mp4" if folder is not None else None
            records.append(EpisodeRecord(e, total, length, int(reset_info.get("target", -1)), video))
    finally:
        env.close()  # RecordVideo writes the last episode's file on close
    return records
