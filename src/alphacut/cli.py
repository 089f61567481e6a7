"""``alphacut``: the command line, a thin shell over the library.

Subcommands live in their own modules (``cli_remove``, ``models.cli_models``, ``cli_doctor``,
``server.cli_serve``); each registers itself and returns an exit code.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alphacut",
        description="Private, professional background removal on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"alphacut {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from . import cli_doctor, cli_remove
    from .models import cli_models

    cli_remove.register(sub)
    cli_models.register(sub)
    cli_doctor.register(sub)
    try:
        from .server import cli_serve
    except ImportError:  # the server extra (fastapi/uvicorn) is not installed
        pass
    else:
        cli_serve.register(sub)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
