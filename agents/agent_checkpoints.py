"""Agent checkpoints: weights-only ``.pt`` dictionaries and standard SB3 ``.zip`` files.

**``.pt`` (weights-only dictionaries).** SB3's ``.zip`` format cloudpickles parts of the model
(schedules, spaces, classes), which executes code on load. Our ``.pt`` agent checkpoints hold only
tensors and primitive values (the algorithm name, the YAML hyperparameters, the environment id and
arguments, the policy and optimiser state dicts and the step count), are written atomically and
read with ``torch.load(weights_only=True)``; the policy is rebuilt from the hyperparameters and the
environment's spaces.

**``.zip`` (SB3-native agents).** :func:`export_sb3_zip` (or ``save_agent(..., format="zip")``)
writes the model with SB3's own ``model.save``, so ``MaskablePPO.load(path)`` (the algorithm's own
class: ``PPO.load``, ``A2C.load``, ...) opens it, and adds one JSON member,
:data:`ZIP_META_MEMBER` (``saliency_gym.json``: format tag, algorithm, env id and arguments,
hyperparameters, seed, step count, training meta). SB3's loader reads only ``data`` and the
``*.pth`` members, so it ignores ours.

Two loaders, two levels of trust:

- ``MaskablePPO.load(path)`` is SB3's loader: it unpickles the ``data`` member's objects with
  cloudpickle, which can run arbitrary code. Use it on trusted files only.
- saliency-gym's own path (:func:`load_agent_payload`, and through it
  :func:`~saliency_gym.agents.pretrained.load_agent_policy`,
  :func:`~saliency_gym.agents.pretrained.agent_explainer` and
  ``PolicyExplainer(classifier, "agent.zip")``) never reads ``data``: it reads our JSON member with
  :mod:`json` and ``policy.pth`` with ``torch.load(weights_only=True)``, and rebuilds the policy
  with :func:`build_policy` from the JSON's hyperparameters. Nothing is unpickled.

:func:`convert_to_zip` (``python -m saliency_gym.agents.agent_checkpoints --to-zip IN.pt OUT.zip``)
turns a ``.pt`` agent into such a ``.zip``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from saliency_gym.agents.algorithms import algorithm_spec, split_hyperparameters
from saliency_gym.checkpoint import (
    CheckpointError,
    _refusal_detail,
    atomic_save,
    atomic_write,
    safe_load,
)
from saliency_gym.runs import atomic_copy

AGENT_FORMAT = "saliency_gym.agent/v1"
#: Format tag of the JSON member of an SB3 ``.zip`` agent.
ZIP_FORMAT = "saliency_gym.agent_zip/v1"
#: Name of our metadata member inside an SB3 ``.zip`` agent.
ZIP_META_MEMBER = "saliency_gym.json"
#: The policy's state dict inside an SB3 ``.zip`` (written by ``model.save``).
ZIP_POLICY_MEMBER = "policy.pth"
#: Largest metadata member read (bytes): metadata is a few kilobytes; refuse anything absurd.
MAX_META_BYTES = 16 * 1024 * 1024
_REQUIRED = ("algo", "env_id", "env_kwargs", "hyperparameters", "policy_state", "num_timesteps")
_ZIP_REQUIRED = ("algo", "env_id", "env_kwargs", "hyperparameters", "num_timesteps", "seed")


def save_agent(
    model: BaseAlgorithm,
    path: str | os.PathLike[str],
    *,
    algo: str,
    env_id: str,
    env_kwargs: dict[str, Any],
    hyperparameters: dict[str, Any],
    seed: int,
    meta: dict[str, Any] | None = None,
    with_optimizer: bool = True,
    format: Literal["pt", "zip"] = "pt",
) -> Path:
    """Write ``model`` atomically; ``with_optimizer=False`` keeps shipped agents small.

    ``format="pt"`` (default) writes a weights-only dictionary; ``format="zip"`` a standard SB3
    ``.zip`` with our metadata inside (:func:`export_sb3_zip`; SB3 always stores the optimiser
    there, so ``with_optimizer`` is ignored).
    """
    if format == "zip":
        return export_sb3_zip(
            model, path, algo=algo, env_id=env_id, env_kwargs=env_kwargs,
            hyperparameters=hyperparameters, seed=seed, meta=meta,
        )  # fmt: skip
    if format != "pt":
        raise ValueError(f"format must be 'pt' or 'zip', got {format!r}")
    policy_state = {k: v.detach().cpu() for k, v in model.policy.state_dict().items()}
    payload: dict[str, Any] = {
        "format": AGENT_FORMAT,
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs),
        "hyperparameters": hyperparameters,
        "policy_state": policy_state,
        "num_timesteps": int(model.num_timesteps),
        "seed": int(seed),
        "meta": dict(meta or {}),
    }
    if with_optimizer:
        payload["optimizer_state"] = model.policy.optimizer.state_dict()
    return atomic_save(payload, path)


def save_step_checkpoint(model: BaseAlgorithm, folder: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write ``<folder>/last.pt`` atomically, then ``<folder>/step_<n>.pt`` (``n``: the model's step
    count) as an atomic copy of the same bytes. ``last.pt`` is always whole, and written first, so
    a process killed between the two writes never leaves a step file newer than ``last.pt`` (the
    file ``--resume`` reads). ``kwargs`` go to :func:`save_agent`; returns the step file."""
    folder = Path(folder)
    last = save_agent(model, folder / "last.pt", **kwargs)
    return atomic_copy(last, folder / f"step_{int(model.num_timesteps)}.pt")


def _json_ready(value: Any, where: str) -> Any:
    """``value`` with tuples as lists and NumPy/torch scalars as Python ones; ``TypeError`` naming
    ``where`` for anything JSON cannot hold (our metadata must stay plain data)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where} is {value}, which JSON cannot store")
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has the non-string key {key!r}")
            out[key] = _json_ready(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_json_ready(item, f"{where}[{i}]") for i, item in enumerate(value)]
    item = getattr(value, "item", None)  # NumPy and 0-d torch scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return _json_ready(item(), where)
    raise TypeError(
        f"{where} is a {type(value).__name__}, which the zip's JSON metadata cannot store "
        "(store a descriptive string instead, as agent_training.storable_env_kwargs does)"
    )


def zip_metadata(
    *,
    algo: str,
    env_id: str,
    env_kwargs: dict[str, Any],
    hyperparameters: dict[str, Any],
    seed: int,
    num_timesteps: int,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON document stored as :data:`ZIP_META_MEMBER` (``TypeError`` if a value is not plain data)."""
    algorithm_spec(algo)
    document = {
        "format": ZIP_FORMAT,
        "algo": algo,
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs),
        "hyperparameters": hyperparameters,
        "num_timesteps": int(num_timesteps),
        "seed": int(seed),
        "meta": dict(meta or {}),
    }
    ready: dict[str, Any] = _json_ready(document, "metadata")
    return ready


def export_sb3_zip(
    model: BaseAlgorithm,
    path: str | os.PathLike[str],
    *,
    algo: str,
    env_id: str,
    env_kwargs: dict[str, Any],
    hyperparameters: dict[str, Any],
    seed: int,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a standard SB3 ``.zip`` (``model.save``) with our metadata member, atomically.

    The archive is written to a temporary file in the target folder, completed with
    :data:`ZIP_META_MEMBER`, flushed to disk and moved into place with :func:`os.replace`. A path
    without a suffix gets ``.zip`` (as ``model.save`` does). ``TypeError`` if the metadata holds
    something JSON cannot store (an object in ``env_kwargs``, say). Returns the written path.
    """
    path = Path(path)
    if path.suffix == "":
        path = path.with_name(path.name + ".zip")
    document = zip_metadata(
        algo=algo, env_id=env_id, env_kwargs=env_kwargs, hyperparameters=hyperparameters,
        seed=seed, num_timesteps=int(model.num_timesteps), meta=meta,
    )  # fmt: skip
    text = json.dumps(document, indent=2, sort_keys=True)

    def write(tmp: Path) -> None:
        model.save(tmp)  # a path with a suffix is kept as it is (".tmp")
        with zipfile.ZipFile(tmp, mode="a") as archive:
            archive.writestr(ZIP_META_MEMBER, text)
        deflate_zip(tmp)

    return atomic_write(path, write)


def deflate_zip(path: str | os.PathLike[str]) -> None:
    """Rewrite the archive at ``path`` with every member deflated, in place.

    SB3's ``model.save`` stores its members uncompressed; its ``data`` member holds the
    observation space's bounds as base64 text, which is most of an agent over 224x224 photos
    (4.9 MB of constant bounds, a few KB deflated). SB3 and our loader read deflated members alike.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    tmp = path.with_name(path.name + ".deflate")
    with zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, payload in members:
            archive.writestr(info.filename, payload)
    os.replace(tmp, path)


def is_zip_agent(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is meant as an SB3 ``.zip`` agent: its ``.zip`` suffix or, under another
    suffix than ``.pt``, an archive holding SB3's or our members (a ``torch.save`` file is a zip
    archive too, of other members)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".zip", ".pt"):
        return suffix == ".zip"
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return bool(names & {ZIP_META_MEMBER, "_stable_baselines3_version"})


def read_zip_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Our metadata of an SB3 ``.zip`` agent, read with :mod:`json` only (format and keys checked).

    Raises :class:`FileNotFoundError` when the file is missing and :class:`CheckpointError` (a
    ``ValueError``) when it is not a zip archive, lacks :data:`ZIP_META_MEMBER` (an SB3 zip not
    written by saliency-gym), or the member is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(ZIP_META_MEMBER)
            except KeyError:
                raise CheckpointError(
                    f"{path} has no {ZIP_META_MEMBER} member, so it is not a saliency-gym agent zip "
                    "(an SB3 zip from elsewhere opens with the algorithm's own load(), for trusted files only; "
                    "or convert a .pt agent with convert_to_zip)"
                ) from None
            if info.file_size > MAX_META_BYTES:
                raise CheckpointError(f"{path}: {ZIP_META_MEMBER} is {info.file_size} bytes, too large to be metadata")
            raw = archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"cannot read agent zip {path}: it is not a valid zip archive ({exc})") from exc
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: {ZIP_META_MEMBER} is not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise CheckpointError(f"{path}: {ZIP_META_MEMBER} holds a {type(document).__name__}, expected an object")
    if document.get("format") != ZIP_FORMAT:
        raise CheckpointError(f"{path}: {ZIP_META_MEMBER} has format {document.get('format')!r}, expected {ZIP_FORMAT!r}")
    missing = [key for key in _ZIP_REQUIRED if key not in document]
    if missing:
        raise CheckpointError(f"{path}: {ZIP_META_MEMBER} lacks the keys {missing}")
    types: dict[str, type | tuple[type, ...]] = {
        "algo": str, "env_id": str, "env_kwargs": dict, "hyperparameters": dict, "num_timesteps": int, "seed": int,
    }  # fmt: skip
    for key, expected in types.items():
        if not isinstance(document[key], expected) or isinstance(document[key], bool):
            raise CheckpointError(f"{path}: {ZIP_META_MEMBER} field {key!r} has the wrong type {type(document[key]).__name__}")
    if not isinstance(document.setdefault("meta", {}), dict):
        raise CheckpointError(f"{path}: {ZIP_META_MEMBER} field 'meta' must be an object")
    try:
        algorithm_spec(document["algo"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return document


def _load_zip_policy_state(path: Path) -> dict[str, torch.Tensor]:
    """``policy.pth`` of an SB3 zip, with ``torch.load(weights_only=True)`` (never unpickles objects)."""
    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read(ZIP_POLICY_MEMBER)
    except KeyError:
        raise CheckpointError(f"{path} has no {ZIP_POLICY_MEMBER} member (no policy weights)") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"cannot read {ZIP_POLICY_MEMBER} of {path}: {exc}") from exc
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        if _refusal_detail(exc) is not None:
            raise CheckpointError(
                f"{path}: {ZIP_POLICY_MEMBER} holds objects a weights-only load refuses; it was not "
                "loaded, because unpickling such objects can run arbitrary code"
            ) from None
        raise CheckpointError(f"{path}: {ZIP_POLICY_MEMBER} is corrupt ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: {ZIP_POLICY_MEMBER} is not a state dict of tensors")
    return state


def load_agent_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint dictionary of a ``.pt`` or ``.zip`` agent (format and keys checked).

    A ``.pt`` is read with ``torch.load(weights_only=True)``. A ``.zip`` gives the same keys: our
    JSON member (``"format"`` is :data:`ZIP_FORMAT`) plus ``"policy_state"`` from ``policy.pth``
    (weights-only); SB3's ``data`` member is never read, so nothing is unpickled.
    """
    if is_zip_agent(path):
        payload = read_zip_metadata(path)
        payload["policy_state"] = _load_zip_policy_state(Path(path))
        return payload
    payload = safe_load(path, expected_format=AGENT_FORMAT, required_keys=_REQUIRED)
    algorithm_spec(payload["algo"])
    return payload


def agent_env(payload: dict[str, Any], **overrides: Any) -> gym.Env:
    """A single environment configured as the agent's training environment."""
    return gym.make(payload["env_id"], **{**payload["env_kwargs"], **overrides})


def build_policy(payload: dict[str, Any], observation_space: gym.Space, action_space: gym.Space, device: str = "cpu") -> BasePolicy:
    """Rebuild the SB3 policy of a checkpoint from its hyperparameters and load its weights."""
    spec = algorithm_spec(payload["algo"])
    _, _, kwargs = split_hyperparameters(payload["hyperparameters"])
    policy = spec.policy_class(observation_space, action_space, lambda _: 0.0, **kwargs["policy_kwargs"])
    try:
        policy.load_state_dict(payload["policy_state"])
    except RuntimeError as exc:
        raise CheckpointError(f"agent weights do not fit the {payload['algo']} policy: {exc}") from exc
    return policy.to(device).eval()


def restore_model(payload: dict[str, Any], model: BaseAlgorithm) -> BaseAlgorithm:
    """Load a checkpoint's weights, optimiser state and step count into a freshly built model."""
    try:
        model.policy.load_state_dict(payload["policy_state"])
        if "optimizer_state" in payload:
            model.policy.optimizer.load_state_dict(payload["optimizer_state"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint does not fit the {payload['algo']} model: {exc}") from exc
    model.num_timesteps = int(payload["num_timesteps"])
    return model


def model_from_payload(payload: dict[str, Any], device: str = "cpu", **env_overrides: Any) -> BaseAlgorithm:
    """A fresh SB3 model of the payload's algorithm and hyperparameters, its weights, optimiser state
    (when present) and step count restored, on a one-episode
    :class:`~saliency_gym.envs.sb3.SB3VecEnv` of the agent's environment (``env_overrides``: the
    objects a stored ``"<FrozenClassifier ...>"`` string stands for, as in :func:`agent_env`).
    The model keeps that environment; close it with ``model.get_env().close()``."""
    from saliency_gym.envs.sb3 import SB3VecEnv

    spec = algorithm_spec(payload["algo"])
    _, _, algo_kwargs = split_hyperparameters(payload["hyperparameters"])
    venv = SB3VecEnv(payload["env_id"], num_envs=1, **{**payload["env_kwargs"], **env_overrides})
    try:
        model = spec.cls(spec.policy, venv, device=device, verbose=0, **algo_kwargs)
        restore_model(payload, model)
    except BaseException:
        venv.close()
        raise
    model.seed = int(payload.get("seed", 0))  # recorded only: seeding here would reseed global RNGs
    return model


def convert_to_zip(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    device: str = "cpu",
    **env_overrides: Any,
) -> Path:
    """Turn a ``.pt`` agent (or a saliency-gym ``.zip``) into an SB3 ``.zip`` that the algorithm's
    own ``load`` opens, with the same weights, step count and metadata (``meta["converted_from"]``
    names the source file). ``env_overrides`` as in :func:`model_from_payload`. Returns the path."""
    payload = load_agent_payload(source)
    model = model_from_payload(payload, device=device, **env_overrides)
    try:
        meta = {**payload.get("meta", {}), "converted_from": Path(source).name}
        return export_sb3_zip(
            model, target, algo=payload["algo"], env_id=payload["env_id"], env_kwargs=payload["env_kwargs"],
            hyperparameters=payload["hyperparameters"], seed=int(payload.get("seed", 0)), meta=meta,
        )  # fmt: skip
    finally:
        env = model.get_env()
        if env is not None:
            env.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m saliency_gym.agents.agent_checkpoints --to-zip IN.pt OUT.zip``."""
    parser = argparse.ArgumentParser(
        prog="python -m saliency_gym.agents.agent_checkpoints",
        description="Convert a saliency-gym .pt agent into a standard SB3 .zip (MaskablePPO.load / PPO.load open it).",
    )
    parser.add_argument("--to-zip", nargs=2, metavar=("IN", "OUT"), required=True, help="source .pt agent and target .zip")
    args = parser.parse_args(argv)
    source, target = args.to_zip
    try:
        written = convert_to_zip(source, target)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(written)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
