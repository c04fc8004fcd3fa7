"""Explainer constructors are plain Python a type checker reads: the documented
``GradCAMExplainer(model, input_shape=...)`` type-checks, and a wrong keyword does not.

mypy runs on the package as it installs (``agents/`` as ``saliency_gym.agents``, ...): a view of
symbolic links, because from the checkout mypy cannot follow the editable install's mapping and
would read ``saliency_gym.baselines`` as ``Any`` (everything would pass)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ("agents", "baselines", "benchmarks")

SNIPPET = '''
from torch import nn

from saliency_gym.baselines.gradcam import GradCAMExplainer
from saliency_gym.baselines.rise import RISEExplainer
from saliency_gym.explainers import Explainer

model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
gradcam: Explainer = GradCAMExplainer(model, input_shape=(3, 28, 28))
rise = RISEExplainer(model, n_masks=10, input_shape=(3, 28, 28))
reveal_type(GradCAMExplainer)
wrong = GradCAMExplainer(model, input_shape=(3, 28, 28), n_masks=10)  # line 12: not a Grad-CAM option
'''


def installed_layout(where: Path) -> Path:
    """``where/saliency_gym``: links to the core's entries and the plugin folders, as a wheel
    installs them."""
    package = where / "saliency_gym"
    package.mkdir(parents=True)
    for entry in (ROOT / "saliency_gym").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for folder in PLUGINS:
        (package / folder).symlink_to(ROOT / folder)
    return where


@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_explainer_constructors_type_check(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    layout = installed_layout(tmp_path / "layout")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(SNIPPET))
    cwd = os.getcwd()
    os.chdir(layout)  # the layout, not the checkout, is what `saliency_gym` resolves to
    try:
        stdout, stderr, status = api.run([
            str(snippet), "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache" / "installed-layout"), "--no-error-summary",
        ])  # fmt: skip
    finally:
        os.chdir(cwd)
    lines = stdout.splitlines()
    # The class resolves (not Any) and its constructor takes the raw module and input_shape.
    assert any("snippet.py:11: note: Revealed type is" in line and "input_shape" in line for line in lines), stdout
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1 and "snippet.py:12: error:" in errors[0], (stdout, stderr)
    assert 'Unexpected keyword argument "n_masks"' in errors[0]
