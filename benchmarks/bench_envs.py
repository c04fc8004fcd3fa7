"""Environment throughput: single env, SB3 DummyVecEnv, the native vector env, and the classifier.

Prints a Markdown table of environment steps per second (one step of one sub-environment counts
as one step). The classifier-limited rate is how many canvases per second the frozen classifier
alone scores in batches of the same size: no environment can step faster than that.

    python benchmarks/bench_envs.py [--env saliency_gym/SaliencyReveal-Shapes-v0] [--seconds 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import DummyVecEnv

import saliency_gym  # noqa: F401  (registers the environments)
from saliency_gym.envs.saliency import unwrap_search_env
from saliency_gym.envs.sb3 import SaliencySB3VecEnv


def _random_valid(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random allowed cell per row of ``masks``."""
    return np.argmax(rng.random(masks.shape) * masks, axis=1)


def time_single(env_id: str, seconds: float, kwargs: dict[str, Any]) -> float:
    env = gym.make(env_id, **kwargs)
    search = unwrap_search_env(env)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        action = int(_random_valid(search.action_masks()[None], rng)[0])
        _, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def time_vec(venv, seconds: float) -> float:
    """Steps/s of an SB3 VecEnv (DummyVecEnv or our adapter) under random valid actions."""
    rng = np.random.default_rng(0)
    venv.seed(0)
    venv.reset()
    n, steps, start = venv.num_envs, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        masks = np.stack(venv.env_method("action_masks"))
        venv.step(_random_valid(masks, rng))
        steps += n
    return steps / (time.perf_counter() - start)


def time_classifier(classifier, batch: int, seconds: float) -> float:
    x = torch.rand(batch, *classifier.input_shape, device=classifier.device)
    classifier.probs(x)  # warm-up (kernel selection for this batch size)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        classifier.probs(x)
        images += batch
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="saliency_gym/SaliencyReveal-Shapes-v0")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--dummy-envs", type=int, default=16, help="sub-envs of the DummyVecEnv row")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    kwargs: dict[str, Any] = {"split": "test"}
    config = unwrap_search_env(gym.make(args.env, **kwargs)).config
    classifier = config.classifier
    config.data.get_batch(range(len(config.data)))  # render the procedural images once (steady state)

    rows = [("single env (gym.make)", 1, time_single(args.env, args.seconds, kwargs), time_classifier(classifier, 1, args.seconds))]
    dummy = DummyVecEnv([lambda: gym.make(args.env, **kwargs)] * args.dummy_envs)
    rows.append(("SB3 DummyVecEnv of single envs", args.dummy_envs, time_vec(dummy, args.seconds), time_classifier(classifier, 1, args.seconds)))
    dummy_rate = rows[-1][2]
    for n in args.sizes:
        venv = SaliencySB3VecEnv(args.env, num_envs=n, **kwargs)
        rows.append(("native vector env (SB3 adapter)", n, time_vec(venv, args.seconds), time_classifier(classifier, n, args.seconds)))

    print(f"env: {args.env}, torch threads: {torch.get_num_threads()}, device: {classifier.device}\n")
    print("| configuration | envs | env steps/s | classifier images/s at that batch | env / classifier | vs DummyVecEnv |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, rate, limit in rows:
        print(f"| {name} | {n} | {rate:,.0f} | {limit:,.0f} | {rate / limit:.0%} | {rate / dummy_rate:.1f}x |")


if __name__ == "__main__":
    main()
