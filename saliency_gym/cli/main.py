"""Entry point of the ``saliency-gym`` command.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser
and sets ``func`` (called with the parsed arguments, returning an exit code). To add a command,
write such a module and list it in :data:`COMMAND_MODULES`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES: tuple[str, ...] = (
    "saliency_gym.cli.info",
    "saliency_gym.cli.train_classifier",
    "saliency_gym.cli.demo",
    "saliency_gym.cli.explain",
    "saliency_gym.cli.train",
    "saliency_gym.cli.bench",
    "saliency_gym.cli.attack",
    "saliency_gym.cli.idexpo",
    "saliency_gym.cli.train_ganmex",
)


def build_parser() -> argparse.ArgumentParser:
    from saliency_gym import __version__

    parser = argparse.ArgumentParser(
        prog="saliency-gym",
        description="Explain image classifiers with reinforcement learning: environments, "
        "explainers, metrics and benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"saliency-gym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"saliency-gym {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
