"""Feature extractors for the saliency-search observations.

SB3's ``NatureCNN`` needs images of at least 36x36 and treats only uint8 boxes as images (float
images are flattened by ``CombinedExtractor``). Our observations are small float images plus a
grid of chosen cells, and the actions are the cells of that grid, so :class:`SaliencyCNN` works at
the resolution of the cells: it stacks ``image``, ``canvas`` and the chosen cells (upsampled to
pixels) as channels, folds each cell's pixels into the channel axis (a patch embedding, exact for
every pixel), and runs small convolutions over the ``rows x cols`` grid, so that every cell's
features see its neighbours. This costs about 2M multiply-adds per observation for a 32x32 image
and an 8x8 grid, so PPO updates stay cheap on a CPU.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
import torch.nn.functional as F
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from saliency_gym.validation import check_int


def _shape(observation_space: gym.spaces.Dict, key: str) -> tuple[int, ...]:
    """The shape of the observation ``key`` (a ``Box`` or ``MultiBinary``; every space the
    extractors read has one)."""
    shape = observation_space[key].shape
    if shape is None:
        raise ValueError(f"observation {key!r} has no shape ({observation_space[key]})")
    return tuple(int(n) for n in shape)


class SaliencyCNN(BaseFeaturesExtractor):
    """Per-cell convolutional features over ``image | canvas | chosen``.

    Args:
        observation_space: the environment's ``Dict`` space (keys ``image``, ``canvas``,
            ``chosen`` and optionally ``score``, ``target`` and ``foil``).
        features_dim: size of the global feature vector (what the value head and MLP policy heads
            read).
        channels: width of the convolutional layers.
        cell_scores: also output one score per cell from a 1x1 convolution (the same weights at
            every cell), placed first in the feature vector; :class:`CellMaskablePolicy` uses these
            scores directly as action logits, a translation-equivariant actor.
    """

    def __init__(
        self, observation_space: gym.spaces.Dict, features_dim: int = 128, channels: int = 32, cell_scores: bool = False
    ) -> None:
        missing = {"image", "canvas", "chosen"} - set(observation_space.spaces)
        if missing:
            raise ValueError(f"SaliencyCNN needs the observation keys image, canvas, chosen; missing {sorted(missing)}")
        features_dim = check_int("features_dim", features_dim, minimum=1)
        channels = check_int("channels", channels, minimum=1)
        c, h, w = _shape(observation_space, "image")
        grid = _shape(observation_space, "chosen")
        n_cells = grid[0] * grid[1]
        super().__init__(observation_space, features_dim + (n_cells if cell_scores else 0))
        self.grid = grid
        self.num_cells = n_cells
        self.cell_scores = bool(cell_scores)
        # Cell size in pixels; images whose size is not a multiple are resized to one first.
        self.patch = (math.ceil(h / grid[0]), math.ceil(w / grid[1]))
        self.resize = (grid[0] * self.patch[0], grid[1] * self.patch[1])
        self.has_score = "score" in observation_space.spaces
        # Class conditioning (``observe_class``): the explained class (and the foil) enter as a
        # learned per-channel bias of the first cell layer, so every cell's features depend on
        # which class is being explained.
        self.class_keys = tuple(key for key in ("target", "foil") if key in observation_space.spaces)
        self.class_embedding = nn.ModuleDict(
            {key: nn.Linear(_shape(observation_space, key)[0], channels, bias=False) for key in self.class_keys}
        )
        patch_features = (2 * c + 1) * self.patch[0] * self.patch[1]
        self.cnn = nn.Sequential(
            nn.Conv2d(patch_features, channels, 1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.cell_head = nn.Conv2d(channels, 1, 1) if cell_scores else None
        self.project = nn.Sequential(nn.Linear(channels * n_cells + n_cells + int(self.has_score), features_dim), nn.ReLU())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        image, canvas, chosen = observations["image"], observations["canvas"], observations["chosen"]
        chosen_pixels = F.interpolate(chosen.unsqueeze(1), size=image.shape[-2:], mode="nearest")
        x = torch.cat([image, canvas, chosen_pixels], dim=1)
        if tuple(x.shape[-2:]) != self.resize:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        b, ch = x.shape[:2]
        (rows, cols), (ph, pw) = self.grid, self.patch
        cells = x.reshape(b, ch, rows, ph, cols, pw).permute(0, 1, 3, 5, 2, 4).reshape(b, ch * ph * pw, rows, cols)
        hidden = self.cnn[0](cells)
        for key in self.class_keys:
            hidden = hidden + self.class_embedding[key](observations[key])[:, :, None, None]
        hidden = self.cnn[1:](hidden)
        parts = [hidden.flatten(1), chosen.flatten(1)]
        if self.has_score:
            parts.append(observations["score"])
        features = self.project(torch.cat(parts, dim=1))
        if self.cell_head is None:
            return features
        return torch.cat([self.cell_head(hidden).flatten(1), features], dim=1)


#: Observation keys :class:`EvidenceCNN` reads, beside ``chosen``: each one a ``(C, rows, cols)``
#: grid of the classifier's pooled activations (the environments' ``observe_features``).
FEATURE_KEYS = ("image_features", "canvas_features")


def _signed_log(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) log(1 + |x|)``: activations of any model on a comparable scale."""
    return torch.sign(x) * torch.log1p(x.abs())


class EvidenceCNN(BaseFeaturesExtractor):
    """A per-cell scorer over the frozen classifier's own evidence (RExL's observation).

    Reads ``image_features`` and/or ``canvas_features`` (the classifier's activations at its
    Grad-CAM layer, average-pooled to the grid: see ``observe_features``), the ``chosen`` cells,
    and, when present, the current ``score`` and the explained class (``target``/``foil``
    one-hots). A 1x1 convolution embeds each cell's features (plus their difference, image minus
    canvas: the evidence still hidden), the score and the class enter as learned per-channel
    biases, and two 3x3 convolutions let each cell see its neighbours. Only convolutions act on
    the grid, so the same weights score a 7x7 or a 16x16 grid. The output is one score per cell
    (first, for :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy`'s logits) and a
    global vector (mean and max over cells) for the value head.

    Args:
        observation_space: the environment's ``Dict`` space (``chosen`` and at least one of
            :data:`FEATURE_KEYS`).
        features_dim: size of the global feature vector.
        channels: width of the convolutional layers.
        cell_scores: output the per-cell scores first (the cell policy sets it).
    """

    supports_cell_scores = True

    def __init__(
        self, observation_space: gym.spaces.Dict, features_dim: int = 128, channels: int = 64, cell_scores: bool = False
    ) -> None:
        self.feature_keys = tuple(key for key in FEATURE_KEYS if key in observation_space.spaces)
        if not self.feature_keys or "chosen" not in observation_space.spaces:
            raise ValueError(
                "EvidenceCNN needs the observation keys chosen and image_features and/or canvas_features; "
                "make the environment with observe_features=True (or 'image', 'canvas')"
            )
        features_dim = check_int("features_dim", features_dim, minimum=1)
        channels = check_int("channels", channels, minimum=1)
        grid = _shape(observation_space, "chosen")
        n_cells = grid[0] * grid[1]
        super().__init__(observation_space, features_dim + (n_cells if cell_scores else 0))
        self.grid, self.num_cells, self.cell_scores = grid, n_cells, bool(cell_scores)
        feature_channels = _shape(observation_space, self.feature_keys[0])[0]
        both = len(self.feature_keys) == 2
        inputs = feature_channels * (3 if both else 1) + 1
        self.embed = nn.Conv2d(inputs, channels, 1)
        self.has_score = "score" in observation_space.spaces
        self.score_embedding = nn.Linear(1, channels, bias=False) if self.has_score else None
        self.class_keys = tuple(key for key in ("target", "foil") if key in observation_space.spaces)
        self.class_embedding = nn.ModuleDict(
            {key: nn.Linear(_shape(observation_space, key)[0], channels, bias=False) for key in self.class_keys}
        )
        self.cnn = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.cell_head = nn.Conv2d(channels, 1, 1) if cell_scores else None
        self.project = nn.Sequential(nn.Linear(2 * channels + int(self.has_score), features_dim), nn.ReLU())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        chosen = observations["chosen"].unsqueeze(1)
        maps = [_signed_log(observations[key]) for key in self.feature_keys]
        if len(maps) == 2:
            maps.append(maps[0] - maps[1])  # the evidence the canvas does not show yet
        hidden = self.embed(torch.cat([*maps, chosen], dim=1))
        if self.score_embedding is not None:
            hidden = hidden + self.score_embedding(observations["score"])[:, :, None, None]
        for key in self.class_keys:
            hidden = hidden + self.class_embedding[key](observations[key])[:, :, None, None]
        hidden = self.cnn(hidden)
        pooled = [hidden.mean(dim=(2, 3)), hidden.amax(dim=(2, 3))]
        if self.has_score:
            pooled.append(observations["score"])
        features = self.project(torch.cat(pooled, dim=1))
        if self.cell_head is None:
            return features
        return torch.cat([self.cell_head(hidden).flatten(1), features], dim=1)


class AttackCNN(BaseFeaturesExtractor):
    """Per-cell scores of signed steps over the attribution-attack observations.

    Reads ``image``, ``perturbation``, ``attribution`` and, when present, ``original_attribution``
    (``observe_original=True``) of :class:`~saliency_gym.envs.attack.AttributionAttackEnv`. The
    perturbation enters as its sign (-1, 0, +1), so the same weights act at every ``epsilon``; the
    maps enter as they are (scaled to [-1, 1] by the environment), plus their difference when both
    are observed (where the map has moved). Three pixel-level convolutions (two of stride 2) see
    local texture, an average pool brings them to the action grid, and two 3x3 convolutions over the
    grid let each cell see its neighbours. The output is two scores per cell, first all ``+step``
    cells, then all ``-step`` cells (the environment's action ids, for
    :class:`~saliency_gym.agents.cell_policy.CellMaskablePolicy`'s logits), and a global vector (mean
    and max over cells, plus the budget left) for the value head.

    Args:
        observation_space: the attack environment's ``Dict`` space.
        grid: the environment's ``(rows, cols)`` action grid (``cell_sign`` actions; default 4x4).
        features_dim: size of the global feature vector.
        channels: width of the convolutional layers.
        cell_scores: output the per-cell scores first (the cell policy sets it).
    """

    supports_cell_scores = True

    def __init__(
        self, observation_space: gym.spaces.Dict, grid: int | tuple[int, int] = 4, features_dim: int = 128,
        channels: int = 32, cell_scores: bool = False,
    ) -> None:  # fmt: skip
        missing = {"image", "perturbation", "attribution", "budget"} - set(observation_space.spaces)
        if missing:
            raise ValueError(f"AttackCNN reads the attribution-attack observations; missing keys {sorted(missing)}")
        rows, cols = (grid, grid) if isinstance(grid, int) else tuple(grid)
        rows, cols = check_int("grid rows", rows, minimum=1), check_int("grid cols", cols, minimum=1)
        features_dim = check_int("features_dim", features_dim, minimum=1)
        channels = check_int("channels", channels, minimum=1)
        c, h, w = _shape(observation_space, "image")
        if h < rows or w < cols:
            raise ValueError(f"grid {rows}x{cols} is finer than the {h}x{w} image")
        n_logits = 2 * rows * cols
        super().__init__(observation_space, features_dim + (n_logits if cell_scores else 0))
        self.grid, self.num_cells, self.cell_scores = (rows, cols), n_logits, bool(cell_scores)
        self.has_original = "original_attribution" in observation_space.spaces
        inputs = 2 * c + 1 + 2 * int(self.has_original)
        self.pixels = nn.Sequential(
            nn.Conv2d(inputs, channels // 2, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.cells = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.cell_head = nn.Conv2d(channels, 2, 1) if cell_scores else None
        self.project = nn.Sequential(nn.Linear(2 * channels + 1, features_dim), nn.ReLU())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        current = observations["attribution"].unsqueeze(1)
        planes = [observations["image"], torch.sign(observations["perturbation"]), current]
        if self.has_original:
            original = observations["original_attribution"].unsqueeze(1)
            planes += [original, current - original]
        hidden = self.cells(F.adaptive_avg_pool2d(self.pixels(torch.cat(planes, dim=1)), self.grid))
        budget = observations["budget"].reshape(len(hidden), 1)
        features = self.project(torch.cat([hidden.mean(dim=(2, 3)), hidden.amax(dim=(2, 3)), budget], dim=1))
        if self.cell_head is None:
            return features
        # Channel 0 scores +step, channel 1 -step: action ids are cells first, then cells + cells.
        return torch.cat([self.cell_head(hidden).flatten(2).flatten(1), features], dim=1)


EXTRACTORS: dict[str, type[BaseFeaturesExtractor]] = {"saliency_cnn": SaliencyCNN, "evidence_cnn": EvidenceCNN, "attack_cnn": AttackCNN}
