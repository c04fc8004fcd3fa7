"""Registration of the saliency-gym environment ids (run on ``import saliency_gym``)."""

from __future__ import annotations

import gymnasium as gym

#: Preset suffix -> keyword arguments for the shipped data and classifiers.
SALIENCY_PRESETS: dict[str, dict[str, object]] = {
    "Shapes": {"classifier": "shapes"},
    "Digits": {"classifier": "digits"},
    "Shapes64": {"classifier": "shapes64", "grid": 8},
    # One small shape anywhere among fragments of shapes (issue 21): a fixed centre-out order fails.
    "ShapesCluttered": {"classifier": "shapes_cluttered", "grid": 8},
    # Real photographs at 224x224 with EfficientNet-Lite0 on ImageNet (the [imagenet] extra):
    # RExL's 7x7 grid of 32-pixel cells; reveal inserts onto RISE's blur (the default substrate).
    "Photos": {"classifier": "efficientnet_lite0", "data": "photos", "grid": 7},
}

_MODULE = "saliency_gym.envs.saliency"

#: Preset suffix -> keyword arguments of the attribution-attack environments.
ATTACK_PRESETS: dict[str, dict[str, object]] = {
    "Shapes": {"classifier": "shapes"},
    "ShapesRobust": {"classifier": "shapes_robust"},
    "Digits": {"classifier": "digits"},
    "Shapes64": {"classifier": "shapes64"},
    "ShapesCluttered": {"classifier": "shapes_cluttered"},
    "Photos": {"classifier": "efficientnet_lite0", "data": "photos", "grid": 7},
}

_ATTACK_MODULE = "saliency_gym.envs.attack"


def _register(env_id: str, entry: str, vector_entry: str, kwargs: dict[str, object]) -> None:
    if env_id in gym.registry:  # importing twice (or reloading) must not warn or fail
        return
    gym.register(id=env_id, entry_point=entry, vector_entry_point=vector_entry, kwargs=dict(kwargs))


def register_envs() -> list[str]:
    """Register every environment id (idempotent) and return the ids."""
    ids = []
    for name in ("SaliencyReveal", "SaliencyMask"):
        entry, vector_entry = f"{_MODULE}:{name}Env", f"{_MODULE}:{name}VectorEnv"
        _register(f"saliency_gym/{name}-v0", entry, vector_entry, {})
        ids.append(f"saliency_gym/{name}-v0")
        for preset, kwargs in SALIENCY_PRESETS.items():
            env_id = f"saliency_gym/{name}-{preset}-v0"
            _register(env_id, entry, vector_entry, kwargs)
            ids.append(env_id)
    entry, vector_entry = f"{_ATTACK_MODULE}:AttributionAttackEnv", f"{_ATTACK_MODULE}:AttributionAttackVectorEnv"
    _register("saliency_gym/AttributionAttack-v0", entry, vector_entry, {})
    ids.append("saliency_gym/AttributionAttack-v0")
    for preset, kwargs in ATTACK_PRESETS.items():
        env_id = f"saliency_gym/AttributionAttack-{preset}-v0"
        _register(env_id, entry, vector_entry, kwargs)
        ids.append(env_id)
    return ids
