"""Drawing the images of new episodes: the one rule every batched engine follows.

Sub-environment ``i`` owns the generator ``rngs[i]`` (re-seeded when a seed is given); an episode's
image is ``data[rng.integers(len(data))]``, or the index in ``options["image_index"]`` (one int for
all, or one per sub-environment). Keeping this in one place is what makes a vector env reset with
``seed + i`` replay exactly the episodes of a single env reset with that seed, for every family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from saliency_gym.data import Batch, DataSource


def draw_episode_images(
    data: DataSource,
    rngs: list[np.random.Generator],
    idx: np.ndarray,
    num_envs: int,
    seeds: Sequence[int | None] | None = None,
    options: dict[str, Any] | None = None,
    extra_seeds: bool = False,
) -> tuple[np.ndarray, Batch, list[int | None]]:
    """Pick (and load) the images of the episodes starting in sub-environments ``idx``.

    Returns the data indices, the loaded batch, and, with ``extra_seeds``, one further seed per
    episode drawn from its generator (for stochastic substrates), else ``None`` each.
    """
    requested = None if options is None else options.get("image_index")
    if requested is not None:
        requested = np.broadcast_to(np.asarray(requested, dtype=np.int64), (num_envs,))
        if requested.min() < 0 or requested.max() >= len(data):
            raise ValueError(f"options['image_index'] must lie in [0, {len(data) - 1}], got {requested.tolist()}")
    picks = np.empty(len(idx), np.int64)
    episode_seeds: list[int | None] = []
    for j, i in enumerate(idx):
        if seeds is not None and seeds[i] is not None:
            rngs[i] = np.random.default_rng(seeds[i])
        rng = rngs[i]
        picks[j] = requested[i] if requested is not None else rng.integers(len(data))
        episode_seeds.append(int(rng.integers(2**62)) if extra_seeds else None)
    return picks, data.get_batch(picks), episode_seeds
