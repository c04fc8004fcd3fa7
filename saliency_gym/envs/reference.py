"""Reference scores of the saliency-search presets, and an agent's normalised score.

RL suites give every environment a random and an expert score (Atari's human-normalised score,
D4RL's ``get_normalized_score``) so that agents can be compared across environments. The
``saliency_gym/SaliencyReveal-*-v0`` and ``saliency_gym/SaliencyMask-*-v0`` presets have four
references, each a fixed policy rolled out with the environment's own settings on its held-out
test images (the ``"test"`` split, the first ``images`` of it; the explained class is the
prediction):

- ``random``: a uniformly random cell order (:class:`~saliency_gym.agents.policies.RandomPolicy`);
- ``centre``: the centre-out cell order, the same for every image (the ``centre`` explainer's order);
- ``gradcam``: the cells in Grad-CAM's order (one forward and backward pass per image);
- ``greedy``: the one-step greedy look-ahead (:class:`~saliency_gym.agents.policies.GreedyPolicy`),
  the strong, costly reference (``K (K + 1) / 2`` queries per image on ``K`` cells, or fewer with a
  look-ahead budget, stated per preset as ``greedy_lookahead``).

For each, the file holds the mean and 95% interval over images of the episode ``return`` (the
default ``reward_mode="auc"``) and of the episode's patch-level ``auc``: insertion AUC for reveal
presets (higher is better), deletion AUC for mask presets (lower is better), which is what
:func:`saliency_gym.metrics.patch_insertion_curve` / ``patch_deletion_curve`` give for the episode's
cell order.

:func:`normalized_score` is ``(value - random) / (greedy - random)``: 0 is the random order and 1
the greedy look-ahead, whichever way the metric points. For a mask preset's deletion AUC, where
lower is better, greedy's AUC is below random's, so the denominator is negative and an agent
below random's AUC (better) still gets a positive score; the return, higher-is-better in both
modes, gives the same reading.

The scores ship as package data (``reference_scores.json`` next to this module), written by
``python -m saliency_gym.benchmarks.reference_scores`` (see that module for the settings and the
wall time); this module only reads them, so the core never imports the benchmarks.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from importlib import resources
from typing import Any

__all__ = ["REFERENCES", "SCORE_KEYS", "normalized_score", "reference_ids", "reference_scores"]

#: The reference policies of every preset, from the floor to the strong one.
REFERENCES = ("random", "centre", "gradcam", "greedy")
#: What a value to normalise can be: the episode return, or the episode's patch-level AUC.
SCORE_KEYS = ("auc", "return")
_FILE = "reference_scores.json"


@functools.lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    text = resources.files("saliency_gym.envs").joinpath(_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    scores = data.get("scores")
    if not isinstance(scores, dict):
        raise RuntimeError(f"{_FILE} has no 'scores' table; rewrite it with python -m saliency_gym.benchmarks.reference_scores")
    return data


def reference_ids() -> list[str]:
    """The environment ids that have reference scores, sorted."""
    return sorted(_table()["scores"])


def reference_scores(env_id: str) -> dict[str, Any]:
    """The reference scores of ``env_id`` (a copy): ``images``, ``metric`` (``"insertion_auc"``
    or ``"deletion_auc"``), ``better`` (``"higher"``/``"lower"``), the settings used, and
    ``references[name]`` for each name of :data:`REFERENCES`, with ``auc``, ``auc_ci``,
    ``return``, ``return_ci`` and ``queries_per_image``.

    Raises ``ValueError`` (listing those it has) for an id without reference scores.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a str, got {type(env_id).__name__}")
    scores = _table()["scores"]
    if env_id not in scores:
        raise ValueError(
            f"no reference scores for {env_id!r}; measured ids: {sorted(scores)} (measure it with "
            f"python -m saliency_gym.benchmarks.reference_scores --ids {env_id})"
        )
    return copy.deepcopy(scores[env_id])


def normalized_score(env_id: str, value: float, *, key: str = "auc") -> float:
    """``(value - random) / (greedy - random)`` for ``env_id``'s references: 0 at the random
    order, 1 at the greedy look-ahead (above 1: better than greedy).

    Args:
        env_id: a preset with reference scores (:func:`reference_ids`).
        value: the agent's mean over the same held-out images: its patch-level AUC (``key="auc"``:
            insertion for reveal presets, deletion for mask presets) or its episode return.
        key: ``"auc"`` (default) or ``"return"``.

    For a mask preset's deletion AUC lower is better and greedy's AUC is below random's, so the
    formula still gives a positive score to an agent that beats random (see the module docstring).
    """
    if key not in SCORE_KEYS:
        raise ValueError(f"key must be one of {SCORE_KEYS}, got {key!r}")
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"value must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"value must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"value must be finite, got {value!r}")
    refs = reference_scores(env_id)["references"]
    random, greedy = float(refs["random"][key]), float(refs["greedy"][key])
    if greedy == random:
        raise ValueError(f"{env_id}: the random and greedy references tie ({key} = {random}); no scale to normalise by")
    return (number - random) / (greedy - random)
