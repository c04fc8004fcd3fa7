"""A PNG of insertion and deletion curves: one panel each, one line per method.

Each line is the mean curve over images with a shaded band (standard deviation or standard error,
clipped to the range the curves actually take; drawn for up to four methods), one colour per method
in both panels, and one legend right of the panels gives each method's mean AUCs. Uses matplotlib's
Agg backend (no display needed).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from saliency_gym.metrics.curves import CurveResult, auc
from saliency_gym.validation import check_choice

__all__ = ["curves_figure", "plot_insertion_deletion_curves"]

BANDS = ("std", "sem", "none")


def _as_curves(value: Any, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x (S+1,), curves (N, S+1), aucs (N,))`` from a CurveResult or a curves array."""
    if isinstance(value, CurveResult):
        return value.fractions, value.curves, value.auc
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{where} must be a CurveResult or an (N, S+1) array of curves, got {type(value).__name__}")
    curves = value[None] if value.ndim == 1 else value
    if curves.ndim != 2 or curves.shape[1] < 2 or curves.shape[0] < 1:
        raise ValueError(f"{where} must be curves of shape (N, S+1) with N >= 1 and S >= 1, got {value.shape}")
    return np.linspace(0.0, 1.0, curves.shape[1]), curves.astype(np.float64), auc(curves)


def _split(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Sort each method's entries into the insertion and deletion panels."""
    panels: dict[str, dict[str, Any]] = {"insertion": {}, "deletion": {}}
    for name, value in results.items():
        if isinstance(value, CurveResult):
            panels[value.mode][name] = value
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            for mode, item in zip(("insertion", "deletion"), value, strict=True):
                if item is None:
                    continue
                if isinstance(item, CurveResult) and item.mode != mode:
                    raise ValueError(f"results[{name!r}] has a {item.mode} result in the {mode} slot")
                panels[mode][name] = item
        else:
            raise TypeError(
                f"results[{name!r}] must be a CurveResult (placed by its mode) or an (insertion, deletion) "
                f"pair of CurveResults / (N, S+1) curve arrays (either may be None), got {type(value).__name__}"
            )
    return panels


def plot_insertion_deletion_curves(
    results: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    band: str = "std",
    title: str | None = None,
    ylabel: str = "p(target)",
    dpi: int = 120,
) -> Path:
    """Write a two-panel PNG (insertion left, deletion right) and return its path.

    Args:
        results: method name to either a :class:`CurveResult` (drawn in the panel of its
            ``mode``) or an ``(insertion, deletion)`` pair whose items are CurveResults or
            ``(N, S+1)`` curve arrays (x taken as equally spaced on [0, 1]) or ``None``.
        path: where to write the PNG (parent folders are created).
        band: shaded band around the mean: ``"std"`` (standard deviation over images), ``"sem"``
            (standard error of the mean) or ``"none"``. Bands are drawn only when at most
            :data:`MAX_BANDED_METHODS` methods are plotted (more would hide each other).
        title: figure title.
        ylabel: the score's label (e.g. ``"p(target) - p(foil)"`` for contrastive curves).
        dpi: resolution of the PNG.

    One legend, right of the deletion panel, gives each method (same colour in both panels) with
    its mean AUCs over images, e.g. ``gradient (AUC ins 0.812, del 0.120)`` (higher is better for
    insertion, lower for deletion).
    """
    fig = curves_figure(results, band=band, title=title, ylabel=ylabel)
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return out


#: Above this many methods the curves are drawn without their shaded bands.
MAX_BANDED_METHODS = 4


def curves_figure(
    results: Mapping[str, Any], *, band: str = "std", title: str | None = None, ylabel: str = "p(target)"
) -> Any:
    """The matplotlib ``Figure`` that :func:`plot_insertion_deletion_curves` saves (the caller closes it)."""
    check_choice("band", band, BANDS)
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty mapping of method names to curves")
    panels = _split(results)

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = list(results)
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")  # one distinct colour per method
    colours = {name: palette(index % palette.N) for index, name in enumerate(names)}
    banded = band != "none" and len(names) <= MAX_BANDED_METHODS
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    aucs_of: dict[str, dict[str, float]] = {name: {} for name in names}
    handles: dict[str, Any] = {}
    for ax, mode in zip(axes, ("insertion", "deletion"), strict=True):
        for name, value in panels[mode].items():
            x, curves, aucs = _as_curves(value, f"results[{name!r}] ({mode})")
            mean = curves.mean(axis=0)
            (line,) = ax.plot(x, mean, color=colours[name], linewidth=1.5)
            handles.setdefault(name, line)
            aucs_of[name][mode] = float(np.mean(aucs))
            if banded and curves.shape[0] > 1:
                spread = curves.std(axis=0, ddof=1)
                if band == "sem":
                    spread = spread / np.sqrt(curves.shape[0])
                # clipped to the observed range, so a band never claims impossible scores
                lower = np.maximum(mean - spread, curves.min(axis=0))
                upper = np.minimum(mean + spread, curves.max(axis=0))
                ax.fill_between(x, lower, upper, color=colours[name], alpha=0.15, linewidth=0)
        ax.set_title(f"{mode.capitalize()} ({'higher' if mode == 'insertion' else 'lower'} AUC is better)")
        ax.set_xlabel(f"fraction {'revealed' if mode == 'insertion' else 'removed'}")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        if not panels[mode]:
            ax.text(0.5, 0.5, "no curves", ha="center", va="center", transform=ax.transAxes, color="gray")
    axes[0].set_ylabel(ylabel)
    labels = []
    for name in handles:
        parts = [f"{short} {aucs_of[name][mode]:.3f}" for mode, short in (("insertion", "ins"), ("deletion", "del"))
                 if mode in aucs_of[name]]  # fmt: skip
        labels.append(f"{name} (AUC {', '.join(parts)})")
    if handles:
        legend_title = "method (mean AUC)" + ("" if banded or band == "none" else "; bands hidden for > 4 methods")
        axes[1].legend(list(handles.values()), labels, loc="upper left", bbox_to_anchor=(1.03, 1.0),
                       borderaxespad=0.0, fontsize=8, title=legend_title, title_fontsize=8, frameon=False)  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
