"""A module trained on RLlib as a saliency-gym :class:`~saliency_gym.agents.policies.Policy`.

``saliency-gym train --engine ray`` (:func:`~saliency_gym.distributed.rllib_training.train_rllib`)
writes the final module to ``<out>/final/``: RLlib's own RLModule checkpoint
(``RLModule.from_checkpoint`` opens it) plus :data:`POLICY_META` (``saliency_gym_rllib.json``: the
env id, its arguments and the settings a rollout needs). :func:`load_rllib_policy` opens that
folder, the run folder itself, or any RLlib checkpoint the run wrote
(``<out>/checkpoints/step_<n>``), and returns an :class:`RLlibPolicy`; the policy explainer and
``bench`` take the path wherever they take an SB3 agent's::

    from saliency_gym.agents import PolicyExplainer
    explainer = PolicyExplainer(classifier, "runs/reveal_ray/final")     # a path: loaded here
    policy, settings = load_rllib_policy("runs/reveal_ray")               # or the Policy itself

Trust: an RLlib checkpoint stores its module class and spaces with pickle (cloudpickle), which
runs code when loaded, as SB3's ``.zip`` ``data`` member does, and no inspection can make that
safe: only open RLlib checkpoints you produced (never one downloaded or received from someone).

Only saliency-search modules are Policies (one action per cell); attack modules are trained and
checkpointed the same way but are not rolled out by the policy explainer. Ray is imported when a
module is loaded, never when this module is imported, so :func:`is_rllib_policy_path` is cheap.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from saliency_gym.agents.policies import Observation, Policy

if TYPE_CHECKING:
    from saliency_gym.envs.core import SaliencySearchCore

__all__ = ["POLICY_META", "RLlibPolicy", "is_rllib_policy_path", "load_rllib_policy", "module_path"]

#: Metadata written beside the final module (and beside every algorithm checkpoint of a run).
POLICY_META = "saliency_gym_rllib.json"
#: Format tag of :data:`POLICY_META`.
POLICY_FORMAT = "saliency_gym.rllib_policy/v1"
#: Where an RLlib algorithm checkpoint keeps the module of the default policy.
ALGORITHM_MODULE_SUBDIR = Path("learner_group") / "learner" / "rl_module" / "default_policy"


class RLlibPolicy(Policy):
    """A trained :class:`~saliency_gym.distributed.rllib_module.SaliencyMaskingTorchModule`
    choosing cells deterministically: the arg-max of its masked logits over the allowed cells.

    Args:
        module: the RLlib module (trained on a saliency-search env with ``observe_action_mask``).
        name: label used in tables.
        device: where the module runs (default: where its parameters are).
    """

    def __init__(
        self, module: Any, name: str = "rllib_agent", device: str | torch.device | None = None
    ) -> None:
        from saliency_gym.distributed.rllib_module import ACTION_MASK_KEY

        spaces = getattr(module.observation_space, "spaces", None)
        if spaces is None or ACTION_MASK_KEY not in spaces:
            raise TypeError(
                "RLlibPolicy needs a module trained on a Dict observation with an 'action_mask'"
            )
        if getattr(module, "actions_per_cell", 1) != 1:
            raise ValueError(
                "this module acts on attack cell_sign actions (two per cell): only saliency-search modules are Policies"
            )
        self.module = module
        self.name = name
        self.keys = [key for key in spaces if key != ACTION_MASK_KEY]
        self.needs_scores = "score" in spaces
        self.needs_class = "target" in spaces
        if (
            device is not None
        ):  # else the module stays where it is (a learner's module is not moved)
            self.module.to(device)
        first = next(iter(module.parameters()), None)
        self.device = first.device if first is not None else torch.device("cpu")

    @torch.no_grad()
    def act(
        self, obs: Observation, action_masks: np.ndarray, core: SaliencySearchCore | None = None
    ) -> np.ndarray:
        from ray.rllib.core.columns import Columns

        from saliency_gym.distributed.rllib_module import ACTION_MASK_KEY, apply_action_mask

        missing = [key for key in self.keys if key not in obs]
        if missing:
            raise ValueError(
                f"the module was trained on observations with {missing}; the rollout does not provide them"
            )
        masks = np.asarray(action_masks, bool)
        batch = {
            key: torch.as_tensor(np.asarray(obs[key]), device=self.device) for key in self.keys
        }
        batch[ACTION_MASK_KEY] = torch.as_tensor(masks, dtype=torch.float32, device=self.device)
        out = self.module.forward_inference({Columns.OBS: batch})
        logits = out[Columns.ACTION_DIST_INPUTS]
        if logits.shape != masks.shape:
            raise ValueError(
                f"the module gives {tuple(logits.shape)} logits for {masks.shape} action masks"
            )
        return apply_action_mask(logits, batch[ACTION_MASK_KEY]).argmax(dim=1).cpu().numpy()

    def __repr__(self) -> str:
        return f"RLlibPolicy(name={self.name!r})"


def _meta_file(path: Path) -> Path | None:
    """The metadata file that describes the module at ``path`` (a final folder, a run folder or an
    algorithm checkpoint of a run), or ``None``."""
    for candidate in (path / POLICY_META, path / "final" / POLICY_META, path.parent.parent / "final" / POLICY_META,
                      path.parent.parent / POLICY_META):  # fmt: skip
        if candidate.is_file():
            return candidate
    return None


def module_path(path: str | os.PathLike[str]) -> Path:
    """The RLModule checkpoint folder at ``path``: ``path`` itself (a module checkpoint, e.g.
    ``<out>/final``), ``<path>/final`` (a run folder), or the default policy's module inside an
    algorithm checkpoint (``<out>/checkpoints/step_<n>``); ``FileNotFoundError`` otherwise."""
    path = Path(path)
    for candidate in (path, path / "final", path / ALGORITHM_MODULE_SUBDIR):
        # A module checkpoint has a module_state (an algorithm checkpoint has algorithm_state).
        if (candidate / "class_and_ctor_args.pkl").is_file() and any(
            candidate.glob("module_state*")
        ):
            return candidate
    raise FileNotFoundError(
        f"no RLlib module checkpoint at {path} (a run folder, its final/ or a checkpoints/step_<n>)"
    )


def is_rllib_policy_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by ``saliency-gym train --engine ray`` (cheap: no Ray)."""
    folder = Path(path)
    return folder.is_dir() and _meta_file(folder) is not None


def read_policy_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of the module at ``path`` (see :func:`load_rllib_policy`)."""
    meta_file = _meta_file(Path(path))
    if meta_file is None:
        raise FileNotFoundError(
            f"{path} has no {POLICY_META}: not a folder written by saliency-gym train --engine ray"
        )
    meta: dict[str, Any] = json.loads(meta_file.read_text())
    if meta.get("format") != POLICY_FORMAT:
        raise ValueError(
            f"{meta_file} has format {meta.get('format')!r}, expected {POLICY_FORMAT!r}"
        )
    return meta


def load_rllib_policy(
    path: str | os.PathLike[str], device: str | None = None
) -> tuple[RLlibPolicy, dict[str, Any]]:
    """An :class:`RLlibPolicy` and its settings from a run of ``saliency-gym train --engine ray``.

    ``path`` is the run folder, its ``final/`` folder or one of its ``checkpoints/step_<n>``. The
    settings (a dict) hold ``env_id``, ``env_kwargs`` (as stored), ``mode``, ``grid``,
    ``substrate`` (``None``: the mode's default or not storable), ``observe_score``,
    ``observe_class`` and ``num_timesteps``: what the policy explainer needs to roll the policy
    out as it was trained. ``device`` defaults to CUDA when available.

    Security: RLlib reads the checkpoint with pickle (``class_and_ctor_args.pkl``, cloudpickled
    spaces and module state), which runs any code a crafted file holds. Only open RLlib
    checkpoints you produced.
    """
    from ray.rllib.core.rl_module.rl_module import RLModule

    meta = read_policy_meta(path)
    if meta.get("family") != "saliency":
        raise ValueError(
            f"{path} holds a module trained on {meta.get('env_id')}: only saliency-search modules are Policies"
        )
    folder = module_path(path)
    module = RLModule.from_checkpoint(str(folder))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = Path(meta.get("name") or Path(path).resolve().name)
    policy = RLlibPolicy(module, name=str(name), device=device)
    settings = {key: meta.get(key) for key in ("env_id", "env_kwargs", "mode", "grid", "substrate", "observe_score",
                                               "observe_class", "num_timesteps")}  # fmt: skip
    settings["grid"] = tuple(settings["grid"]) if settings["grid"] is not None else None
    settings["path"] = str(folder)
    return policy, settings


class RLlibPolicyReader:
    """Opens RLlib run folders for :class:`~saliency_gym.agents.policy_explainer.PolicyExplainer`.

    Registered under the entry-point group ``saliency_gym.policy_readers`` (``pyproject.toml``), so
    the policy explainer (a plugin, below this engine) finds it without importing the engine."""

    name = "rllib"

    @staticmethod
    def detects(path: str | os.PathLike[str]) -> bool:
        return is_rllib_policy_path(path)

    @staticmethod
    def load(path: str | os.PathLike[str], device: str | None = None) -> tuple[RLlibPolicy, dict[str, Any]]:
        return load_rllib_policy(path, device=device)


#: The reader the entry point names.
RLLIB_POLICY_READER = RLlibPolicyReader()
