"""What ``import saliency_gym`` and ``gym.make`` load: the core must not pull in the RL agents,
the baselines it does not use, or their heavy dependencies.

Each check runs in a fresh interpreter (``sys.executable -c ...``): ``sys.modules`` of the test
process already holds whatever other tests imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("stable_baselines3", "sb3_contrib", "captum")
#: What the attack environments may load with their default explainer (``"gradient"``).
GRADIENT_BASELINES = {
    "saliency_gym.baselines",
    "saliency_gym.baselines.gradient_methods",
    "saliency_gym.baselines.captum_base",
}


def _run(body: str, *args: str) -> dict:
    """Run ``body`` after ``import saliency_gym`` in a fresh interpreter (``args`` in ``sys.argv[1:]``);
    it prints one JSON line."""
    prelude = textwrap.dedent(
        """
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import gymnasium as gym
        import saliency_gym

        def under(*prefixes):
            return sorted(m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in prefixes))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(body), *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_saliency_gym_loads_no_plugin_or_heavy_dependency():
    found = _run(
        """
        print(json.dumps({
            "plugins": under("saliency_gym.baselines", "saliency_gym.agents", "baselines", "agents"),
            "heavy": under(*sys.argv[1:]),
        }))
        """,
        *HEAVY,
    )
    assert found == {"plugins": [], "heavy": []}


def _make_each(family: str) -> dict:
    """``gym.make`` every registered id of ``family`` in turn; report the plugin modules loaded
    after each (cumulative, so the first id listing a module is the one that loaded it)."""
    return _run(
        """
        family = sys.argv[1]
        ids = [k for k in gym.registry if k.startswith("saliency_gym/" + family)]
        assert ids, "no " + family + " ids registered"
        seen = {}
        for env_id in ids:
            env = gym.make(env_id)
            env.close()
            seen[env_id] = {
                "baselines": under("saliency_gym.baselines", "baselines"),
                "agents": under("saliency_gym.agents", "agents"),
            }
        print(json.dumps(seen))
        """,
        family,
    )


@pytest.mark.parametrize("family", ["SaliencyReveal", "SaliencyMask"])
def test_reveal_and_mask_envs_load_no_baseline_or_agent(family):
    seen = _make_each(family)
    for env_id, loaded in seen.items():
        assert loaded == {"baselines": [], "agents": []}, env_id


def test_attack_envs_load_only_the_gradient_baseline():
    seen = _make_each("AttributionAttack")
    for env_id, loaded in seen.items():
        assert set(loaded["baselines"]) == GRADIENT_BASELINES, (env_id, loaded["baselines"])
        assert loaded["agents"] == [], env_id
