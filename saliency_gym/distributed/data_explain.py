"""``saliency-gym explain --engine ray``: a folder of images through explainers on Ray Data.

The images' indices form a Ray Dataset that is mapped with :meth:`ray.data.Dataset.map_batches`
through :class:`ExplainActor`, a stateful class: each actor loads the model once (on its GPU when
Ray gave it one: ``num_gpus`` is requested whenever the cluster has GPUs), builds every explainer
once (with the same options as the local command, :func:`saliency_gym.cli.explain.explainer_kwargs`),
then for each batch reads its images (with the same data source as the local run, so the same
resizing), explains them and renders the overlays. The driver streams the results back with a
progress bar and writes, per image and method::

    <out>/maps/<method>/<image>.npy        the (H, W) float32 map
    <out>/overlays/<method>/<image>.png    the map over the image (blue low, red high)

``<image>`` is the file's path inside the folder, extension kept (``cat.png``; ``square/001.jpg``
with class sub-folders), so ``cat.png`` and ``cat.jpg`` never share an output; or a 6-digit index
for a named dataset. Every file is written atomically and the map last, so an image whose maps
all exist is finished: a stopped run started again explains only the others.
``<out>/manifest.json`` lists the images, their explained classes and the settings.

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

import argparse
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from saliency_gym.distributed.cluster import ensure_ray, require_ray

if TYPE_CHECKING:
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.data import DataSource

__all__ = ["ExplainActor", "ExplainReport", "ModelSpec", "image_names", "overlay_png", "run_ray_explain"]

#: Arguments of :func:`saliency_gym.cli.common.add_model_arguments` an actor needs to rebuild the
#: model and the data source.
MODEL_ARGUMENTS = (
    "model", "weights", "random_weights", "model_kwargs", "input_shape", "class_names", "normalize", "data", "class_map",
)  # fmt: skip


@dataclass(frozen=True)
class ModelSpec:
    """The model and data of a command line (``--model ... --data FOLDER``), as plain values an
    actor can rebuild them from with :func:`saliency_gym.cli.common.build_model_and_data`."""

    values: tuple[tuple[str, Any], ...]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ModelSpec:
        """The spec of parsed model arguments."""
        return cls(tuple((key, _freeze(getattr(args, key, None))) for key in MODEL_ARGUMENTS))

    @classmethod
    def of(cls, model: str, data: str | os.PathLike[str], **options: Any) -> ModelSpec:
        """A spec from a model spec string and a data folder or name (``options``: the other
        :data:`MODEL_ARGUMENTS`, e.g. ``normalize=["imagenet"]``)."""
        unknown = set(options) - set(MODEL_ARGUMENTS)
        if unknown:
            raise TypeError(f"unknown model arguments {sorted(unknown)}; choose from {MODEL_ARGUMENTS}")
        values = {key: None for key in MODEL_ARGUMENTS} | options | {"model": model, "data": os.fspath(data)}
        return cls(tuple((key, _freeze(values[key])) for key in MODEL_ARGUMENTS))

    def build(self, device: str | None) -> tuple[FrozenClassifier, DataSource]:
        """The classifier and the data source, exactly as the local ``explain`` command builds them."""
        from saliency_gym.cli.common import build_model_and_data

        values = {key: list(v) if isinstance(v, tuple) else v for key, v in self.values}
        return build_model_and_data(argparse.Namespace(**values, device=device))


def _freeze(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def image_names(source: DataSource) -> list[str]:
    """Output names of a source's images: paths inside an image folder, extension kept (``cat.png``,
    ``square/cat.jpg`` in a folder of class sub-folders), else 6-digit indices.

    Keeping the extension keeps ``cat.png`` and ``cat.jpg`` apart; names that still differ only
    in case (one output file on a case-insensitive file system) are refused with a ``ValueError``.
    """
    folder = getattr(source, "folder", source)  # a folder re-labelled to the classifier's classes
    files = getattr(folder, "files", None)
    root = getattr(folder, "root", None)
    if files is None or root is None:
        return [f"{i:06d}" for i in range(len(source))]
    names = [Path(f[0] if isinstance(f, tuple) else f).relative_to(root).as_posix() for f in files]
    clashes: dict[str, list[str]] = {}
    for name in names:
        clashes.setdefault(name.casefold(), []).append(name)
    repeated = [group for group in clashes.values() if len(group) > 1]
    if repeated:
        shown = "; ".join(" and ".join(group) for group in repeated[:5])
        raise ValueError(
            f"image files in {root} differ only in case ({shown}), so their outputs would overwrite "
            "each other on a case-insensitive file system; rename them"
        )
    return names


def overlay_png(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.5) -> bytes:
    """PNG bytes of ``saliency`` (``(H, W)``, scaled to its own range) as a heat map blended over
    ``image`` (``(C, H, W)`` in [0, 1]), with the heat-map colours of the environments' frames."""
    from PIL import Image

    from saliency_gym.envs.render import _heatmap, _to_rgb

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    rgb = _to_rgb(np.asarray(image, dtype=np.float32)).astype(np.float32)
    heat = _heatmap(np.asarray(saliency, dtype=np.float32)).astype(np.float32)
    blended = np.clip((1.0 - alpha) * rgb + alpha * heat, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(blended).save(buffer, format="PNG")
    return buffer.getvalue()


class ExplainActor:
    """The stateful ``map_batches`` class: model and explainers built once per actor.

    A batch is ``{"index": int64 (B,)}``; the result adds ``target`` and, per method, ``map_<method>``
    ``(B, H, W)`` float32 and (with overlays) ``png_<method>`` PNG bytes."""

    def __init__(self, spec: ModelSpec, methods: Sequence[str], options: dict[str, dict[str, Any]],
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
        for method, explainer in self.explainers.items():
            maps = explainer.explain(images, targets).maps
            result[f"map_{method}"] = maps
            if self.overlays:
                result[f"png_{method}"] = np.array([overlay_png(x, m) for x, m in zip(images, maps, strict=True)], dtype=object)
        return result


def explained_classes(classifier: FrozenClassifier, source: DataSource, labels: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The ``labels`` of a labelled source, else the classifier's predictions on ``images`` (the
    classes the local ``explain`` command explains)."""
    if source.has_label:
        return np.asarray(labels, dtype=np.int64)
    return classifier.predict(images, count=False).cpu().numpy().astype(np.int64)


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


def _save_npy(path: Path, array: np.ndarray) -> None:
    from saliency_gym.checkpoint import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array)

    atomic_write(path, write)


def _save_bytes(path: Path, data: bytes) -> None:
    from saliency_gym.checkpoint import atomic_write

    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def run_ray_explain(
    spec: ModelSpec,
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
        out: the output folder (``maps/``, ``overlays/``, ``manifest.json``).
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
    from saliency_gym.cli.explain import explainer_kwargs
    from saliency_gym.explainers import explainer_class
    from saliency_gym.runs import check_output_dir

    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError("pass at least one method")
    for method in methods:  # fail before starting anything
        explainer_class(method)
        if "/" in method or method.startswith("."):
            raise ValueError(f"method name {method!r} cannot name an output folder")
    for name, value in (("batch_size", batch_size), ("images", images), ("actors", actors)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    options = {m: explainer_kwargs(m, seed=seed, rise_masks=rise_masks, agent=agent) for m in methods}
    out = Path(out)
    check_output_dir(out)
    started = time.perf_counter()
    classifier, source = spec.build(device)  # validates the model and data here, before Ray starts
    names = image_names(source)[: images if images is not None else None]
    done = [all((out / "maps" / m / f"{n}.npy").is_file() for m in methods) for n in names]
    todo = [i for i, finished in enumerate(done) if not finished]
    ensure_ray(address, num_cpus)
    import ray
    from tqdm.auto import tqdm

    resources = ray.cluster_resources()
    gpus = float(resources.get("GPU", 0))
    use_gpu = gpus > 0 and (device is None or device.startswith("cuda"))
    n_actors = actors or (int(gpus) if use_gpu and gpus >= 1 else max(1, int(resources.get("CPU", 1))))
    n_actors = max(1, min(n_actors, -(-len(todo) // batch_size))) if todo else 0
    targets: dict[int, int] = {}
    arrivals: list[tuple[float, int]] = []
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
                    name = names[int(index)]
                    targets[int(index)] = int(batch["target"][row])
                    for method in methods:
                        if overlays:
                            _save_bytes(out / "overlays" / method / f"{name}.png", bytes(batch[f"png_{method}"][row]))
                        _save_npy(out / "maps" / method / f"{name}.npy", np.asarray(batch[f"map_{method}"][row], np.float32))
                    bar.update(1)
                arrivals.append((time.perf_counter() - started, len(batch["index"])))
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    manifest_path = out / "manifest.json"
    previous = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    known = {entry["image"]: entry["target"] for entry in previous.get("images", [])}
    known.update({names[i]: t for i, t in targets.items()})
    manifest = {
        "model": classifier.name, "data": dict(spec.values).get("data"), "class_map": dict(spec.values).get("class_map"),
        "methods": methods, "options": options,
        "class_names": list(classifier.class_names or source.class_names),
        "images": [{"image": n, "target": known.get(n)} for n in names],
    }  # fmt: skip
    _save_bytes(manifest_path, json.dumps(manifest, indent=1, default=str).encode())
    return ExplainReport(out, methods, len(todo), len(names) - len(todo), seconds, n_actors, arrivals)
