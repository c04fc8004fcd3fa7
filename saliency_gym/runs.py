"""Shared scaffolding of the training runs: run folders, resumable state, TensorBoard, seeding.

Classifier training (:mod:`saliency_gym.classifier_training`) and the plugins' training recipes
(GANMEX generators, ID-ExpO fine-tuning, PGD adversarial training) all follow one pattern:

* seed the global torch RNG (network initialisation) and a private ``torch.Generator`` (data
  order, sampling) from the recipe's seed: :func:`seed_everything`;
* keep a copy of the best weights on the CPU: :func:`snapshot_state`;
* write the whole run state atomically every few steps as a tagged, weights-only checkpoint and
  read it back on resume, refusing a state written with other fixed settings:
  :class:`RunState` (:func:`check_resume_settings`, :func:`restore_state_dicts`);
* log scalars to TensorBoard: :func:`open_writer`;
* declare the recipe as an :class:`~saliency_gym.options.Options` dataclass deriving from
  :class:`TrainingOptions`, which names its options in errors and checks fields by table;
* never start a run over an old one: :func:`check_new_run` refuses a folder that holds a run
  (unless resuming, or asked to overwrite), :func:`next_run_folder` numbers default folders as
  rl-zoo does (``<algo>_<n>``), and :func:`removed_if_left_empty` takes back a folder a failed
  run made; :func:`check_not_shipped` keeps every installed folder read-only (:func:`shipped_dirs`).

This module is part of the core: it imports core modules only (never ``baselines`` or ``agents``).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch

from saliency_gym.checkpoint import CheckpointError, atomic_save, atomic_write, safe_load
from saliency_gym.options import Options, check_known_keys
from saliency_gym.validation import check_float, check_int

if TYPE_CHECKING:  # tensorboard is imported only when a writer is opened
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "RunClock",
    "RunFolderLocked",
    "RunState",
    "SignalStop",
    "TrainingInterrupted",
    "TrainingOptions",
    "atomic_copy",
    "check_output_dir",
    "check_new_run",
    "check_output_file",
    "check_resume_settings",
    "clean_stale_tmp",
    "latest_run_folder",
    "next_run_folder",
    "open_writer",
    "removed_if_left_empty",
    "restore_state_dicts",
    "run_lock",
    "run_numbers",
    "run_slug",
    "save_or_stop",
    "seed_everything",
    "snapshot_state",
]


@dataclass
class TrainingOptions(Options):
    """Base of the training recipes' configurations.

    Subclasses set :attr:`option_kind` (how an unknown key is reported: ``"unknown GANMEX training
    option(s) [...]"``) and implement :meth:`~saliency_gym.options.Options.validate` with
    :meth:`check_ints` / :meth:`check_floats` tables and the :mod:`saliency_gym.validation` helpers.
    """

    option_kind: ClassVar[str] = "training option"

    @classmethod
    def check_keys(cls, kwargs: Mapping[str, Any]) -> None:
        """Reject names that are not fields (``TypeError`` listing the allowed ones)."""
        check_known_keys(kwargs, cls.field_names(), cls.option_kind)

    def check_ints(self, *names: str, minimum: int | None = None, optional: bool = False) -> None:
        """:func:`~saliency_gym.validation.check_int` on each named field (``optional``: ``None`` passes)."""
        for name in names:
            value = getattr(self, name)
            if not (optional and value is None):
                check_int(name, value, minimum=minimum)

    def check_floats(
        self,
        *names: str,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive_minimum: bool = False,
        optional: bool = False,
    ) -> None:
        """:func:`~saliency_gym.validation.check_float` on each named field (``optional``: ``None`` passes)."""
        for name in names:
            value = getattr(self, name)
            if not (optional and value is None):
                check_float(
                    name,
                    value,
                    minimum=minimum,
                    maximum=maximum,
                    exclusive_minimum=exclusive_minimum,
                )


class _Stateful(Protocol):
    def load_state_dict(self, state_dict: Any, /) -> Any: ...


#: The installed package: shipped classifiers, agents, generators and configs live below it and are
#: read-only to every command (write to a run folder, then copy deliberately).
PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dirs() -> list[Path]:
    """The folders the installed package's files live in, derived from the installation itself.

    The package's own folder holds everything a wheel installs; an editable install keeps its
    plugin packages (``agents/``, ``baselines/``, ``benchmarks/``) beside it and maps them into
    ``saliency_gym``. Every folder beside the package that imports as ``saliency_gym.<name>`` is
    found from its import spec (nothing is imported), so a new subpackage is read-only as soon as
    it is installed, without a list to keep up to date here.
    """
    return list(_shipped_dirs())


@functools.lru_cache(maxsize=1)
def _shipped_dirs() -> tuple[Path, ...]:
    folders = [PACKAGE_DIR]
    try:
        beside = sorted(p for p in PACKAGE_DIR.parent.iterdir() if p.is_dir() and p.name.isidentifier())
    except OSError:
        beside = []
    for folder in beside:
        try:
            spec = importlib.util.find_spec(f"{PACKAGE_DIR.name}.{folder.name}")
        except (ImportError, ValueError):
            continue
        locations = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
        if folder.resolve() in locations:
            folders.append(folder.resolve())
    return tuple(folders)


def check_not_shipped(path: str | os.PathLike[str], what: str = "output") -> Path:
    """Refuse a path inside the installed package (``PermissionError``): shipped files are read-only."""
    resolved = Path(path).resolve()
    if any(resolved == folder or folder in resolved.parents for folder in shipped_dirs()):
        raise PermissionError(
            f"{what} {path} is inside the installed saliency_gym package, whose shipped files are read-only; "
            "write to a run folder (e.g. runs/...) and load the result by its path"
        )
    return Path(path)


def check_output_dir(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create the folder ``path`` (with parents) and check that files can be written in it.

    Called before any work, so a long run never fails only when it saves. Raises
    ``NotADirectoryError`` for an existing non-folder and ``PermissionError`` (an ``OSError`` naming
    the path and the reason) when the folder cannot be created or written.
    """
    path = check_not_shipped(path, what)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what} {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise PermissionError(
            f"{what} {path} is not a writable folder: {exc.strerror or exc}"
        ) from None
    return path


def check_output_file(path: str | os.PathLike[str], what: str = "output file") -> Path:
    """Check that the file ``path`` can be written (its folder is created), before any work.

    Raises ``IsADirectoryError`` for an existing folder and ``PermissionError`` for a file or
    folder that cannot be written.
    """
    path = check_not_shipped(path, what)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a folder, expected a file path")
    check_output_dir(path.parent, what=f"the folder of {what}")
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{what} {path} exists and is not writable")
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG with ``seed`` and return a CPU generator seeded the same way."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def snapshot_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of ``module.state_dict()`` (e.g. the best model so far)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def open_writer(log_dir: str | os.PathLike[str], *, purge_step: int | None = None) -> SummaryWriter:
    """A TensorBoard ``SummaryWriter`` on ``log_dir`` (``purge_step``: drop events logged at or
    after it by an interrupted run that is resumed). TensorBoard is imported here, lazily."""
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(log_dir), purge_step=purge_step or None)


def check_resume_settings(
    saved: Mapping[str, Any],
    current: Mapping[str, Any],
    fixed: Iterable[str] | None,
    path: str | os.PathLike[str],
    *,
    hint: str = "",
) -> None:
    """Raise ``ValueError`` when the settings named in ``fixed`` (``None``: all of ``current``)
    differ between a saved run and the current one; the message lists ``(saved, now)`` pairs."""
    names = list(current) if fixed is None else list(fixed)
    clash = {
        name: (saved.get(name), current.get(name))
        for name in names
        if saved.get(name) != current.get(name)
    }
    if clash:
        raise ValueError(
            f"cannot resume {path}: settings differ from the saved run (saved, now): {clash}{hint}"
        )


def restore_state_dicts(
    state: Mapping[str, Any],
    targets: Mapping[str, _Stateful],
    path: str | os.PathLike[str],
    what: str = "training state",
) -> None:
    """``targets[key].load_state_dict(state[key])`` for every key; a mismatch raises
    :class:`~saliency_gym.checkpoint.CheckpointError` saying the state does not fit."""
    try:
        for key, target in targets.items():
            target.load_state_dict(state[key])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{what} {path} does not fit the run: {exc}") from exc


@dataclass(frozen=True)
class RunState:
    """The resumable state file of a run: a tagged, weights-only checkpoint written atomically.

    Attributes:
        path: the state file (e.g. ``<out_dir>/last.pt``).
        format: the ``"format"`` tag written and checked on load.
        required_keys: keys a loaded state must hold (besides ``format``).
        what: how error messages name the state (``"training state"``, ``"ID-ExpO state"``).
    """

    path: Path
    format: str
    required_keys: tuple[str, ...] = ()
    what: str = "training state"

    def exists(self) -> bool:
        return self.path.is_file()

    def require(self) -> Path:
        """The state's path; ``FileNotFoundError`` naming it when there is none to resume."""
        if not self.exists():
            raise FileNotFoundError(f"resume: no {self.what} at {self.path}")
        return self.path

    def save(self, **payload: Any) -> Path:
        """Write ``{"format": ..., **payload}`` atomically."""
        return atomic_save({"format": self.format, **payload}, self.path)

    def load(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        fixed: Iterable[str] | None = None,
        hint: str = "",
    ) -> dict[str, Any]:
        """Load the state (``FileNotFoundError`` naming it when missing) and, when ``config`` is
        given, check that its saved ``"config"`` agrees on the ``fixed`` settings."""
        state = safe_load(
            self.require(), expected_format=self.format, required_keys=self.required_keys
        )
        if config is not None:
            check_resume_settings(state.get("config") or {}, config, fixed, self.path, hint=hint)
        return state

    def restore(self, state: Mapping[str, Any], targets: Mapping[str, _Stateful]) -> None:
        """Load the saved state dicts into networks, optimisers and schedulers."""
        restore_state_dicts(state, targets, self.path, self.what)


class RunClock:
    """Wall-clock seconds of a run that may be resumed: ``RunClock(saved_seconds).seconds``."""

    def __init__(self, elapsed: float = 0.0) -> None:
        self._start = time.perf_counter() - float(elapsed)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


class SignalStop:
    """While active (in the main thread; elsewhere it does nothing): the first SIGTERM or SIGINT
    sets :attr:`signum`, so the training loop can save its state and stop at its next step
    boundary, the way Ctrl-C should end a run; a second one raises ``KeyboardInterrupt`` at once.
    The previous handlers are restored on exit."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGTERM or SIGINT after saving its state (a ``KeyboardInterrupt``, so
    code that handles Ctrl-C handles it); ``str()`` is one line saying where it was saved."""

    def __init__(self, signum: int, checkpoint: str | os.PathLike[str], num_timesteps: int) -> None:
        self.signum, self.checkpoint, self.num_timesteps = signum, Path(checkpoint), num_timesteps
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} at step {num_timesteps}; state saved to {checkpoint} (continue with --resume)"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def save_or_stop(
    step: int,
    *,
    every: int,
    total: int,
    signals: SignalStop,
    save: Callable[[], object],
    state_path: str | os.PathLike[str],
    on_stop: Callable[[], object] | None = None,
) -> None:
    """The checkpoint rule of a training loop, after step ``step`` of ``total``: call ``save``
    every ``every`` steps, at the last step and as soon as ``signals`` caught SIGTERM/SIGINT; after a
    signal, call ``on_stop`` (close the TensorBoard writer, say) and raise
    :class:`TrainingInterrupted` naming ``state_path``."""
    if step % every == 0 or step == total or signals.signum is not None:
        save()
    if signals.signum is not None:
        if on_stop is not None:
            on_stop()
        raise TrainingInterrupted(signals.signum, state_path, step)


class RunFolderLocked(BlockingIOError):
    """Another live process holds the lock of a run folder (see :func:`run_lock`)."""


LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    return True


def _lock_owner(path: Path) -> int | None:
    """The pid written in a lock file, or ``None`` when it is unreadable or empty."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike[str], *, what: str = "run folder") -> Iterator[Path]:
    """Hold ``<folder>/.lock`` while the block runs; it is removed on exit.

    The lock is an exclusive ``flock`` on the file, which holds this process's pid. The kernel
    drops it when its process dies however it dies (``SIGKILL``, power loss), so a lock file left
    behind is taken over by the next run, and two runs that start together cannot both win (no
    check-then-take race). A second run on the same folder raises :class:`RunFolderLocked` (a
    ``BlockingIOError``, so an ``OSError``) naming the folder and the pid that holds it; so does a
    lock file naming another live process (a writer that does not take ``flock``). Locks are
    advisory and local: a network file system may not honour ``flock``.
    """
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _lock_owner(path)
            holder = f"process {owner}" if owner is not None else "another process"
            raise RunFolderLocked(
                f"{what} {folder} is in use by {holder} (lock file {path}); wait for it to finish, "
                "stop it, or use another output folder"
            ) from None
        try:
            same_file = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    try:
        owner = _lock_owner(path)
        if owner is not None and owner != os.getpid() and _pid_alive(owner):
            raise RunFolderLocked(
                f"{what} {folder} is in use by process {owner} (lock file {path}); wait for it to finish, "
                "stop it, or use another output folder"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still holding the lock, so no one locks a removed file
        os.close(fd)


def clean_stale_tmp(folder: str | os.PathLike[str], pattern: str = ".*.tmp") -> list[Path]:
    """Remove the temporary files that interrupted atomic writes left in ``folder`` (call it while
    holding the folder's :func:`run_lock`, so no live write is removed); returns what it removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for tmp in folder.glob(pattern):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def atomic_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy ``source`` to ``target`` atomically (:func:`~saliency_gym.checkpoint.atomic_write`), so
    ``target`` is always a whole copy of ``source``."""
    return atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


# ---------------------------------------------------------------- run folders: new, numbered, held

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_slug(text: str, max_length: int = 40) -> str:
    """``text`` as one safe path component: runs of other characters than letters, digits, ``.``,
    ``_`` and ``-`` become ``-``, at most ``max_length`` characters (``"run"`` if nothing is left)."""
    slug = _SLUG_UNSAFE.sub("-", str(text)).strip("-.")[:max_length].strip("-.")
    return slug or "run"


def run_numbers(parent: str | os.PathLike[str], prefix: str) -> list[int]:
    """The numbers ``n`` of the run folders ``<parent>/<prefix>_<n>``, sorted."""
    folder = Path(parent)
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if p.is_dir() and (m := pattern.match(p.name)))


def next_run_folder(parent: str | os.PathLike[str], prefix: str) -> Path:
    """Create and return ``<parent>/<prefix>_<n>``, ``n`` one more than the largest run there
    (from 1), as rl-baselines3-zoo numbers its runs; creating the folder claims the number, so two
    runs started together never share one. A default run folder therefore never holds an old run."""
    parent = check_not_shipped(parent, "run folder")
    parent.mkdir(parents=True, exist_ok=True)
    number = max(run_numbers(parent, prefix), default=0) + 1
    while True:
        folder = parent / f"{prefix}_{number}"
        try:
            folder.mkdir()
        except FileExistsError:
            number += 1
            continue
        return folder


def latest_run_folder(parent: str | os.PathLike[str], prefix: str) -> Path:
    """``<parent>/<prefix>_<n>`` with the largest ``n`` (the run a default ``--resume`` continues);
    ``FileNotFoundError`` naming where it looked when there is none."""
    numbers = run_numbers(Path(parent), prefix)
    if not numbers:
        raise FileNotFoundError(
            f"resume: no run {prefix}_<n> in {parent}; pass --out with the run folder to resume"
        )
    return Path(parent) / f"{prefix}_{numbers[-1]}"


def _holds_files(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def check_new_run(
    folder: str | os.PathLike[str],
    run_files: Iterable[str],
    *,
    resume: bool,
    overwrite: bool,
) -> list[Path]:
    """Refuse to start a new run in a folder that holds one (call it holding :func:`run_lock`).

    ``run_files`` are the names a run writes in its folder (``final.pt``, ``checkpoints``, ``tb``,
    ...); the folder holds a run when one of them is a file or a non-empty folder. Starting over
    there would replace the old run's final agent and leave its step checkpoints and TensorBoard
    events mixed with the new run's, so without ``resume`` it raises ``FileExistsError`` (an
    ``OSError``: one line from the CLI, exit 2), unless ``overwrite`` asks to remove those files
    first (only those: anything else in the folder stays). Returns what was removed.
    """
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the run, overwrite replaces it")
    folder = Path(folder)
    held = [folder / name for name in run_files if _holds_files(folder / name)]
    if not held or resume:
        return []
    if not overwrite:
        raise FileExistsError(
            f"{folder} holds a run ({', '.join(p.name for p in held)}); use --resume or another --out "
            "(--overwrite replaces it)"
        )
    for path in held:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return held


@contextlib.contextmanager
def removed_if_left_empty(folder: str | os.PathLike[str], *, existed: bool | None = None) -> Iterator[Path]:
    """Run the block; if it fails and ``folder`` did not exist before (``existed``; default: when
    the block starts) and is empty after, remove it, so a run that stops before writing anything (a
    bad argument, Ray missing) leaves no empty run folder behind."""
    folder = Path(folder)
    existed = folder.exists() if existed is None else existed
    try:
        yield folder
    except BaseException:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
