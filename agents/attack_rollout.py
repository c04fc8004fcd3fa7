"""Any policy of the attribution-attack environments, rolled out as an attack on a batch of images.

:func:`policy_attack` steps one vector environment of ``len(images)`` episodes with a policy (a
trained agent, :class:`~saliency_gym.baselines.attack_policies.RandomSignPolicy`, ...) and returns
the same :class:`~saliency_gym.baselines.attacks.AttackResult` as the classical attacks of
:mod:`saliency_gym.baselines.attacks`, so a benchmark scores them alike (here, in the agents'
plugin, because the baselines never import the environments).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import torch

from saliency_gym.baselines.attacks import AttackResult
from saliency_gym.explainers import Explainer
from saliency_gym.validation import as_image_batch, check_choice, check_float, check_int

#: How :func:`policy_attack` picks the returned state of each episode.
SELECTIONS = ("best", "last")


class AttackPolicy(Protocol):
    """What :func:`policy_attack` rolls out: SB3's ``predict`` signature (an SB3 model or policy, a
    :class:`RandomSignPolicy`, ...), batched observations in, one action per episode out."""

    def predict(self, observation: Any, *, deterministic: bool = ...) -> tuple[Any, Any]: ...


def policy_attack(
    policy: AttackPolicy,
    explainer: Explainer,
    images: Any,
    epsilon: float,
    *,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    selection: str = "best",
    steps: int | None = None,
    name: str = "policy",
) -> AttackResult:
    """Attack ``images`` by rolling ``policy`` out in the attribution-attack environment.

    One vector environment of ``len(images)`` episodes (one per image, in order) is stepped for its
    ``budget``: per step one batched classifier query and one batched explanation, as in training.
    The environment's rules hold throughout (L∞ projection, ``on_label_change``), so every state
    lies in the ε-ball. Returned per image is the label-kept state with the largest
    shift under the environment's ``dissimilarity`` (``selection="best"``; the classical attacks
    return their best label-kept iterate the same way, and the initial state, shift 0, is always a
    candidate) or the last label-kept state (``"last"``, what the episode's return measures).

    Args:
        policy: anything with SB3's ``predict(observations, deterministic)`` for this environment.
        explainer: the attacked explainer, bound to the classifier (the environment's ``explainer``).
        images: ``(N, C, H, W)`` in [0, 1].
        epsilon: L∞ radius.
        env_kwargs: the environment's other arguments (``grid``, ``step_size``, ``step_pattern``,
            ``budget``, ``dissimilarity``, ``k``, ``w``, ``observe_original``, ...), as the policy
            was trained with; ``classifier``, ``explainer``, ``data`` and ``epsilon`` are set here.
        deterministic: passed to ``predict``.
        selection: ``"best"`` or ``"last"`` (see above).
        steps: policy steps to take (default the environment's ``budget``); ``0`` returns the start
            state itself (with ``start="pattern"``: the same random-sign perturbation for every
            image, a fixed prior to compare a policy with).
        name: the ``attack`` name of the result.

    Returns:
        An :class:`AttackResult`; ``explanations`` counts the maps computed (one per image at reset,
        one for a pattern start, one per adopted step), ``queries`` every classifier image,
        explanations included.
    """
    from saliency_gym.data.base import ArraySource
    from saliency_gym.envs.attack import AttributionAttackVectorEnv

    if not isinstance(explainer, Explainer):
        raise TypeError(f"explainer must be a saliency_gym Explainer, got {type(explainer).__name__}")
    if not callable(getattr(policy, "predict", None)):
        raise TypeError(f"policy must have SB3's predict(observations, deterministic), got {type(policy).__name__}")
    selection = check_choice("selection", selection, SELECTIONS)
    if steps is not None:
        steps = check_int("steps", steps, minimum=0)
    epsilon = check_float("epsilon", epsilon, minimum=0.0, maximum=1.0, exclusive_minimum=True)
    kwargs = dict(env_kwargs or {})
    fixed = sorted({"classifier", "explainer", "data", "epsilon", "image", "label", "split"} & set(kwargs))
    if fixed:
        raise ValueError(f"env_kwargs may not set {fixed}: policy_attack sets the classifier, explainer, images and epsilon")
    classifier = explainer.classifier
    x = as_image_batch(images, expected_shape=classifier.input_shape, device=classifier.device)
    n = x.shape[0]
    start_q, start_t = classifier.queries, time.perf_counter()
    data = ArraySource(x.cpu().numpy(), np.zeros(n, np.int64), class_names=classifier.class_names or [str(i) for i in range(classifier.num_classes)],
                       name="attacked images", has_label=False)
    env = AttributionAttackVectorEnv(num_envs=n, classifier=classifier, explainer=explainer, data=data, epsilon=epsilon, **kwargs)
    try:
        core = env.core
        obs, info = env.reset(seed=0, options={"image_index": np.arange(n)})
        original_maps = core.original_maps.copy()
        # The start state (zero, or the pattern start, which always keeps the label) is a candidate.
        best_delta, best_maps, best_shift = core.delta_np.copy(), core.maps.copy(), np.asarray(info["shift"], float)
        for _ in range(env.config.budget if steps is None else min(steps, env.config.budget)):
            actions, _ = policy.predict(obs, deterministic=deterministic)
            obs, _, _, _, info = env.step(np.asarray(actions))
            kept = np.asarray(info["label_kept"], bool)
            better = kept & ((np.asarray(info["shift"]) > best_shift) if selection == "best" else True)
            best_delta[better] = core.delta_np[better]
            best_maps[better] = core.maps[better]
            best_shift[better] = np.asarray(info["shift"])[better]
        targets = core.targets.copy()
        explanations = int(np.asarray(info["explanations"]).sum())
    finally:
        env.close()
    adversarial = np.clip(x.cpu().numpy() + best_delta, 0.0, 1.0).astype(np.float32)
    adv_t = torch.as_tensor(adversarial, device=classifier.device)
    with classifier.uncounted():  # a check of the result, not part of the attack
        adv_pred = classifier.predict(adv_t).cpu().numpy()
    return AttackResult(
        images=x.cpu().numpy().astype(np.float32), adversarial=adversarial, original_maps=original_maps,
        adversarial_maps=best_maps, targets=targets, predictions=adv_pred, label_kept=adv_pred == targets,
        changed=np.abs(best_delta).reshape(n, -1).max(axis=1) > 0, queries=classifier.queries - start_q,
        seconds=time.perf_counter() - start_t, attack=name, explanations=explanations,
    )  # fmt: skip
