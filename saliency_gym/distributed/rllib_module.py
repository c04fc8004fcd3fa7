"""An action-masking RLModule (RLlib's new API stack) for the saliency-gym ``Dict`` observations.

RLlib's action-masking example (``rllib/examples/rl_modules/classes/action_masking_rlm.py``)
reads the mask from the observation, under the key ``"action_mask"``, and adds ``log(mask)``
clamped to the dtype's minimum to the action logits, so a masked action has probability zero in
exploration, inference and training. :class:`SaliencyMaskingTorchModule` does the same for our
observations (built with ``observe_action_mask=True``): its encoder reads every other key, as they
are, and the logits of masked actions are set to ``torch.finfo(dtype).min``.

The encoder follows :class:`~saliency_gym.agents.extractors.SaliencyCNN` (the local trainer's
extractor) and works at the resolution of the action grid, for both environment families:

- pixel keys (``(C, H, W)`` images such as ``image``, ``canvas``, ``perturbation``; ``(H, W)`` maps
  such as ``attribution``) and grid keys (``(rows, cols)`` such as ``chosen``, upsampled to pixels)
  are stacked as channels; each cell's pixels are folded into the channel axis (a patch embedding)
  and small convolutions run over the ``rows x cols`` grid, so every cell sees its neighbours;
- vector keys (``score``, ``target``, ``foil``, ``budget``) enter as a learned per-channel bias of
  the first cell layer and as inputs of the value head;
- the actor is translation-equivariant, as :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy`:
  a 1x1 convolution gives ``actions_per_cell`` logits per cell (1 for saliency search; 2 for the
  attack's ``cell_sign`` actions, ``+`` then ``-``, in the env's action order);
- the critic reads the flattened cell features (plus grid and vector keys) through an MLP.

``model_config`` keys: ``grid`` (``(rows, cols)``; default: the shape of a 2-D key that is not the
image size, e.g. ``chosen``), ``channels`` (default 32), ``value_hidden`` (default 128).

This module imports Ray; it lives in :mod:`saliency_gym.distributed`, the only tree that does.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

__all__ = ["ACTION_MASK_KEY", "SaliencyMaskingTorchModule", "apply_action_mask"]

#: The observation key the mask is read from (``observe_action_mask=True`` adds it).
ACTION_MASK_KEY = "action_mask"


def _shape(space: gym.Space[Any]) -> tuple[int, ...]:
    """The shape of a (Box) space as a tuple of ints (``()`` for a space without one)."""
    return tuple(int(n) for n in (space.shape or ()))


def apply_action_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits`` with masked actions (``mask < 0.5``) set to the dtype's minimum.

    The result is finite, so a row whose actions are all masked (the terminal observation of an
    episode, which RLlib still feeds through the module before the NEXT_STEP autoreset ignores
    the action) gives a uniform distribution instead of NaNs.
    """
    return logits.masked_fill(mask < 0.5, torch.finfo(logits.dtype).min)


class SaliencyMaskingTorchModule(TorchRLModule, ValueFunctionAPI):
    """PPO actor-critic with action masking over a saliency-gym ``Dict`` observation.

    Built by RLlib from an ``RLModuleSpec(module_class=SaliencyMaskingTorchModule,
    model_config={...})``; see the module docstring for the architecture and ``model_config``.
    The observation space must be a ``Dict`` holding ``"action_mask"`` and a ``(C, H, W)``
    ``"image"``, the action space ``Discrete(actions_per_cell * rows * cols)``.
    """

    def setup(self) -> None:
        space = self.observation_space
        if not isinstance(space, gym.spaces.Dict) or ACTION_MASK_KEY not in space.spaces:
            raise ValueError(
                "SaliencyMaskingTorchModule needs a Dict observation with an 'action_mask' key: "
                f"build the environment with observe_action_mask=True (got {space})"
            )
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(
                f"SaliencyMaskingTorchModule needs a Discrete action space, got {self.action_space}"
            )
        if "image" not in space.spaces or len(_shape(space["image"])) != 3:
            raise ValueError("SaliencyMaskingTorchModule needs a (C, H, W) 'image' observation")
        raw = self.model_config
        config: dict[str, Any] = (
            dict(raw) if isinstance(raw, dict) else dict(vars(raw)) if raw is not None else {}
        )
        _, h, w = _shape(space["image"])
        self.image_size = (int(h), int(w))
        keys = sorted(k for k in space.spaces if k != ACTION_MASK_KEY)
        grid = config.get("grid")
        if grid is None:
            grid_shapes = {_shape(space[k]) for k in keys if len(_shape(space[k])) == 2} - {
                self.image_size
            }
            if len(grid_shapes) != 1:
                raise ValueError(
                    "pass model_config['grid'] = (rows, cols): the observation does not tell the grid"
                )
            grid = grid_shapes.pop()
        rows, cols = (int(grid[0]), int(grid[1]))
        self.grid = (rows, cols)
        num_cells = rows * cols
        n_actions = int(self.action_space.n)
        if n_actions % num_cells:
            raise ValueError(
                f"{n_actions} actions are not a whole number per cell of a {rows}x{cols} grid"
            )
        self.actions_per_cell = n_actions // num_cells
        channels = int(config.get("channels", 32))
        hidden = int(config.get("value_hidden", 128))
        if channels < 1 or hidden < 1:
            raise ValueError(
                f"channels and value_hidden must be positive, got {channels}, {hidden}"
            )

        self.pixel_keys: list[str] = []
        self.grid_keys: list[str] = []
        self.vector_keys: list[str] = []
        pixel_channels = 0
        for key in keys:
            shape = _shape(space[key])
            if len(shape) == 3 and shape[1:] == self.image_size:
                self.pixel_keys.append(key)
                pixel_channels += shape[0]
            elif len(shape) == 2 and shape in (self.image_size, self.grid):
                (self.pixel_keys if shape == self.image_size else self.grid_keys).append(key)
                pixel_channels += 1
            elif len(shape) == 1:
                self.vector_keys.append(key)
            else:
                raise ValueError(
                    f"observation key {key!r} of shape {shape} is neither an image, a map, a grid nor a vector"
                )
        self.patch = (math.ceil(h / rows), math.ceil(w / cols))
        self.resize = (rows * self.patch[0], cols * self.patch[1])
        patch_features = pixel_channels * self.patch[0] * self.patch[1]
        vector_size = sum(_shape(space[k])[0] for k in self.vector_keys)
        self.embed = nn.Conv2d(patch_features, channels, 1)
        self.vector_bias = nn.Linear(vector_size, channels, bias=False) if vector_size else None
        self.cells = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.logits_head = nn.Conv2d(channels, self.actions_per_cell, 1)
        nn.init.orthogonal_(self.logits_head.weight, gain=0.01)  # a near-uniform first policy
        if self.logits_head.bias is not None:
            nn.init.zeros_(self.logits_head.bias)
        grid_size = num_cells * len(self.grid_keys)
        self.value_head = nn.Sequential(
            nn.Linear(channels * num_cells + grid_size + vector_size, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    # ------------------------------------------------------------------ encoder
    def _encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-cell features ``(B, channels, rows, cols)`` and the critic's input ``(B, F)``."""
        parts = []
        for key in self.pixel_keys:
            x = obs[key].float()
            parts.append(x.unsqueeze(1) if x.dim() == 3 else x)
        for key in self.grid_keys:
            parts.append(
                F.interpolate(obs[key].float().unsqueeze(1), size=self.image_size, mode="nearest")
            )
        x = torch.cat(parts, dim=1)
        if tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        b, ch = x.shape[:2]
        (rows, cols), (ph, pw) = self.grid, self.patch
        cells = (
            x.reshape(b, ch, rows, ph, cols, pw)
            .permute(0, 1, 3, 5, 2, 4)
            .reshape(b, ch * ph * pw, rows, cols)
        )
        hidden = self.embed(cells)
        vectors = [obs[key].float().reshape(b, -1) for key in self.vector_keys]
        if self.vector_bias is not None:
            hidden = hidden + self.vector_bias(torch.cat(vectors, dim=1))[:, :, None, None]
        hidden = self.cells(hidden)
        critic_in = torch.cat(
            [hidden.flatten(1), *(obs[k].float().flatten(1) for k in self.grid_keys), *vectors],
            dim=1,
        )
        return hidden, critic_in

    def masked_logits(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Action logits with the observation's mask applied, and the critic's input."""
        hidden, critic_in = self._encode(obs)
        logits = self.logits_head(hidden).flatten(1)  # (B, actions_per_cell * cells): sign-major
        return apply_action_mask(logits, obs[ACTION_MASK_KEY].to(logits.device)), critic_in

    # ------------------------------------------------------------------ RLlib API
    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, _ = self.masked_logits(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, critic_in = self.masked_logits(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.EMBEDDINGS: critic_in}

    def compute_values(self, batch: dict[str, Any], embeddings: Any | None = None) -> torch.Tensor:
        if embeddings is None:
            _, embeddings = self._encode(batch[Columns.OBS])
        values: torch.Tensor = self.value_head(embeddings).squeeze(-1)
        return values
