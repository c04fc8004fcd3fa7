"""Drawing the images of new episodes: the one rule every batched engine follows.

Sub-environment ``i`` owns the generator ``rngs[i]`` (re-seeded when a seed is given); an episode's
image is ``data[rng.integers(len(data))]``, or the index in ``options["image_index"]`` (one int for
all, or one per sub-environment). Keeping this in one place is what makes a vector env reset with
``seed + i`` replay exactly the episodes of a single env reset with that seed, for every family.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.data import Batch, DataSource

#: The keys ``reset(options=...)`` understands.
RESET_OPTION_KEYS = ("image_index",)


def check_reset_options(
    options: Any, num_envs: int, num_images: int, extra_keys: Sequence[str] = ()
) -> np.ndarray | None:
    """Validate the ``options`` of a reset and return the requested image indices, if any.

    ``options`` must be ``None`` or a dict whose keys are among :data:`RESET_OPTION_KEYS` and the
    family's own ``extra_keys`` (checked by the family, e.g. the saliency envs' ``"target"``).
    ``options["image_index"]`` is one int (for every sub-environment) or a sequence / array /
    tensor of ints with one per sub-environment, each in ``[0, num_images)``. Returns an ``int64``
    array of ``num_envs`` indices, or ``None`` when no index was requested.

    Raises:
        TypeError: ``options`` is not a dict, or ``image_index`` holds anything but integers
            (bools, floats, strings, ...).
        ValueError: an unknown key, the wrong number of indices, or an index out of range.
    """
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise TypeError(
            f"reset options must be a dict or None, got {type(options).__name__} ({options!r}); "
            f"allowed keys: {[*RESET_OPTION_KEYS, *extra_keys]}"
        )
    allowed_keys = (*RESET_OPTION_KEYS, *extra_keys)
    unknown = sorted(str(key) for key in options if key not in allowed_keys)
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed keys: {list(allowed_keys)}")
    requested = options.get("image_index")
    if requested is None:
        return None
    return check_int_option(requested, "image_index", num_envs, num_images)


def check_int_option(value: Any, key: str, num_envs: int, upper: int) -> np.ndarray:
    """``options[key]`` as an ``int64`` array of ``num_envs`` values in ``[0, upper)``: one int for
    every sub-environment, or a sequence / array / tensor with one per sub-environment."""
    what = f"options[{key!r}]"
    allowed = f"an int or a sequence of {num_envs} int(s), one per sub-environment"
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{what} must be {allowed}, got a string {value!r}")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be {allowed}, got a bool {value!r}")
    if isinstance(value, (int, np.integer)):
        array = np.full(num_envs, int(value), np.int64)
    else:
        if not isinstance(value, (np.ndarray, Sequence)):
            raise TypeError(f"{what} must be {allowed}, got {type(value).__name__} ({value!r})")
        items = value if isinstance(value, np.ndarray) else list(value)
        if not isinstance(items, np.ndarray) and any(isinstance(v, (bool, np.bool_)) for v in items):
            raise TypeError(f"{what} must hold ints, got a bool in {value!r}")
        try:
            raw = np.asarray(items)
        except ValueError as exc:  # ragged nesting
            raise ValueError(f"{what} must be {allowed}, got {value!r} ({exc})") from None
        if raw.size and (raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer)):
            raise TypeError(f"{what} must hold ints, got dtype {raw.dtype} ({value!r})")
        if raw.ndim == 0:
            array = np.full(num_envs, int(raw), np.int64)
        elif raw.shape != (num_envs,):
            raise ValueError(f"{what} must be {allowed}; got shape {raw.shape} ({value!r})")
        else:
            array = raw.astype(np.int64)
    if array.min() < 0 or array.max() >= upper:
        raise ValueError(f"{what} must lie in [0, {upper - 1}], got {array.tolist()}")
    return array


def draw_episode_images(
    data: DataSource,
    rngs: list[np.random.Generator],
    idx: np.ndarray,
    num_envs: int,
    seeds: Sequence[int | None] | None = None,
    options: Mapping[str, Any] | None = None,
    extra_seeds: bool = False,
    extra_keys: Sequence[str] = (),
) -> tuple[np.ndarray, Batch, list[int | None]]:
    """Pick (and load) the images of the episodes starting in sub-environments ``idx``.

    Returns the data indices, the loaded batch, and, with ``extra_seeds``, one further seed per
    episode drawn from its generator (for stochastic substrates), else ``None`` each.
    ``options`` are checked by :func:`check_reset_options` (before any generator is re-seeded).
    """
    requested = check_reset_options(options, num_envs, len(data), extra_keys)
    picks = np.empty(len(idx), np.int64)
    episode_seeds: list[int | None] = []
    for j, i in enumerate(idx):
        if seeds is not None and seeds[i] is not None:
            rngs[i] = np.random.default_rng(seeds[i])
        rng = rngs[i]
        picks[j] = requested[i] if requested is not None else rng.integers(len(data))
        episode_seeds.append(int(rng.integers(2**62)) if extra_seeds else None)
    return picks, data.get_batch(picks), episode_seeds
