"""``saliency-gym enjoy``: watch a trained agent explain held-out images, and record videos.

Example::

    saliency-gym enjoy --agent shapes_reveal --episodes 4 --video-folder videos/
    saliency-gym enjoy --agent RUN_FOLDER --no-video    # an agent you trained: `saliency-gym train --out RUN_FOLDER`

Like rl-baselines3-zoo's ``enjoy``: the agent is rolled out deterministically in its own training
environment (held-out split unless ``--split`` says otherwise), one episode per image, and
Gymnasium's ``RecordVideo`` writes ``<agent>-episode-<e>.mp4`` per episode (MP4 needs ``moviepy``:
``pip install 'saliency-gym[zoo]'``). Each episode's return (its insertion or deletion AUC) is
printed. An agent trained on your own model and images (``train --model ... --data ...``) reopens
them from its metadata.
"""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import add_device_argument, positive_int

NAME = "enjoy"
HELP = "roll a trained agent out on held-out images and record videos (rl-zoo's enjoy)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(NAME, help=HELP, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--agent", default="shapes_reveal",
                        help="a shipped agent's name (see `saliency-gym info`), a .pt / .zip agent file or a run folder")
    parser.add_argument("--episodes", type=positive_int, default=4, help="episodes (images) to play")
    parser.add_argument("--seed", type=int, default=0, help="reset seed of the first episode (then +1 each)")
    parser.add_argument("--split", default="test", help="dataset split of the images (default: test)")
    parser.add_argument("--video-folder", default="videos", help="where the MP4 files go")
    parser.add_argument("--no-video", action="store_true", help="play and score without recording")
    parser.add_argument("--fps", type=positive_int, default=None, help="video frames per second")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from saliency_gym.agents.rollout_video import record_agent_episodes

    records = record_agent_episodes(
        args.agent, episodes=args.episodes, video_folder=None if args.no_video else args.video_folder,
        seed=args.seed, env_overrides={"split": args.split}, fps=args.fps, device=args.device,
    )  # fmt: skip
    for record in records:
        where = f"  {record.video}" if record.video is not None else ""
        print(f"episode {record.episode}: class {record.target}, return {record.episode_return:.3f} "
              f"in {record.length} steps{where}")  # fmt: skip
    mean = sum(r.episode_return for r in records) / len(records)
    print(f"mean return {mean:.3f} over {len(records)} episodes")
    return 0
