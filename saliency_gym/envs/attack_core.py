"""The batched engine behind the attribution-attack environments.

:class:`AttributionAttackCore` advances ``N`` attack episodes at once. Per call it sends the
classifier one batched probability query (the perturbed images of the episodes that step, plus the
images of the episodes that (auto)reset) and the explainer one batched explanation call (the
attribution maps of the new states). The single environment is this engine with ``N = 1`` and the
vector environment is this engine with ``N = num_envs``, so the two can never drift apart.

Notation. ``x`` is the original image, ``δ`` the perturbation (the state), ``x' = x + δ`` the
perturbed image, ``c`` the class the classifier predicts for ``x`` (the explained class, and the
label the attack must keep), ``m(x')`` the attribution map of ``x'`` for ``c`` (after
``map_transform``), and ``D(a, b) = saliency_gym.metrics.similarity.dissimilarity(name, a, b)``.
The *shift* of a state is ``D(m(x), m(x'))``; the *kept shift* is the shift of the last state whose
prediction was still ``c``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.envs.attack_config import AttributionAttackConfig
from saliency_gym.envs.engine import BatchedEngine, StepOutcome
from saliency_gym.envs.render import render_attack
from saliency_gym.metrics.similarity import dissimilarity
from saliency_gym.perturbation import project_perturbation
from saliency_gym.types import MapBatch, ObsDict


class AttackStepOutcome(StepOutcome):
    """An attack step. Reward parts: ``shift`` (increase of the kept shift, the attribution shift
    of label-kept states) and ``penalty`` (``label_change_penalty`` where this step's perturbed image
    changed the prediction). Flags: ``label_changed`` (this step's candidate image was classified
    differently from the original) and ``reverted`` (the step was undone,
    ``on_label_change="revert"``)."""

    reward_names = ("shift", "penalty")
    flag_names = ("label_changed", "reverted")


class AttributionAttackCore(BatchedEngine[AttributionAttackConfig]):
    """``num_envs`` attribution-attack episodes, as arrays.

    Per episode it tracks, beyond the base's image, label, target and counters: the perturbation
    ``delta`` (and ``delta_np``), the ``original_maps`` and current ``maps``, the current
    ``predictions``, the ``shift`` / ``initial_shift`` / ``kept_shift`` and the ``label_changes``.
    Each :meth:`advance` sends one batched classifier query and one batched explanation.
    """

    def __init__(self, config: AttributionAttackConfig, num_envs: int) -> None:
        super().__init__(config, num_envs)
        map_batch = (num_envs, *config.classifier.input_shape[1:])
        # The perturbation (state) on the device and its host copy, observed.
        self.delta = torch.zeros_like(self.images)
        self.delta_np = np.zeros_like(self.images_np)
        self.original_maps = np.zeros(map_batch, np.float32)
        self.maps = np.zeros(map_batch, np.float32)
        self.predictions = np.zeros(num_envs, np.int64)
        self.shift = np.zeros(num_envs, np.float64)
        self.initial_shift = np.zeros(num_envs, np.float64)
        self.kept_shift = np.zeros(num_envs, np.float64)
        self.best_shift = np.zeros(num_envs, np.float64)
        self.label_changes = np.zeros(num_envs, np.int64)
        self.explanations = np.zeros(num_envs, np.int64)
        # The per-pixel signs of "noise" cell steps (all ones for "uniform"): fixed for the engine.
        generator = torch.Generator(device="cpu").manual_seed(config.pattern_seed)
        signs = torch.randint(0, 2, tuple(config.classifier.input_shape), generator=generator).float() * 2 - 1
        self.step_signs = (signs if config.step_pattern == "noise" else torch.ones_like(signs)).to(self.device)

    # ------------------------------------------------------------------ pieces
    def _maps(self, images: torch.Tensor, targets: np.ndarray) -> tuple[MapBatch, np.ndarray]:
        """Transformed attribution maps of ``images`` for ``targets`` and the queries per image."""
        explanation = self.cfg.explainer.explain(images, targets)
        maps = explanation.maps
        if self.cfg.map_transform == "abs":
            maps = np.abs(maps)
        per_image = np.full(len(maps), int(round(explanation.queries_per_image)), np.int64)
        return maps.astype(np.float32), per_image

    def _shift(self, reference: np.ndarray, maps: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        return dissimilarity(cfg.dissimilarity, reference, maps, k=cfg.k, w=cfg.w, nan_value=cfg.nan_value)

    def action_to_step(self, actions: np.ndarray) -> torch.Tensor:
        """Pixel-space steps ``(m, C, H, W)`` for ``m`` actions (see the environment docstring)."""
        c, h, w = self.cfg.classifier.input_shape
        m = len(actions)
        if self.cfg.action_type == "cell_sign":
            acts = torch.from_numpy(np.asarray(actions, np.int64)).to(self.device)
            cells, signs = acts % self.num_cells, torch.where(acts < self.num_cells, 1.0, -1.0)
            hit = (self._cell_index.view(1, h, w) == cells.view(m, 1, 1)).float()
            return signs.view(m, 1, 1, 1) * self.cfg.step_size * hit.unsqueeze(1) * self.step_signs
        acts = torch.from_numpy(np.clip(np.asarray(actions, np.float32), -1.0, 1.0)).to(self.device)
        per_cell = acts.reshape(m, c, self.num_cells)
        return self.cfg.step_size * per_cell[:, :, self._cell_index]

    def adversarial_images(self, idx: np.ndarray | slice = slice(None)) -> torch.Tensor:
        """The perturbed images ``x + δ`` (clamped to [0, 1] against float round-off)."""
        return (self.images[idx] + self.delta[idx]).clamp(0.0, 1.0)

    # ------------------------------------------------------------------ transitions
    def advance(
        self,
        actions: np.ndarray | None,
        step_mask: np.ndarray,
        reset_mask: np.ndarray,
        seeds: Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> AttackStepOutcome:
        """Step the environments in ``step_mask`` with ``actions`` and reset those in ``reset_mask``:
        one batched classifier query and one batched explanation for all of them."""
        cfg = self.cfg
        out = AttackStepOutcome.zeros(self.n)
        reset_idx = np.flatnonzero(reset_mask)
        step_idx = np.flatnonzero(step_mask & ~reset_mask)
        if len(reset_idx):
            self._load_episodes(reset_idx, seeds, options)
        candidates = torch.zeros(0)
        if len(step_idx):
            if actions is None:
                raise ValueError("stepping episodes needs actions")
            steps = self.action_to_step(actions[step_idx])
            candidates = project_perturbation(self.delta[step_idx] + steps, self.images[step_idx], cfg.epsilon)

        # 1. One classifier query: original images of resets, perturbed images of steps.
        batch: list[torch.Tensor] = []
        if len(reset_idx):
            batch.append(self.images[reset_idx])
        if len(step_idx):
            batch.append((self.images[step_idx] + candidates).clamp(0.0, 1.0))
        predicted = np.zeros(0, np.int64)
        if batch:
            predicted = cfg.classifier.probs(torch.cat(batch), validate=False).argmax(dim=1).cpu().numpy()
        reset_pred, step_pred = predicted[: len(reset_idx)], predicted[len(reset_idx) :]
        if len(reset_idx):
            self.targets[reset_idx] = self.predictions[reset_idx] = reset_pred
            self.queries[reset_idx] += 1

        # 2. Which candidate states are adopted.
        adopt_idx, adopt_rows = np.zeros(0, np.int64), np.zeros(0, np.int64)
        changed = np.zeros(0, bool)
        if len(step_idx):
            self.queries[step_idx] += 1
            changed = step_pred != self.targets[step_idx]
            out.flags["label_changed"][step_idx] = changed
            self.label_changes[step_idx] += changed
            adopt = ~changed if cfg.on_label_change == "revert" else np.ones(len(step_idx), bool)
            out.flags["reverted"][step_idx] = ~adopt
            adopt_rows = np.flatnonzero(adopt)
            adopt_idx = step_idx[adopt_rows]
            if len(adopt_idx):
                self.delta[adopt_idx] = candidates[adopt_rows]
                self.delta_np[adopt_idx] = candidates[adopt_rows].cpu().numpy()
                self.predictions[adopt_idx] = step_pred[adopt_rows]

        # 3. One batched explanation: original maps of resets, maps of the adopted states.
        explain_idx = np.concatenate([reset_idx, adopt_idx])
        if len(explain_idx):
            images = torch.cat([self.images[reset_idx], self.adversarial_images(adopt_idx)])
            maps, queries = self._maps(images, self.targets[explain_idx])
            self.queries[explain_idx] += queries
            self.explanations[explain_idx] += 1
            self.maps[explain_idx] = maps
            self.original_maps[reset_idx] = maps[: len(reset_idx)]
        if len(reset_idx):
            start = self._shift(self.original_maps[reset_idx], self.maps[reset_idx])
            self.shift[reset_idx] = self.initial_shift[reset_idx] = self.kept_shift[reset_idx] = start
            self.best_shift[reset_idx] = start
            if cfg.start == "pattern":
                self._pattern_start(reset_idx)

        # 4. Rewards: increase of the kept shift, penalty for label changes.
        if len(step_idx):
            if len(adopt_idx):
                self.shift[adopt_idx] = self._shift(self.original_maps[adopt_idx], self.maps[adopt_idx])
            kept_now = self.predictions[step_idx] == self.targets[step_idx]
            new_kept = np.where(kept_now, self.shift[step_idx], self.kept_shift[step_idx])
            new_best = np.maximum(self.best_shift[step_idx], new_kept)
            if cfg.reward == "best":
                out.reward_parts["shift"][step_idx] = new_best - self.best_shift[step_idx]
            else:
                out.reward_parts["shift"][step_idx] = new_kept - self.kept_shift[step_idx]
            self.kept_shift[step_idx] = new_kept
            self.best_shift[step_idx] = new_best
            out.reward_parts["penalty"][step_idx] = np.where(changed, cfg.label_change_penalty, 0.0)
            self.steps[step_idx] += 1
            ended = self.steps[step_idx] >= cfg.budget
            if cfg.on_label_change == "terminate":
                ended |= changed
            out.terminated[step_idx] = ended
            out.truncated[step_idx] = False  # the environment never truncates (the budget terminates)
        out.sum_rewards()
        return out

    def _pattern_start(self, idx: np.ndarray) -> None:
        """``start="pattern"``: move the new episodes ``idx`` to ``δ = epsilon * step pattern`` (projected),
        where that keeps the label: one more classifier query and explanation for them."""
        cfg = self.cfg
        images = self.images[idx]
        start = project_perturbation(cfg.epsilon * self.step_signs.expand_as(images), images, cfg.epsilon)
        predicted = cfg.classifier.probs((images + start).clamp(0.0, 1.0), validate=False).argmax(dim=1).cpu().numpy()
        self.queries[idx] += 1
        keep = predicted == self.targets[idx]
        kept_idx = idx[keep]
        if not len(kept_idx):
            return
        self.delta[kept_idx] = start[torch.as_tensor(keep, device=start.device)]
        self.delta_np[kept_idx] = self.delta[kept_idx].cpu().numpy()
        maps, queries = self._maps(self.adversarial_images(kept_idx), self.targets[kept_idx])
        self.queries[kept_idx] += queries
        self.explanations[kept_idx] += 1
        self.maps[kept_idx] = maps
        shift = self._shift(self.original_maps[kept_idx], maps)
        self.shift[kept_idx] = self.initial_shift[kept_idx] = self.kept_shift[kept_idx] = shift
        self.best_shift[kept_idx] = shift

    def _load_episodes(self, idx: np.ndarray, seeds: Sequence[int | None] | None, options: dict[str, Any] | None) -> None:
        self._start_episodes(idx, seeds, options)
        self.delta[idx] = 0.0
        self.delta_np[idx] = 0.0
        self.label_changes[idx] = 0
        self.explanations[idx] = 0

    # ------------------------------------------------------------------ views
    def observation(self, idx: np.ndarray | slice = slice(None)) -> ObsDict:
        maps = self.maps[idx]
        left = (self.cfg.budget - self.steps[idx]) / self.cfg.budget
        obs = {
            "image": self.images_np[idx].copy(),
            "perturbation": self.delta_np[idx].copy(),
            "attribution": _unit_scale(maps),
            "budget": left.astype(np.float32).reshape(-1, 1),
        }
        if self.cfg.observe_original:
            obs["original_attribution"] = _unit_scale(self.original_maps[idx])
        if self.cfg.observe_action_mask:
            obs["action_mask"] = self.action_masks()[idx].reshape(len(maps), -1).astype(np.float32)
        return obs

    def action_masks(self) -> np.ndarray:
        """``(N, 2 * cells)`` booleans, all True: every signed cell step is always allowed (a step
        past the L-infinity ball is projected back, a label-changing one is handled by
        ``on_label_change``). ``ValueError`` for continuous actions, which have no mask."""
        if self.cfg.action_type != "cell_sign":
            raise ValueError("action masks exist for discrete actions only (action_type='cell_sign')")
        return np.ones((self.n, 2 * self.num_cells), bool)

    def info_arrays(self) -> dict[str, np.ndarray]:
        """Per-environment state summaries (what ``info`` reports), as arrays over environments."""
        return {
            "shift": self.shift.copy(),
            "initial_shift": self.initial_shift.copy(),
            "kept_shift": self.kept_shift.copy(),
            "best_shift": self.best_shift.copy(),
            "label_kept": self.predictions == self.targets,
            "prediction": self.predictions.copy(),
            "target": self.targets.copy(),
            "label": self.labels.copy(),
            "image_index": self.image_index.copy(),
            "queries": self.queries.copy(),
            "steps": self.steps.copy(),
            "label_changes": self.label_changes.copy(),
            "explanations": self.explanations.copy(),
            "linf": np.abs(self.delta_np).reshape(self.n, -1).max(axis=1).astype(np.float64),
        }

    def render_frame(self, i: int) -> np.ndarray:
        """The ``rgb_array`` frame of episode ``i``: image | perturbed image | original map | current map."""
        return render_attack(self, i)


def _unit_scale(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest magnitude (a map of zeros stays zero), float32 in [-1, 1]."""
    scale = np.abs(maps).reshape(len(maps), -1).max(axis=1)
    return np.clip(maps / np.where(scale > 0, scale, 1.0)[:, None, None], -1.0, 1.0).astype(np.float32)
