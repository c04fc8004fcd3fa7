"""The batched engine behind every saliency-search environment.

:class:`SaliencySearchCore` advances ``N`` episodes at once and sends the classifier exactly one
batched query per call: the canvases of the episodes that step, plus the images/substrates of the
episodes that (auto)reset. The single environment is this engine with ``N = 1`` and the vector
environment is this engine with ``N = num_envs``, so the two can never drift apart.

Scores. For target class ``t`` (and optional foil ``f``) the score of a canvas is
``s = p_t`` (or ``s = p_t - p_f``), its log-odds ``l = log p_t - log(1 - p_t)`` (or
``l = log p_t - log p_f``). ``s_k`` is the score after ``k`` cells were chosen; ``s_0`` is the score
of the starting canvas (the substrate when revealing, the image when masking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.episodes import draw_episode_images

_EPS = 1e-6


@dataclass
class StepOutcome:
    """What one call of :meth:`SaliencySearchCore.advance` produced, per environment."""

    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    invalid: np.ndarray
    """True where the chosen cell had already been chosen (no state change, penalty reward)."""
    reward_evidence: np.ndarray
    reward_penalty: np.ndarray


class SaliencySearchCore:
    """State and transition of ``num_envs`` saliency-search episodes, as arrays.

    Args:
        config: the validated environment configuration.
        num_envs: number of episodes advanced together.
    """

    def __init__(self, config: SaliencySearchConfig, num_envs: int) -> None:
        self.cfg = config
        self.n = num_envs
        clf = config.classifier
        self.device = clf.device
        c, h, w = clf.input_shape
        k = config.grid.num_cells
        self.num_cells = k
        self.reveal = config.mode == "reveal"
        self._cell_index = config.grid.index_tensor(self.device)
        # Device tensors used to build canvases.
        self.images = torch.zeros((num_envs, c, h, w), device=self.device)
        self.substrates = torch.zeros_like(self.images)
        # Host copies that observations are made of.
        self.images_np = np.zeros((num_envs, c, h, w), np.float32)
        self.canvas_np = np.zeros((num_envs, c, h, w), np.float32)
        self.chosen = np.zeros((num_envs, k), bool)
        self.order = np.full((num_envs, k), -1, np.int64)
        self.gains = np.zeros((num_envs, k), np.float64)
        self.n_chosen = np.zeros(num_envs, np.int64)
        self.steps = np.zeros(num_envs, np.int64)
        self.scores = np.zeros(num_envs, np.float64)
        self.log_odds = np.zeros(num_envs, np.float64)
        self.initial_scores = np.zeros(num_envs, np.float64)
        self.targets = np.zeros(num_envs, np.int64)
        self.foils = np.full(num_envs, -1, np.int64)
        self.labels = np.zeros(num_envs, np.int64)
        self.image_index = np.zeros(num_envs, np.int64)
        self.queries = np.zeros(num_envs, np.int64)
        self.rngs = [np.random.default_rng() for _ in range(num_envs)]

    # ------------------------------------------------------------------ scoring
    def _score(self, probs: torch.Tensor, targets: np.ndarray, foils: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probability score and log-odds of ``probs (m, K)`` for per-row targets and foils."""
        p = probs.double().cpu().numpy()
        rows = np.arange(len(p))
        p_t = p[rows, targets]
        has_foil = foils >= 0
        p_f = np.where(has_foil, p[rows, np.maximum(foils, 0)], 0.0)
        score = p_t - p_f
        log_p_t = np.log(np.clip(p_t, _EPS, 1.0))
        other = np.where(has_foil, p_f, 1.0 - p_t)
        log_odds = log_p_t - np.log(np.clip(other, _EPS, 1.0))
        return score, log_odds

    # ------------------------------------------------------------------ transitions
    def advance(
        self,
        actions: np.ndarray | None,
        step_mask: np.ndarray,
        reset_mask: np.ndarray,
        seeds: list[int | None] | None = None,
        options: dict[str, Any] | None = None,
        score: bool = True,
    ) -> StepOutcome:
        """Step the environments in ``step_mask`` with ``actions`` and reset those in ``reset_mask``,
        with one classifier query for all of them.

        ``score=False`` moves the canvases without asking the classifier at all (no rewards, gains
        or scores): the policy explainer uses it to roll out policies that need no feedback.
        """
        if not score and (self.cfg.target == "predicted" or self.cfg.foil == "runner_up"):
            raise ValueError("an unscored rollout needs known targets: target='predicted'/foil='runner_up' need queries")
        n = self.n
        out = StepOutcome(
            rewards=np.zeros(n), terminated=np.zeros(n, bool), truncated=np.zeros(n, bool),
            invalid=np.zeros(n, bool), reward_evidence=np.zeros(n), reward_penalty=np.zeros(n),
        )  # fmt: skip
        reset_idx = np.flatnonzero(reset_mask)
        step_idx = np.flatnonzero(step_mask & ~reset_mask)
        batch: list[torch.Tensor] = []

        # 1. Resets: draw images and substrates; queue what the start scores need.
        need_image_probs = score and ((not self.reveal) or self.cfg.target == "predicted" or self.cfg.foil == "runner_up")
        if len(reset_idx):
            self._load_episodes(reset_idx, seeds, options)
            if need_image_probs:
                batch.append(self.images[reset_idx])
            if self.reveal and score:
                batch.append(self.substrates[reset_idx])

        # 2. Steps: validate, mark the chosen cells, queue the new canvases.
        valid_idx = np.zeros(0, np.int64)
        if len(step_idx):
            acts = actions[step_idx]
            repeated = self.chosen[step_idx, acts]
            out.invalid[step_idx] = repeated
            valid_idx, valid_acts = step_idx[~repeated], acts[~repeated]
            self.chosen[valid_idx, valid_acts] = True
            self.order[valid_idx, self.n_chosen[valid_idx]] = valid_acts
            self.steps[step_idx] += 1
            if len(valid_idx):
                canvases = self._canvases(valid_idx)
                self.canvas_np[valid_idx] = canvases.cpu().numpy()
                if score:
                    batch.append(canvases)
                else:
                    self.n_chosen[valid_idx] += 1

        # 3. One classifier query for everything.
        # Canvases are made of validated images and substrates: skip the per-call input checks.
        probs = self.cfg.classifier.probs(torch.cat(batch), validate=False) if batch else None
        offset = 0

        # 4. Finish the resets.
        if len(reset_idx) and not score:
            self._set_targets(reset_idx, None)
        elif len(reset_idx):
            m = len(reset_idx)
            if need_image_probs:
                image_probs = probs[offset : offset + m]
                offset += m
                self.queries[reset_idx] += 1
                self._set_targets(reset_idx, image_probs)
            else:
                self._set_targets(reset_idx, None)
            if self.reveal:
                start_probs = probs[offset : offset + m]
                offset += m
                self.queries[reset_idx] += 1
            else:
                start_probs = image_probs
            s, lo = self._score(start_probs, self.targets[reset_idx], self.foils[reset_idx])
            self.scores[reset_idx] = self.initial_scores[reset_idx] = s
            self.log_odds[reset_idx] = lo

        # 5. Finish the steps: rewards from the score change.
        if len(valid_idx) and score:
            m = len(valid_idx)
            s_new, lo_new = self._score(probs[offset : offset + m], self.targets[valid_idx], self.foils[valid_idx])
            s_old, lo_old = self.scores[valid_idx], self.log_odds[valid_idx]
            sign = 1.0 if self.reveal else -1.0
            self.gains[valid_idx, self.n_chosen[valid_idx]] = sign * (s_new - s_old)
            mode = self.cfg.reward_mode
            if mode == "auc":
                # Gain weighted by the share of the curve it still lifts: (K - k + 1/2) / K at step k.
                k = self.n_chosen[valid_idx] + 1
                evidence = sign * (s_new - s_old) * (self.num_cells - k + 0.5) / self.num_cells
            elif mode == "auc_trapezoid":
                mean = (s_old + s_new) / 2.0
                evidence = (mean if self.reveal else 1.0 - mean) / self.num_cells
            elif mode == "delta":
                evidence = sign * (s_new - s_old)
            else:
                evidence = sign * (lo_new - lo_old)
            out.reward_evidence[valid_idx] = evidence
            self.scores[valid_idx], self.log_odds[valid_idx] = s_new, lo_new
            self.n_chosen[valid_idx] += 1
            self.queries[valid_idx] += 1
        if len(step_idx):
            out.reward_penalty[step_idx] = np.where(out.invalid[step_idx], self.cfg.invalid_action_penalty, 0.0)
            out.terminated[step_idx] = self.n_chosen[step_idx] >= self.cfg.budget
            out.truncated[step_idx] = (self.steps[step_idx] >= self.cfg.max_steps) & ~out.terminated[step_idx]
        out.rewards = out.reward_evidence + out.reward_penalty
        return out

    def _canvases(self, idx: np.ndarray) -> torch.Tensor:
        chosen = torch.from_numpy(self.chosen[idx]).to(self.device)
        chosen_pixels = chosen[:, self._cell_index].unsqueeze(1)  # (m, 1, H, W)
        if self.reveal:
            return torch.where(chosen_pixels, self.images[idx], self.substrates[idx])
        return torch.where(chosen_pixels, self.substrates[idx], self.images[idx])

    def _load_episodes(self, idx: np.ndarray, seeds: list[int | None] | None, options: dict[str, Any] | None) -> None:
        picks, batch, torch_seeds = draw_episode_images(
            self.cfg.data, self.rngs, idx, self.n, seeds, options, extra_seeds=self.cfg.substrate.stochastic
        )
        images = torch.from_numpy(np.ascontiguousarray(batch.images)).to(self.device)
        self.images[idx] = images
        self.images_np[idx] = batch.images
        self.labels[idx] = batch.labels
        self.image_index[idx] = picks
        self.chosen[idx] = False
        self.order[idx] = -1
        self.gains[idx] = 0.0
        self.n_chosen[idx] = 0
        self.steps[idx] = 0
        self.queries[idx] = 0
        # Targets that do not need the classifier are known now (class-aware substrates use them).
        if isinstance(self.cfg.target, int):
            self.targets[idx] = self.cfg.target
        elif self.cfg.target == "label":
            self.targets[idx] = batch.labels
        self._fill_substrates(idx, images, torch_seeds)
        self.canvas_np[idx] = self.substrates[idx].cpu().numpy() if self.reveal else batch.images

    def _fill_substrates(self, idx: np.ndarray, images: torch.Tensor, torch_seeds: list[int | None]) -> None:
        """Substrates of the episodes ``idx``. A class-aware substrate (a counterfactual such as
        GANMEX) is asked for the *foil* class: the canvas starts as the image made to look like the
        foil, and revealing the real image moves the score ``p_target - p_foil`` up."""
        substrate = self.cfg.substrate
        classes = np.full(len(idx), self.cfg.foil) if substrate.class_aware else self.targets[idx]
        targets = torch.from_numpy(np.asarray(classes, dtype=np.int64)).to(self.device)
        if not substrate.stochastic:
            self.substrates[idx] = substrate(images, targets).to(self.device, torch.float32)
            return
        for j, i in enumerate(idx):  # one seeded generator per episode keeps resets reproducible
            generator = torch.Generator().manual_seed(torch_seeds[j])
            self.substrates[i] = substrate(images[j : j + 1], targets[j : j + 1], generator)[0].to(self.device)

    def _set_targets(self, idx: np.ndarray, image_probs: torch.Tensor | None) -> None:
        if self.cfg.target == "predicted":
            self.targets[idx] = image_probs.argmax(dim=1).cpu().numpy()
        foil = self.cfg.foil
        if foil is None:
            self.foils[idx] = -1
        elif foil == "runner_up":
            p = image_probs.clone()
            p[torch.arange(len(idx)), torch.from_numpy(self.targets[idx]).to(p.device)] = -1.0
            self.foils[idx] = p.argmax(dim=1).cpu().numpy()
        else:
            self.foils[idx] = foil
            clash = self.targets[idx] == foil
            if clash.any():
                raise ValueError(
                    f"the target class equals the foil {foil} for image(s) {self.image_index[idx][clash].tolist()}; "
                    "one-vs-one needs two different classes"
                )

    # ------------------------------------------------------------------ views
    def observation(self, idx: np.ndarray | slice = slice(None)) -> dict[str, np.ndarray]:
        rows, cols = self.cfg.grid.shape
        obs = {
            "image": self.images_np[idx].copy(),
            "canvas": self.canvas_np[idx].copy(),
            "chosen": self.chosen[idx].reshape(-1, rows, cols).astype(np.float32),
        }
        if self.cfg.observe_score:
            obs["score"] = self.scores[idx].astype(np.float32).reshape(-1, 1)
        return obs

    def action_masks(self) -> np.ndarray:
        """``(N, cells)`` booleans: the cells each episode may still choose."""
        return ~self.chosen

    def cell_saliency(self, i: int) -> np.ndarray:
        """Per-cell saliency of episode ``i`` so far: each chosen cell scored by the gain it brought.

        Cells not chosen (a budget below the number of cells) get a value below every chosen cell's,
        so they rank last.
        """
        k = int(self.n_chosen[i])
        values = np.zeros(self.num_cells)
        if k == 0:
            return values
        gains = self.gains[i, :k]
        floor = min(float(gains.min()), 0.0) - 1e-6
        values[:] = floor
        values[self.order[i, :k]] = gains
        return values

    def saliency_map(self, i: int) -> np.ndarray:
        """``(H, W)`` float32 pixel map of :meth:`cell_saliency`."""
        return self.cfg.grid.to_pixels(self.cell_saliency(i)).astype(np.float32)

    def episode_info(self, i: int, final: bool) -> dict[str, Any]:
        """The ``info`` dictionary of episode ``i`` (the saliency map only when ``final``)."""
        k = int(self.n_chosen[i])
        info: dict[str, Any] = {
            "score": float(self.scores[i]),
            "initial_score": float(self.initial_scores[i]),
            "queries": int(self.queries[i]),
            "cell_order": self.order[i, :k].copy(),
            "gains": self.gains[i, :k].copy(),
            "target": int(self.targets[i]),
            "label": int(self.labels[i]),
            "image_index": int(self.image_index[i]),
        }
        if self.foils[i] >= 0:
            info["foil"] = int(self.foils[i])
        if final:
            info["saliency"] = self.saliency_map(i)
        return info
