"""Safe checkpoint files: atomic writes and ``weights_only`` loads.

Every checkpoint saliency-gym writes is a plain dictionary of tensors and primitive values with a
``"format"`` tag, so it can be read back with ``torch.load(weights_only=True)`` and never executes
pickled code. Writes go to a temporary file in the same folder and are moved into place with
:func:`os.replace`, so an interrupted write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be used (corrupt, wrong format, wrong contents)."""


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file in the same folder (named
    ``.<name>.<random>.tmp``, which :func:`saliency_gym.runs.clean_stale_tmp` removes if a crash
    leaves it), which is synced, given the usual file mode and renamed over ``path``. A reader
    sees the old file or the whole new one, never a part; on any error the temporary file goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` with :func:`torch.save` to ``path`` atomically and return the path."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def resolve_checkpoint(name_or_path: str | os.PathLike[str], shipped: dict[str, Path], kind: str) -> Path:
    """Map a shipped name (a key of ``shipped``) or a file path to an existing checkpoint path.

    ``kind`` names what is loaded (``"classifier"``, ``"agent"``, ...) in the error messages: an
    unknown name raises ``ValueError`` listing the shipped ones, a folder ``ValueError`` saying so
    (not "not found": it exists), a missing file ``FileNotFoundError``.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"{kind} must be a shipped name or a path, got {type(name_or_path).__name__}")
    text = os.fspath(name_or_path)
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.suffix or os.sep in text or path.exists():
        if path.is_dir():
            raise ValueError(f"{kind} {path} is a folder; pass a {kind} checkpoint file (or a shipped name)")
        if not path.is_file():
            raise FileNotFoundError(f"{kind} checkpoint not found: {path}")
        return path
    raise ValueError(f"unknown {kind} {text!r}; shipped: {sorted(shipped)}, or pass a checkpoint path")


def safe_load(
    path: str | os.PathLike[str],
    *,
    expected_format: str | None = None,
    required_keys: tuple[str, ...] = (),
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint dictionary with ``weights_only=True`` and check its format tag and keys.

    Raises :class:`FileNotFoundError` when the file is missing and :class:`CheckpointError`
    (a ``ValueError``) when it is unreadable, not a dictionary, of another format, or lacks keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():
            # a TorchScript archive: torch warns that it dispatches to torch.jit.load, then refuses
            warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive", category=UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        detail = _refusal_detail(exc)
        if detail is not None:
            # torch's own message advises retrying with weights_only=False (or allow-listing the
            # classes): never pass that on for a file of unknown origin, nor chain its exception.
            named = f" ({detail})" if detail else ""
            raise CheckpointError(
                f"cannot read checkpoint {path}: the file contains objects a weights-only load "
                f"refuses{named}, so it was not written by saliency-gym (or it is corrupt or "
                "untrusted); it was not loaded, because unpickling such objects can run arbitrary code"
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is corrupt, truncated, or not a safe "
            f"weights-only checkpoint ({type(exc).__name__}: {_strip_ansi(str(exc))})"
        ) from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, expected a dict")
    if expected_format is not None and payload.get("format") != expected_format:
        raise CheckpointError(
            f"checkpoint {path} has format {payload.get('format')!r}, expected {expected_format!r}"
        )
    missing = [key for key in required_keys if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the keys {missing}")
    return payload


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Phrases of torch's refusal of a pickled object under ``weights_only=True`` (whose message goes on
#: to advise ``weights_only=False`` or allow-listing the object's class).
_REFUSAL_MARKERS = ("weights only load failed", "weights_only", "safe_globals", "weightsunpickler")


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _refusal_detail(exc: BaseException) -> str | None:
    """What a weights-only load refused, without torch's advice (``""`` when it says nothing
    usable), or ``None`` when ``exc`` is not such a refusal (a truncated zip archive, say)."""
    text = _strip_ansi(str(exc))
    if not any(marker in text.lower() for marker in _REFUSAL_MARKERS):
        return None
    match = re.search(r"WeightsUnpickler error:\s*(.*?)(?:\n\s*\n\s*Check the documentation|$)", text, re.S)
    detail = match.group(1) if match else ""
    detail = re.split(r"\bPlease\b|\bIf you\b|\bDo it only\b", detail)[0]
    detail = " ".join(detail.split()).rstrip(" .;:")
    if any(marker in detail.lower() for marker in _REFUSAL_MARKERS) or "trust" in detail.lower():
        return ""
    return detail
