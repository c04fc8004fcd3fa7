"""Bring your own model: one loader for every way a user can hand saliency-gym a classifier.

:func:`load_model` turns a *model spec* into a :class:`~saliency_gym.classifier.FrozenClassifier`
(callers pass [0, 1] images; the normalisation the model expects is applied inside the wrapper).
A spec is one of

* a shipped name (``"shapes"``, ``"efficientnet_lite0"``, ...) or a saliency-gym classifier
  checkpoint: delegated to :func:`saliency_gym.models.zoo.load_classifier` (read weights-only);
* a ``torch.export`` archive (``.pt2``, :func:`torch.export.save`), inspected by
  :func:`~saliency_gym.models.archive_checks.check_export_archive` *before* torch reads it, then read with :func:`torch.export.load`
  and unflattened (:func:`torch.export.unflatten`) so its layers keep their names and accept the
  forward hooks Grad-CAM needs;
* a TorchScript file (``torch.jit.save``), read with :func:`torch.jit.load` (see "Trust" below);
* ``"module:factory"`` (``"torchvision.models:resnet18"``, ``"mypkg.models:build"``): the module is
  imported (the current working directory is searched too, after the installed packages, as
  ``uvicorn``/``gunicorn`` do for their app specs), the factory called (with ``model_kwargs``), and
  ``weights`` (a state dict, or a dict with a ``"state_dict"`` entry) loaded with
  ``torch.load(weights_only=True)``. A factory without ``weights`` is refused unless
  ``random_weights=True`` says an untrained network is meant.

Files are identified by their contents, not their names: a plain pickle or a ``torch.save`` file
that is neither a saliency-gym checkpoint nor a model archive is refused without being unpickled.
Every bad argument raises ``ValueError``, ``TypeError`` or ``FileNotFoundError`` with a message
that says what to pass instead (the CLI prints it as one line).

Trust (what opening a file from a stranger can do):

* ``.pt2``: :func:`torch.export.load` unpickles with ``weights_only=False`` whatever the archive
  marks as pickled (weights, constants, custom objects, legacy-format members, sample inputs a
  weights-only load refuses), evaluates its symbolic-shape strings with :func:`sympy.sympify`
  (``eval``), executes its guard code, and loads AOTInductor shared libraries.
  :func:`~saliency_gym.models.archive_checks.check_export_archive` refuses every such archive
  (:class:`~saliency_gym.models.archive_checks.UnsafeModelFileError`, naming
  the file and the entry) and admits only plain tensors, standard operators (``aten``,
  ``prims``, a few control-flow operators, arithmetic on sizes) and expressions made of sizes,
  numbers and arithmetic; the bytes it inspected are the bytes torch then reads.
* TorchScript: :func:`torch.jit.load` never unpickles Python objects (its C++ unpickler builds only
  tensors and TorchScript types), but the file's TorchScript code runs at load (``__setstate__``)
  and on every call, with every registered torch operator, including ``aten::save`` (writes any
  file) and ``aten::from_file`` (reads any file). Code that names those two is refused
  (:func:`~saliency_gym.models.archive_checks.check_torchscript_archive`); the rest of the operator set and torch's C++ parser remain,
  so a TorchScript file is only as safe as its author: open TorchScript files you trust.
* ``--weights`` and saliency-gym checkpoints: ``torch.load(weights_only=True)``: tensors and plain
  values only.
* ``module:factory`` runs the named Python code by design: it is code you chose to import.

Limitation: TorchScript modules refuse forward hooks (``register_forward_hook is not supported on
ScriptModules``), so Grad-CAM cannot explain them; save the model with ``torch.export`` (or give
``module:factory`` and weights) to use layer methods. Every other method works on all formats.

The inspection of untrusted archives lives in :mod:`saliency_gym.models.archive_checks`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier
from saliency_gym.models.archive_checks import (
    UnsafeModelFileError,
    check_export_archive,
    check_torchscript_archive,
    root_cause,
)
from saliency_gym.models.imagenet import (
    IMAGENET_MEAN,
    IMAGENET_NUM_CLASSES,
    IMAGENET_STD,
    imagenet_class_names,
)

#: Named normalisations accepted by :func:`parse_normalize` (``m11``: [0, 1] mapped to [-1, 1]).
NORMALIZATIONS = ("imagenet", "none", "m11")
_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

Normalize = tuple[Sequence[float], Sequence[float]]


def is_factory_spec(spec: object) -> bool:
    """Whether ``spec`` reads as ``"package.module:callable"`` (and is not an existing file)."""
    return isinstance(spec, str) and bool(_FACTORY.match(spec)) and not Path(spec).exists()


def model_file_kind(path: str | os.PathLike[str]) -> str:
    """What a model file holds, from its contents: ``"torchscript"``, ``"export"``, ``"torch-save"``
    (a ``torch.save`` archive: a checkpoint or a state dict) or ``"other"`` (a legacy pickle, a
    text file, ...). Nothing is unpickled."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        return "other"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "other"
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if any("/code/" in n or n.endswith("constants.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "torch-save"
    return "other"


def parse_normalize(
    spec: str | Sequence[str] | Sequence[float] | Normalize | None, channels: int | None = None
) -> Normalize | None:
    """``(mean, std)`` per channel from a name or numbers.

    Accepts ``None``/``"none"`` (no normalisation), ``"imagenet"`` (torchvision's mean and std),
    ``"m11"`` (mean 0.5, std 0.5: [0, 1] becomes [-1, 1]), a ``(mean, std)`` pair of sequences, or a
    flat list of numbers: two (one mean and one std for every channel) or ``2 * C`` (``C`` means
    then ``C`` stds), as given on the command line (``--normalize 0.5 0.5 0.5 0.25 0.25 0.25``).
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = [spec]
    items: list[Any] = list(spec)
    if len(items) == 2 and all(isinstance(v, Sequence) and not isinstance(v, str) for v in items):
        mean, std = (tuple(float(x) for x in v) for v in items)
        return _check_normalize(mean, std, channels)
    if len(items) == 1 and isinstance(items[0], str) and items[0].strip().lower() in NORMALIZATIONS:
        name = items[0].strip().lower()
        if name == "none":
            return None
        c = 3 if channels is None else channels
        if name == "imagenet":
            if c != 3:
                raise ValueError(f"normalize='imagenet' needs 3 channels, the model takes {c}")
            return IMAGENET_MEAN, IMAGENET_STD
        return (0.5,) * c, (0.5,) * c
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(
            f"normalize must be one of {list(NORMALIZATIONS)} or numbers (one mean and one std, or C means "
            f"then C stds), got {items!r}"
        ) from None
    if len(numbers) == 2:
        c = 1 if channels is None else channels
        return _check_normalize((numbers[0],) * c, (numbers[1],) * c, channels)
    if len(numbers) % 2 or not numbers:
        raise ValueError(
            f"normalize needs 2 numbers or C means followed by C stds, got {len(numbers)} numbers"
        )
    half = len(numbers) // 2
    return _check_normalize(tuple(numbers[:half]), tuple(numbers[half:]), channels)


def _check_normalize(
    mean: tuple[float, ...], std: tuple[float, ...], channels: int | None
) -> Normalize:
    if len(mean) != len(std):
        raise ValueError(f"normalize: {len(mean)} means but {len(std)} stds")
    if channels is not None and len(mean) != channels:
        raise ValueError(
            f"normalize gives {len(mean)} values per statistic, the model takes {channels} channels"
        )
    if any(not s > 0 for s in std):
        raise ValueError(f"normalize: every std must be positive, got {std}")
    return mean, std


def read_class_names(spec: str | os.PathLike[str] | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class names from a sequence, a JSON file holding a list, or a text file (one per line)."""
    if spec is None:
        return None
    if not isinstance(spec, (str, os.PathLike)):
        names = tuple(str(n) for n in spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"class names file not found: {path}")
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json" or text.lstrip().startswith("["):
            try:
                loaded = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"class names file {path} is not valid JSON: {exc}") from None
            if not isinstance(loaded, list) or not all(isinstance(n, (str, int)) for n in loaded):
                raise ValueError(f"class names file {path} must hold a JSON list of names")
            names = tuple(str(n) for n in loaded)
        else:
            names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) < 2:
        raise ValueError(f"need at least two class names, got {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    return names


def parse_model_kwargs(spec: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """Factory keyword arguments from a mapping or a JSON object string (``'{"num_classes": 10}'``)."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return dict(spec)
    try:
        value = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"model kwargs must be a JSON object, e.g. '{{\"num_classes\": 10}}': {exc}"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"model kwargs must be a JSON object, got {type(value).__name__}")
    return value


def load_model(
    spec: str | os.PathLike[str] | nn.Module,
    *,
    weights: str | os.PathLike[str] | None = None,
    input_shape: Sequence[int] | None = None,
    fallback_input_shape: Sequence[int] | None = None,
    class_names: str | os.PathLike[str] | Sequence[str] | None = None,
    normalize: str | Sequence[Any] | None = None,
    model_kwargs: str | Mapping[str, Any] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 64,
    name: str | None = None,
    random_weights: bool = False,
) -> FrozenClassifier:
    """A :class:`FrozenClassifier` for ``spec`` (see the module docstring for the accepted specs).

    Args:
        spec: shipped name, saliency-gym checkpoint, TorchScript file, ``.pt2`` export archive,
            ``"module:factory"``, or an ``nn.Module`` already built.
        weights: state-dict file for a ``module:factory`` spec (or a module), read weights-only.
        input_shape: ``(C, H, W)`` the model takes; inferred from a ``torch.export`` archive or a
            module's ``input_shape`` attribute when not given, else ``fallback_input_shape`` (the
            image size of the data the caller will use), else a ``ValueError`` asks for it.
        class_names: a sequence, a JSON list file or a text file with one name per line. Default:
            the ImageNet names for a model with 1000 outputs, else ``"0"``..``"K-1"``.
        normalize: see :func:`parse_normalize`; default none (the model receives [0, 1] images).
        model_kwargs: keyword arguments of the factory (a mapping or a JSON object string).
        device: where to run (``None``: CUDA when available).
        batch_size: images per forward pass.
        name: the classifier's name in logs and file names (default: from the spec).
        random_weights: explain a ``module:factory`` model with the weights its factory drew, on
            purpose (a sanity check, a demo). Without it a factory needs ``weights``, since
            explaining an untrained network by mistake gives maps that look plausible and mean
            nothing.
    """
    if random_weights and not (isinstance(spec, str) and is_factory_spec(spec)):
        raise ValueError(
            f"random_weights applies to a 'module:factory' model only, not to {_spec_text(spec)!r}, "
            "which holds its own weights"
        )
    if random_weights and weights is not None:
        raise ValueError("pass weights or random_weights=True (--random-weights), not both")
    if isinstance(spec, nn.Module):
        model, kind, default_name, inferred = spec, "module", type(spec).__name__, None
        if weights is not None:
            load_state_dict_file(model, weights, default_name)
    else:
        if not isinstance(spec, (str, os.PathLike)):
            raise TypeError(
                f"model must be a name, a path, 'module:factory' or an nn.Module, got {type(spec).__name__}"
            )
        text = os.fspath(spec)
        if not text.strip():
            raise ValueError("model spec is empty")
        if is_factory_spec(text):
            model = build_from_factory(text, parse_model_kwargs(model_kwargs))
            if weights is not None:
                load_state_dict_file(model, weights, text)
            kind, default_name, inferred = "factory", text.rsplit(":", 1)[1].split(".")[-1], None
        else:
            if Path(text).is_dir() and not _is_shipped_name(text):
                raise ValueError(
                    f"{text} is a folder; pass a model file (a torch.export .pt2 archive, a TorchScript "
                    "file or a saliency-gym classifier checkpoint), a shipped name, or 'module:factory' "
                    "with --weights"
                )
            kind = model_file_kind(text) if Path(text).is_file() else "zoo"
            if kind in ("zoo", "torch-save"):
                _no_extras(
                    text,
                    weights=weights,
                    normalize=normalize,
                    class_names=class_names,
                    model_kwargs=model_kwargs,
                )
                return _load_zoo(text, input_shape, device, kind)
            for what, value in (("weights", weights), ("model kwargs", model_kwargs)):
                if value is not None:
                    raise ValueError(
                        f"{what} go with a 'module:factory' model; {text} already holds its weights"
                    )
            if kind == "torchscript":
                model, inferred = _load_torchscript(Path(text)), None
            elif kind == "export":
                model, inferred = _load_export(Path(text))
            else:
                raise ValueError(
                    f"{text} is not a TorchScript file, a torch.export archive (.pt2) or a saliency-gym "
                    "checkpoint (it was not loaded: unpickling an arbitrary file can run code); save the "
                    "model with torch.jit.save or torch.export.save, or give its architecture as "
                    "'module:factory' with --weights FILE holding a state dict"
                )
            default_name = Path(text).stem
    shape = _resolve_input_shape(input_shape, inferred, model, default_name, fallback_input_shape)
    if kind == "factory" and weights is None and not random_weights:
        raise ValueError(
            f"the model {_spec_text(spec)!r} would be explained with the random weights its factory "
            "drew; pass weights=FILE (--weights FILE, a state dict) or, to explain an untrained "
            "network on purpose, random_weights=True (--random-weights)"
        )
    norm = parse_normalize(normalize, shape[0])
    num_outputs = probe_outputs(model, shape, norm, default_name)
    names = read_class_names(class_names)
    if names is None and num_outputs == IMAGENET_NUM_CLASSES:
        names = imagenet_class_names()
    if names is not None and len(names) != num_outputs:
        raise ValueError(
            f"{len(names)} class names given, but the model {default_name!r} returns {num_outputs} scores"
        )
    if names is None and num_outputs < 2:
        raise ValueError(
            f"the model {default_name!r} returns {num_outputs} score per image; a classifier needs at least 2"
        )
    meta: dict[str, Any] = {"spec": _spec_text(spec), "kind": kind}
    if random_weights:
        meta["random_weights"] = True
    return FrozenClassifier(
        model, shape, class_names=names, num_classes=None if names else num_outputs, device=device,
        batch_size=batch_size, normalize=norm, name=name or default_name, meta=meta,
    )  # fmt: skip


def _spec_text(spec: object) -> str:
    """A model spec as text for messages and metadata (a module: its class name)."""
    if isinstance(spec, nn.Module):
        return type(spec).__name__
    return os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else repr(spec)


def _is_shipped_name(text: str) -> bool:
    """Whether ``text`` names a shipped classifier (which wins over a folder of the same name)."""
    from saliency_gym.models.zoo import shipped_classifiers

    return text in shipped_classifiers(include_imagenet=True)


def build_from_factory(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Import ``module`` of ``"module:factory"``, look up ``factory`` and call it with ``kwargs``.

    The current working directory is on the import path while the module is imported and the
    factory runs (a console script, unlike ``python -m``, does not put it there), searched after the
    installed packages so a file in that folder never shadows an installed package; it is taken
    off again afterwards unless it was there before. Whatever the import or the factory raises,
    ``SystemExit`` included, becomes one ``ValueError`` naming ``spec`` and the original error
    (only ``KeyboardInterrupt`` passes through, so Ctrl-C still stops the program).
    """
    module_name, _, attr = spec.partition(":")
    arguments = dict(kwargs or {})
    with _working_directory_importable() as searched:
        try:
            module = importlib.import_module(module_name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - user code: any failure is a bad spec
            hint = ""
            if isinstance(exc, ModuleNotFoundError) and exc.name == module_name.split(".")[0]:
                where = f"the folder {searched} and " if searched else ""
                hint = f" (looked in {where}the installed packages; install it or run from the folder that holds it)"
            raise ValueError(
                f"cannot import {module_name!r} for the model {spec!r}: {_describe(exc)}{hint}"
            ) from None
        factory: Any = module
        for part in attr.split("."):
            try:
                factory = getattr(factory, part)
            except AttributeError:
                raise ValueError(
                    f"{module_name!r} has no attribute {attr!r} (model {spec!r})"
                ) from None
        if not callable(factory):
            raise TypeError(
                f"{spec!r} is a {type(factory).__name__}, not a callable that builds a model"
            )
        try:
            model = factory(**arguments)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - user code: SystemExit(0) must not end the run
            called = f" with {arguments}" if arguments else ""
            raise ValueError(
                f"the model factory {spec!r} failed{called}: {_describe(exc)}"
            ) from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec!r} returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def _describe(exc: BaseException) -> str:
    """``"Type: message"`` on one line (at most 300 characters of message)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (the factory tried to end the program)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


@contextlib.contextmanager
def _working_directory_importable() -> Iterator[str | None]:
    """Have the current working directory on ``sys.path`` for the duration (appended, and removed
    afterwards, unless it was there already); yields that folder (``None`` if it cannot be read)."""
    try:
        cwd = os.getcwd()
    except OSError:  # the folder was removed under us
        yield None
        return
    present = any(
        os.path.abspath(entry or os.curdir) == cwd for entry in sys.path if isinstance(entry, str)
    )
    if present:
        yield cwd
        return
    sys.path.append(cwd)
    try:
        yield cwd
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(cwd)


def load_state_dict_file(model: nn.Module, weights: str | os.PathLike[str], what: str) -> None:
    """Load a state dict (or a dict with ``"state_dict"``) from ``weights`` into ``model``,
    weights-only; ``what`` names the model in errors (:class:`~saliency_gym.checkpoint.CheckpointError`
    for a file that is unreadable, holds no state dict or does not fit the model)."""
    from saliency_gym.checkpoint import CheckpointError, safe_load

    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    payload = safe_load(path)
    state = payload.get("state_dict", payload)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"weights {path} do not hold a state dict (names mapped to tensors)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise CheckpointError(f"weights {path} do not fit {what}: {detail}") from None


def _no_extras(spec: str, **given: Any) -> None:
    extra = [k.replace("_", " ") for k, v in given.items() if v is not None]
    if extra:
        raise ValueError(
            f"{spec!r} is a saliency-gym classifier, which carries its own {', '.join(extra)}; "
            "drop them (they are for TorchScript, torch.export and module:factory models)"
        )


def _load_zoo(
    spec: str, input_shape: Sequence[int] | None, device: Any, kind: str
) -> FrozenClassifier:
    from saliency_gym.checkpoint import CheckpointError
    from saliency_gym.models.zoo import load_classifier

    try:
        classifier = load_classifier(spec, device=device)
    except CheckpointError as exc:
        if kind != "torch-save" or "format" not in str(exc):
            raise
        raise CheckpointError(
            f"{spec} is a torch.save file but not a saliency-gym classifier checkpoint ({exc}); if it holds a "
            "state dict, give the architecture as 'module:factory' and this file as --weights"
        ) from None
    if input_shape is not None and tuple(int(s) for s in input_shape) != tuple(
        classifier.input_shape
    ):
        raise ValueError(
            f"{spec!r} takes inputs of shape {tuple(classifier.input_shape)}, not {tuple(input_shape)}"
        )
    return classifier


def _load_torchscript(path: Path) -> nn.Module:
    """A TorchScript module, read from the bytes :func:`check_torchscript_archive` inspected."""
    data = _read_model_bytes(path)
    check_torchscript_archive(data, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", DeprecationWarning
            )  # torch.jit.load: still the way to read these
            model = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others for bad archives
        raise ValueError(
            f"cannot read TorchScript file {path}: {' '.join(str(exc).split())[:300]}"
        ) from None
    return model


def _load_export(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The unflattened module of a ``torch.export`` archive and the input shape it was exported for.

    The archive is read into memory once, inspected (:func:`check_export_archive`) and handed to
    torch from that same buffer, so what torch reads is what was inspected. torch's own log records
    and its deprecation ``FutureWarning`` are kept off the console meanwhile: a failure becomes one
    ``ValueError`` that quotes torch's first error.
    """
    data = _read_model_bytes(path)
    check_export_archive(data, path)
    with _quiet_torch_export() as logged:
        try:
            program = torch.export.load(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - torch raises many types for malformed archives
            cause = logged[0] if logged else exc
            raise ValueError(
                f"cannot read torch.export archive {path}: {root_cause(cause)}"
            ) from None
        user_inputs = [
            spec.arg.name
            for spec in program.graph_signature.input_specs
            if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT
        ]
        if len(user_inputs) != 1:
            raise ValueError(
                f"{path} was exported with {len(user_inputs)} inputs; an image classifier takes one (N, C, H, W) tensor"
            )
        shape: tuple[int, ...] | None = None
        for node in program.graph.nodes:
            if node.op == "placeholder" and node.name == user_inputs[0]:
                val = node.meta.get("val")
                if val is not None and val.ndim == 4:
                    dims = list(val.shape)
                    if isinstance(dims[0], int):
                        raise ValueError(
                            f"{path} was exported for a fixed batch of {dims[0]} image(s); export it with a dynamic "
                            "batch dimension: torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},))"
                        )
                    if all(isinstance(d, int) for d in dims[1:]):
                        shape = tuple(int(d) for d in dims[1:])
        module: nn.Module
        try:
            module = torch.export.unflatten(program)
        except Exception:  # noqa: BLE001 - fall back to the flat module: no named layers, still a model
            module = program.module()
    return module, shape


def _read_model_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read model file {path}: {exc.strerror or exc}") from None



#: Loggers of the torch.export loading path (their records are captured, not printed).
_TORCH_EXPORT_LOGGERS = (
    "torch.export",
    "torch.export.pt2_archive._package",
    "torch._export.serde.serialize",
)


class _CaptureErrors(logging.Filter):
    """A logger filter that drops every record, keeping the exceptions logged with one."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])
        return False


@contextlib.contextmanager
def _quiet_torch_export() -> Iterator[list[BaseException]]:
    """Silence torch.export's loggers (a malformed archive otherwise prints torch's traceback
    before our error) and its ``isinstance(treespec, LeafSpec)`` ``FutureWarning`` (torch's own
    deprecation, not actionable by the user) for the duration; loggers and warning filters are
    restored afterwards. Yields the exceptions torch logged, first first."""
    capture = _CaptureErrors()
    loggers = [logging.getLogger(name) for name in _TORCH_EXPORT_LOGGERS]
    for logger in loggers:
        logger.addFilter(capture)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*treespec.*LeafSpec.*", category=FutureWarning
            )
            yield capture.errors
    finally:
        for logger in loggers:
            logger.removeFilter(capture)


def _resolve_input_shape(
    given: Sequence[int] | None,
    inferred: tuple[int, ...] | None,
    model: nn.Module,
    what: str,
    fallback: Sequence[int] | None = None,
) -> tuple[int, int, int]:
    if given is not None:
        shape = tuple(int(s) for s in given)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"input shape must be three positive sizes C H W, got {tuple(given)}")
        if inferred is not None and shape != inferred:
            raise ValueError(f"{what} was exported for inputs of shape {inferred}, not {shape}")
        return shape[0], shape[1], shape[2]
    if inferred is not None:
        return _resolve_input_shape(inferred, None, model, what)
    attr = getattr(model, "input_shape", None)
    if isinstance(attr, (tuple, list)) and len(attr) == 3 and all(isinstance(s, int) for s in attr):
        return _resolve_input_shape(attr, None, model, what)
    if fallback is not None:
        return _resolve_input_shape(fallback, None, model, what)
    raise ValueError(
        f"cannot tell the input shape of the model {what!r}; pass it (--input-shape C H W, e.g. 3 224 224)"
    )


def probe_outputs(
    model: Callable[[torch.Tensor], Any],
    shape: Sequence[int],
    normalize: Normalize | None,
    what: str,
) -> int:
    """Run two grey images through ``model`` and return its number of outputs ``K``.

    Raises ``ValueError`` when the model rejects inputs of ``shape``, does not return ``(2, K)``,
    or returns scores of a non-float dtype (integer "logits" cannot be differentiated or softmaxed
    meaningfully; checked here, once, so no method's row is printed before the error).
    """
    x = torch.full((2, *shape), 0.5)
    if normalize is not None:
        mean, std = (torch.as_tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in normalize)
        x = (x - mean) / std
    was_training = getattr(model, "training", False)
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - wrong shape or broken model (SystemExit included)
        detail = " ".join(str(exc).split())[:300]
        raise ValueError(
            f"the model {what!r} fails on inputs of shape {tuple(shape)} ({type(exc).__name__}: {detail}); check --input-shape"
        ) from None
    finally:
        if isinstance(model, nn.Module) and was_training:
            model.train()
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"the model {what!r} must return (N, K) class scores for N images; for 2 images it returned {got}"
        )
    if not out.is_floating_point():
        raise ValueError(
            f"the model {what!r} returns {out.dtype} scores; a classifier must return float scores "
            "(logits or probabilities), e.g. end its forward with .float() instead of rounding or argmax"
        )
    return int(out.shape[1])


__all__ = [
    "NORMALIZATIONS",
    "Normalize",
    "UnsafeModelFileError",
    "build_from_factory",
    "is_factory_spec",
    "load_model",
    "load_state_dict_file",
    "model_file_kind",
    "parse_model_kwargs",
    "parse_normalize",
    "probe_outputs",
    "read_class_names",
]
