"""Labelled env frames, ``render_mode="human"`` and readable figures (issue 12)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from saliency_gym.data import ShapesSource
from saliency_gym.envs import AttributionAttackEnv, SaliencyRevealEnv
from saliency_gym.envs import render as render_module
from saliency_gym.envs.render import LABEL_HEIGHT


@pytest.fixture(scope="module")
def tiny_shapes() -> ShapesSource:
    return ShapesSource("test", n=8)


def _unlabelled(monkeypatch, env):
    """The frame drawn without titles (as before issue 12)."""
    original = render_module._side_by_side
    monkeypatch.setattr(render_module, "_side_by_side", lambda panels, titles=None: original(panels))
    try:
        return env.render()
    finally:
        monkeypatch.setattr(render_module, "_side_by_side", original)


def test_saliency_frames_are_labelled(tiny_shapes, monkeypatch):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=4, render_mode="rgb_array")
    assert set(env.metadata["render_modes"]) == {"rgb_array", "human"}
    env.reset(seed=0)
    env.step(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (128 + LABEL_HEIGHT, 3 * 128 + 2 * 4, 3)
    plain = _unlabelled(monkeypatch, env)
    assert plain.shape == (128, frame.shape[1], 3)
    np.testing.assert_array_equal(frame[LABEL_HEIGHT:], plain)  # the panels are unchanged
    strip = frame[:LABEL_HEIGHT]
    for k in range(3):  # every panel has dark text on its white strip
        assert (strip[:, k * 132 : k * 132 + 128] < 100).any()
    # Drawing reads the episode's state only: the same frame every time, and no classifier query.
    queries = env.config.classifier.queries
    for _ in range(3):
        np.testing.assert_array_equal(env.render(), frame)
    assert env.config.classifier.queries == queries


def test_frame_labels_change_with_the_step(tiny_shapes):
    env = SaliencyRevealEnv(data=tiny_shapes, grid=4, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()[:LABEL_HEIGHT, 132:260]
    env.step(0)
    assert not np.array_equal(first, env.render()[:LABEL_HEIGHT, 132:260])  # "canvas (step 1, ...)"


def test_class_name_in_image_title():
    class Core:
        config = type("C", (), {"classifier": type("K", (), {"class_names": ("circle", "square")})()})()
        targets = np.array([1])

    assert render_module._image_title(Core(), 0) == "image: square"
    Core.config.classifier.class_names = None
    assert render_module._image_title(Core(), 0) == "image"


def test_attack_frames_are_labelled(tiny_shapes, shapes_classifier, monkeypatch):
    env = AttributionAttackEnv(classifier=shapes_classifier, data=tiny_shapes, grid=4, budget=2, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (128 + LABEL_HEIGHT, 4 * 128 + 3 * 4, 3)
    plain = _unlabelled(monkeypatch, env)
    assert frame.shape != plain.shape and (frame[:LABEL_HEIGHT] < 100).any()


def test_label_strip_fits_long_text():
    strip = render_module.label_strip("a very long label that cannot fit in one panel at all", 128)
    assert strip.shape == (LABEL_HEIGHT, 128, 3) and strip.dtype == np.uint8 and (strip < 100).any()


@pytest.mark.parametrize("vector", [False, True])
def test_human_mode_without_gui_backend_warns_clearly_at_render(tiny_shapes, vector):
    from saliency_gym.envs import SaliencyRevealVectorEnv

    assert matplotlib.get_backend().lower() == "agg"
    if vector:
        env = SaliencyRevealVectorEnv(num_envs=2, data=tiny_shapes, grid=4, render_mode="human")
    else:
        env = SaliencyRevealEnv(data=tiny_shapes, grid=4, render_mode="human")  # construction is fine
    env.reset(seed=0)
    with pytest.warns(UserWarning, match=r"render_mode='human' needs a matplotlib GUI backend.*rgb_array"):
        assert env.render() is None
    env.close()


def test_strict_human_viewer_raises_without_gui_backend():
    with pytest.raises(RuntimeError, match=r"render_mode='human' needs a matplotlib GUI backend.*pyqt6"):
        render_module.HumanViewer(strict=True).show(np.zeros((4, 4, 3), np.uint8))


def test_human_env_passes_gymnasium_checker(tiny_shapes):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make("saliency_gym/SaliencyReveal-v0", data=tiny_shapes, grid=4, render_mode="rgb_array")
    with pytest.warns(UserWarning, match="GUI backend"):
        check_env(env.unwrapped)  # renders every declared mode, "human" included


# ------------------------------------------------------------------------------------- figures
def _fake_curves(rng, n_methods, n_images=6, steps=10):
    results = {}
    x = np.linspace(0, 1, steps + 1)
    for m in range(n_methods):
        ins = np.clip(x[None] ** (1 + m / 4) + 0.1 * rng.standard_normal((n_images, steps + 1)), 0, 1)
        dele = np.clip(1 - x[None] ** (0.5 + m / 8) + 0.1 * rng.standard_normal((n_images, steps + 1)), 0, 1)
        results[f"method {m}"] = (ins, dele)
    return results


def test_curves_legend_outside_the_deletion_panel(tmp_path):
    import matplotlib.pyplot as plt

    from saliency_gym.metrics.curves_plot import curves_figure, plot_insertion_deletion_curves

    rng = np.random.default_rng(0)
    results = _fake_curves(rng, 11)
    out = plot_insertion_deletion_curves(results, tmp_path / "curves.png", title="11 methods")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = curves_figure(results)
    try:
        fig.canvas.draw()
        ins_ax, del_ax = fig.axes[:2]
        legend = del_ax.get_legend()
        assert legend is not None and ins_ax.get_legend() is None
        renderer = fig.canvas.get_renderer()
        box, del_box = legend.get_window_extent(renderer), del_ax.get_window_extent(renderer)
        assert box.x0 >= del_box.x1  # right of the deletion panel, not over it
        labels = [t.get_text() for t in legend.get_texts()]
        assert len(labels) == 11 and all("AUC ins" in t and "del" in t for t in labels)
        colours = {tuple(line.get_color()) for line in del_ax.get_lines()}
        assert len(colours) == 11  # distinct colours (tab20)
        assert not del_ax.collections  # no bands with 11 methods
    finally:
        plt.close(fig)
    few = curves_figure(_fake_curves(rng, 3))
    try:
        assert len(few.axes[1].collections) == 3  # bands when <= 4 methods
        assert all(c.get_alpha() <= 0.2 for c in few.axes[1].collections)
    finally:
        plt.close(few)


def test_saliency_grid_titles_and_colour_bar(tmp_path):
    import matplotlib.pyplot as plt

    from saliency_gym.plotting import COLORBAR_LABEL, saliency_grid_figure, save_saliency_grid

    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 16, 16)).astype(np.float32)
    maps = {"agent: cells in reveal order (bright = first)": rng.random((2, 16, 16)), "RISE": rng.random((2, 16, 16))}
    out = save_saliency_grid(images, maps, tmp_path / "g" / "grid.png", row_titles=["circle", "square"], title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = saliency_grid_figure(images, maps, row_titles=["circle", "square"], masks=rng.random((2, 16, 16)) > 0.5)
    try:
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 4  # a colour bar on every map (2 images x 2 methods), in the map's units
        assert sum(ax.get_ylabel() == COLORBAR_LABEL for ax in bars) == 2  # labelled once per column
        grid_axes = [ax for ax in fig.axes if ax not in bars]
        titles = [ax.title for ax in grid_axes[:3]]
        assert [t.get_text().replace("\n", " ") for t in titles] == ["image", *maps]
        assert all(t.get_fontsize() >= 9 for t in titles)
        assert grid_axes[0].get_ylabel() == "circle" and grid_axes[0].yaxis.label.get_fontsize() >= 9
    finally:
        plt.close(fig)


def test_demo_column_title_explains_the_agent_map():
    from saliency_gym.cli.demo import _column_title

    assert "reveal order" in _column_title("agent") and _column_title("RISE (10 masks)") == "RISE (10 masks)"
