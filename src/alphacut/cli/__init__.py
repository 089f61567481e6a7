"""``alphacut``: the command line, a thin shell over the library.

All terminal code lives in this package: the subcommands (``remove``, ``models``, ``doctor``,
``serve``), each in its own module that registers itself and returns an exit code, and the
batch progress display (``progress``). The library, the job engine and the model store report
through callbacks and return values; only these modules print. Started through
``alphacut.launch`` (the ``alphacut`` command, ``python -m alphacut``, ``python -m alphacut.cli``).
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alphacut",
        description="Private, professional background removal on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"alphacut {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from . import doctor, models, remove, serve

    remove.register(sub)
    models.register(sub)
    doctor.register(sub)
    serve.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("alphacut: interrupted", file=sys.stderr)
        return 130

