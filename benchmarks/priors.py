"""Prior rows and paired differences: what a learned method must beat to be credited.

A policy that ignores the image is a prior (DESIGN.md, "What an agent sees"). Two such maps sit
beside every learned method in the benchmarks (issue 21):

- the **centre prior** (the registered ``centre`` explainer, :mod:`saliency_gym.baselines.centre`):
  minus the distance to the image centre, the same map for every image, 0 queries;
- the method's **own mean map**, ``"M (mean map)"``: the mean of method ``M``'s maps over the
  evaluated images, given to every image alike (:func:`mean_map_explainer`). It is what the best
  image-independent prior *that M itself implies* scores; an agent that does not beat it has
  learned where objects usually are, not where the evidence is.

Beating a prior is judged per image, on the same images: :func:`paired_difference` is the mean of
``metric(M) - metric(reference)`` over images and its 95% Student-t interval (the suite's
:func:`~saliency_gym.benchmarks.suite.mean_ci`), which is far tighter than comparing two
independent intervals. :func:`paired_columns` gives the eight table fields (insertion and deletion,
minus the centre prior and minus the mean map) the benchmarks add to a learned method's row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.explainers import Explainer
from saliency_gym.types import TargetsLike

__all__ = [
    "CENTRE",
    "MEAN_MAP_SUFFIX",
    "PAIRED_FIELDS",
    "FixedMapExplainer",
    "mean_map",
    "mean_map_explainer",
    "mean_map_label",
    "mean_maps",
    "paired_columns",
    "paired_difference",
    "paired_markdown",
]

#: The row name of the centre prior in the benchmark tables.
CENTRE = "centre"
#: ``"M" + MEAN_MAP_SUFFIX`` is the row of method M's mean map.
MEAN_MAP_SUFFIX = " (mean map)"
#: The paired-difference fields a learned method's row gains (each with a ``_ci`` twin).
PAIRED_FIELDS = ("insertion_minus_centre", "deletion_minus_centre", "insertion_minus_mean_map", "deletion_minus_mean_map")
_HEADERS = {
    "insertion_minus_centre": "insertion − centre ↑",
    "deletion_minus_centre": "deletion − centre ↓",
    "insertion_minus_mean_map": "insertion − own mean map ↑",
    "deletion_minus_mean_map": "deletion − own mean map ↓",
}


def mean_map_label(method: str) -> str:
    """The row name of ``method``'s mean map: ``"agent-reveal (mean map)"``."""
    return f"{method}{MEAN_MAP_SUFFIX}"


def _as_maps(maps: Any) -> np.ndarray:
    if isinstance(maps, torch.Tensor):
        maps = maps.detach().cpu().numpy()
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise ValueError(f"maps must be a non-empty (N, H, W) batch, got shape {maps.shape}")
    if not np.issubdtype(maps.dtype, np.number) or not np.isfinite(maps).all():
        raise ValueError("maps must hold finite numbers")
    return maps


def mean_map(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """``float32 (H, W)``: the pixel-wise mean of ``(N, H, W)`` maps (computed in float64).

    The maps are averaged as they are, not rescaled: for the policy explainer's order maps every
    image's values lie on the same scale, ``(K - rank) / K``, so the mean is the mean rank."""
    return _as_maps(maps).astype(np.float64).mean(axis=0).astype(np.float32)


def mean_maps(maps: np.ndarray | torch.Tensor) -> np.ndarray:
    """``float32 (N, H, W)``: :func:`mean_map` of ``maps`` given to each of the ``N`` images
    (the maps of the row ``"M (mean map)"`` when ``maps`` are M's)."""
    maps = _as_maps(maps)
    return np.broadcast_to(mean_map(maps), maps.shape).copy()


class FixedMapExplainer(Explainer):
    """The same saliency map for every image, target and model; no query.

    Args:
        classifier: the model "explained" (its input shape fixes the map's size).
        saliency: the ``(H, W)`` map (finite numbers) of the classifier's image size.
        name: the row name in tables (default ``"fixed_map"``).
    """

    name = "fixed_map"

    def __init__(self, classifier: FrozenClassifier, saliency: np.ndarray | torch.Tensor, name: str | None = None) -> None:
        super().__init__(classifier)
        values = _as_maps(np.asarray(saliency)[None] if np.ndim(saliency) == 2 else saliency)
        if values.shape[0] != 1:
            raise ValueError(f"saliency must be one (H, W) map, got shape {tuple(np.shape(saliency))}")
        if values.shape[1:] != tuple(self.classifier.input_shape[1:]):
            raise ValueError(f"saliency is {values.shape[1:]} but the classifier takes {self.classifier.input_shape[1:]} images")
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        self._map = torch.from_numpy(values[0].astype(np.float32))
        if name is not None:
            self.name = name  # type: ignore[misc]  # instances carry their row's label

    def expected_queries(self) -> int:
        """Forward passes one image costs: none."""
        return 0

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self._map.to(images.device).expand(images.shape[0], -1, -1).clone()

    def __repr__(self) -> str:
        return f"FixedMapExplainer(classifier={self.classifier.name!r}, name={self.name!r})"


def mean_map_explainer(explainer: Explainer, images: Any, targets: TargetsLike = None, *, name: str | None = None) -> FixedMapExplainer:
    """The row ``"M (mean map)"``: explain ``images`` (for ``targets``) with ``explainer`` once and
    return a :class:`FixedMapExplainer` of the mean of its maps, named ``mean_map_label(M)``.

    The explanation's queries are spent here, once; the returned explainer costs none.
    """
    maps = explainer.explain(images, targets).maps
    return FixedMapExplainer(explainer.classifier, mean_map(maps), name=name or mean_map_label(explainer.name))


def paired_difference(values: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean of ``values - reference`` (per image, the same images in the same order) and the
    half-width of its 95% interval (Student's t, :func:`~saliency_gym.benchmarks.suite.mean_ci`)."""
    from saliency_gym.benchmarks.suite import mean_ci  # suite imports this module

    a, b = np.asarray(values, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired values need two 1-D arrays of the same length, got shapes {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("paired values need at least one image")
    return mean_ci(a - b)


def paired_columns(method: str, per_image: Mapping[str, Mapping[str, np.ndarray]], *, centre: str = CENTRE) -> dict[str, Any]:
    """The :data:`PAIRED_FIELDS` (and their ``_ci``) of ``method``'s row.

    ``per_image[row]["insertion"]`` / ``["deletion"]`` hold each row's per-image AUCs on the same
    images. A difference whose reference row (``centre``, ``mean_map_label(method)``) is absent is
    ``None``.
    """
    out: dict[str, Any] = {}  # float | None each; Any so that dataclasses.replace(row, **out) type-checks
    references = {"centre": centre, "mean_map": mean_map_label(method)}
    for field in PAIRED_FIELDS:
        metric, _, reference = field.partition("_minus_")
        ref = per_image.get(references[reference])
        mine = per_image.get(method)
        if ref is None or mine is None or metric not in ref or metric not in mine:
            out[field], out[f"{field}_ci"] = None, None
        else:
            out[field], out[f"{field}_ci"] = paired_difference(mine[metric], ref[metric])
    return out


def paired_markdown(rows: Sequence[Any], digits: int = 3) -> tuple[str, str, list[str]]:
    """The paired columns of a Markdown table, as text to append to its header line, its
    separator line and each row's line (lines that end with ``|``): ``(" a | b |", "---:|---:|",
    [" +0.012 ± 0.004 | |", ...])``; an empty cell where a row has no value. All empty strings
    when no row has a paired value, so a table without learned methods keeps its columns."""
    if not any(getattr(r, field, None) is not None for r in rows for field in PAIRED_FIELDS):
        return "", "", ["" for _ in rows]
    header = "".join(f" {_HEADERS[f]} |" for f in PAIRED_FIELDS)
    separator = "---:|" * len(PAIRED_FIELDS)
    cells = []
    for r in rows:
        parts = []
        for field in PAIRED_FIELDS:
            mean, ci = getattr(r, field, None), getattr(r, f"{field}_ci", None)
            parts.append("" if mean is None or not np.isfinite(mean) else f"{mean:+.{digits}f} ± {ci:.{digits}f}")
        cells.append("".join(f" {p} |" for p in parts))
    return header, separator, cells
