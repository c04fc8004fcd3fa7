"""Argument helpers shared by subcommands: argparse types that say what is allowed, and the shared
"model and data" argument group (:func:`add_model_arguments`; :func:`model_data_spec` converts it
to the library's :class:`~saliency_gym.specs.ModelDataSpec`, :func:`build_model_and_data` builds it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saliency_gym.classifier import FrozenClassifier
    from saliency_gym.data import DataSource
    from saliency_gym.specs import ModelDataSpec


def device(text: str) -> str:
    """A torch device that exists here (``cuda`` without CUDA is an error, never a silent CPU run)."""
    from saliency_gym.validation import resolve_device

    try:
        resolve_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=device,
        default=None,
        help="torch device, e.g. cpu or cuda (default: cuda when available)",
    )


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine {local,ray}`` and where Ray runs (``--address``, ``--num-cpus``).

    ``local`` (the default) runs in this process; ``ray`` runs the same work through
    :mod:`saliency_gym.distributed` (the ``[ray]`` extra), on the cluster at ``--address`` (or
    ``RAY_ADDRESS``), else on a Ray instance started on this machine with ``--num-cpus`` CPUs.
    Commands call :func:`check_engine_arguments` first: the Ray options without ``--engine ray``,
    ``--engine ray`` without Ray, and an address nothing answers at are one-line errors.
    """
    group = parser.add_argument_group("engine")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="where the work runs: this process (default) or a Ray cluster")
    group.add_argument("--address", default=None,
                       help="with --engine ray: the Ray cluster's address (from `ray start --head`; 'auto' for the "
                            "local one; checked to answer within a few seconds); default: $RAY_ADDRESS, else a Ray "
                            "instance started on this machine")
    group.add_argument("--num-cpus", type=positive_int, default=None,
                       help="with --engine ray: CPUs of a Ray instance started here (default: all)")


def add_figure_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format {png,pdf,svg}`` and ``--dpi`` of a command that writes figures
    (:func:`saliency_gym.plotting.save_figure`)."""
    from saliency_gym.plotting import DEFAULT_DPI, FIGURE_FORMATS

    group = parser.add_argument_group("figures")
    group.add_argument("--format", choices=FIGURE_FORMATS, default="png", dest="figure_format",
                       help="file format of the figure: png, or pdf / svg (vector, for papers) (default: png)")  # fmt: skip
    group.add_argument("--dpi", type=dpi_value, default=DEFAULT_DPI,
                       help=f"resolution of raster figures (PNG); 300 for print (default: {DEFAULT_DPI})")  # fmt: skip


def dpi_value(text: str) -> int:
    """A figure resolution in dots per inch, 10 to 2400."""
    value = int(_number(text, int))
    if not 10 <= value <= 2400:
        raise argparse.ArgumentTypeError(f"must lie in [10, 2400] dots per inch, got {value}")
    return value


def _number(text: str, kind: type) -> float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be {'an integer' if kind is int else 'a number'}, got {text!r}"
        ) from None


def positive_int(text: str) -> int:
    value = int(_number(text, int))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {value}")
    return value


def fraction(text: str) -> float:
    value = _number(text, float)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {value}")
    return value


def input_shape_arg(text: str) -> int:
    """One size of ``--input-shape C H W``."""
    return positive_int(text)


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_model: str | None = "shapes",
    classifier_alias: bool = True,
    data_help: str | None = None,
) -> None:
    """Add the shared "model and data" argument group (``--model``, ``--weights``, ``--data``, ...).

    ``--classifier`` stays an alias of ``--model`` where commands had it. The parsed values are
    turned into a classifier and a data source by :func:`build_model_and_data`, so every command
    accepts the same specs (see :mod:`saliency_gym.models.model_files`).
    """
    group = parser.add_argument_group(
        "model and data",
        "a shipped classifier name or checkpoint, a TorchScript file, a torch.export archive (.pt2), or "
        "module:factory with --weights; data: a dataset name or a folder of images",
    )
    flags = ["--model", "--classifier"] if classifier_alias else ["--model"]
    default_text = f"default: {default_model}" if default_model else "default: none"
    group.add_argument(*flags, dest="model", default=default_model, metavar="SPEC",
                       help=f"classifier: shipped name, checkpoint, TorchScript/.pt2 file or module:factory ({default_text})")  # fmt: skip
    group.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="state dict for a module:factory model (read weights-only); required unless --random-weights",
    )
    group.add_argument(
        "--random-weights",
        action="store_true",
        help="explain a module:factory model with the random weights its factory draws, on purpose "
        "(without this flag, a factory without --weights is an error)",
    )
    group.add_argument(
        "--model-kwargs",
        default=None,
        metavar="JSON",
        help="keyword arguments of the factory, e.g. '{\"num_classes\": 10}'",
    )
    group.add_argument("--input-shape", nargs=3, type=input_shape_arg, default=None, metavar=("C", "H", "W"),
                       help="input size of the model (inferred from .pt2 archives and named data)")  # fmt: skip
    group.add_argument("--class-names", default=None, metavar="FILE",
                       help="text file with one class name per line, or a JSON list (default: ImageNet names for 1000 outputs)")  # fmt: skip
    group.add_argument("--normalize", nargs="+", default=None, metavar="SPEC",
                       help="what the model expects of its inputs: imagenet, none (default), m11 ([-1, 1]), or numbers "
                       "(MEAN STD, or C means then C stds)")  # fmt: skip
    group.add_argument("--data", default=None, metavar="NAME_OR_FOLDER",
                       help=data_help or "dataset name (shapes, digits, ...) or a folder of images (class sub-folders, "
                       "or flat: unlabelled) (default: the classifier's own dataset)")  # fmt: skip
    group.add_argument("--class-map", default=None, metavar="FILE",
                       help="for a folder of class sub-folders whose names are not the model's class names: a JSON "
                       "object or a 'folder,class' CSV mapping each folder to a class name or id (folders are "
                       "otherwise matched by name only)")  # fmt: skip


def model_data_spec(args: argparse.Namespace) -> ModelDataSpec:
    """The :class:`~saliency_gym.specs.ModelDataSpec` of the arguments of :func:`add_model_arguments`
    (what the library and the Ray engines take; ``ValueError`` without ``--model``)."""
    from saliency_gym.specs import ModelDataSpec

    return ModelDataSpec.from_attributes(args)


def build_model_and_data(
    args: argparse.Namespace, *, split: str = "test"
) -> tuple[FrozenClassifier, DataSource]:
    """The classifier and the data source named by the arguments of :func:`add_model_arguments`
    (:meth:`saliency_gym.specs.ModelDataSpec.build` of :func:`model_data_spec`, on ``--device``).

    Without ``--input-shape``, a model that cannot tell its own input size takes the image size of
    a named dataset. Without ``--data``, the classifier's own dataset is used (shipped classifiers);
    other models need ``--data``. A ``module:factory`` model needs ``--weights`` unless
    ``--random-weights`` is given.
    """
    return model_data_spec(args).build(getattr(args, "device", None), split=split)


def check_engine_arguments(args: argparse.Namespace) -> None:
    """Check the :func:`add_engine_arguments` options before any work (one ``ValueError`` /
    ``ConnectionError`` line each, exit 2): ``--address`` and ``--num-cpus`` only go with
    ``--engine ray``; ``--engine ray`` needs Ray installed (the install hint) and, with an address,
    a cluster that answers there within seconds (no endless "Failed to connect to GCS")."""
    if args.engine != "ray":
        given = [flag for flag, value in (("--address", args.address), ("--num-cpus", args.num_cpus))
                 if value is not None]  # fmt: skip
        if given:
            raise ValueError(f"{' and '.join(given)} only apply with --engine ray (where Ray runs): "
                             "add --engine ray or leave them out")  # fmt: skip
        return
    from saliency_gym.distributed.cluster import check_ray_address, require_ray

    command = getattr(args, "command", None)
    try:
        require_ray(f"{command} --engine ray" if command else "--engine ray")
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    check_ray_address(args.address)


def add_run_arguments(parser: argparse.ArgumentParser, *, config_help: str) -> None:
    """The arguments of a resumable training run: ``--config``, ``--out``, ``--resume``,
    ``--seed``, ``--threads``, ``--no-progress`` and ``--device`` (set up by :func:`start_run`)."""
    parser.add_argument("--config", default=None, help=config_help)
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads")
    parser.add_argument("--no-progress", action="store_true")
    add_device_argument(parser)


def start_run(args: argparse.Namespace) -> None:
    """Check ``--out`` (never inside the installed package) and apply ``--threads``."""
    import torch

    from saliency_gym.runs import check_output_dir

    check_output_dir(args.out, "run folder")
    if args.threads:
        torch.set_num_threads(args.threads)
