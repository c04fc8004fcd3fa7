"""The wheel's package list is discovered from the tree (setup.py), never written by hand: every
folder with an ``__init__.py`` below the shipped folders is a package, under its import name.

``.ci/wheel_check`` builds and installs the wheel itself; this is the fast check of the list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folder -> import name of everything the wheel installs.
SHIPPED = {
    "saliency_gym": "saliency_gym",
    "agents": "saliency_gym.agents",
    "baselines": "saliency_gym.baselines",
    "benchmarks": "saliency_gym.benchmarks",
}


@pytest.fixture(scope="module")
def distribution():
    """setuptools' configured distribution: setup.py's arguments and pyproject.toml read, as a
    build reads them (nothing is built)."""
    import runpy

    from setuptools.dist import Distribution

    setup_py = runpy.run_path(str(ROOT / "setup.py"), run_name="setup_py")  # defines, does not call setup()
    cwd = os.getcwd()
    os.chdir(ROOT)  # pyproject.toml is read from the current folder
    try:
        dist = Distribution(setup_py["setup_kwargs"]())
        dist.parse_config_files()
    finally:
        os.chdir(cwd)
    return dist


def package_folders() -> dict[str, Path]:
    """Import name -> folder of every folder with an ``__init__.py`` below the shipped folders."""
    found = {}
    for folder, name in SHIPPED.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts:
                found[".".join((name, *relative.parts))] = init.parent
    return found


def test_every_package_folder_is_discovered(distribution) -> None:
    expected = package_folders()
    assert {"saliency_gym.interop", "saliency_gym.cli", "saliency_gym.agents"} <= set(expected)
    assert sorted(distribution.packages) == sorted(expected)


def test_every_package_installs_from_its_folder(distribution) -> None:
    """Where setuptools reads each package from (the package-dir mapping): its own folder."""
    build_py = distribution.get_command_obj("build_py")
    build_py.ensure_finalized()
    for name, folder in package_folders().items():
        assert (ROOT / build_py.get_package_dir(name)).resolve() == folder.resolve(), name


def test_plugin_folders_only_install_inside_the_namespace(distribution) -> None:
    # The bare import names `agents` and `baselines` belong to other packages.
    assert all(name == "saliency_gym" or name.startswith("saliency_gym.") for name in distribution.packages)


def test_shipped_data_files_are_declared(distribution) -> None:
    """Every data file the package reads is matched by a package-data pattern (the wheel check
    compares the installed files with git's list)."""
    data = distribution.package_data
    assert "pretrained/*.zip" in data["saliency_gym.agents"] and "configs/*.yml" in data["saliency_gym.agents"]
    assert "pretrained/*.pt" in data["saliency_gym.baselines"]
    assert "reference_scores.json" in data["saliency_gym.envs"]
