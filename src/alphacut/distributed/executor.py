"""The driver of a ``--ray`` batch: the local batch's plan, sink and manifest; Ray Data's work.

``run_ray_batch`` opens the batch exactly as the local runner does (``jobs.batch.open_batch``:
the same expander, output names, sinks, manifest and ``--resume`` rule), makes the models
ready on every node (``nodes.prepare_all``), then streams one small row per input through a
Ray Data pipeline::

    rows ─► decode_row (CPU tasks) ─► Infer (actor pool: one session each) ─► finish_row (CPU tasks: finish, encode, verify, write)

and books each row in the manifest the moment it comes back (``Ledger.finish``), so the
manifest grows as files finish, and the same ``--json`` rows and progress as the local engine
go out.

Memory and back-pressure
    Ray Data's streaming executor runs the three steps concurrently and stops launching
    decode tasks while the object store holds too much (its back-pressure); input blocks hold
    one row each (up to ``MAX_BLOCKS`` blocks) and blocks are capped at ``BLOCK_BYTES``, so at
    most a few decoded pictures per step are in flight — never a materialised dataset of
    pixels. The finish step returns rows without pixels; the driver holds one small record
    per input (the plan), not images.

Nothing lost, nothing done twice
    Every step catches its own errors (``rows``), so a bad file is a manifest row, never a
    dropped block. A process or node that dies is Ray's to recover: tasks are retried, actors
    restarted (``ACTOR_RETRIES`` times per row), lost objects rebuilt from lineage. Blocks that
    still fail are tolerated (``max_errored_blocks``) and their rows, missing at the end, run
    again in a second pass; one that is lost again is booked as failed (``lost``) with the
    reason. Writes are idempotent (temporary name + rename; a whole object put and read back),
    so a row that a retry finished twice leaves one identical file and one manifest line.

Resources (scheduling shares, not cores)
    An actor asks for ``ACTOR_CPUS`` of a CPU (or one GPU when the cluster has GPUs), a task
    ``TASK_CPUS``: on a one-CPU node one actor and its decode and finish tasks overlap as the
    local engine's three threads do. CPU-only clusters get one actor per node; GPU clusters
    one per GPU.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError
from ..jobs.batch import BatchProgress, BatchSummary, Ledger, open_batch
from ..jobs.manifest import record
from ..jobs.plan import BatchItem
from ..jobs.state import Job, Stage
from ..objstore import is_uri
from . import cluster, nodes
from ..errors import plain_reason
from .rows import Infer, decode_row, finish_row, new_row

#: a block of decoded pixels is split above this size (so one picture per block)
BLOCK_BYTES = 8 * 1024 * 1024
#: input blocks: one row each, up to this many (beyond it, several rows share a block)
MAX_BLOCKS = 20_000
ACTOR_CPUS = 0.5
TASK_CPUS = 0.25
#: a row whose actor dies this many times more is given up on in this pass
ACTOR_RETRIES = 3
#: passes over the rows a dead process or node lost
PASSES = 2

_log = logging.getLogger("alphacut.distributed")


def run_ray_batch(
    inputs: list[str],
    output: str | Path,
    options: Any,
    *,
    address: str = "auto",
    resume: bool = False,
    reporter: BatchProgress | None = None,
    manifest_at: Path | None = None,
    model_source: str | None = None,
    actors: int | None = None,
    threads: int | None = None,
    accept_license: bool = False,
    stop: threading.Event | None = None,
    documents: Any = None,
    notes: list[str] | None = None,
) -> BatchSummary:
    """Run a batch on a Ray cluster (``address``: ``auto``, ``local`` or ``host:port``);
    see the module docstring. Returns the same summary as ``jobs.batch.run_batch``."""
    t0 = time.monotonic()
    if not is_uri(str(output)) and Path(output).suffix.lower() == ".zip":
        raise UsageError("--ray writes to a folder (a shared filesystem on a real cluster) or an object-store "
                         "prefix (s3://bucket/out), not a ZIP: a ZIP has one writer")
    ledger = open_batch(inputs, output, options, resume=resume, reporter=reporter, manifest_at=manifest_at,
                        documents=documents, notes=notes)
    stop = stop or threading.Event()
    conn = None
    finished_cleanly = False
    ledger.reporter.start()
    try:
        plan = {idx: item for idx, item in enumerate(ledger.todo) if not ledger.refuse_problem(item)}
        if plan:
            conn = cluster.connect(address)  # first: Ray must not be imported before it (cluster.py)
            rows = [new_row(idx, item.input, item.output_rel) for idx, item in plan.items()]
            from ..models.store import ModelStore

            names = nodes.models_for(options.model, ModelStore())
            nodes.prepare_all(names, model_source, accept_license=accept_license)
            _run_passes(ledger, rows, plan, options, names, model_source=model_source, actors=actors,
                        threads=threads, accept_license=accept_license, stop=stop)
        finished_cleanly = not stop.is_set()
        if stop.is_set():
            ledger.summary.interrupted = True
            ledger.summary.not_run = ledger.summary.total - ledger.summary.done - len(ledger.summary.failed)
    except KeyboardInterrupt:
        ledger.summary.interrupted = True
        ledger.summary.not_run = ledger.summary.total - ledger.summary.done - len(ledger.summary.failed)
    finally:
        ledger.reporter.stop()
        if conn is not None:
            conn.shutdown()  # a local cluster we started ends here: its writers are gone
        ledger.close(sweep=finished_cleanly or (conn is not None and conn.started_local))
    ledger.summary.seconds = time.monotonic() - t0
    return ledger.summary


def _run_passes(ledger: Ledger, rows: list[dict[str, Any]], plan: dict[int, BatchItem], options: Any,
                names: list[str], **kw: Any) -> None:
    """Stream the rows through the cluster; rows a dead process or node lost run again (up to
    ``PASSES`` passes), and what is still missing is booked as ``lost``."""
    stop: threading.Event = kw.pop("stop")
    booked: set[int] = set()
    remaining = rows
    why = "the process or node running it died"
    for _ in range(PASSES):
        if not remaining or stop.is_set():
            break
        try:
            for row in _stream(remaining, options, names, sink=ledger.sink, **kw):
                idx = row["idx"]
                if idx in booked:  # a retried row that had come back already: booked once
                    continue
                booked.add(idx)
                ledger.finish(_record(plan[idx], row, options))
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - the cluster failed this pass: the next one retries
            why = f"the cluster failed the pass ({plain_reason(exc)[1]})"
            _log.warning("a pass over %d rows ended early: %s", len(remaining), why)
        remaining = [r for r in remaining if r["idx"] not in booked]
    if stop.is_set():
        return
    for row in remaining:
        item = plan[row["idx"]]
        ledger.finish(record(item, "failed", code="lost",
                             reason=f"{item.input.name}: lost in {PASSES} passes ({why}); run again with --resume"))


def _record(item: BatchItem, row: dict[str, Any], options: Any) -> dict[str, Any]:
    """A finished row as the manifest record the local engine writes (``jobs.manifest.record``
    over a ``Job``), done or failed: the same fields, so ``--json`` rows and manifests match."""
    done = row["status"] == "done"
    job = Job(name=item.input.name, options=options, stage=Stage.DONE if done else Stage.FAILED,
              provider=row["provider"] or None, warnings=list(dict.fromkeys(json.loads(row["warnings"]))),
              timings=json.loads(row["timings"]), output_sha256=row["sha256"], output_bytes=row["bytes"],
              started=row["started"] or None, finished=row["finished"] or None, attempts=1,
              output_path=row["output"], reason=row["reason"], error_code=row["code"])
    if done:
        return record(item, "done", job=job, output=row["output"])
    return record(item, "failed", job=job, code=row["code"], reason=row["reason"])


def _stream(rows: list[dict[str, Any]], options: Any, names: list[str], *, sink: Any, model_source: str | None,
            actors: int | None, threads: int | None, accept_license: bool) -> Iterator[dict[str, Any]]:
    """One pass: the rows through decode → Infer → finish on Ray Data, as they finish."""
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    ctx = DataContext.get_current()
    ours = {
        "enable_progress_bars": False,  # the driver's own progress reports files, not blocks
        "print_on_execution_start": False,
        "target_max_block_size": BLOCK_BYTES,
        "max_errored_blocks": -1,  # a block a dead node took is run again by the next pass
    }
    theirs = {k: getattr(ctx, k) for k in ours}
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # "Progress bars disabled…": alphacut draws its own progress, per file
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)

    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    alive = max(1, sum(1 for n in ray.nodes() if n.get("Alive")))
    n_actors = actors or (gpus if gpus else alive)
    model = options.model
    for k, v in ours.items():  # the dataset takes a copy of the context when it is made …
        setattr(ctx, k, v)
    try:
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
    finally:  # … so a library caller's own datasets keep their settings
        for k, v in theirs.items():
            setattr(ctx, k, v)
    ds = ds.map(decode_row, fn_kwargs={"model": model, "options": options}, num_cpus=TASK_CPUS)
    with warnings.catch_warnings():
        # Ray Data's default retries an actor's row forever: an image that kills its actor
        # every time would never end the batch. Bounding it needs ``max_task_retries``, which
        # Ray Data (2.60) still takes but marks deprecated in favour of named parameters it
        # does not have yet.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        ds = ds.map(Infer, fn_constructor_args=(model, options, names, model_source, threads, accept_license),
                    compute=ActorPoolStrategy(size=n_actors), num_cpus=0 if gpus else ACTOR_CPUS,
                    num_gpus=1 if gpus else None, max_restarts=-1, max_task_retries=ACTOR_RETRIES)
    ds = ds.map(finish_row, fn_kwargs={"model": model, "options": options, "sink": sink},
                num_cpus=TASK_CPUS)
    yield from ds.iter_rows()
    if _log.isEnabledFor(logging.DEBUG):  # per-operator times: ALPHACUT_DEBUG-style digging
        _log.debug("%s", ds.stats())
