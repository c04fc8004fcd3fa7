"""``saliency-gym attack``: attack the attribution maps of held-out images (writes a PNG).

Example::

    saliency-gym attack --classifier shapes --method gradient --attacks random topk lens_topk \\
        --epsilon 8 --images 8 --out attack_output

``--model`` (alias ``--classifier``) and ``--data`` take the specs of
:func:`saliency_gym.cli.common.add_model_arguments` (your own model and image folder).

Each attack (:mod:`saliency_gym.baselines.attacks`) perturbs the same test images within the L∞
ball of radius ``epsilon / 255``; the command prints, per attack, the label-kept rate and, over the
label-kept images, the top-k intersection, LENS recall@k and top-k-div intersection between the
original and the attacked maps (1 = unchanged), and writes the images, the original maps and each
attack's maps side by side.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from saliency_gym.cli.common import (
    add_device_argument,
    add_model_arguments,
    build_model_and_data,
    non_negative_int,
    positive_float,
    positive_int,
)
from saliency_gym.runs import check_output_dir

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from saliency_gym.classifier import FrozenClassifier

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
    add_model_arguments(parser)
    parser.add_argument("--method", default="gradient",
                        help=f"attribution method attacked ({', '.join(available_explainers())}); the white-box attacks differentiate {', '.join(WHITE_BOX_EXPLAINERS)}")  # fmt: skip
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS, metavar="ATTACK",
                        help=f"attacks to run (default: all of {' '.join(ATTACKS)})")  # fmt: skip
    parser.add_argument(
        "--epsilon",
        type=positive_float,
        default=8.0,
        help="L-inf radius in units of 1/255 (default 8)",
    )
    parser.add_argument("--images", type=positive_int, default=8, help="test images to attack")
    parser.add_argument(
        "--steps", type=positive_int, default=10, help="iterations of the white-box attacks"
    )
    parser.add_argument("--k", type=positive_int, default=None, help="top-k size (default H*W/10)")
    parser.add_argument(
        "--w",
        type=non_negative_int,
        default=1,
        help="LENS neighbourhood radius in pixels (default 1: 3x3)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the random attack"
    )
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
    from saliency_gym.explainers import make_explainer
    from saliency_gym.plotting import save_saliency_grid

    white_box = [a for a in args.attacks if a != "random"]
    if white_box and args.method not in WHITE_BOX_EXPLAINERS:
        raise ValueError(
            f"the white-box attacks {white_box} need one of the methods {list(WHITE_BOX_EXPLAINERS)}, got {args.method!r}"
        )
    start = time.perf_counter()
    classifier, test = build_model_and_data(args)
    explainer = make_explainer(args.method, classifier)
    batch = test.get_batch(range(min(args.images, len(test))))
    _, h, w = classifier.input_shape
    k = h * w // 10 if args.k is None else min(args.k, h * w)
    eps = args.epsilon / 255
    print(
        f"{classifier.name} / {args.method}: {len(batch.labels)} test images, epsilon {args.epsilon:g}/255, k {k}, w {args.w}"
    )
    print(
        f"{'attack':<12} {'label kept':>10} {'top-k':>7} {'LENS rec':>9} {'top-k-div':>10} {'queries/img':>12} {'s':>6}"
    )
    maps: dict[str, np.ndarray] = {}
    original: np.ndarray | None = None
    surrogate = (
        None if "path" in classifier.meta or not white_box else softplus_surrogate(classifier)
    )
    for attack in args.attacks:
        options: dict[str, object] = (
            {"seed": args.seed}
            if attack == "random"
            else {"steps": args.steps, "k": k, "w": args.w}
        )
        if surrogate is not None and attack != "random":
            options["surrogate"] = surrogate
        result = run_attack(attack, explainer, batch.images, eps, **options)
        kept = result.label_kept
        sims = attribution_similarities(
            result.original_maps, result.adversarial_maps, k=k, w=args.w
        )
        values = [
            f"{sims[n][kept].mean():.3f}" if kept.any() else "n/a"
            for n in ("topk", "lens_recall", "topk_div")
        ]
        print(f"{attack:<12} {kept.mean():>10.2f} {values[0]:>7} {values[1]:>9} {values[2]:>10} "
              f"{result.queries / len(kept):>12.1f} {result.seconds:>6.1f}")  # fmt: skip
        original = result.original_maps
        maps[f"{attack} (attacked)"] = result.adversarial_maps
    assert original is not None  # at least one attack ran (argparse requires one)
    path = save_saliency_grid(
        batch.images, {"original": original, **maps}, Path(args.out) / f"attack_{classifier.name}_{args.method}.png",
        row_titles=[test.class_names[int(y)] for y in batch.labels] if test.has_label else None,
        title=f"{classifier.name} / {args.method}, epsilon {args.epsilon:g}/255",
    )  # fmt: skip
    print(
        f"(top-k/LENS/top-k-div over label-kept images; 1 = map unchanged)\nwrote {path} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def softplus_surrogate(classifier: FrozenClassifier, beta: float = 10.0) -> nn.Module:
    """The white-box attacks' surrogate for a model that is not a saliency-gym checkpoint.

    A copy of the model with every ``nn.ReLU`` module swapped for ``Softplus(beta)`` (non-zero
    second derivatives, as :func:`~saliency_gym.baselines.attacks.load_surrogate` does for the
    shipped CNNs) and the classifier's input normalisation applied by a forward pre-hook, so the
    layer names Grad-CAM uses stay those of the model. A model without ``nn.ReLU`` modules
    (functional activations, TorchScript, ``torch.export``) is used as it is; the attack still runs
    but its second-order signal is weaker.
    """
    import copy
    import warnings

    from torch import nn

    mean, std = classifier._mean, classifier._std
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # torch.export modules warn about fake tensors, then fail
            surrogate = copy.deepcopy(classifier.module).eval()
    except Exception:  # noqa: BLE001 - modules unflattened from torch.export cannot be copied: share it
        if mean is None or std is None:
            return classifier.module
        return _normalized(classifier.module, mean, std)
    swapped = 0
    for parent in list(surrogate.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, nn.Softplus(beta=beta))
                swapped += 1
    if not swapped:
        print(
            f"note: {classifier.name} has no nn.ReLU modules to smooth; the white-box attacks use it as it is"
        )
    if mean is not None and std is not None:

        def normalize(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
            return ((inputs[0] - mean) / std, *inputs[1:])

        surrogate.register_forward_pre_hook(normalize)
    for p in surrogate.parameters():
        p.requires_grad_(False)
    return surrogate


def _normalized(model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> nn.Module:
    """``model`` behind the input normalisation, its layers still found by their own names."""
    from torch import nn

    class Normalized(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner((x - mean) / std)

        def get_submodule(self, target: str) -> nn.Module:
            return self.inner.get_submodule(target)

    return Normalized()
