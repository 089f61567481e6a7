"""Batches: folders, globs, lists, ZIPs and object-store prefixes in; a folder, a ZIP or an
object-store prefix (``s3://bucket/out``) out; a manifest; resume.

- Inputs are expanded, and output names decided, by ``alphacut.inputs`` (the rules every entry
  point shares): names mirror the inputs' relative paths (``shots/a/b.jpg`` → ``OUT/a/b.png``);
  two inputs that would land on one name get distinct names (``b-2.png``), decided in input
  order; a ZIP member named with ``..``, an absolute path, or a link, and a symlink that points
  out of its folder, fail as ``unsafe-path`` and are never read.
- ``manifest.jsonl`` (in the output folder; ``NAME.manifest.jsonl`` beside an output ZIP; for an
  object-store output a local working copy, mirrored whole to ``OUT/manifest.jsonl`` every few
  seconds and at the end) gets one JSON line per finished file: status, code and reason, stage
  timings, provider, output and sha256. A failed file never stops the batch.
- ``--resume`` reads the manifest and runs exactly the files without a verified output.
- An output ZIP is valid after every file: each finished file is appended and the central
  directory rewritten, so a stopped batch leaves a ZIP of every file finished so far.
- Exit status: 0 every file done; 1 some files failed (the summary lists them and why);
  130 stopped by Ctrl-C (run again with ``--resume``).

``open_batch`` (the plan, sink, manifest and what ``--resume`` leaves to do) and ``Ledger``
(booking each finished file) are shared with the Ray executor (``alphacut.distributed``).
This module runs a batch through the job engine; the plan (inputs and output names) is
``plan.py``'s, the manifest ``manifest.py``'s, the folder and ZIP outputs ``sinks.py``'s.
Progress goes to a ``BatchProgress`` (silent here; the command line's draws bars).
"""

from __future__ import annotations

import queue
import signal
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import objstore
from ..errors import AlphacutError, InputError, QueueFullError
from ..imageio.formats import DocumentOptions, by_name
from ..objstore import is_uri
from .manifest import Manifest, manifest_path, open_manifest, read_manifest, record, store_copy
from .plan import BatchItem, plan_batch
from .protocol import Engine
from .sinks import Sink, open_sink
from .state import JobEvent, Stage

EXIT_OK, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class BatchSummary:
    total: int = 0
    done: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)
    skipped_done: int = 0  # resumed: already finished before
    interrupted: bool = False
    not_run: int = 0
    manifest: Path | str | None = None  # a path, or the manifest object of an object-store output
    #: why some manifest lines could not be written (a full disk), and how many
    manifest_error: str | None = None
    manifest_missing: int = 0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_SOME_FAILED if self.failed else EXIT_OK


class BatchProgress:
    """What a batch tells whoever watches it; silent. The command line's reporters
    (``cli.progress``) draw bars or print lines; a library caller may subclass this."""

    def __init__(self, total: int = 0) -> None:
        self.total = total
        self.count = 0

    def start(self) -> None:
        pass

    def event(self, ev: JobEvent) -> None:
        pass

    def finished(self, rec: dict[str, Any]) -> None:
        """One manifest record, as each file finishes (done, failed or cancelled)."""
        self.count += 1

    def stop(self) -> None:
        pass


def item_kind(item: Any) -> str | None:
    from ..media.sniff import item_kind as kind

    return kind(item)


#: endings a clip's output can have (``clip_ending``); a still's output never gets a clip job
_CLIP_ENDINGS = {".webm", ".webp", ".mov", ".mp4", ".mkv", ".gif", ".png"}


def clip_ending(fmt: str, still_ext: str) -> Any:
    """Each item's output ending: a still's is the batch's format; a video's or an animation's
    is its kind's default (``.webm``, ``.webp``), unless the batch's format is one that writes
    only moving pictures (mov, mp4, webm, mkv, gif) and writes that kind."""
    from ..imageio.formats import by_name, default_output
    from ..media.sniff import item_kind

    chosen = by_name(fmt)

    def ending(item: Any) -> str:
        kind = item_kind(item)
        if kind is None:
            return still_ext
        if chosen.writes(kind) and not chosen.writes("still"):
            return chosen.extension
        return default_output(kind).extension

    return ending


@dataclass
class Ledger:
    """A batch opened for running: its plan, what is left to do, the sink, the manifest, the
    summary and the progress, and the one way a finished file is booked (``finish``). The
    job-engine runner (``run_batch``) and the Ray executor (``alphacut.distributed``) both
    open batches here, so resume, naming, sinks and manifest rows are the same for both."""

    items: list[BatchItem]
    todo: list[BatchItem]
    sink: Sink
    manifest: Manifest
    summary: BatchSummary
    reporter: BatchProgress

    def finish(self, rec: dict[str, Any]) -> None:
        """Book one finished file: a manifest line now, the progress, the summary."""
        self.manifest.write(rec)
        self.reporter.finished(rec)
        if rec["status"] == "done":
            self.summary.done += 1
        elif rec["status"] == "cancelled":
            self.summary.not_run += 1
        else:
            self.summary.failed.append(rec)

    def refuse_problem(self, item: BatchItem) -> bool:
        """Book an input refused before reading (``Item.problem``); False when it has none."""
        if item.input.problem is None:
            return False
        err = item.input.error()
        self.finish(record(item, "failed", code=err.code, reason=str(err)))
        return True

    def close(self, *, sweep: bool) -> None:
        """Close the manifest (an object-store output's last upload) and the sink; ``sweep``
        once nothing is still writing (temporary files a killed writer left)."""
        try:
            self.manifest.close()
        finally:
            self.summary.manifest_error, self.summary.manifest_missing = self.manifest.error, self.manifest.missing
            if sweep:
                self.sink.sweep(self.items)
            self.sink.close()


def open_batch(inputs: list[str], output: str | Path, options: Any, *, resume: bool = False,
               reporter: BatchProgress | None = None, manifest_at: Path | None = None,
               documents: DocumentOptions | None = None, notes: list[str] | None = None) -> Ledger:
    """Plan a batch, open its sink and manifest, and decide what is left to do: with ``resume``,
    a file whose manifest record says done and whose output is really there (``Sink.has``) is
    not done again. ``output`` is a folder, ``*.zip`` or an object-store prefix; ``manifest_at``
    moves the manifest's local file (an object-store output's working copy)."""
    if not is_uri(str(output)):
        output = Path(output)
    ext = by_name(options.format).extension
    mpath = manifest_at or manifest_path(output)
    previous = read_manifest(mpath, also=store_copy(output)) if resume else {}
    items = plan_batch(inputs, output, ext, {k: v["output_rel"] for k, v in previous.items() if v.get("output_rel")},
                       documents=documents, notes=notes, ext_for=clip_ending(options.format, ext))
    sink = open_sink(output, fresh=not resume)
    manifest = open_manifest(output, fresh=not resume, path=manifest_at)
    if resume:
        sink.sweep(items)  # leftovers of a run that was killed
    summary = BatchSummary(total=len(items), manifest=store_copy(output) or mpath)
    todo: list[BatchItem] = []
    for item in items:
        rec = previous.get(item.input.source_id)
        if rec and rec.get("status") == "done" and sink.has(rec):
            summary.skipped_done += 1
            summary.done += 1
        else:
            todo.append(item)
    reporter = reporter or BatchProgress(len(todo))
    reporter.total = len(todo)
    return Ledger(items, todo, sink, manifest, summary, reporter)


def run_batch(
    inputs: list[str],
    output: str | Path,
    options: Any,
    *,
    resume: bool = False,
    engine: Engine | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    reporter: BatchProgress | None = None,
    stop: threading.Event | None = None,
    handle_sigint: bool = True,
    documents: DocumentOptions | None = None,
    notes: list[str] | None = None,
    manifest_at: Path | None = None,
) -> BatchSummary:
    """Run a whole batch through the job engine; see the module docstring for the rules."""
    from .engine import JobEngine

    t0 = time.monotonic()
    ledger = open_batch(inputs, output, options, resume=resume, reporter=reporter, manifest_at=manifest_at,
                        documents=documents, notes=notes)
    todo, sink, summary, reporter = ledger.todo, ledger.sink, ledger.summary, ledger.reporter

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
        window = max(4, 2 * engine.capacity)
        pending = list(reversed(todo))

        while (pending or live) and not stop.is_set():
            while pending and len(live) < window and not stop.is_set():
                item = pending[-1]
                inp = item.input
                if ledger.refuse_problem(item):
                    pending.pop()
                    continue
                try:
                    if inp.archive is not None:
                        zf = open_zips.get(inp.archive) or open_zips.setdefault(inp.archive, zipfile.ZipFile(inp.archive))
                        src: Any = zf.read(inp.member)  # type: ignore[arg-type]
                    elif inp.read is not None:  # a PDF's photo or page, read when its turn comes
                        src = inp.read()
                    elif inp.uri is not None:  # an object: read here, like a ZIP member (the window bounds it)
                        src = objstore.read(inp.uri)
                    else:
                        src = inp.path
                    target = sink.target(item)
                    if target.suffix.lower() in _CLIP_ENDINGS and item_kind(inp) is not None:
                        job = engine.submit(src, name=inp.name, options=options, output=target, clip=True)
                    else:
                        job = engine.submit(src, name=inp.name, options=options, output=target)
                except QueueFullError:
                    break
                except InputError as err:  # a part that cannot be read (over the pixel limit, damaged)
                    pending.pop()
                    ledger.finish(record(item, "failed", code=err.code, reason=str(err)))
                    continue
                except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
                    pending.pop()
                    ledger.finish(record(item, "failed", code="input", reason=f"{inp.name}: cannot read ({exc})"))
                    continue
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
                        rec = record(item, "done", job=job, output=where)
                    except (OSError, AlphacutError) as exc:
                        rec = record(item, "failed", job=job, code="output", reason=f"{item.input.name}: {exc}")
                else:
                    sink.discard(job)
                    rec = record(item, job.stage.value, job=job, code=job.error_code, reason=job.reason)
                ledger.finish(rec)
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
                        ledger.finish(record(item, "done", job=job, output=sink.finish(item, job)))
                    else:
                        sink.discard(job)
                        ledger.finish(record(item, "cancelled", job=job, code="cancelled",
                                             reason=f"{item.input.name}: stopped before it finished"))
            summary.not_run += len(pending) + len(live)
        unsubscribe()
    finally:
        reporter.stop()
        for zf in open_zips.values():
            zf.close()
        if own_engine and engine is not None:
            engine.close()
        ledger.close(sweep=own_engine)  # own engine: its workers are gone, nothing is still writing
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    summary.seconds = time.monotonic() - t0
    return summary
