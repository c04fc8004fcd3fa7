"""``saliency-gym explain --engine ray``: a folder of images through explainers on Ray Data.

The images' indices form a Ray Dataset that is mapped with :meth:`ray.data.Dataset.map_batches`
through :class:`ExplainActor`, a stateful class: each actor loads the model once (on its GPU when
Ray gave it one: ``num_gpus`` is requested whenever the cluster has GPUs), builds every explainer
once (with the same options as the local command, :func:`saliency_gym.specs.explainer_kwargs`),
then for each batch reads its images (with the same data source as the local run, so the same
resizing), explains them and renders the overlays. The driver streams the results back with a
progress bar and writes them with the local run's writer
(:class:`saliency_gym.explain_outputs.MapWriter`), so both engines leave the same layout::

    <out>/maps/<method>/<image>.npy        the (H, W) float32 map
    <out>/overlays/<method>/<image>.png    the map over the photo, at the photo's size, with a colour bar
    <out>/manifest.json                    settings; a row per image and method (class, queries, seconds)

(:mod:`saliency_gym.explain_outputs` describes the names and the manifest.) Every file is written
atomically and the map last, so an image whose maps all exist is finished: a stopped run started
again explains only the others.

Every image file is checked when the data source is built, on the driver before Ray starts
(:func:`saliency_gym.data.image_files.check_image_files`): a corrupt or unreadable file is refused
in one line naming it, before any map is written.

Where things run: the driver lists the images and writes the outputs (so workers need no shared
output folder); actors need the model and the image folder at the same paths (a shared file system
on a real cluster, or one machine).

Maps equal the local explainer's on the same images (:meth:`Explainer.explain` on a batch): a
map depends only on its image, target and the explainer's seed, except for the ``random`` map,
whose draws follow the batches.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saliency_gym.distributed.cluster import ensure_ray, require_ray
from saliency_gym.explain_outputs import (
    MapWriter,
    explain_settings,
    explained_classes,
    image_names,
    overlay_png,
    photo_at_own_size,
)
from saliency_gym.specs import ModelDataSpec, explainer_kwargs, unique_methods

__all__ = ["ExplainActor", "ExplainReport", "ModelSpec", "image_names", "overlay_png", "run_ray_explain"]

#: The model and data an actor rebuilds (kept under its old name: ``ModelSpec.of("shapes", folder)``).
ModelSpec = ModelDataSpec


class ExplainActor:
    """The stateful ``map_batches`` class: model and explainers built once per actor.

    A batch is ``{"index": int64 (B,)}``; the result adds ``target`` and, per method, ``map_<method>``
    ``(B, H, W)`` float32, ``queries_<method>`` and ``seconds_<method>`` (per image, the batch's
    mean) and (with overlays) ``png_<method>`` PNG bytes."""

    def __init__(self, spec: ModelDataSpec, methods: Sequence[str], options: dict[str, dict[str, Any]],
                 device: str | None, overlays: bool) -> None:  # fmt: skip
        import ray

        from saliency_gym.explainers import make_explainer

        if device is None and ray.get_gpu_ids():
            device = "cuda"  # Ray sets CUDA_VISIBLE_DEVICES to this actor's GPU
        self.classifier, self.source = spec.build(device)
        self.explainers = {m: make_explainer(m, self.classifier, **options[m]) for m in methods}
        self.overlays = overlays

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        indices = np.asarray(batch["index"], dtype=np.int64)
        data = self.source.get_batch(indices)
        images = data.images
        targets = explained_classes(self.classifier, self.source, data.labels, images)
        result: dict[str, np.ndarray] = {"index": indices, "target": targets}
        photos = [photo_at_own_size(self.source, int(i), x) for i, x in zip(indices, images, strict=True)] if self.overlays else []
        for method, explainer in self.explainers.items():
            explanation = explainer.explain(images, targets)
            maps = explanation.maps
            result[f"map_{method}"] = maps
            result[f"queries_{method}"] = np.full(len(indices), explanation.queries_per_image)
            result[f"seconds_{method}"] = np.full(len(indices), explanation.seconds_per_image)
            if self.overlays:
                result[f"png_{method}"] = np.array([overlay_png(x, m) for x, m in zip(photos, maps, strict=True)], dtype=object)
        return result


@dataclass
class ExplainReport:
    """What a run did: images explained now and found finished, wall seconds, and the folder."""

    out: Path
    methods: list[str]
    written: int
    skipped: int
    seconds: float
    actors: int
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """``(seconds since the start, images)`` of every batch written, to tell the steady rate
    from the start-up (Ray, actors loading the model)."""

    @property
    def images_per_second(self) -> float:
        """Images explained now per wall second (all methods)."""
        return self.written / self.seconds if self.seconds > 0 else float("nan")


def run_ray_explain(
    spec: ModelDataSpec,
    methods: Sequence[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    rise_masks: int | None = None,
    agent: str | None = None,
    device: str | None = None,
    images: int | None = None,
    actors: int | None = None,
    batch_size: int = 8,
    overlays: bool = True,
    address: str | None = None,
    num_cpus: int | None = None,
    progress: bool = True,
) -> ExplainReport:
    """Explain the images of ``spec``'s data with every method in ``methods`` on Ray Data.

    Args:
        spec: the model and the data (a folder of images, or a dataset name).
        methods: explainer names from the registry (:func:`saliency_gym.explainers.available_explainers`).
        out: the output folder (``maps/``, ``overlays/``, ``manifest.json``: the layout of
            :mod:`saliency_gym.explain_outputs`, the same as the local run's).
        seed, rise_masks, agent: the explainers' options, as in ``saliency-gym explain``.
        device: torch device of the actors; ``None``: an actor's GPU when Ray gave it one, else CPU.
        images: explain only the first ``images`` images (default: all).
        actors: number of actors (default: one per GPU when the cluster has GPUs, else one per CPU).
        batch_size: images per batch an actor explains at once.
        overlays: also write overlay PNGs.
        address, num_cpus: where Ray runs (:func:`saliency_gym.distributed.cluster.ensure_ray`).
        progress: show a bar over images on standard error.
    """
    require_ray("explain --engine ray")
    from saliency_gym.runs import check_output_dir

    methods = unique_methods(methods)  # fail before starting anything
    for name, value in (("batch_size", batch_size), ("images", images), ("actors", actors)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    options = {m: explainer_kwargs(m, seed=seed, rise_masks=rise_masks, agent=agent) for m in methods}
    out = Path(out)
    check_output_dir(out)
    started = time.perf_counter()
    classifier, source = spec.build(device)  # validates the model and data here, before Ray starts
    names = image_names(source)[: images if images is not None else None]
    writer = MapWriter(out, methods, names, list(classifier.class_names or source.class_names),
                       explain_settings(classifier.name, spec, options, engine="ray"))  # fmt: skip
    todo = writer.todo()
    ensure_ray(address, num_cpus)
    import ray
    from tqdm.auto import tqdm

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    use_gpu = gpus > 0 and (device is None or device.startswith("cuda"))
    n_actors = actors or (int(gpus) if use_gpu and gpus >= 1 else max(1, int(resources.get("CPU", 1))))
    n_actors = max(1, min(n_actors, -(-len(todo) // batch_size))) if todo else 0
    arrivals: list[tuple[float, int]] = []
    try:
        if todo:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = False  # one bar, ours, over images written
            context.enable_operator_progress_bars = False
            dataset = ray.data.from_items([{"index": i} for i in todo], override_num_blocks=max(1, -(-len(todo) // batch_size)))
            mapped = dataset.map_batches(
                ExplainActor, fn_constructor_args=(spec, methods, options, device, overlays), batch_size=batch_size,
                batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=n_actors), num_cpus=1, num_gpus=min(1.0, gpus / n_actors) if use_gpu else 0,
            )  # fmt: skip
            bar = tqdm(total=len(names), initial=len(names) - len(todo), desc="explain", unit="image",
                       disable=not progress, dynamic_ncols=True)  # fmt: skip
            try:
                for batch in mapped.iter_batches(batch_size=None, batch_format="numpy"):
                    for row, index in enumerate(batch["index"]):
                        for method in methods:
                            writer.write(
                                int(index), int(batch["target"][row]), method, batch[f"map_{method}"][row],
                                queries=float(batch[f"queries_{method}"][row]), seconds=float(batch[f"seconds_{method}"][row]),
                                overlay=bytes(batch[f"png_{method}"][row]) if overlays else None,
                            )  # fmt: skip
                        bar.update(1)
                    arrivals.append((time.perf_counter() - started, len(batch["index"])))
            finally:
                bar.close()
    finally:
        writer.write_manifest()  # also when stopped: the rows of every finished image
    seconds = time.perf_counter() - started
    return ExplainReport(out, methods, len(todo), len(names) - len(todo), seconds, n_actors, arrivals)

