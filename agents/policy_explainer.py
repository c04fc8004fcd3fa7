"""The policy explainer (RExL inference): a deterministic rollout of a policy is a saliency map.

:class:`PolicyExplainer` runs one saliency-search episode per image, all images in one batch (one
environment engine of ``N`` episodes), and turns each episode into a map:

- ``scoring="gain"`` (RExL): each cell is scored by the evidence gain it brought when chosen.
  This needs the score at the start and after every step: ``B + 1`` classifier queries per image
  for an episode of ``B`` cells (``B = K``, every cell, by default), in both modes (reveal: the
  substrate, then each step; mask: the image, then each step).
- ``scoring="order"``: each cell is scored by how early it was chosen, ``(K - rank) / K``. A
  policy that needs no classifier feedback (it sees the image, the canvas and the chosen cells)
  then explains an image with **no classifier query at all**.

Queries and seconds are measured by :meth:`Explainer.explain` like every other explainer, so the
policy's own queries (the greedy look-ahead's, an attribution order's explainer) are counted too;
:meth:`PolicyExplainer.expected_queries` states them in advance.

The explainer is registered as ``"policy"`` (an entry point), so
``make_explainer("policy", classifier, policy="shapes_reveal")`` rolls out a shipped agent (a name
or a checkpoint path, loaded by :mod:`saliency_gym.agents.pretrained`) with its training settings;
a run folder of ``saliency-gym train --engine ray`` (or its ``final/``) is loaded by
:func:`saliency_gym.distributed.rllib_policy.load_rllib_policy` (the ``[ray]`` extra).

**Agents trained on your own model** (``saliency-gym train --model mycnn.pt2 --data photos/``) store
the classifier and the data as descriptive strings in their environment arguments (checkpoints are
plain data), and the specs that rebuild them in their metadata (:data:`MODEL_META`,
:data:`DATA_META`; :func:`model_record`, :func:`data_record`). :func:`open_agent` reopens such an
agent with the classifier passed (checked to fit: input shape and number of classes), or with its
own classifier rebuilt by :func:`saliency_gym.model_files.load_model`. Every agent is checked
against the classifier it explains before any rollout: an agent that observes ``1x32x32`` images
cannot explain a model that takes ``3x32x32`` ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from saliency_gym.agents.policies import AgentPolicy, Policy
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import ArraySource, DataSource
from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.core import SaliencySearchCore
from saliency_gym.explainers import Explainer
from saliency_gym.explainers.base import as_classifier
from saliency_gym.validation import check_choice

if TYPE_CHECKING:
    from torch import nn

SCORINGS = ("order", "gain")
#: Key of an agent's ``meta`` holding :func:`model_record` of the classifier it was trained on.
MODEL_META = "model"
#: Key of an agent's ``meta`` holding :func:`data_record` of the data it was trained on.
DATA_META = "data"
#: How a checkpoint's environment arguments stand for an object (``agent_training.storable_env_kwargs``).
STAND_IN_PREFIXES = {"classifier": "<FrozenClassifier", "data": "<DataSource"}


#: Entry-point group of readers of policy files our agent files are not (an RLlib run folder: the
#: Ray engine registers one). Each reader has ``detects(path) -> bool`` (cheap: no heavy import)
#: and ``load(path, device) -> (policy, settings)``; entry points keep this plugin from importing
#: the engines above it.
POLICY_READERS_GROUP = "saliency_gym.policy_readers"


def policy_reader(path: str | os.PathLike[str]) -> Any | None:
    """The registered reader that recognises ``path``, or ``None`` (e.g. our own agent files)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=POLICY_READERS_GROUP):
        reader = entry.load()
        if reader.detects(path):
            return reader
    return None


def shape_text(shape: Sequence[int]) -> str:
    """``(1, 32, 32)`` as ``"1x32x32"``."""
    return "x".join(str(int(s)) for s in shape)


def check_agent_fits(
    agent: str,
    classifier: FrozenClassifier,
    input_shape: Sequence[int] | None,
    num_classes: int | None = None,
) -> None:
    """Raise ``ValueError`` when an agent that observed ``input_shape`` images (and, when given,
    ``num_classes`` classes) is used with a classifier that takes others: said up front, instead of
    the policy network's own error in the middle of a rollout."""
    if input_shape is not None and tuple(int(s) for s in input_shape) != tuple(classifier.input_shape):
        raise ValueError(
            f"agent {agent} was trained on {shape_text(input_shape)} inputs; the model {classifier.name!r} "
            f"takes {shape_text(classifier.input_shape)}: use an agent trained for this model's inputs "
            "(saliency-gym train --model ...)"
        )
    if num_classes is not None and int(num_classes) != classifier.num_classes:
        raise ValueError(
            f"agent {agent} was trained on a model with {int(num_classes)} classes; the model "
            f"{classifier.name!r} has {classifier.num_classes}"
        )


def _observed(policy: Policy) -> tuple[tuple[int, ...] | None, int | None]:
    """The image shape and class count an :class:`AgentPolicy`'s network observes (``None``: not
    known, or not observed)."""
    if not isinstance(policy, AgentPolicy):
        return None, None
    spaces = getattr(getattr(policy.policy, "observation_space", None), "spaces", None) or {}
    image_shape = getattr(spaces.get("image"), "shape", None)
    target_shape = getattr(spaces.get("target"), "shape", None)
    shape = tuple(int(s) for s in image_shape) if image_shape else None
    classes = int(target_shape[0]) if target_shape else None
    return shape, classes


# ---------------------------------------------------------------- agents trained on your own model


def _normalization(classifier: FrozenClassifier) -> list[float] | None:
    """The wrapper's normalisation as ``C`` means then ``C`` stds (what ``load_model`` takes)."""
    mean, std = getattr(classifier, "_mean", None), getattr(classifier, "_std", None)  # no public accessor yet
    if mean is None or std is None:
        return None
    return [float(v) for v in mean.flatten().tolist()] + [float(v) for v in std.flatten().tolist()]


def _reopen_spec(classifier: FrozenClassifier) -> dict[str, Any] | None:
    """How :func:`~saliency_gym.model_files.load_model` rebuilds ``classifier`` (``None``: it cannot,
    e.g. a module wrapped by hand, or a ``module:factory`` model whose weights file is not known)."""
    from saliency_gym.runs import PACKAGE_DIR

    meta = classifier.meta
    kind, spec = meta.get("kind"), meta.get("spec")
    if spec is None and meta.get("path"):  # a saliency-gym checkpoint: shipped (by name) or a file
        path = Path(str(meta["path"])).resolve()
        shipped = PACKAGE_DIR / "checkpoints"
        return {"spec": path.stem if path.parent == shipped else str(path), "kind": "zoo"}
    if spec is None or kind in (None, "module"):
        return None
    options: dict[str, Any] = {
        "input_shape": list(classifier.input_shape),
        "class_names": list(classifier.class_names or ()) or None,
        "normalize": _normalization(classifier),
    }
    if kind == "factory":
        given = meta.get("load_options")  # written by saliency-gym train, which knows the weights file
        if not isinstance(given, dict) or given.get("weights") is None:
            return None  # random weights (or unknown ones) would not be the network the agent learnt on
        options["weights"] = os.path.abspath(str(given["weights"]))
        options["model_kwargs"] = given.get("model_kwargs")
        return {"spec": str(spec), "kind": kind, **options}
    return {"spec": os.path.abspath(str(spec)), "kind": kind, **options}


def model_record(classifier: FrozenClassifier) -> dict[str, Any]:
    """What an agent's metadata records of the classifier it was trained on (plain data).

    Always ``name``, ``input_shape`` and ``num_classes`` (checked when the agent is used with
    another classifier); and, when the classifier can be rebuilt, ``reopen``: the arguments of
    :func:`~saliency_gym.model_files.load_model` (spec as an absolute path, a shipped name or
    ``module:factory``; weights, normalisation, input shape, class names).
    """
    record: dict[str, Any] = {
        "name": classifier.name,
        "input_shape": list(classifier.input_shape),
        "num_classes": int(classifier.num_classes),
    }
    spec = _reopen_spec(classifier)
    if spec is not None:
        record["reopen"] = spec
    return record


def _image_folder(source: DataSource) -> Path | None:
    """The folder an image-folder source reads (``None`` for other sources)."""
    inner = getattr(source, "folder", source)  # a folder re-labelled to the classifier's classes
    root = getattr(inner, "root", None)
    if root is not None:
        return Path(root)
    files = getattr(inner, "files", None)
    if files:
        first = files[0][0] if isinstance(files[0], tuple) else files[0]
        return Path(first).parent
    return None


def data_record(source: DataSource) -> dict[str, Any]:
    """What an agent's metadata records of its training data: ``name``, ``images`` and
    ``image_shape``, and ``reopen`` (``{"spec": absolute folder}`` or ``{"spec": dataset name,
    "split": ...}``) when the data can be read again."""
    from saliency_gym.data import available_datasets

    record: dict[str, Any] = {
        "name": str(source.name),
        "images": len(source),
        "image_shape": [int(s) for s in source.image_shape],
    }
    folder = _image_folder(source)
    if folder is not None:
        record["reopen"] = {"spec": str(folder.resolve())}
    elif source.name in available_datasets():
        record["reopen"] = {"spec": str(source.name), "split": getattr(source, "split", None)}
    return record


def rebuild_classifier(record: Any, agent: str, device: str | None = None) -> FrozenClassifier:
    """The classifier an agent was trained on, from its :func:`model_record` (``ValueError`` saying
    to pass the classifier when the record cannot rebuild it)."""
    from saliency_gym.model_files import load_model

    reopen = record.get("reopen") if isinstance(record, dict) else None
    if not isinstance(reopen, dict) or not reopen.get("spec"):
        what = f"the model {record.get('name')!r}" if isinstance(record, dict) else "its own model"
        raise ValueError(
            f"agent {agent} was trained on {what}, which it cannot reopen by itself; pass that classifier, "
            "e.g. PolicyExplainer(classifier, agent) or saliency-gym explain --model ... --agent ..."
        )
    spec = str(reopen["spec"])
    try:
        if reopen.get("kind") == "zoo":
            classifier = load_model(spec, device=device)
        else:
            classifier = load_model(
                spec, weights=reopen.get("weights"), model_kwargs=reopen.get("model_kwargs"),
                input_shape=reopen.get("input_shape"), class_names=reopen.get("class_names"),
                normalize=reopen.get("normalize"), device=device,
            )  # fmt: skip
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"agent {agent}: cannot reopen the model it was trained on ({exc}); pass the classifier") from None
    check_agent_fits(agent, classifier, record.get("input_shape"), record.get("num_classes"))
    return classifier


def _placeholder_data(classifier: FrozenClassifier) -> DataSource:
    """One blank image for ``classifier``: builds an agent's spaces when its images are not needed."""
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    images = np.zeros((1, *classifier.input_shape), np.float32)
    return ArraySource(images, np.zeros(1, np.int64), class_names=names, name="placeholder", has_label=False)


def _rebuild_data(record: Any, agent: str, classifier: FrozenClassifier) -> DataSource | str:
    """The data an agent was trained on, from its :func:`data_record` (``ValueError`` when gone)."""
    from saliency_gym.data.resolve import resolve_data_spec

    reopen = record.get("reopen") if isinstance(record, dict) else None
    if not isinstance(reopen, dict) or not reopen.get("spec"):
        raise ValueError(f"agent {agent} was trained on data it cannot reopen by itself ({record}); pass data=... as an override")
    spec = str(reopen["spec"])
    if reopen.get("split") is not None:
        return spec  # a dataset name: the environment loads it, with the split it is given
    try:
        return resolve_data_spec(spec, classifier)
    except (OSError, ValueError) as exc:
        raise ValueError(f"agent {agent}: cannot reopen its training images ({exc})") from None


def _shape_in_stand_in(text: str) -> tuple[int, ...] | None:
    """The image shape written in a ``"<DataSource name: n images (C, H, W)>"`` stand-in (agents
    trained before :data:`MODEL_META` was recorded)."""
    match = re.search(r"\((\d+), (\d+), (\d+)\)>$", text)
    return tuple(int(g) for g in match.groups()) if match else None


def agent_file(agent: str | os.PathLike[str]) -> tuple[Path, str]:
    """The checkpoint of an agent's name or path, and the agent's name: a run folder of
    ``saliency-gym train`` stands for its ``final.pt`` (or ``final.zip``) and is named after the
    folder; a file is named after its stem."""
    from saliency_gym.agents.pretrained import resolve_agent_path

    folder = Path(agent)
    if isinstance(agent, (str, os.PathLike)) and folder.is_dir():
        for name in ("final.pt", "final.zip"):
            if (folder / name).is_file():
                return folder / name, folder.resolve().name
        raise FileNotFoundError(f"agent folder {folder} holds no final.pt or final.zip (has the run finished?)")
    path = resolve_agent_path(agent)
    return path, path.stem


def open_agent(
    agent: str | os.PathLike[str],
    classifier: FrozenClassifier | None = None,
    *,
    device: str | None = None,
    need_data: bool = False,
) -> tuple[AgentPolicy, dict[str, Any]]:
    """A trained agent (shipped name, ``.pt``/``.zip`` file or run folder) as an :class:`AgentPolicy`,
    with its checkpoint's payload minus the weights (``info``; ``info["config"]`` is its environment's
    configuration, ``info["env_overrides"]`` the objects its stand-ins were replaced by).

    An agent trained on your own model or images holds stand-in strings for them: ``classifier``
    replaces the model (checked against the recorded input shape and class count), else the model
    is rebuilt from the agent's metadata; the images are rebuilt when ``need_data`` (to play
    episodes on them), else a blank placeholder builds the spaces. Nothing is unpickled.
    """
    from saliency_gym.agents.agent_checkpoints import agent_env, build_policy, load_agent_payload
    from saliency_gym.envs.saliency import unwrap_search_env

    path, name = agent_file(agent)
    payload = load_agent_payload(path)
    raw_meta = payload.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    trained = meta.get(MODEL_META) if isinstance(meta.get(MODEL_META), dict) else None
    stand_ins = {
        key: value
        for key, value in payload["env_kwargs"].items()
        if key in STAND_IN_PREFIXES and isinstance(value, str) and value.startswith(STAND_IN_PREFIXES[key])
    }
    if classifier is not None and trained is not None:
        check_agent_fits(name, classifier, trained.get("input_shape"), trained.get("num_classes"))
    elif classifier is not None and isinstance(stand_ins.get("data"), str):
        check_agent_fits(name, classifier, _shape_in_stand_in(stand_ins["data"]))
    overrides: dict[str, Any] = {}
    if "classifier" in stand_ins:
        overrides["classifier"] = classifier if classifier is not None else rebuild_classifier(trained, name, device)
    if "data" in stand_ins:
        own = overrides.get("classifier") or classifier or rebuild_classifier(trained, name, device)
        overrides["data"] = _rebuild_data(meta.get(DATA_META), name, own) if need_data else _placeholder_data(own)
    env = agent_env(payload, **overrides)
    policy = build_policy(payload, env.observation_space, env.action_space, device=device or "cpu")
    config = unwrap_search_env(env).config
    info = {k: v for k, v in payload.items() if k not in ("policy_state", "optimizer_state")}
    info.update(config=config, path=str(path), env_overrides=overrides)
    agent_policy = AgentPolicy(policy, name=name, observe_score=config.observe_score)
    if classifier is not None:  # what the network observes must be what this classifier takes
        check_agent_fits(name, classifier, *_observed(agent_policy))
    return agent_policy, info


class PolicyExplainer(Explainer):
    """Saliency maps from deterministic rollouts of ``policy`` in a saliency-search episode.

    Args:
        classifier: the model to explain (an ``nn.Module`` with ``input_shape``, as every explainer
            takes it); ``None`` with a trained agent's name or path: the classifier it was trained
            on (an agent trained on your own model rebuilds it from its metadata).
        policy: the policy that orders the cells, or the name or path (a ``.pt``/``.zip`` file or a
            run folder) of a trained agent (see :func:`~saliency_gym.agents.pretrained.shipped_agents`
            and :func:`open_agent`), loaded on the classifier's device; an agent's training settings
            are then the defaults of ``mode``, ``grid``, ``substrate`` and ``observe_score``. An
            agent must observe images of the classifier's input shape (``ValueError`` otherwise).
        mode: ``"reveal"`` (insertion, the default) or ``"mask"`` (deletion) episodes.
        grid: cells per side or ``(rows, cols)``, as the environments take it (default 8).
        substrate: what hidden/masked cells show (default as the environments: blur / zeros).
        scoring: ``"order"`` or ``"gain"`` (see the module docstring).
        budget: cells per episode (default all); cells never chosen rank last.
        observe_score: whether the policy observes the score (default: what the policy needs).
        name: label used in tables (default: the policy's name).
        input_shape: per-image ``(C, H, W)`` of a raw ``nn.Module`` classifier.
        feature_layer: the layer whose pooled activations a feature-observing policy reads
            (``policy.observe_features``); default: a trained agent's own, else Grad-CAM's layer.

    Queries (:meth:`expected_queries`). Open loop, a policy that reads nothing the rollout must
    query (its ``observe_features`` is ``"image"`` or ``"none"``, no score) with ``"order"`` scoring:
    one query per image for the image's features (none for a pixel policy). Closed loop, a policy
    that reads the canvas's features or the score, or ``"gain"`` scoring: one query per step plus
    the start (reveal: the substrate, and the image when its features are read; mask: the image).
    """

    name: ClassVar[str] = "policy"  # the registry's name; instances carry the policy's label

    def __init__(
        self,
        classifier: FrozenClassifier | nn.Module | None,
        policy: Policy | str | os.PathLike[str],
        *,
        mode: str | None = None,
        grid: int | tuple[int, int] | None = None,
        substrate: Any = None,
        scoring: str = "order",
        budget: int | None = None,
        observe_score: bool | None = None,
        name: str | None = None,
        input_shape: Sequence[int] | None = None,
        feature_layer: str | None = None,
    ) -> None:
        own = None if classifier is None else as_classifier(classifier, input_shape)
        reader = policy_reader(policy) if isinstance(policy, (str, os.PathLike)) else None
        if reader is not None:
            if own is None:
                raise TypeError(f"a {reader.name} run explains the classifier you pass: PolicyExplainer(classifier, run)")
            # e.g. a folder of `saliency-gym train --engine ray`: Ray is imported only here.
            policy, settings = reader.load(policy, device=str(own.device))
            mode = settings["mode"] if mode is None else mode
            grid = settings["grid"] if grid is None else grid
            substrate = settings["substrate"] if substrate is None else substrate
            observe_score = settings["observe_score"] if observe_score is None else observe_score
        elif isinstance(policy, (str, os.PathLike)):
            # SB3 is loaded only here; an agent trained on your own model reopens it when own is None.
            policy, info = open_agent(policy, own, device=None if own is None else str(own.device))
            trained = info["config"]
            own = trained.classifier if own is None else own
            mode = trained.mode if mode is None else mode
            grid = trained.grid.shape if grid is None else grid
            substrate = trained.substrate if substrate is None else substrate
            observe_score = trained.observe_score if observe_score is None else observe_score
            feature_layer = trained.feature_layer_name if feature_layer is None else feature_layer
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a saliency_gym.agents.Policy or an agent's name, got {type(policy).__name__}")
        if own is None:
            raise TypeError("classifier is required, except with a trained agent's name or path (then its own classifier explains)")
        super().__init__(own)
        shape, classes = _observed(policy)
        check_agent_fits(policy.name, self.classifier, shape, classes)
        self.policy = policy
        self.mode = check_choice("mode", "reveal" if mode is None else mode, ("reveal", "mask"))
        self.scoring = check_choice("scoring", scoring, SCORINGS)
        self.grid = 8 if grid is None else grid
        self.substrate, self.budget = substrate, budget
        self.observe_score = policy.needs_scores if observe_score is None else bool(observe_score)
        self.feature_layer = feature_layer
        self.name = name or f"{policy.name}"  # type: ignore[misc]
        # Validate the settings once, on a dummy image, so errors surface at construction.
        self._dummy = self._config(np.zeros((1, *self.classifier.input_shape), np.float32), np.zeros(1, np.int64))

    # The classifier may be None (an agent's own), so Explainer's wrapper must not convert it first.
    __init__._accepts_modules = True  # type: ignore[attr-defined]

    def _config(self, images: np.ndarray, targets: np.ndarray) -> SaliencySearchConfig:
        names = self.classifier.class_names or tuple(str(i) for i in range(self.classifier.num_classes))
        data = ArraySource(images, targets, class_names=names, name="explained")
        return SaliencySearchConfig.from_kwargs(
            self.mode, classifier=self.classifier, data=data, grid=self.grid, substrate=self.substrate,
            budget=self.budget, target="label", observe_score=self.observe_score,
            observe_class=self.policy.needs_class, observe_features=self.policy.observe_features,
            feature_layer=self.feature_layer if self.policy.observe_features != "none" else None,
        )  # fmt: skip

    @property
    def needs_queries(self) -> bool:
        """Whether the rollout itself asks the classifier (gain scoring or a score-observing policy)."""
        return self.scoring == "gain" or self.policy.needs_scores

    @property
    def loop(self) -> str:
        """``"closed"`` (the rollout queries the classifier at every step) or ``"open"``."""
        return "closed" if self.needs_queries else "open"

    def expected_queries(self) -> float | None:
        """Queries per image (see the class docstring), plus the policy's own (``None`` if unknown):
        a scored rollout of ``B`` cells costs ``B`` steps and its start (the substrate when
        revealing, the image when masking), plus the image when its features are observed and the
        start is not the image; an unscored one only the image's features, if observed."""
        cfg = self._dummy
        own = self.policy.expected_queries(cfg.grid.num_cells, cfg.budget)
        if own is None:
            return None
        scored = self.needs_queries
        image = cfg.image_features or (scored and cfg.mode == "mask")
        return (cfg.budget + int(cfg.mode == "reveal") if scored else 0) + int(image) + own

    def rollout(self, images: torch.Tensor, targets: torch.Tensor) -> SaliencySearchCore:
        """Play one episode per image to its end and return the engine holding the episodes."""
        n = images.shape[0]
        cfg = self._config(images.detach().cpu().numpy(), targets.cpu().numpy())
        core = SaliencySearchCore(cfg, n)
        score = self.needs_queries
        everyone, nobody = np.ones(n, bool), np.zeros(n, bool)
        core.advance(None, nobody, everyone, options={"image_index": np.arange(n)}, score=score)
        self.policy.reset(core)
        for _ in range(cfg.budget):
            actions = np.asarray(self.policy.act(core.observation(), core.action_masks(), core=core), dtype=np.int64)
            if not core.action_masks()[np.arange(n), actions].all():
                raise RuntimeError(f"policy {self.policy.name} chose a cell it was not allowed to")
            core.advance(actions, everyone, nobody, score=score)
        return core

    def attribute_batch(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        core = self.rollout(images, targets)
        k = core.num_cells
        maps = np.empty((images.shape[0], *images.shape[2:]), np.float32)
        for i in range(images.shape[0]):
            if self.scoring == "gain":
                maps[i] = core.saliency_map(i)
            else:
                chosen = int(core.n_chosen[i])
                values = np.full(k, -1.0 / k)  # never chosen: below every chosen cell
                values[core.order[i, :chosen]] = (k - np.arange(chosen)) / k
                maps[i] = core.cfg.grid.to_pixels(values)
        return torch.from_numpy(maps)
