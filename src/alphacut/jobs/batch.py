"""Batches: folders, globs, lists and ZIPs in; a folder or a ZIP out; a manifest; resume.

- Inputs are expanded, and output names decided, by ``alphacut.inputs`` (the rules every entry
  point shares): names mirror the inputs' relative paths (``shots/a/b.jpg`` → ``OUT/a/b.png``);
  two inputs that would land on one name get distinct names (``b-2.png``), decided in input
  order; a ZIP member named with ``..``, an absolute path, or a link, and a symlink that points
  out of its folder, fail as ``unsafe-path`` and are never read.
- ``manifest.jsonl`` (in the output folder; ``NAME.manifest.jsonl`` beside an output ZIP) gets one
  JSON line per finished file: status, code and reason, stage timings, provider, output and
  sha256. A failed file never stops the batch.
- ``--resume`` reads the manifest and runs exactly the files without a verified output.
- An output ZIP is valid after every file: each finished file is appended and the central
  directory rewritten, so a stopped batch leaves a ZIP of every file finished so far.
- Exit status: 0 every file done; 1 some files failed (the summary lists them and why);
  130 stopped by Ctrl-C (run again with ``--resume``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import re
import signal
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AlphacutError, QueueFullError, UsageError
from ..fsutil import atomic_write, output_error, same_file, temp_prefix
from ..imageio.formats import by_name
from ..inputs import Item, distinct_outputs, expand, mirror
from .state import Job, JobEvent, Stage

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class BatchItem:
    """One input of a batch and its output's name inside the output folder or ZIP (posix)."""

    input: Item
    output_rel: str


@dataclass
class BatchSummary:
    total: int = 0
    done: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped_done: int = 0  # resumed: already finished before
    interrupted: bool = False
    not_run: int = 0
    manifest: Path | None = None
    #: why some manifest lines could not be written (a full disk), and how many
    manifest_error: str | None = None
    manifest_missing: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_SOME_FAILED if self.failed else EXIT_OK


# --- planning ------------------------------------------------------------------------------


def plan_batch(inputs: list[str], output: Path, ext: str, keep: dict[str, str] | None = None) -> list[BatchItem]:
    """The batch's inputs (expanded by `inputs.expand`, the rules every entry point shares),
    each with its distinct output name under the output folder or ZIP.

    ``keep``: names decided by an earlier run of this batch, by source id (``--resume``).
    """
    to_zip = output.suffix.lower() == ".zip"
    found = expand(inputs, exclude=None if to_zip else output)
    if to_zip:  # never read the archive being written
        found = [i for i in found if not (i.path is not None and same_file(i.path, output))]
    if not found:
        raise UsageError("no images found in the given inputs")
    names = distinct_outputs(found, mirror(ext), on_disk=None if to_zip else output, keep=keep)
    return [BatchItem(i, names[i.source_id]) for i in found]


# --- manifest ------------------------------------------------------------------------------


def manifest_path(output: Path) -> Path:
    return output.with_name(output.stem + ".manifest.jsonl") if output.suffix.lower() == ".zip" else output / "manifest.jsonl"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """source id → the last record for it (a torn last line from a hard stop is ignored)."""
    records: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "source" in rec:
            records[rec["source"]] = rec
    return records


class _Manifest:
    """Appends one line per finished file. A line that cannot be written (a full disk) is cut
    back out, so the file never holds half a record, and the batch goes on: the record is only
    missing, and ``--resume`` redoes a file without a record."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        self.path = path
        self.error: str | None = None
        self.missing = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if fresh:
                atomic_write(path, b"")
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise output_error(exc, "cannot write the batch manifest", path) from None

    def write(self, rec: dict[str, Any]) -> None:
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
        end = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if os.write(self.fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(self.fd)
        except OSError as exc:
            self.missing += 1
            self.error = str(exc.strerror or exc)
            try:
                os.ftruncate(self.fd, end)
            except OSError:
                pass

    def close(self) -> None:
        os.close(self.fd)


# --- output sinks --------------------------------------------------------------------------


class _FolderSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(exc, "cannot make the output folder", root) from None

    def sweep(self, items: list[BatchItem]) -> int:
        """Remove the temporary files (``.NAME.xxxxxxxx.part``) that a worker killed in the middle
        of an atomic write left beside this batch's outputs; a final name never holds a partial
        file, and now no temporary one is left either."""
        wanted: dict[Path, list[str]] = {}
        for item in items:
            target = self.target(item)
            wanted.setdefault(target.parent, []).append(temp_prefix(target))
        removed = 0
        for folder, prefixes in wanted.items():
            pattern = re.compile("(?:" + "|".join(re.escape(p) for p in prefixes) + r")[a-z0-9_]{8}\.part")
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.endswith(".part") and pattern.fullmatch(name):
                    try:
                        os.unlink(folder / name)
                        removed += 1
                    except OSError:
                        pass
        return removed

    def target(self, item: BatchItem) -> Path:
        return self.root / item.output_rel

    def has(self, rec: dict[str, Any]) -> bool:
        p = self.root / rec.get("output_rel", "\0")
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest() == rec.get("sha256")
        except OSError:
            return False

    def finish(self, item: BatchItem, job: Job) -> str:
        return str(self.root / item.output_rel)

    def discard(self, job: Job) -> None:
        pass

    def close(self) -> None:
        pass


class _ZipSink:
    """Appends each finished file to the ZIP; the central directory is rewritten every time."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        try:
            self._open(path, fresh)
        except OSError as exc:
            raise output_error(exc, "cannot write the output archive", path) from None

    def _open(self, path: Path, fresh: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not fresh and path.exists():
            try:
                with zipfile.ZipFile(path) as zf:
                    zf.testzip()
            except (zipfile.BadZipFile, OSError):  # a hard stop mid-append: keep it aside, start over
                os.replace(path, path.with_name(f"{path.name}.broken-{int(time.time())}"))
                fresh = True
        if fresh or not path.exists():
            tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
            with zipfile.ZipFile(tmp, "w"):
                pass
            tmp.close()
            os.replace(tmp.name, path)
        with zipfile.ZipFile(path) as zf:
            self.members = {i.filename: i.file_size for i in zf.infolist()}
        self.staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))

    def target(self, item: BatchItem) -> Path:
        return self.staging / item.output_rel

    def has(self, rec: dict[str, Any]) -> bool:
        return self.members.get(rec.get("output_rel", "\0")) == rec.get("bytes")

    def finish(self, item: BatchItem, job: Job) -> str:
        staged = Path(job.output_path or self.target(item))
        data = staged.read_bytes()
        with zipfile.ZipFile(self.path, "a", compression=zipfile.ZIP_STORED) as zf:
            if item.output_rel in self.members:  # a resumed batch redoing a file: never duplicate
                raise UsageError(f"{item.output_rel} is already in {self.path}")
            info = zipfile.ZipInfo(item.output_rel, date_time=time.localtime()[:6])
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
        self.members[item.output_rel] = len(data)
        staged.unlink(missing_ok=True)
        return f"{self.path}!{item.output_rel}"

    def discard(self, job: Job) -> None:
        if job.output_path:
            Path(job.output_path).unlink(missing_ok=True)

    def sweep(self, items: list[BatchItem]) -> int:
        return 0  # its staging folder goes as a whole on close

    def close(self) -> None:
        import shutil

        shutil.rmtree(self.staging, ignore_errors=True)


# --- progress ------------------------------------------------------------------------------


class Reporter:
    """Plain log lines (not a terminal, or ``--json``) — the rich one draws bars instead."""

    def __init__(self, total: int, stream: Any = None, *, json_lines: bool = False) -> None:
        import sys

        self.total = total
        self.count = 0
        self.stream = stream or sys.stderr
        self.json_lines = json_lines

    def start(self) -> None:
        pass

    def event(self, ev: JobEvent) -> None:
        pass

    def finished(self, rec: dict[str, Any]) -> None:
        import sys

        self.count += 1
        if self.json_lines:
            print(json.dumps(rec, ensure_ascii=False), file=sys.stdout, flush=True)
            return
        if rec["status"] == "done":
            line = f"[{self.count}/{self.total}] done   {rec['input']} → {rec['output']} ({rec.get('seconds', 0):.1f} s)"
        else:
            line = f"[{self.count}/{self.total}] {rec['status']:<6} {rec.get('reason') or rec['input']}"
        print(line, file=self.stream, flush=True)

    def stop(self) -> None:
        pass


class RichReporter(Reporter):
    """Two bars on a terminal: the whole batch (files, rate, ETA) and the file being worked on."""

    def __init__(self, total: int, stream: Any = None) -> None:
        super().__init__(total, stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(file=self.stream)
        self.progress = Progress(
            TextColumn("{task.description}", justify="left"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False, refresh_per_second=8,
        )
        self.overall = self.progress.add_task("batch", total=total, rate="")
        self.current = self.progress.add_task("", total=1.0, rate="")
        self.t0 = time.monotonic()
        self._stages = {s: i for i, s in enumerate(("decoding", "inferring", "refining", "encoding", "verifying"))}

    def start(self) -> None:
        self.progress.start()

    def event(self, ev: JobEvent) -> None:
        idx = self._stages.get(ev.stage.value)
        if idx is None:
            return
        frac = (idx + ev.progress) / len(self._stages)
        name = ev.job.get("name", "")
        short = name if len(name) <= 40 else "…" + name[-39:]
        self.progress.update(self.current, completed=frac, description=f"{short} [{ev.stage.value}]")

    def finished(self, rec: dict[str, Any]) -> None:
        self.count += 1
        mins = max(1e-6, (time.monotonic() - self.t0) / 60)
        self.progress.update(self.overall, advance=1, rate=f"{self.count / mins:.1f}/min")
        if rec["status"] != "done":
            self.progress.console.print(f"[red]{rec['status']}[/red] {rec.get('reason') or rec['input']}", markup=True, highlight=False)

    def stop(self) -> None:
        self.progress.stop()


# --- running -------------------------------------------------------------------------------


def _record(item: BatchItem, status: str, *, job: Job | None = None, code: str | None = None,
            reason: str | None = None, output: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "input": item.input.name,
        "source": item.input.source_id,
        "status": status,
        "output": output,
        "output_rel": item.output_rel,
        "code": code,
        "reason": reason,
        "time": time.time(),
    }
    if job is not None:
        rec.update(
            job_id=job.id,
            provider=job.provider,
            warnings=job.warnings,
            timings={k: round(v, 4) for k, v in job.timings.items()},
            sha256=job.output_sha256,
            bytes=job.output_bytes,
            attempts=job.attempts,
            seconds=round((job.finished or time.time()) - (job.started or job.created), 3),
        )
    return rec


def run_batch(
    inputs: list[str],
    output: str | Path,
    options: Any,
    *,
    resume: bool = False,
    engine: Any = None,
    engine_kwargs: dict[str, Any] | None = None,
    reporter: Reporter | None = None,
    stop: threading.Event | None = None,
    handle_sigint: bool = True,
) -> BatchSummary:
    """Run a whole batch through the job engine; see the module docstring for the rules."""
    from .engine import JobEngine

    t0 = time.monotonic()
    output = Path(output)
    to_zip = output.suffix.lower() == ".zip"
    ext = by_name(options.format).extension
    mpath = manifest_path(output)
    previous = read_manifest(mpath) if resume else {}
    items = plan_batch(inputs, output, ext, {k: v["output_rel"] for k, v in previous.items() if v.get("output_rel")})

    sink: Any = _ZipSink(output, fresh=not resume) if to_zip else _FolderSink(output)
    manifest = _Manifest(mpath, fresh=not resume)
    if resume:
        sink.sweep(items)  # leftovers of a run that was killed
    summary = BatchSummary(total=len(items), manifest=mpath)
    todo: list[BatchItem] = []
    for item in items:
        rec = previous.get(item.input.source_id)
        if rec and rec.get("status") == "done" and sink.has(rec):
            summary.skipped_done += 1
            summary.done += 1
        else:
            todo.append(item)
    reporter = reporter or Reporter(len(todo))
    reporter.total = len(todo)

    stop = stop or threading.Event()
    old_handler = None
    if handle_sigint and threading.current_thread() is threading.main_thread():
        def on_sigint(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        old_handler = signal.signal(signal.SIGINT, on_sigint)

    own_engine = engine is None
    events: queue.Queue[JobEvent] = queue.Queue()
    live: dict[str, BatchItem] = {}
    open_zips: dict[Path, zipfile.ZipFile] = {}
    reporter.start()
    try:
        if own_engine:
            engine = JobEngine(options.model, **(engine_kwargs or {}))
        unsubscribe = engine.subscribe(events.put)
        window = max(4, 2 * engine.workers * engine.slots)
        pending = list(reversed(todo))

        def finish(item: BatchItem, rec: dict[str, Any]) -> None:
            manifest.write(rec)
            reporter.finished(rec)
            if rec["status"] == "done":
                summary.done += 1
            elif rec["status"] == "cancelled":
                summary.not_run += 1
            else:
                summary.failed.append(rec)

        while (pending or live) and not stop.is_set():
            while pending and len(live) < window and not stop.is_set():
                item = pending[-1]
                inp = item.input
                if inp.problem is not None:
                    pending.pop()
                    err = inp.error()
                    finish(item, _record(item, "failed", code=err.code, reason=str(err)))
                    continue
                try:
                    if inp.archive is not None:
                        zf = open_zips.get(inp.archive) or open_zips.setdefault(inp.archive, zipfile.ZipFile(inp.archive))
                        src: Any = zf.read(inp.member)  # type: ignore[arg-type]
                        input_path = None
                    else:
                        src, input_path = inp.path, inp.path
                    job = engine.submit(src, name=inp.name, options=options, output=sink.target(item))
                except QueueFullError:
                    break
                except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
                    pending.pop()
                    finish(item, _record(item, "failed", code="input", reason=f"{inp.name}: cannot read ({exc})"))
                    continue
                del input_path
                pending.pop()
                live[job.id] = item
            try:
                ev = events.get(timeout=0.2)
            except queue.Empty:
                continue
            reporter.event(ev)
            if ev.stage.final and ev.job_id in live:
                item = live.pop(ev.job_id)
                job = engine.get(ev.job_id)
                if job.stage is Stage.DONE:
                    try:
                        where = sink.finish(item, job)
                        rec = _record(item, "done", job=job, output=where)
                    except (OSError, AlphacutError) as exc:
                        rec = _record(item, "failed", job=job, code="output", reason=f"{item.input.name}: {exc}")
                else:
                    sink.discard(job)
                    rec = _record(item, job.stage.value, job=job, code=job.error_code, reason=job.reason)
                finish(item, rec)
                engine.forget(job.id)
        if stop.is_set():
            summary.interrupted = True
            engine.cancel_all()
            deadline = time.monotonic() + 10
            while live and time.monotonic() < deadline:
                try:
                    ev = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if ev.stage.final and ev.job_id in live:
                    item = live.pop(ev.job_id)
                    job = engine.get(ev.job_id)
                    if job.stage is Stage.DONE:  # finished just before the stop: keep it
                        finish(item, _record(item, "done", job=job, output=sink.finish(item, job)))
                    else:
                        sink.discard(job)
                        finish(item, _record(item, "cancelled", job=job, code="cancelled",
                                             reason=f"{item.input.name}: stopped before it finished"))
            summary.not_run += len(pending) + len(live)
        unsubscribe()
    finally:
        reporter.stop()
        for zf in open_zips.values():
            zf.close()
        if own_engine and engine is not None:
            engine.close()
        manifest.close()
        summary.manifest_error, summary.manifest_missing = manifest.error, manifest.missing
        if own_engine:  # its workers are gone: nothing is still writing
            sink.sweep(items)
        sink.close()
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    summary.seconds = time.monotonic() - t0
    return summary


def print_summary(summary: BatchSummary, stream: Any = None) -> None:
    import sys

    out = stream or sys.stderr
    parts = [f"{summary.done} of {summary.total} done"]
    if summary.skipped_done:
        parts.append(f"{summary.skipped_done} already done before")
    if summary.failed:
        parts.append(f"{len(summary.failed)} failed")
    if summary.interrupted:
        parts.append(f"stopped with {summary.not_run} not processed (run again with --resume)")
    print(f"alphacut: {', '.join(parts)} in {summary.seconds:.1f} s; manifest: {summary.manifest}", file=out)
    if summary.manifest_error:
        print(f"  {summary.manifest_missing} record(s) could not be written to the manifest "
              f"({summary.manifest_error}); --resume redoes those files", file=out)
    for rec in summary.failed:
        print(f"  failed: {rec.get('reason') or rec['input']} [{rec.get('code')}]", file=out)
