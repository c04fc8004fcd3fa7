"""Bring your own model: one loader for every way a user can hand saliency-gym a classifier.

:func:`load_model` turns a *model spec* into a :class:`~saliency_gym.classifier.FrozenClassifier`
(callers pass [0, 1] images; the normalisation the model expects is applied inside the wrapper).
A spec is one of

* a shipped name (``"shapes"``, ``"efficientnet_lite0"``, ...) or a saliency-gym classifier
  checkpoint: delegated to :func:`saliency_gym.zoo.load_classifier`;
* a TorchScript file (``torch.jit.save``), read with :func:`torch.jit.load`, which restores code
  and tensors but never unpickles arbitrary Python objects;
* a ``torch.export`` archive (``.pt2``, :func:`torch.export.save`), read with
  :func:`torch.export.load` and unflattened (:func:`torch.export.unflatten`) so its layers keep
  their names and accept the forward hooks Grad-CAM needs;
* ``"module:factory"`` (``"torchvision.models:resnet18"``, ``"mypkg.models:build"``): the module is
  imported, the factory called (with ``model_kwargs``), and ``weights`` (a state dict, or a dict
  with a ``"state_dict"`` entry) loaded with ``torch.load(weights_only=True)``.

Files are identified by their contents, not their names: a plain pickle or a ``torch.save`` file
that is neither a saliency-gym checkpoint nor a model archive is refused without being unpickled.
Every bad argument raises ``ValueError``, ``TypeError`` or ``FileNotFoundError`` with a message
that says what to pass instead (the CLI prints it as one line).

Limitation: TorchScript modules refuse forward hooks (``register_forward_hook is not supported on
ScriptModules``), so Grad-CAM cannot explain them; save the model with ``torch.export`` (or give
``module:factory`` and weights) to use layer methods. Every other method works on all formats.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from saliency_gym.classifier import FrozenClassifier

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Named normalisations accepted by :func:`parse_normalize` (``m11``: [0, 1] mapped to [-1, 1]).
NORMALIZATIONS = ("imagenet", "none", "m11")
IMAGENET_CLASSES_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.txt"
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


def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names shipped in ``saliency_gym/data/imagenet_classes.txt``."""
    names = read_class_names(IMAGENET_CLASSES_FILE)
    assert names is not None
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
    """
    if isinstance(spec, nn.Module):
        model, kind, default_name, inferred = spec, "module", type(spec).__name__, None
        if weights is not None:
            _load_weights(model, weights, default_name)
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
                _load_weights(model, weights, text)
            kind, default_name, inferred = "factory", text.rsplit(":", 1)[1].split(".")[-1], None
        else:
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
    norm = parse_normalize(normalize, shape[0])
    num_outputs = probe_outputs(model, shape, norm, default_name)
    names = read_class_names(class_names)
    if names is None and num_outputs == 1000:
        names = imagenet_class_names()
    if names is not None and len(names) != num_outputs:
        raise ValueError(
            f"{len(names)} class names given, but the model {default_name!r} returns {num_outputs} scores"
        )
    if names is None and num_outputs < 2:
        raise ValueError(
            f"the model {default_name!r} returns {num_outputs} score per image; a classifier needs at least 2"
        )
    return FrozenClassifier(
        model, shape, class_names=names, num_classes=None if names else num_outputs, device=device,
        batch_size=batch_size, normalize=norm, name=name or default_name,
        meta={"spec": os.fspath(spec) if not isinstance(spec, nn.Module) else default_name, "kind": kind},
    )  # fmt: skip


def build_from_factory(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Import ``module`` of ``"module:factory"``, look up ``factory`` and call it with ``kwargs``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except (
        ImportError,
        RuntimeError,
        OSError,
    ) as exc:  # RuntimeError: e.g. a torchvision built for another torch
        raise ValueError(
            f"cannot import {module_name!r} for the model {spec!r}: {type(exc).__name__}: {exc}"
        ) from None
    factory: Any = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r} (model {spec!r})")
        factory = getattr(factory, part)
    if not callable(factory):
        raise TypeError(
            f"{spec!r} is a {type(factory).__name__}, not a callable that builds a model"
        )
    try:
        model = factory(**dict(kwargs or {}))
    except TypeError as exc:
        raise TypeError(f"calling {spec!r} with {dict(kwargs or {})} failed: {exc}") from None
    if not isinstance(model, nn.Module):
        raise TypeError(f"{spec!r} returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def _load_weights(model: nn.Module, weights: str | os.PathLike[str], what: str) -> None:
    """Load a state dict (or a dict with ``"state_dict"``) from ``weights`` into ``model``, weights-only."""
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
    from saliency_gym.zoo import load_classifier

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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", DeprecationWarning
            )  # torch.jit.load: still the way to read these
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others for bad archives
        raise ValueError(
            f"cannot read TorchScript file {path}: {' '.join(str(exc).split())[:300]}"
        ) from None
    return model


def _load_export(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    """The unflattened module of a ``torch.export`` archive and the input shape it was exported for."""
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"cannot read torch.export archive {path}: {' '.join(str(exc).split())[:300]}"
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

    Raises ``ValueError`` when the model rejects inputs of ``shape`` or does not return ``(2, K)``.
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
    except Exception as exc:  # noqa: BLE001 - any failure here means: wrong shape or broken model
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
    return int(out.shape[1])
