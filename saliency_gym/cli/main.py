"""Entry point of the ``saliency-gym`` command.

Each subcommand lives in its own module exposing ``NAME``, ``HELP`` and ``register(subparsers)``,
which adds its parser and sets ``func`` (called with the parsed arguments, returning an exit
code). Command modules import their heavy dependencies inside ``register``/``run``, and only the
invoked command's parser is built, so ``saliency-gym --help`` and ``saliency-gym info`` stay fast.
To add a command, write such a module and list it in :data:`COMMAND_MODULES`.
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
    "saliency_gym.cli.enjoy",
    "saliency_gym.cli.bench",
    "saliency_gym.cli.attack",
    "saliency_gym.cli.idexpo",
    "saliency_gym.cli.train_ganmex",
    "saliency_gym.cli.distill",
    "saliency_gym.cli.imitate",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``saliency-gym`` parser with the full parser of ``command`` (every command's if None)."""
    from saliency_gym import __version__

    parser = argparse.ArgumentParser(
        prog="saliency-gym",
        description="Explain image classifiers with reinforcement learning: environments, "
        "explainers, metrics and benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"saliency-gym {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        if command is None or module.NAME == command:
            module.register(subparsers)
        else:  # listed with its help; its own arguments are only built when it is invoked
            subparsers.add_parser(module.NAME, help=module.HELP)
    return parser


def _invoked_command(argv: Sequence[str]) -> str:
    """The first argument that names a command ('' if none: top-level help or an error)."""
    names = {importlib.import_module(m).NAME for m in COMMAND_MODULES}
    return next((arg for arg in argv if arg in names), "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_invoked_command(argv))
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", None)
        if isinstance(signum, int):  # runs.TrainingInterrupted: SIGTERM / SIGINT, its state was saved
            print(f"saliency-gym {args.command}: {exc}", file=sys.stderr)
            return 128 + signum
        print(f"saliency-gym {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        # User errors: bad values, unknown names, missing or unwritable files. OSError covers
        # permissions and full disks; a broken YAML file is a yaml.YAMLError (a ValueError
        # subclass is not guaranteed), handled below without importing yaml up front.
        print(f"saliency-gym {args.command}: error: {_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            print(f"saliency-gym {args.command}: error: invalid YAML: {exc}", file=sys.stderr)
            return 2
        raise


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    return str(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
