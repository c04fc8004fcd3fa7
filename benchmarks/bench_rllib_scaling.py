"""RLlib sampling throughput: environment steps per second with 1 and with 2 EnvRunners.

Builds the PPO configuration of ``saliency-gym train --engine ray``
(:func:`saliency_gym.distributed.rllib_training.build_ppo_config`: our native vector env inside
each EnvRunner, the action-masking module) once per number of EnvRunners, with the same number of
episodes per runner, and times rounds of ``sample()`` called on every runner at once (what PPO
does at the start of each iteration; the update itself is not timed). One step of one episode
counts as one step. Each runner also reports the CPU seconds it spent, so the table shows the
steps per CPU-second and the share of a core each runner got (well below 1: the machine was busy
and the steps/s measure the contention). Prints a Markdown table and writes ``benchmarks/results/rllib_scaling.json``
(``--out`` to change it) with the settings, the machine and the load average before and after.

    python benchmarks/bench_rllib_scaling.py [--runners 1 2] [--envs-per-runner 8] [--seconds 20]

The goal is near-linear scaling while each runner has a core of its own: on a 2-core machine,
2 EnvRunners should sample at least 1.6x the steps/s of 1. Run it on a quiet machine: other
processes on the same cores take their share of the second runner.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "rllib_scaling.json"


def measure(env_id: str, env_kwargs: dict[str, Any], num_env_runners: int, envs_per_runner: int,
            fragment: int, seconds: float, warmup_rounds: int, seed: int) -> dict[str, float]:  # fmt: skip
    """Steps/s of ``num_env_runners`` EnvRunners sampling ``fragment`` vector steps per round."""
    from saliency_gym.distributed.rllib_training import DEFAULT_MODEL, DEFAULT_PPO, build_ppo_config
    from saliency_gym.envs.saliency import unwrap_search_env

    probe = gym.make(env_id, **env_kwargs, observe_action_mask=True)
    grid = unwrap_search_env(probe).config.grid.shape
    probe.close()
    batch = fragment * envs_per_runner * num_env_runners
    hyperparameters = {
        **DEFAULT_PPO,
        "train_batch_size_per_learner": batch,
        "minibatch_size": min(batch, 128),
    }
    config = build_ppo_config(
        env_id, env_kwargs=env_kwargs, grid=grid, seed=seed, num_env_runners=num_env_runners,
        num_envs_per_env_runner=envs_per_runner, hyperparameters=hyperparameters,
        model_config={**DEFAULT_MODEL, "grid": grid},
    )  # fmt: skip
    algo = config.build_algo()
    try:
        group = algo.env_runner_group
        steps_per_round = fragment * envs_per_runner

        def sample(runner: Any) -> tuple[int, float]:
            """Steps one runner sampled, and the CPU seconds its process spent on them."""
            cpu = time.process_time()
            steps = sum(len(e) for e in runner.sample(num_timesteps=steps_per_round, explore=True))
            return steps, time.process_time() - cpu

        def sample_round() -> tuple[int, float]:
            done = group.foreach_env_runner(sample, local_env_runner=False)
            return sum(s for s, _ in done), sum(c for _, c in done)

        for _ in range(warmup_rounds):  # first calls build caches and connectors
            sample_round()
        steps, cpu, rounds, start = 0, 0.0, 0, time.perf_counter()
        while time.perf_counter() - start < seconds or rounds < 2:
            got, used = sample_round()
            steps, cpu, rounds = steps + got, cpu + used, rounds + 1
        elapsed = time.perf_counter() - start
    finally:
        algo.stop()
    # cpu_share_per_runner: CPU seconds of each runner per wall second; well below 1 means the
    # runners waited for cores (a busy machine), so the steps/s measure the machine, not RLlib.
    return {"num_env_runners": num_env_runners, "steps": steps, "rounds": rounds, "seconds": elapsed,
            "steps_per_s": steps / elapsed, "steps_per_cpu_s": steps / max(cpu, 1e-9),
            "cpu_share_per_runner": cpu / elapsed / num_env_runners}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="saliency_gym/SaliencyReveal-Shapes-v0")
    parser.add_argument("--grid", type=int, default=8, help="cells per side (default 8)")
    parser.add_argument(
        "--runners", type=int, nargs="+", default=[1, 2], help="EnvRunner counts to compare"
    )
    parser.add_argument(
        "--envs-per-runner", type=int, default=8, help="episodes of each runner's vector env"
    )
    parser.add_argument(
        "--fragment", type=int, default=64, help="vector steps per runner per sampling round"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="timed sampling per configuration"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first")
    parser.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if min(args.runners) < 1 or args.envs_per_runner < 1 or args.fragment < 1 or args.seconds <= 0:
        parser.error(
            "--runners, --envs-per-runner and --fragment must be positive, --seconds above 0"
        )

    import ray
    import torch

    import saliency_gym  # noqa: F401  (registers the environments)
    from saliency_gym.distributed.cluster import ensure_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    load_before = os.getloadavg()
    started = time.perf_counter()
    ensure_ray(None, args.num_cpus)
    rows = [measure(args.env, {"grid": args.grid}, n, args.envs_per_runner, args.fragment, args.seconds, args.warmup,
                    args.seed) for n in args.runners]  # fmt: skip
    ray.shutdown()
    base = rows[0]["steps_per_s"]
    for row in rows:
        row["speedup"] = row["steps_per_s"] / base
    print(
        f"| EnvRunners | envs per runner | steps/s | speedup over {rows[0]['num_env_runners']} | steps per CPU-s | CPU share per runner |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['num_env_runners']} | {args.envs_per_runner} | {row['steps_per_s']:.0f} | {row['speedup']:.2f}x "
            f"| {row['steps_per_cpu_s']:.0f} | {row['cpu_share_per_runner']:.2f} |"
        )
    result = {
        "env": args.env, "grid": args.grid, "envs_per_runner": args.envs_per_runner, "fragment": args.fragment,
        "seconds_per_config": args.seconds, "rows": rows, "cpu_count": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_seconds": time.perf_counter() - started, "ray": ray.__version__, "torch": torch.__version__,
        "python": platform.python_version(),
        "command": "python benchmarks/bench_rllib_scaling.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if k != "out" and v is not None),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
