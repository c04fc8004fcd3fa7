"""``saliency-gym attack``: attack the attribution maps of held-out images (writes a PNG).

Example::

    saliency-gym attack --classifier shapes --method gradient --attacks random topk lens_topk \\
        --epsilon 8 --images 8 --out attack_output

Each attack (:mod:`saliency_gym.baselines.attacks`) perturbs the same test images within the L∞
ball of radius ``epsilon / 255``; the command prints, per attack, the label-kept rate and, over the
label-kept images, the top-k intersection, LENS recall@k and top-k-div intersection between the
original and the attacked maps (1 = unchanged), and writes the images, the original maps and each
attack's maps side by side.
"""

from __future__ import annotations

import argparse

from saliency_gym.cli.common import (
    add_device_argument,
    non_negative_int,
    positive_float,
    positive_int,
)
from saliency_gym.runs import check_output_dir

NAME = "attack"
HELP = "perturb images to move their attribution maps (LENS / Ghorbani et al.), print metrics, write a PNG"


def register(subparsers: argparse._SubParsersAction) -> None:
    from saliency_gym.baselines.attacks import ATTACKS, WHITE_BOX_EXPLAINERS
    from saliency_gym.explainers import available_explainers

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description="Attack the attribution maps of test images of a classifier within an L-inf ball "
        "without changing their predictions; print top-k intersection, LENS recall@k and top-k-div "
        "intersection after each attack, with the label-kept rate, and write a PNG.",
    )
    parser.add_argument("--classifier", default="shapes", help="shipped classifier name (shapes, shapes_robust, ...) or checkpoint path")
    parser.add_argument("--method", default="gradient",
                        help=f"attribution method attacked ({', '.join(available_explainers())}); the white-box attacks differentiate {', '.join(WHITE_BOX_EXPLAINERS)}")  # fmt: skip
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS, metavar="ATTACK",
                        help=f"attacks to run (default: all of {' '.join(ATTACKS)})")  # fmt: skip
    parser.add_argument("--epsilon", type=positive_float, default=8.0, help="L-inf radius in units of 1/255 (default 8)")
    parser.add_argument("--images", type=positive_int, default=8, help="test images to attack")
    parser.add_argument("--steps", type=positive_int, default=10, help="iterations of the white-box attacks")
    parser.add_argument("--k", type=positive_int, default=None, help="top-k size (default H*W/10)")
    parser.add_argument("--w", type=non_negative_int, default=1, help="LENS neighbourhood radius in pixels (default 1: 3x3)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random attack")
    parser.add_argument("--out", default="attack_output", help="folder for the PNG")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)  # fail now, not after the work
    import time
    from pathlib import Path

    from saliency_gym.baselines.attacks import (
        WHITE_BOX_EXPLAINERS,
        attribution_similarities,
        run_attack,
    )
    from saliency_gym.data import load_dataset
    from saliency_gym.explainers import make_explainer
    from saliency_gym.plotting import save_saliency_grid
    from saliency_gym.zoo import load_classifier

    white_box = [a for a in args.attacks if a != "random"]
    if white_box and args.method not in WHITE_BOX_EXPLAINERS:
        raise ValueError(f"the white-box attacks {white_box} need one of the methods {list(WHITE_BOX_EXPLAINERS)}, got {args.method!r}")
    start = time.perf_counter()
    classifier = load_classifier(args.classifier, device=args.device)
    explainer = make_explainer(args.method, classifier)
    test = load_dataset(classifier.meta["dataset"], "test")
    batch = test.get_batch(range(min(args.images, len(test))))
    _, h, w = classifier.input_shape
    k = h * w // 10 if args.k is None else min(args.k, h * w)
    eps = args.epsilon / 255
    print(f"{classifier.name} / {args.method}: {len(batch.labels)} test images, epsilon {args.epsilon:g}/255, k {k}, w {args.w}")
    print(f"{'attack':<12} {'label kept':>10} {'top-k':>7} {'LENS rec':>9} {'top-k-div':>10} {'queries/img':>12} {'s':>6}")
    maps = {}
    original = None
    for attack in args.attacks:
        options = {"seed": args.seed} if attack == "random" else {"steps": args.steps, "k": k, "w": args.w}
        result = run_attack(attack, explainer, batch.images, eps, **options)
        kept = result.label_kept
        sims = attribution_similarities(result.original_maps, result.adversarial_maps, k=k, w=args.w)
        values = [f"{sims[n][kept].mean():.3f}" if kept.any() else "n/a" for n in ("topk", "lens_recall", "topk_div")]
        print(f"{attack:<12} {kept.mean():>10.2f} {values[0]:>7} {values[1]:>9} {values[2]:>10} "
              f"{result.queries / len(kept):>12.1f} {result.seconds:>6.1f}")  # fmt: skip
        original = result.original_maps
        maps[f"{attack} (attacked)"] = result.adversarial_maps
    path = save_saliency_grid(
        batch.images, {"original": original, **maps}, Path(args.out) / f"attack_{classifier.name}_{args.method}.png",
        row_titles=[test.class_names[int(y)] for y in batch.labels],
        title=f"{classifier.name} / {args.method}, epsilon {args.epsilon:g}/255",
    )  # fmt: skip
    print(f"(top-k/LENS/top-k-div over label-kept images; 1 = map unchanged)\nwrote {path} in {time.perf_counter() - start:.1f} s")
    return 0
