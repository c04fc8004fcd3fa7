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

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from saliency_gym.envs.config import SaliencySearchConfig
from saliency_gym.envs.engine import BatchedEngine, FloatArray, StepOutcome
from saliency_gym.envs.episodes import check_int_option
from saliency_gym.envs.render import render_episode
from saliency_gym.types import EnvMask, InfoDict, ObsDict

__all__ = ["SaliencySearchCore", "SaliencyStepOutcome", "StepOutcome"]

_EPS = 1e-6


class SaliencyStepOutcome(StepOutcome):
    """A saliency-search step: reward parts ``evidence`` and ``penalty``; flag ``invalid_action``
    (the chosen cell had already been chosen: no state change, penalty reward)."""

    reward_names = ("evidence", "penalty")
    flag_names = ("invalid_action",)


#: The reset option of the saliency-search family beside ``image_index``: the class to explain.
RESET_TARGET_KEYS = ("target",)


class SaliencySearchCore(BatchedEngine[SaliencySearchConfig]):
    """``num_envs`` saliency-search episodes (reveal or mask, after ``config.mode``), as arrays.

    Per episode it tracks, beyond the base's image, label, target and counters: the ``substrates``,
    the observed ``canvas_np``, the ``chosen`` cells, their ``order`` and ``gains``, the current
    ``scores`` / ``log_odds`` and the ``initial_scores``, and the ``foils`` (-1: none). Each
    :meth:`advance` sends the classifier one batched query (see the module docstring);
    :meth:`canvases_for` and :meth:`scores_of` let policies look ahead without changing the state.
    """

    def __init__(self, config: SaliencySearchConfig, num_envs: int) -> None:
        super().__init__(config, num_envs)
        k = self.num_cells
        self.reveal = config.mode == "reveal"
        # The substrates (on the device) canvases are built from, and the canvases observed.
        self.substrates = torch.zeros_like(self.images)
        self.canvas_np = np.zeros_like(self.images_np)
        # Masking paints substrate cells over the image: a host copy of the substrates to paint
        # from (revealing paints from ``images_np``), and each cell's pixel rectangle.
        self._substrates_np = np.zeros_like(self.images_np) if not self.reveal else np.zeros((num_envs, 0, 0, 0), np.float32)
        self._cell_slices = [config.grid.cell_slices(cell) for cell in range(k)]
        self.chosen = np.zeros((num_envs, k), bool)
        self.order = np.full((num_envs, k), -1, np.int64)
        self.gains = np.zeros((num_envs, k), np.float64)
        self.n_chosen = np.zeros(num_envs, np.int64)
        self.scores = np.zeros(num_envs, np.float64)
        self.log_odds = np.zeros(num_envs, np.float64)
        self.initial_scores = np.zeros(num_envs, np.float64)
        self.foils = np.full(num_envs, -1, np.int64)
        #: Episodes whose class was given by ``reset(options={"target": ...})`` (it overrides the rule).
        self.target_given = np.zeros(num_envs, bool)
        # The classifier's pooled activations (``observe_features``): of the image, set at reset,
        # and of the current canvas, from the query that scores it (zeros in unscored rollouts).
        feature_shape = (num_envs, config.feature_channels, *config.grid.shape)
        self.image_features = np.zeros(feature_shape if config.image_features else (num_envs, 0, 0, 0), np.float32)
        self.canvas_features = np.zeros(feature_shape if config.canvas_features else (num_envs, 0, 0, 0), np.float32)

    # ------------------------------------------------------------------ scoring
    def scores_of(self, probs: torch.Tensor, idx: np.ndarray) -> tuple[FloatArray, FloatArray]:
        """Score and log-odds of ``probs`` (``(m, num_classes)`` probabilities, row ``j`` for
        episode ``idx[j]``) for the targets and foils of the episodes ``idx``."""
        return self._score(probs, self.targets[idx], self.foils[idx])

    def _score(self, probs: torch.Tensor, targets: np.ndarray, foils: np.ndarray) -> tuple[FloatArray, FloatArray]:
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
        step_mask: EnvMask,
        reset_mask: EnvMask,
        seeds: Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
        score: bool = True,
    ) -> SaliencyStepOutcome:
        """Step the environments in ``step_mask`` with ``actions`` and reset those in ``reset_mask``,
        with one classifier query for all of them.

        ``score=False`` moves the canvases without asking the classifier at all (no rewards, gains
        or scores): the policy explainer uses it to roll out policies that need no feedback.
        """
        if not score and (self.cfg.target == "predicted" or self.cfg.foil == "runner_up"):
            raise ValueError("an unscored rollout needs known targets: target='predicted'/foil='runner_up' need queries")
        out = SaliencyStepOutcome.zeros(self.n)
        reset_idx = np.flatnonzero(reset_mask)
        step_idx = np.flatnonzero(step_mask & ~reset_mask)
        batch: list[torch.Tensor] = []

        # 1. Resets: draw images and substrates; queue what the start scores (and the observed
        # image features) need.
        need_image_probs = score and ((not self.reveal) or self.cfg.target == "predicted" or self.cfg.foil == "runner_up")
        query_images = need_image_probs or self.cfg.image_features
        if len(reset_idx):
            self._load_episodes(reset_idx, seeds, options)
            if query_images:
                batch.append(self.images[reset_idx])
            if self.reveal and score:
                batch.append(self.substrates[reset_idx])

        # 2. Steps: validate, mark the chosen cells, queue the new canvases.
        valid_idx = np.zeros(0, np.int64)
        if len(step_idx):
            if actions is None:
                raise ValueError("stepping episodes needs actions")
            acts = actions[step_idx]
            repeated = self.chosen[step_idx, acts]
            out.flags["invalid_action"][step_idx] = repeated
            valid_idx, valid_acts = step_idx[~repeated], acts[~repeated]
            self.chosen[valid_idx, valid_acts] = True
            self.order[valid_idx, self.n_chosen[valid_idx]] = valid_acts
            self.steps[step_idx] += 1
            if len(valid_idx):
                self._paint_cells(valid_idx, valid_acts)
                canvases = torch.from_numpy(self.canvas_np[valid_idx]).to(self.device)
                if score:
                    batch.append(canvases)
                else:
                    self.n_chosen[valid_idx] += 1

        # 3. One classifier query for everything (with the observed layer's pooled activations).
        # Canvases are made of validated images and substrates: skip the per-call input checks.
        probs, features = self._query(batch)
        offset = 0

        # 4. Finish the resets.
        if len(reset_idx):
            m = len(reset_idx)
            image_probs: torch.Tensor | None = None
            if query_images:
                image_probs = probs[offset : offset + m]
                self._keep_features(features, offset, m, reset_idx, image=True, canvas=not self.reveal)
                offset += m
                self.queries[reset_idx] += 1
        if len(reset_idx) and not score:
            self._set_targets(reset_idx, None)
        elif len(reset_idx):
            self._set_targets(reset_idx, image_probs if need_image_probs else None)
            if self.reveal:
                start_probs = probs[offset : offset + m]
                self._keep_features(features, offset, m, reset_idx, image=False, canvas=True)
                offset += m
                self.queries[reset_idx] += 1
            else:
                assert image_probs is not None  # masking scores the image itself
                start_probs = image_probs
            s, lo = self.scores_of(start_probs, reset_idx)
            self.scores[reset_idx] = self.initial_scores[reset_idx] = s
            self.log_odds[reset_idx] = lo

        # 5. Finish the steps: rewards from the score change.
        if len(valid_idx) and score:
            m = len(valid_idx)
            s_new, lo_new = self.scores_of(probs[offset : offset + m], valid_idx)
            self._keep_features(features, offset, m, valid_idx, image=False, canvas=True)
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
            out.reward_parts["evidence"][valid_idx] = evidence
            self.scores[valid_idx], self.log_odds[valid_idx] = s_new, lo_new
            self.n_chosen[valid_idx] += 1
            self.queries[valid_idx] += 1
        if len(step_idx):
            invalid = out.flags["invalid_action"][step_idx]
            out.reward_parts["penalty"][step_idx] = np.where(invalid, self.cfg.invalid_action_penalty, 0.0)
            out.terminated[step_idx] = self.n_chosen[step_idx] >= self.cfg.budget
            out.truncated[step_idx] = (self.steps[step_idx] >= self.cfg.max_steps) & ~out.terminated[step_idx]
        out.sum_rewards()
        return out

    def _query(self, batch: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Probabilities of the queued images, and the observed layer's pooled activations when
        the configuration observes features (the same forward pass)."""
        if not batch:
            return torch.zeros(0), None
        x = torch.cat(batch)
        layer = self.cfg.feature_layer
        if layer is None:
            return self.cfg.classifier.probs(x, validate=False), None
        return self.cfg.classifier.probs_and_features(x, layer, self.cfg.grid.shape, validate=False)

    def _keep_features(
        self, features: torch.Tensor | None, offset: int, m: int, idx: np.ndarray, *, image: bool, canvas: bool
    ) -> None:
        """Store rows ``offset:offset+m`` of a query's features as the image and/or canvas
        features of the episodes ``idx`` (when those are observed)."""
        if features is None:
            return
        rows = features[offset : offset + m].cpu().numpy()
        if image and self.cfg.image_features:
            self.image_features[idx] = rows
        if canvas and self.cfg.canvas_features:
            self.canvas_features[idx] = rows

    def canvases_for(self, idx: np.ndarray, chosen: np.ndarray) -> torch.Tensor:
        """Canvases ``(m, C, H, W)`` of the episodes ``idx`` (on the engine's device) with the
        ``(m, cells)`` boolean ``chosen`` cells instead of their current ones: what a policy looks
        ahead with (the engine's state is not changed)."""
        chosen_t = torch.as_tensor(np.asarray(chosen, bool)).to(self.device)
        chosen_pixels = chosen_t[:, self._cell_index].unsqueeze(1)  # (m, 1, H, W)
        if self.reveal:
            return torch.where(chosen_pixels, self.images[idx], self.substrates[idx])
        return torch.where(chosen_pixels, self.substrates[idx], self.images[idx])

    def _paint_cells(self, idx: np.ndarray, cells: np.ndarray) -> None:
        """Paint cell ``cells[j]`` of episode ``idx[j]`` onto its canvas: the image's pixels when
        revealing, the substrate's when masking. Only the new cell changes, so a step copies one
        cell per episode instead of rebuilding whole canvases (the same values as
        :meth:`canvases_for` with the episode's ``chosen`` cells: cells do not overlap)."""
        source = self.images_np if self.reveal else self._substrates_np
        for i, cell in zip(idx.tolist(), cells.tolist(), strict=True):
            rows, cols = self._cell_slices[cell]
            self.canvas_np[i, :, rows, cols] = source[i, :, rows, cols]

    def _load_episodes(self, idx: np.ndarray, seeds: Sequence[int | None] | None, options: dict[str, Any] | None) -> None:
        batch, images, torch_seeds = self._start_episodes(
            idx, seeds, options, extra_seeds=self.cfg.substrate.stochastic, extra_keys=RESET_TARGET_KEYS
        )
        self.chosen[idx] = False
        self.order[idx] = -1
        if self.cfg.canvas_features:
            self.canvas_features[idx] = 0.0
        self.gains[idx] = 0.0
        self.n_chosen[idx] = 0
        # Targets that do not need the classifier are known now (class-aware substrates use them).
        if isinstance(self.cfg.target, int):
            self.targets[idx] = self.cfg.target
        elif self.cfg.target == "label":
            self.targets[idx] = batch.labels
        elif self.cfg.target == "random":  # drawn from each episode's own generator: seeded resets replay
            k, foil = self.cfg.classifier.num_classes, self.cfg.foil
            for i in idx:
                if isinstance(foil, int):  # one of the other K - 1 classes
                    drawn = int(self.rngs[i].integers(k - 1))
                    self.targets[i] = drawn + int(drawn >= foil)
                else:
                    self.targets[i] = int(self.rngs[i].integers(k))
        self.target_given[idx] = False
        if options is not None and options.get("target") is not None:  # explain this class now
            requested = check_int_option(options["target"], "target", self.n, self.cfg.classifier.num_classes)
            self.targets[idx] = requested[idx]
            self.target_given[idx] = True
        self._fill_substrates(idx, images, torch_seeds)
        if self.reveal:
            self.canvas_np[idx] = self.substrates[idx].cpu().numpy()
        else:
            self._substrates_np[idx] = self.substrates[idx].cpu().numpy()
            self.canvas_np[idx] = batch.images

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
            seed = torch_seeds[j]
            assert seed is not None  # drawn for every episode of a stochastic substrate
            generator = torch.Generator().manual_seed(seed)
            self.substrates[i] = substrate(images[j : j + 1], targets[j : j + 1], generator)[0].to(self.device)

    def _set_targets(self, idx: np.ndarray, image_probs: torch.Tensor | None) -> None:
        if self.cfg.target == "predicted":
            assert image_probs is not None
            predicted = image_probs.argmax(dim=1).cpu().numpy()
            self.targets[idx] = np.where(self.target_given[idx], self.targets[idx], predicted)
        foil = self.cfg.foil
        if foil is None:
            self.foils[idx] = -1
        elif foil == "runner_up":
            assert image_probs is not None
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
    def observation(self, idx: np.ndarray | slice = slice(None)) -> ObsDict:
        rows, cols = self.cfg.grid.shape
        obs = {
            "image": self.images_np[idx].copy(),
            "canvas": self.canvas_np[idx].copy(),
            "chosen": self.chosen[idx].reshape(-1, rows, cols).astype(np.float32),
        }
        if self.cfg.observe_score:
            obs["score"] = np.asarray(self.scores[idx], np.float32).reshape(-1, 1)
        if self.cfg.image_features:
            obs["image_features"] = self.image_features[idx].copy()
        if self.cfg.canvas_features:
            obs["canvas_features"] = self.canvas_features[idx].copy()
        if self.cfg.observe_class:
            k = self.cfg.classifier.num_classes
            eye = np.eye(k, dtype=np.float32)
            obs["target"] = eye[np.atleast_1d(self.targets[idx])]
            if self.cfg.foil is not None:
                foils = np.atleast_1d(self.foils[idx])
                obs["foil"] = np.where((foils >= 0)[:, None], eye[np.clip(foils, 0, k - 1)], 0.0).astype(np.float32)
        if self.cfg.observe_action_mask:
            obs["action_mask"] = self.action_masks()[idx].reshape(-1, self.num_cells).astype(np.float32)
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
        return np.asarray(self.cfg.grid.to_pixels(self.cell_saliency(i)), np.float32)

    def info_arrays(self) -> dict[str, np.ndarray]:
        """Per-environment state summaries, as arrays over environments (the vector ``info``)."""
        return {
            "score": self.scores.copy(),
            "initial_score": self.initial_scores.copy(),
            "queries": self.queries.copy(),
            "target": self.targets.copy(),
            "label": self.labels.copy(),
            "image_index": self.image_index.copy(),
            "n_chosen": self.n_chosen.copy(),
        }

    def final_info_arrays(self, final: EnvMask) -> dict[str, np.ndarray]:
        """``saliency`` maps and the ``cell_order`` / ``gains`` (object arrays) of the episodes that end."""
        h, w = self.cfg.grid.height, self.cfg.grid.width
        saliency = np.zeros((self.n, h, w), np.float32)
        order = np.empty(self.n, dtype=object)
        gains = np.empty(self.n, dtype=object)
        for i in np.flatnonzero(final):
            saliency[i] = self.saliency_map(int(i))
            k = int(self.n_chosen[i])
            order[i], gains[i] = self.order[i, :k].copy(), self.gains[i, :k].copy()
        return {"saliency": saliency, "cell_order": order, "gains": gains}

    def episode_info(self, i: int, final: bool) -> InfoDict:
        """The ``info`` dictionary of episode ``i`` (the saliency map only when ``final``)."""
        k = int(self.n_chosen[i])
        info: InfoDict = {
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

    def render_frame(self, i: int) -> np.ndarray:
        """The ``rgb_array`` frame of episode ``i``: image | canvas | saliency so far."""
        return render_episode(self, i)
