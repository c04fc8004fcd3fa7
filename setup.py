"""Package discovery (everything else is declared in ``pyproject.toml``).

``pyproject.toml``'s ``[tool.setuptools.packages.find]`` names packages after their folders, so it
cannot install the top-level folders ``agents/``, ``baselines/`` and ``benchmarks/`` inside our
namespace (the bare import names ``agents`` and ``baselines`` belong to other packages). This file
finds every package instead of a hand-written list: each folder with an ``__init__.py`` below
``saliency_gym/`` and below each plugin folder, the latter installed as ``saliency_gym.<folder>``.
``tests/test_packaging.py`` checks the result against the tree.
"""

from __future__ import annotations

from setuptools import find_packages, setup

#: Top-level folders installed as subpackages of ``saliency_gym`` (folder -> import name).
PLUGIN_DIRS = {
    "agents": "saliency_gym.agents",
    "baselines": "saliency_gym.baselines",
    "benchmarks": "saliency_gym.benchmarks",
}


def discover_packages() -> list[str]:
    """Every package the wheel installs: the core's and each plugin folder's, by import name."""
    packages = find_packages(include=["saliency_gym", "saliency_gym.*"])
    for folder, name in PLUGIN_DIRS.items():
        packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]
    return sorted(packages)


def setup_kwargs() -> dict[str, object]:
    """What ``setup()`` receives (``tests/test_packaging.py`` configures a distribution with it)."""
    return {
        "packages": discover_packages(),
        "package_dir": {name: folder for folder, name in PLUGIN_DIRS.items()},
    }


if __name__ == "__main__":
    setup(**setup_kwargs())
