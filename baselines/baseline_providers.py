"""Baseline providers for attributions and saliency search, including class-aware counterfactuals.

A baseline provider is a :class:`~saliency_gym.substrates.Substrate`: ``provider(images, targets,
generator)`` returns one baseline per image. The class-agnostic ones already live in
:mod:`saliency_gym.substrates` (zeros, blur, uniform noise, dataset mean) and are reused here by
name; this module adds the two *class-aware* providers of GANMEX's comparison (Shih et al. 2021):

* :class:`MDTSSubstrate`, the minimum-distance training sample: for each image, the training
  image of the requested class nearest to it (batched nearest-neighbour search);
* :class:`GanmexSubstrate`, the GANMEX counterfactual ``G(x, c)`` of a trained generator
  (:mod:`saliency_gym.baselines.ganmex`).

For a class-aware provider (``class_aware = True``) ``targets`` means "the class each baseline
should belong to". The saliency environments call it with the *foil* of a one-vs-one target
``(target, foil)``, so the canvas starts at the foil counterfactual. Explainers that evaluate a
substrate with the *explained* classes (Integrated Gradients, DeepLIFT, GradientSHAP) need the
foil instead: :meth:`ClassAwareSubstrate.for_class` gives a class-agnostic view that always
produces the counterfactual of one fixed class, and :meth:`ClassAwareSubstrate.for_classes` one
with a foil per image. Occlusion takes a constant; :func:`make_baseline_provider` builds any
provider by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import DataSource, load_dataset
from saliency_gym.substrates import SUBSTRATE_NAMES, Substrate, make_substrate
from saliency_gym.validation import (
    as_image_batch,
    as_label_array,
    check_choice,
    check_int,
    resolve_device,
)

BASELINE_PROVIDERS: tuple[str, ...] = (*SUBSTRATE_NAMES, "mdts", "ganmex")
MDTS_DISTANCES = ("l2", "l1")


def _class_ids(targets: Any, n: int, num_classes: int, provider: str) -> torch.Tensor:
    if targets is None:
        raise ValueError(
            f"the class-aware baseline provider {provider!r} needs targets: the class each baseline should belong to"
        )
    return torch.as_tensor(as_label_array(targets, n=n, num_classes=num_classes, name=f"{provider} targets"))


def prune_edit(
    classifier: FrozenClassifier, images: torch.Tensor, counterfactuals: torch.Tensor, classes: torch.Tensor
) -> torch.Tensor:
    """The smallest valid part of each counterfactual's edit, taken in order of edit size.

    Pixels are ranked by how much the counterfactual changes them (``sum_c |b - x|``); for each
    image a bisection over ``k`` finds a small ``k`` for which ``x`` with only its ``k`` most
    changed pixels replaced by ``b``'s is still assigned to ``classes[i]``. Faint changes around the
    real edit (a generator's halo) are dropped, the edit that flips the class is kept. A
    counterfactual that is not valid to begin with is returned unchanged; every returned
    counterfactual that was valid stays valid (only tested ``k`` are kept). Costs about
    ``log2(H * W) + 1`` counted queries per image, all images batched together.

    A trade-off for path attributions: Integrated Gradients and DeepLIFT attribute only where the
    input differs from the baseline, so with a pruned baseline their maps are zero outside the few
    kept pixels. On ``shape_pairs`` that concentrates them on the mark, but the many tied zeros
    hurt insertion AUC, and the maps barely change under model randomisation (the baseline, made
    once with the trained model, fixes their support). ``benchmarks/bench_ganmex.py`` measures both.
    """
    x, b = images.to(classifier.device), counterfactuals.to(classifier.device)
    classes = classes.to(classifier.device)
    n, _, h, w = x.shape
    edit = (b - x).abs().sum(1).flatten(1)  # (N, H*W)
    rank = torch.empty_like(edit, dtype=torch.long)
    rank.scatter_(1, edit.argsort(dim=1, descending=True), torch.arange(h * w, device=edit.device).expand(n, -1).contiguous())
    changed = (edit > 0).sum(1)

    def keep_top(k: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        mask = (rank[rows] < k[rows, None]).view(-1, 1, h, w)
        return torch.where(mask, b[rows], x[rows])

    valid = classifier.predict(b) == classes
    lo = torch.zeros(n, dtype=torch.long, device=x.device)  # k = lo is never tested: the input itself
    hi = changed.clone()  # the whole edit (valid where `valid`)
    while True:
        rows = torch.nonzero(valid & (hi - lo > 1)).flatten()
        if rows.numel() == 0:
            break
        mid = (lo + hi) // 2
        ok = classifier.predict(keep_top(mid, rows)) == classes[rows]
        hi[rows] = torch.where(ok, mid[rows], hi[rows])
        lo[rows] = torch.where(ok, lo[rows], mid[rows])
    everyone = torch.arange(n, device=x.device)
    return torch.where(valid[:, None, None, None], keep_top(hi, everyone), b).to(counterfactuals.device)


def project_edit(
    classifier: FrozenClassifier,
    images: torch.Tensor,
    counterfactuals: torch.Tensor,
    classes: torch.Tensor,
    levels: int = 8,
) -> torch.Tensor:
    """Shrink each counterfactual's edit towards the input as far as the classifier's verdict allows.

    The projection is the proximal step of an L1 penalty (soft thresholding) on the edit
    ``d = b - x``: ``d' = sign(d) * max(|d| - s * max|d|, 0)``, for the threshold shares
    ``s = (levels - 1) / levels, ..., 1 / levels`` (``max|d|`` per image). Faint changes vanish and
    strong ones shrink by the same amount, so the result lies between ``x`` and ``b`` pixel by pixel
    (in [0, 1] when both are). For each image the largest ``s`` whose result the classifier still
    assigns to ``classes[i]`` is kept (tried from the largest down, stopping at the first valid one),
    the full edit if none is. A counterfactual that is not valid to begin with is returned
    unchanged, and every valid one stays valid. Costs one counted query per image plus one per
    level tried (2 to ``levels``), all images batched together.

    Compared with :func:`prune_edit` (which keeps or drops whole pixels), it also weakens the
    pixels it keeps, so it shrinks edits that are large everywhere (a shape redrawn) as well as
    faint halos, with fewer queries.
    """
    levels = check_int("levels", levels, minimum=2)
    x, b = images.to(classifier.device), counterfactuals.to(classifier.device)
    classes = classes.to(classifier.device)
    edit = b - x
    peak = edit.abs().flatten(1).amax(1)[:, None, None, None]
    out = b.clone()
    pending = classifier.predict(b) == classes  # valid, and no shrunk version accepted yet
    for level in range(levels - 1, 0, -1):
        rows = torch.nonzero(pending).flatten()
        if rows.numel() == 0:
            break
        d = edit[rows]
        shrunk = x[rows] + torch.sign(d) * (d.abs() - (level / levels) * peak[rows]).clamp(min=0)
        ok = classifier.predict(shrunk) == classes[rows]
        out[rows[ok]] = shrunk[ok]
        pending[rows[ok]] = False
    return out.to(counterfactuals.device)


class ClassAwareSubstrate(Substrate):
    """Base of the counterfactual providers: validated class ids in, one baseline per image out.

    Subclasses set :attr:`num_classes` and :attr:`input_shape` and implement :meth:`counterfactuals`.
    """

    class_aware = True
    num_classes: int
    input_shape: tuple[int, int, int]

    def counterfactuals(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """Baselines ``(N, C, H, W)`` in [0, 1] of class ``classes[i]`` for validated ``images``."""
        raise NotImplementedError

    def __call__(
        self, images: torch.Tensor, targets: Any = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            images = images.detach()  # baselines are constants for the explainers: no graph through them
        x = as_image_batch(images, expected_shape=self.input_shape, device=images.device if isinstance(images, torch.Tensor) else None)
        classes = _class_ids(targets, x.shape[0], self.num_classes, self.name)
        if x.shape[0] == 0:
            return x.clone()
        out = self.counterfactuals(x, classes)
        return out.to(x.device, x.dtype)

    def for_class(self, cls: int) -> FixedClassSubstrate:
        """A class-agnostic view that always returns the counterfactual of class ``cls``."""
        return FixedClassSubstrate(self, cls)

    def for_classes(self, classes: Sequence[int] | np.ndarray) -> FixedClassSubstrate:
        """A class-agnostic view with a fixed class per image (``len(classes)`` must equal the batch)."""
        return FixedClassSubstrate(self, classes)


class FixedClassSubstrate(Substrate):
    """A class-agnostic view of a class-aware provider: its ``targets`` argument is ignored and the
    baselines always belong to ``classes`` (one id for all images, or one per image).

    This is how one-vs-one attributions with a fixed foil are written for explainers that call
    the baseline with the *explained* class: ``IntegratedGradientsExplainer(clf,
    baseline=ganmex.for_class(foil)).explain(images, target)``.
    """

    class_aware = False

    def __init__(self, provider: ClassAwareSubstrate, classes: int | Sequence[int] | np.ndarray) -> None:
        if not isinstance(provider, ClassAwareSubstrate):
            raise TypeError(f"provider must be a class-aware baseline provider, got {type(provider).__name__}")
        self.provider = provider
        if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
            self.classes: int | np.ndarray = check_int("class", int(classes), minimum=0, maximum=provider.num_classes - 1)
        else:
            arr = np.asarray(classes)
            self.classes = as_label_array(arr, n=arr.size, num_classes=provider.num_classes, name="classes")
        self.stochastic = provider.stochastic
        label = self.classes if isinstance(self.classes, int) else "per-image"
        self.name = f"{provider.name}[{label}]"

    def __call__(
        self, images: torch.Tensor, targets: Any = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        n = images.shape[0]
        if isinstance(self.classes, int):
            classes = np.full(n, self.classes)
        else:
            if self.classes.size != n:
                raise ValueError(f"{self.name} holds {self.classes.size} classes for a batch of {n} images")
            classes = self.classes
        return self.provider(images, classes, generator)

    def __repr__(self) -> str:
        return f"FixedClassSubstrate({self.provider!r}, classes={self.classes!r})"


class MDTSSubstrate(ClassAwareSubstrate):
    """Minimum-distance training sample (MDTS): the nearest training image of the requested class.

    The reference images of each class are held as one ``(n_c, C*H*W)`` matrix on ``device``; a
    batch is answered with :func:`torch.cdist` per requested class, in chunks of ``batch_size``
    queries, so memory stays at ``batch_size * n_c`` distances.

    Args:
        data: the :class:`~saliency_gym.data.DataSource` to search (typically the training split);
            ``None`` loads ``load_dataset(dataset, "train")``.
        dataset: name of a shipped dataset, used when ``data`` is ``None``.
        max_samples: use only the first ``max_samples`` images (``None``: all).
        distance: ``"l2"`` (Euclidean) or ``"l1"``.
        batch_size: query images per distance computation.
        device: where the reference images live (``None``: CUDA when available).
    """

    name = "mdts"

    def __init__(
        self,
        data: DataSource | None = None,
        *,
        dataset: str | None = None,
        max_samples: int | None = None,
        distance: str = "l2",
        batch_size: int = 256,
        device: torch.device | str | None = "cpu",
    ) -> None:
        if data is None:
            if dataset is None:
                raise ValueError("MDTSSubstrate needs data= (a DataSource) or dataset= (a shipped dataset name)")
            data = load_dataset(dataset, "train")
        if not isinstance(data, DataSource):
            raise TypeError(f"data must be a DataSource, got {type(data).__name__}")
        n = len(data) if max_samples is None else min(check_int("max_samples", max_samples, minimum=1), len(data))
        self.distance = check_choice("distance", distance, MDTS_DISTANCES)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.device = resolve_device(device)
        self.input_shape = tuple(int(s) for s in data.image_shape)  # type: ignore[assignment]
        self.num_classes = data.num_classes
        batch = data.get_batch(np.arange(n))
        flat = torch.from_numpy(np.ascontiguousarray(batch.images)).reshape(n, -1).to(self.device)
        labels = torch.from_numpy(batch.labels)
        self.references: list[torch.Tensor] = [flat[labels == c] for c in range(self.num_classes)]
        empty = [c for c, r in enumerate(self.references) if r.shape[0] == 0]
        if empty:
            raise ValueError(f"MDTS reference data has no image of class(es) {empty}; use more samples")

    def nearest(self, images: torch.Tensor, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index (within its class) and distance of each image's nearest reference of its class."""
        flat = images.reshape(images.shape[0], -1).to(self.device)
        index = torch.empty(images.shape[0], dtype=torch.int64)
        dist = torch.empty(images.shape[0])
        p = 2.0 if self.distance == "l2" else 1.0
        for c in torch.unique(classes).tolist():
            rows = torch.nonzero(classes == c).flatten()
            for lo in range(0, rows.numel(), self.batch_size):
                chunk = rows[lo : lo + self.batch_size]
                d = torch.cdist(flat[chunk], self.references[c], p=p)
                best, arg = d.min(dim=1)
                index[chunk], dist[chunk] = arg.cpu(), best.cpu()
        return index, dist

    def counterfactuals(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        index, _ = self.nearest(images, classes)
        out = torch.stack([self.references[int(c)][int(i)] for c, i in zip(classes, index, strict=True)])
        return out.reshape(images.shape)

    def __repr__(self) -> str:
        sizes = [int(r.shape[0]) for r in self.references]
        return f"MDTSSubstrate(per_class={sizes}, distance={self.distance!r})"


class GanmexSubstrate(ClassAwareSubstrate):
    """GANMEX counterfactual baselines ``G(x, c)`` from a trained generator (Shih et al. 2021).

    Args:
        generator: a shipped generator name (the classifier's name, e.g. ``"shape_pairs"``; see
            :func:`~saliency_gym.baselines.ganmex.shipped_generators`) or a checkpoint path written
            by ``saliency-gym train-ganmex``.
        device: where the generator runs.
        classifier: optional :class:`FrozenClassifier`; needed for ``reject_source_class`` and
            ``prune``.
        reject_source_class: raise a ``ValueError`` when a requested class equals the class the
            classifier predicts for the image (such a "counterfactual" is the image itself, and an
            attribution against it is empty: usually a sign that the explained class was passed
            where the foil was meant). Costs one counted query per image.
        prune: keep only the smallest valid part of each generated edit, in order of edit size
            (:func:`prune_edit`): drops the faint changes a generator spreads around the edit that
            matters, bringing the baseline nearer the true counterfactual. Costs about
            ``log2(H * W) + 1`` counted queries per image; see :func:`prune_edit` for what it does
            to path attributions.
        project: shrink each generated edit towards the input as far as the classifier's verdict
            allows (:func:`project_edit`: soft thresholding of the edit at ``project_levels - 1``
            levels, the strongest that stays valid): the smallest valid edit along the way from
            ``G(x, c)`` to ``x``. Costs 2 to ``project_levels`` counted queries per image. An
            alternative to ``prune`` (not both).
        project_levels: threshold levels of ``project`` (at least 2).
        batch_size: images per generator pass.

    Deterministic: the same image and class always give the same baseline.
    """

    name = "ganmex"

    def __init__(
        self,
        generator: str | os.PathLike[str] = "shape_pairs",
        *,
        device: torch.device | str | None = "cpu",
        classifier: FrozenClassifier | None = None,
        reject_source_class: bool = False,
        prune: bool = False,
        project: bool = False,
        project_levels: int = 8,
        batch_size: int = 256,
    ) -> None:
        from saliency_gym.baselines.ganmex import load_generator

        self.device = resolve_device(device)
        self.generator, self.info = load_generator(generator, device=self.device)
        self.input_shape = tuple(int(s) for s in self.info["input_shape"])  # type: ignore[assignment]
        self.num_classes = int(self.generator.num_classes)
        self.class_names = tuple(self.info["class_names"])
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        if classifier is not None and not isinstance(classifier, FrozenClassifier):
            raise TypeError(f"classifier must be a FrozenClassifier or None, got {type(classifier).__name__}")
        if classifier is not None and (classifier.input_shape != self.input_shape or classifier.num_classes != self.num_classes):
            raise ValueError(
                f"classifier {classifier.name!r} ({classifier.input_shape}, {classifier.num_classes} classes) does not fit the "
                f"generator ({self.input_shape}, {self.num_classes} classes)"
            )
        if reject_source_class and classifier is None:
            raise ValueError("reject_source_class=True needs classifier= to know each image's class")
        if prune and classifier is None:
            raise ValueError("prune=True needs classifier= to test which part of the edit is needed")
        if not isinstance(project, bool):
            raise TypeError(f"project must be a bool, got {type(project).__name__}")
        if project and classifier is None:
            raise ValueError("project=True needs classifier= to test how far the edit can shrink")
        if project and prune:
            raise ValueError("prune=True and project=True are alternatives; choose one")
        self.project_levels = check_int("project_levels", project_levels, minimum=2)
        self.classifier = classifier
        self.reject_source_class = bool(reject_source_class)
        self.prune = bool(prune)
        self.project = project

    def counterfactuals(self, images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        if self.reject_source_class:
            assert self.classifier is not None
            predicted = self.classifier.predict(images).cpu()
            same = torch.nonzero(predicted == classes.cpu()).flatten()
            if same.numel():
                raise ValueError(
                    f"GANMEX baseline requested for the image's own predicted class at index(es) {same[:5].tolist()}; "
                    "a one-vs-one baseline must belong to the foil class (use provider.for_class(foil) with "
                    "explainers that pass the explained class)"
                )
        out = []
        with torch.no_grad():
            for lo in range(0, images.shape[0], self.batch_size):
                x = images[lo : lo + self.batch_size].to(self.device)
                out.append(self.generator(x, classes[lo : lo + self.batch_size].to(self.device)).clamp_(0, 1))
        baselines = torch.cat(out).to(images.device)
        if self.prune:
            assert self.classifier is not None
            baselines = prune_edit(self.classifier, images, baselines, classes)
        if self.project:
            assert self.classifier is not None
            baselines = project_edit(self.classifier, images, baselines, classes, self.project_levels)
        return baselines

    def __repr__(self) -> str:
        extra = ", prune=True" if self.prune else f", project=True, project_levels={self.project_levels}" if self.project else ""
        return f"GanmexSubstrate({self.info['path']!r}, classes={self.num_classes}{extra})"


def make_baseline_provider(name: str, *, data: DataSource | None = None, generator: str | os.PathLike[str] | None = None,
                           device: torch.device | str | None = "cpu", **options: Any) -> Substrate:  # fmt: skip
    """Build a baseline provider by name.

    Args:
        name: one of :data:`BASELINE_PROVIDERS`: ``"zeros"``, ``"mean"``, ``"blur"``, ``"noise"``
            (the existing :mod:`saliency_gym.substrates`; ``"mean"`` uses ``data``'s channel mean),
            ``"mdts"`` (nearest training image of the class; needs ``data``) or ``"ganmex"``
            (needs ``generator``, a shipped name or a checkpoint path).
        data: the reference data for ``"mean"`` and ``"mdts"``.
        generator: the GANMEX generator.
        device: where class-aware providers run.
        **options: passed to :class:`MDTSSubstrate` or :class:`GanmexSubstrate`.
    """
    check_choice("baseline provider", name, BASELINE_PROVIDERS)
    if name == "mdts":
        return MDTSSubstrate(data, device=device, **options)
    if name == "ganmex":
        if generator is None:
            raise ValueError("the 'ganmex' provider needs generator= (a shipped name or a checkpoint path)")
        return GanmexSubstrate(generator, device=device, **options)
    if options:
        raise TypeError(f"baseline provider {name!r} takes no options, got {sorted(options)}")
    channel_mean = data.channel_mean() if (name == "mean" and data is not None) else None
    return make_substrate(name, channel_mean=channel_mean)
