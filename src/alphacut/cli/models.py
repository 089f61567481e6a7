"""``alphacut models ...``: the cache made visible (list, pull, verify, path, rm, import, export).

``cli.build_parser`` calls :func:`register` with its subparsers; every subcommand sets
``func(args) -> int``. Terminal concerns (rich tables, progress bars) stay here, not in the store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import AlphacutError
from ..models.download import ProgressFn
from ..models.store import ModelStore


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``models`` and its subcommands to the top-level parser's subparsers."""
    parser = subparsers.add_parser(
        "models", help="list, download, verify, import and export models",
        description="Manage the local model cache (ALPHACUT_HOME or the user cache dir).",
    )
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never touch the network (same as ALPHACUT_OFFLINE=1)")
    parser.set_defaults(func=_needs_subcommand(parser))
    sub = parser.add_subparsers(dest="models_command", metavar="COMMAND")

    p = sub.add_parser("list", help="every model: installed, size, licence, commercial use")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_wrap(cmd_list))

    p = sub.add_parser("pull", help="download and verify a model")
    p.add_argument("name")
    p.add_argument("--accept-license", action="store_true",
                   help="accept a non-commercial licence (required for such models)")
    p.add_argument("--force", action="store_true", help="download again even if installed")
    p.set_defaults(func=_wrap(cmd_pull))

    p = sub.add_parser("verify", help="check installed files by full sha256")
    p.add_argument("name", nargs="?")
    p.set_defaults(func=_wrap(cmd_verify))

    p = sub.add_parser("path", help="print the path of an installed model")
    p.add_argument("name")
    p.set_defaults(func=_wrap(cmd_path))

    p = sub.add_parser("rm", help="delete an installed model")
    p.add_argument("name")
    p.set_defaults(func=_wrap(cmd_rm))

    p = sub.add_parser("import", help="install a model file from disk (air-gapped machines)")
    p.add_argument("file", type=Path)
    p.add_argument("--name", help="the model it is (default: recognised by sha256)")
    p.set_defaults(func=_wrap(cmd_import))

    p = sub.add_parser("export", help="copy an installed model to a file or directory")
    p.add_argument("name")
    p.add_argument("file", type=Path)
    p.set_defaults(func=_wrap(cmd_export))
    return parser


def _needs_subcommand(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run


def _wrap(fn: Callable[[argparse.Namespace, ModelStore], int]) -> Callable[[argparse.Namespace], int]:
    """Build the store from the flags and turn AlphacutError into a message and exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            store = ModelStore(offline=getattr(args, "offline", None) or None)
            return fn(args, store)
        except AlphacutError as err:
            print(f"alphacut: error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print("alphacut: interrupted (a partial download resumes next time)", file=sys.stderr)
            return 130

    return run


def _console(stderr: bool = False):  # type: ignore[no-untyped-def]
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output is not cut to 80 columns: long licences and paths stay on one line
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 200)


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


# --- subcommands ------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, store: ModelStore) -> int:
    infos = store.list()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"models in {store.dir}", title_justify="left")
    for col in ("name", "installed", "size", "licence", "commercial", "verified", "path"):
        table.add_column(col, overflow="fold")
    for i in infos:
        table.add_row(
            i.name,
            "yes" if i.installed else "no",
            _human(i.size if i.installed else i.expected_size)
            + (f" (+{_human(i.cpu_copy_size)} CPU copy)" if i.cpu_copy_size else ""),
            i.licence,
            "yes" if i.commercial_use else "[bold red]no[/]",
            i.verified,
            str(i.path) if i.installed else "",
        )
    _console().print(table)
    return 0


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressFn | None]:
    """A rich progress bar fed by the downloader's callback (one task per file label)."""
    if not enabled:
        yield None
        return
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(),
                  console=_console(stderr=True), transient=False) as bar:

        def progress(done: int, total: int | None, label: str) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield progress


def cmd_pull(args: argparse.Namespace, store: ModelStore) -> int:
    with _progress_bar(sys.stderr.isatty()) as progress:
        path = store.pull(args.name, accept_license=args.accept_license, force=args.force,
                          progress=progress)
    store.cpu_file(args.name)  # float16 models: build the CPU copy now, not on the first image
    print(path)
    return 0


def cmd_verify(args: argparse.Namespace, store: ModelStore) -> int:
    result = store.verify(args.name)
    if not result:
        print("no models installed")
        return 0
    bad = 0
    for name, status in result.items():
        print(f"{name}: {status}")
        bad += status != "ok"
    if bad:
        print(f"alphacut: error: {bad} model(s) failed verification; "
              "`alphacut models pull NAME --force` fetches them again", file=sys.stderr)
        return 4
    return 0


def cmd_path(args: argparse.Namespace, store: ModelStore) -> int:
    print(store.path(args.name))
    return 0


def cmd_rm(args: argparse.Namespace, store: ModelStore) -> int:
    print(f"removed {store.rm(args.name)}")
    return 0


def cmd_import(args: argparse.Namespace, store: ModelStore) -> int:
    print(store.import_file(args.file, args.name))
    return 0


def cmd_export(args: argparse.Namespace, store: ModelStore) -> int:
    print(store.export(args.name, args.file))
    return 0
