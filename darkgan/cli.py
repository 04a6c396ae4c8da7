"""``darkgan <command>``: the command-line interface over the Python API.

Each pipeline stage owns its commands in ``darkgan/<stage>/cli.py``, a module with a
``register(subparsers)`` function that adds sub-parsers whose ``func`` attribute is called with
the parsed arguments. Stage modules are imported only when the CLI starts, and heavy imports
(torch, models) happen inside the command functions, so ``darkgan --help`` stays fast.

Errors: a :class:`darkgan.errors.DarkGANError` (or a missing file, a permission error, a
keyboard interrupt) is printed as one line, ``darkgan: error: ...``, with exit status 2
(130 on Ctrl-C); ``--debug`` re-raises to show the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: Stage modules that contribute commands, in pipeline order.
STAGES = (
    "darkgan.data.cli",
    "darkgan.teacher.cli",
    "darkgan.training.cli",
    "darkgan.generation.cli",
    "darkgan.evaluation.cli",
    "darkgan.compression.cli",
    "darkgan.instrument.cli",
    "darkgan.frami.cli",
    "darkgan.app.cli",
    "darkgan.timbre.cli",
    "darkgan.pipeline",
    "darkgan.sing.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every stage's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="darkgan",
        description="DarkGAN: controllable, comprehensible and lightweight synthesis of musical notes.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in STAGES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a stage not built yet in this checkout
            if e.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``darkgan`` executable; returns the process exit status."""
    from darkgan.errors import DarkGANError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
        return int(result) if isinstance(result, int) else 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("darkgan: interrupted", file=sys.stderr)
        return 130
    except (DarkGANError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        if args.debug:
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
            msg = f"{e.filename}: {e.strerror}"
        print(f"darkgan: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
