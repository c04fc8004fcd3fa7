"""GANMEX counterfactual baselines against the usual ones, on data with a known one-vs-one answer.

Two tables (Markdown):

1. **Counterfactuals**: for each dataset with a shipped GANMEX generator (and for MDTS, the
   minimum-distance training sample), test images are sent to a random *other* class (seeded);
   *validity* is the fraction the classifier assigns to that class, *proximity* the mean
   per-pixel L1 distance ``mean |b - x|`` to the input. Zeros, blur, mean and noise are listed for
   the one-vs-one data: they are not counterfactuals of any class, which their validity shows.
   *random foil image* is a random test image of the target class (seeded; the reference a
   "closest realistic sample of the target class" must beat). Each generator is also listed with
   ``+prune`` (:func:`~saliency_gym.baselines.baseline_providers.prune_edit`) and ``+project``
   (:func:`~saliency_gym.baselines.baseline_providers.project_edit`, 8 levels), with the counted
   classifier queries per image they cost.
2. **Minimality** on ``shape_pairs``, where the true counterfactual is known: each marked test
   image sent to ``plain`` should become its pair's plain image, which differs from it only on the
   mark. Columns (:func:`~saliency_gym.metrics.counterfactual_scores`): validity, proximity,
   *true L1* (mean per-pixel ``|b - x*|`` to the true counterfactual ``x*``), *gap closed*
   (``1 - |b - x*|_1 / |x - x*|_1``: 1 is the true counterfactual, 0 doing nothing, below 0 farther
   from it than the input), *edit in mark* (share of ``|b - x|`` on the mark's pixels). Extra
   generator checkpoints can be compared with ``--generator NAME=PATH`` (here and in table 3);
   each generator also has a ``+prune`` row (``GanmexSubstrate(..., prune=True)``: the smallest
   valid part of its edit) and a ``+project`` row (``project=True``: the edit soft-thresholded as
   far as stays valid).
3. **One-vs-one attributions** on ``shape_pairs`` (Shih et al. 2021's setting): marked test
   images explained as "marked rather than plain" (target 1, foil 0) by Integrated Gradients and
   DeepLIFT with each baseline provider; class-aware providers are used through
   ``provider.for_class(foil)``. Columns:

   * *pointing*: pointing game (Zhang et al. 2016, tolerance 0, ties ``"all"``) on the
     differing-region mask, i.e. the mark, the only pixels that tell the two classes apart;
   * *energy*: the share of positive attribution inside the mark (energy pointing game);
   * *insertion / deletion AUC*: RISE's curves with the score ``p(target) - p(foil)``, pixels
     ordered by the map, the same substrates for every row (insertion from a blur, deletion to
     black), so rows differ only in the map; higher insertion and lower deletion are better;
   * *sanity*: cascading model-parameter randomisation (Adebayo et al. 2018): the mean Spearman
     correlation of ``|map|`` with the trained model's ``|map|`` after every layer has been
     re-initialised (lower means the map depends on what the model learnt), on a subset.

Example::

    python benchmarks/bench_ganmex.py --images 100 --sanity-images 8
    python benchmarks/bench_ganmex.py --minimality-only --generator retrained=runs/ganmex/shape_pairs/generator.pt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_gym.baselines import DeepLiftExplainer, IntegratedGradientsExplainer
from saliency_gym.baselines.baseline_providers import (
    GanmexSubstrate,
    MDTSSubstrate,
    make_baseline_provider,
)
from saliency_gym.baselines.ganmex import sample_targets, shipped_generators
from saliency_gym.classifier import FrozenClassifier
from saliency_gym.data import load_dataset
from saliency_gym.explainers import Explainer
from saliency_gym.metrics import (
    cascading_randomization,
    counterfactual_scores,
    deletion_curve,
    energy_pointing_game,
    insertion_curve,
    pointing_game,
)
from saliency_gym.models.zoo import load_classifier, load_classifier_module

CLASS_AGNOSTIC = ("zeros", "blur", "mean", "noise")
#: An attribution method given its classifier and baseline provider.
MethodFactory = Callable[[FrozenClassifier, Any], Explainer]


def with_baseline(make: MethodFactory, provider: Any) -> Callable[[FrozenClassifier], Explainer]:
    """``make`` with its baseline bound: the explainer factory the sanity check rebuilds per layer."""
    return lambda classifier: make(classifier, provider)


class RandomClassImage:
    """A random image of the requested class from a fixed pool (seeded by the call's generator):
    the "any realistic sample of the target class" reference for counterfactual proximity."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        self.images = images
        self.pools = [torch.nonzero(labels == c).flatten() for c in range(num_classes)]
        if any(pool.numel() == 0 for pool in self.pools):
            raise ValueError("the pool lacks images of some class")

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        idx = torch.empty(targets.shape[0], dtype=torch.long)
        for c, pool in enumerate(self.pools):
            where = targets.cpu() == c
            idx[where] = pool[torch.randint(0, pool.numel(), (int(where.sum()),), generator=generator)]
        return self.images[idx].to(images.device)


def generator_providers(name: str, path: str, classifier: FrozenClassifier) -> dict[str, Any]:
    """A generator's provider, and its ``+prune`` and ``+project`` variants."""
    return {
        name: GanmexSubstrate(path),
        f"{name}+prune": GanmexSubstrate(path, classifier=classifier, prune=True),
        f"{name}+project": GanmexSubstrate(path, classifier=classifier, project=True),
    }


def counterfactual_rows(dataset: str, n_images: int, mdts_train: int, seed: int, include_agnostic: bool,
                        generators: dict[str, str] | None = None) -> list[dict]:  # fmt: skip
    """Validity, proximity and queries of each provider's baselines for random other target classes
    (``generators``: extra generator checkpoints for this dataset, by row name)."""
    classifier = load_classifier(dataset, device="cpu")
    test_source = load_dataset(dataset, "test")
    test = test_source.get_batch(np.arange(min(n_images, len(test_source))))
    x, y = torch.as_tensor(test.images), torch.as_tensor(test.labels)
    targets = sample_targets(y, classifier.num_classes, torch.Generator().manual_seed(seed))
    train = load_dataset(dataset, "train")
    providers: dict[str, Any] = {}
    if include_agnostic:
        providers.update({name: make_baseline_provider(name, data=train) for name in CLASS_AGNOSTIC})
    everything = test_source.get_batch(np.arange(len(test_source)))
    providers["random foil image"] = RandomClassImage(
        torch.as_tensor(everything.images), torch.as_tensor(everything.labels), classifier.num_classes
    )
    providers["mdts"] = MDTSSubstrate(train, max_samples=mdts_train)
    if dataset in shipped_generators():
        providers.update(generator_providers("ganmex", dataset, classifier))
    for name, path in (generators or {}).items():
        providers.update(generator_providers(f"ganmex:{name}", path, classifier))
    rows = []
    for name, provider in providers.items():
        classifier.reset_queries()
        start = time.perf_counter()
        baselines = provider(x, targets, torch.Generator().manual_seed(seed))
        seconds = time.perf_counter() - start
        queries = classifier.reset_queries() / len(x)
        valid = (classifier.predict(baselines) == targets).float().mean().item()
        proximity = (baselines - x).abs().flatten(1).mean(1).mean().item()
        rows.append({"dataset": dataset, "provider": name, "validity": valid, "proximity_l1": proximity,
                     "queries_per_image": queries, "ms_per_image": 1000 * seconds / len(x)})  # fmt: skip
    return rows


def minimality_rows(n_images: int, mdts_train: int, seed: int, generators: dict[str, str]) -> list[dict]:
    """Marked shape_pairs test images sent to ``plain``, scored against their true counterfactual
    (the pair's plain image) by every class-aware provider and, for reference, blur."""
    foil = 0
    classifier = load_classifier("shape_pairs", device="cpu")
    source = load_dataset("shape_pairs", "test")
    n = min(n_images, len(source) // 2)
    batch = source.get_batch(np.arange(2 * n))
    plain, marked = torch.as_tensor(batch.images[0::2]), torch.as_tensor(batch.images[1::2])
    if batch.masks is None:
        raise ValueError("shape_pairs images carry evidence masks (the marks); this source gave none")
    regions = torch.as_tensor(batch.masks[1::2]).bool()
    targets = torch.full((n,), foil, dtype=torch.long)
    train = load_dataset("shape_pairs", "train")
    providers = {"blur": make_baseline_provider("blur"), "mdts": MDTSSubstrate(train, max_samples=mdts_train).for_class(foil)}
    for name, path in {"ganmex": "shape_pairs", **{f"ganmex:{k}": v for k, v in generators.items()}}.items():
        providers.update({key: p.for_class(foil) for key, p in generator_providers(name, path, classifier).items()})
    rows = []
    for name, provider in providers.items():
        baselines = provider(marked, targets, torch.Generator().manual_seed(seed))
        scores = counterfactual_scores(classifier, baselines, marked, targets, true_counterfactuals=plain, regions=regions)
        rows.append({"provider": name, **scores})
    rows.append({"provider": "(input unchanged)", **counterfactual_scores(classifier, marked, marked, targets,
                                                                         true_counterfactuals=plain, regions=regions)})  # fmt: skip
    rows[-1]["edit_in_region"] = float("nan")
    return rows


def attribution_rows(n_images: int, ig_steps: int, sanity_images: int, mdts_train: int, seed: int,
                     generators: dict[str, str] | None = None) -> list[dict]:  # fmt: skip
    """One-vs-one IG / DeepLIFT on marked shape_pairs test images with every baseline provider."""
    target, foil = 1, 0
    classifier = load_classifier("shape_pairs", device="cpu")
    module, info = load_classifier_module("shape_pairs")
    source = load_dataset("shape_pairs", "test")
    marked = np.arange(1, 2 * n_images, 2)  # odd indices are the marked images
    batch = source.get_batch(marked)
    x = torch.as_tensor(batch.images)
    train = load_dataset("shape_pairs", "train")
    providers = {name: make_baseline_provider(name, data=train) for name in CLASS_AGNOSTIC}
    providers["mdts"] = MDTSSubstrate(train, max_samples=mdts_train).for_class(foil)
    for name, path in {"ganmex": "shape_pairs", **{f"ganmex:{k}": v for k, v in (generators or {}).items()}}.items():
        providers[name] = GanmexSubstrate(path).for_class(foil)
        providers[f"{name}+prune"] = GanmexSubstrate(path, classifier=classifier, prune=True).for_class(foil)
    methods: dict[str, MethodFactory] = {
        "integrated_gradients": lambda clf, b: IntegratedGradientsExplainer(clf, baseline=b, n_steps=ig_steps, seed=seed),
        "deeplift": lambda clf, b: DeepLiftExplainer(clf, baseline=b, seed=seed),
    }
    rows = []
    for method, make in methods.items():
        for name, provider in providers.items():
            start = time.perf_counter()
            maps = make(classifier, provider).explain(x, target).maps
            seconds = time.perf_counter() - start
            ins = insertion_curve(classifier, x, maps, target, foils=foil, substrate="blur")
            dele = deletion_curve(classifier, x, maps, target, foils=foil, substrate="zeros")
            sanity = cascading_randomization(
                module, with_baseline(make, provider), x[:sanity_images], target,
                input_shape=tuple(info["input_shape"]), seed=seed, device="cpu",
            )  # fmt: skip
            rows.append({
                "method": method, "provider": name,
                "pointing": float(np.nanmean(pointing_game(maps, batch.masks))),
                "energy": float(np.nanmean(energy_pointing_game(maps, batch.masks, normalize="relu"))),
                "insertion_auc": ins.mean_auc, "deletion_auc": dele.mean_auc,
                "sanity_spearman_abs_all_random": float(sanity.mean_abs[-1]),
                "sanity_spearman_abs_top_layer": float(sanity.mean_abs[0]),
                "explain_seconds": seconds,
            })  # fmt: skip
            print(f"  {method} / {name}: pointing {rows[-1]['pointing']:.3f}", flush=True)
    return rows


def markdown(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def counterfactual_table(args: argparse.Namespace, cf_generators: dict[str, dict[str, str]]) -> list[dict]:
    """Table 1, printed; its rows."""
    cf = []
    for dataset in ("shape_pairs", "shapes", "digits"):
        cf += counterfactual_rows(dataset, args.cf_images, args.mdts_train, args.seed, include_agnostic=dataset == "shape_pairs",
                                  generators=cf_generators.get(dataset))  # fmt: skip
    print(f"\n### Counterfactual baselines (random other target class, test split, {args.cf_images} images)\n")
    print(markdown(cf, ["dataset", "provider", "validity", "proximity_l1", "queries_per_image", "ms_per_image"]))
    return cf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100, help="marked test images for the attribution table")
    parser.add_argument("--cf-images", type=int, default=500, help="test images per dataset for the counterfactual table")
    parser.add_argument("--minimality-images", type=int, default=500, help="marked shape_pairs test images for the minimality table")
    parser.add_argument("--ig-steps", type=int, default=32)
    parser.add_argument("--sanity-images", type=int, default=8)
    parser.add_argument("--mdts-train", type=int, default=4000, help="training images MDTS searches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--generator", action="append", default=[], metavar="NAME=PATH",
                        help="also score this shape_pairs generator checkpoint in the minimality and attribution tables (repeatable)")
    parser.add_argument("--cf-generator", action="append", default=[], metavar="DATASET:NAME=PATH",
                        help="also score this generator checkpoint in the counterfactual table of DATASET (repeatable)")
    parser.add_argument("--minimality-only", action="store_true", help="print only the minimality table")
    parser.add_argument("--counterfactuals-only", action="store_true", help="print only the counterfactual table")
    args = parser.parse_args()
    generators = dict(item.split("=", 1) for item in args.generator)
    cf_generators: dict[str, dict[str, str]] = {}
    for item in args.cf_generator:
        key, path = item.split("=", 1)
        dataset, name = key.split(":", 1)
        cf_generators.setdefault(dataset, {})[name] = path
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    start = time.perf_counter()
    if args.counterfactuals_only:
        cf = counterfactual_table(args, cf_generators)
        if args.json:
            Path(args.json).write_text(json.dumps({"counterfactuals": cf, "args": vars(args)}, indent=2))
        return
    minimal = minimality_rows(args.minimality_images, args.mdts_train, args.seed, generators)
    print(f"\n### Minimality: marked shape_pairs test images sent to plain, against the true counterfactual ({args.minimality_images} images)\n")
    print(markdown(minimal, ["provider", "validity", "proximity_l1", "true_l1", "gap_closed", "edit_in_region"]))
    if args.minimality_only:
        if args.json:
            Path(args.json).write_text(json.dumps({"minimality": minimal, "args": vars(args)}, indent=2))
        return
    cf = counterfactual_table(args, cf_generators)
    attr = attribution_rows(args.images, args.ig_steps, args.sanity_images, args.mdts_train, args.seed, generators)
    print(f"\n### One-vs-one attributions on shape_pairs ({args.images} marked test images, target marked, foil plain)\n")
    print(markdown(attr, ["method", "provider", "pointing", "energy", "insertion_auc", "deletion_auc",
                          "sanity_spearman_abs_all_random", "sanity_spearman_abs_top_layer"]))  # fmt: skip
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"counterfactuals": cf, "minimality": minimal, "attributions": attr, "args": vars(args)}, indent=2))


if __name__ == "__main__":
    main()
