"""The driver of a ``--ray`` batch: the local batch's plan, sink and manifest; Ray Data's work.

``run_ray_batch`` opens the batch exactly as the local runner does (``jobs.batch.open_batch``:
the same expander, output names, sinks, manifest and ``--resume`` rule), makes the models
ready on every node (``nodes.prepare_all``), then streams one small row per input through a
Ray Data pipeline of three actor pools::

    rows ─► Decode (CPU) ─► Infer (one model session each) ─► Finish (CPU: finish, encode, verify, write)

and books each row in the manifest the moment it comes back (``Ledger.finish``), so the
manifest grows as files finish, and the same ``--json`` rows and progress as the local engine
go out.

Memory and back-pressure
    Ray Data's streaming executor runs the three steps concurrently and stops feeding the
    decoders while in-flight blocks fill half the object store (its back-pressure; the store's
    size is the cluster's: Ray's default is 30% of each node's memory). Before that, each actor
    takes ``IN_FLIGHT`` blocks at a time, and blocks are capped at ``BLOCK_BYTES``, so a photo's
    decoded pixels travel in a block of their own and at most a few pictures per actor are in
    flight — never a materialised dataset of pixels. Input blocks hold one row each up to
    ``MIN_BLOCKS`` blocks, then up to ``ROWS_PER_BLOCK`` rows (more only past ``MAX_BLOCKS``
    blocks): Ray keeps some state on the driver for every task and block, which with one row
    per block grew the driver by about 45 KB a file. The finish step returns rows without
    pixels; the driver holds one small record per input still to do (the plan) and drops it
    when the row is booked.

Nothing lost, nothing done twice
    Every step catches its own errors (``rows``), so a bad file is a manifest row, never a
    dropped block. A process or node that dies is Ray's to recover: actors are restarted and
    their rows run again, lost objects rebuilt from lineage; a row whose process died
    ``ACTOR_RETRIES`` times more on one step is failed as ``worker-crashed`` (``attempts``:
    Ray Data alone would re-run it forever). Blocks that still fail are tolerated
    (``max_errored_blocks``) and their rows, missing at the end, run again in a second pass;
    one that is lost again is booked as failed (``lost``) with the reason. Writes are
    idempotent (temporary name + rename; a whole object put and read back), so a row that a
    retry finished twice leaves one identical file and one manifest line.

Resources (scheduling shares, not cores)
    An Infer actor asks for ``ACTOR_CPUS`` of a CPU (or one GPU when the cluster has GPUs):
    CPU-only clusters get one per node with CPUs, GPU clusters one per GPU. Decode and Finish
    are fixed pools of long-lived actors too (one per node with CPUs, or one per two CPUs if
    that is more), asking for no CPU share (``STEP_CPUS``): as quarter-CPU tasks they made Ray
    start a fresh worker process — imports and all — for most blocks (43 processes for 100
    files on two one-CPU nodes, at most 11 alive at once: Ray reaps idle task workers beyond a
    node's CPU count within a second), and a share held for the whole run could leave an Infer
    actor restarted after a node loss with no room. On a one-CPU node one Infer, one Decode and
    one Finish overlap as the local engine's three threads do.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError
from ..jobs.batch import BatchProgress, BatchSummary, Ledger, open_batch
from ..jobs.manifest import record
from ..jobs.plan import BatchItem
from ..jobs.state import Job, Stage
from ..objstore import is_uri
from . import cluster, nodes
from .attempts import start_tally
from ..errors import plain_reason
from .rows import Decode, Finish, Infer, new_row

#: a block of decoded pixels is split above this size (so one picture per block)
BLOCK_BYTES = 8 * 1024 * 1024
#: rows per input block: one while a batch fits ``MIN_BLOCKS`` blocks, up to this many past it
#: (more once a batch would need over ``MAX_BLOCKS`` blocks)
ROWS_PER_BLOCK = 32
MIN_BLOCKS = 64
MAX_BLOCKS = 2_000
#: blocks queued at one actor at a time (one running, one waiting): with blocks of at most
#: ``BLOCK_BYTES`` or one picture, what is in flight is a few pictures per actor
IN_FLIGHT = 2
#: an Infer actor's CPU share on a CPU-only cluster
ACTOR_CPUS = 0.5
#: a Decode or Finish actor's CPU share: none (see "Resources" above)
STEP_CPUS = 0
#: a row whose actor dies this many times more is failed (``attempts.Tally``)
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
            from ..models.store import ModelStore

            names = nodes.models_for(options.model, ModelStore())
            nodes.prepare_all(names, model_source, accept_license=accept_license)
            _run_passes(ledger, plan, options, names, model_source=model_source, actors=actors,
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


def _run_passes(ledger: Ledger, plan: dict[int, BatchItem], options: Any, names: list[str], **kw: Any) -> None:
    """Stream the rows through the cluster; rows a dead process or node lost run again (up to
    ``PASSES`` passes), and what is still missing is booked as ``lost``. ``plan`` holds the
    rows not yet booked: a booked row leaves it, so the driver keeps nothing per finished file
    (the manifest line on disk is what ``--resume`` reads)."""
    stop: threading.Event = kw.pop("stop")
    tally = start_tally()  # one per run: a row's starts count across passes
    why = "the process or node running it died"
    for _ in range(PASSES):
        if not plan or stop.is_set():
            break
        todo = len(plan)
        try:
            for row in _stream(plan, options, names, sink=ledger.sink, tally=tally, **kw):
                item = plan.pop(row["idx"], None)
                if item is None:  # a retried row that had come back already: booked once
                    continue
                ledger.finish(_record(item, row, options))
                if stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - the cluster failed this pass: the next one retries
            why = f"the cluster failed the pass ({plain_reason(exc)[1]})"
            _log.warning("a pass over %d rows ended early: %s", todo, why)
    if stop.is_set():
        return
    for item in plan.values():
        ledger.finish(record(item, "failed", code="lost",
                             reason=f"{item.input.name}: lost in {PASSES} passes ({why}); run again with --resume"))
    plan.clear()


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


def _stream(plan: dict[int, BatchItem], options: Any, names: list[str], *, sink: Any, tally: Any,
            model_source: str | None, actors: int | None, threads: int | None,
            accept_license: bool) -> Iterator[dict[str, Any]]:
    """One pass: the plan's rows through decode → Infer → finish on Ray Data, as they finish."""
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

    shape = layout(ray.cluster_resources(), ray.nodes(), actors)
    model = options.model
    limit = 1 + ACTOR_RETRIES
    rows = [new_row(idx, item.input, item.output_rel) for idx, item in plan.items()]
    for k, v in ours.items():  # the dataset takes a copy of the context when it is made …
        setattr(ctx, k, v)
    try:
        ds = ray.data.from_items(rows, override_num_blocks=shape.blocks(len(rows)))
    finally:  # … so a library caller's own datasets keep their settings
        for k, v in theirs.items():
            setattr(ctx, k, v)
    del rows  # the dataset's blocks hold them now
    # Ray Data's own actor settings (restart a dead actor, re-run its rows); the bound on a row
    # that kills its process every time is the tally's (``attempts``), not a deprecated remote arg
    def pool(size: int) -> Any:
        return ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=IN_FLIGHT)

    ds = ds.map(Decode, fn_constructor_args=(model, options, tally, limit), compute=pool(shape.cpu_actors),
                num_cpus=STEP_CPUS)
    ds = ds.map(Infer, fn_constructor_args=(model, options, names, model_source, threads, accept_license,
                                            tally, limit),
                compute=pool(shape.model_actors), num_cpus=0 if shape.gpus else ACTOR_CPUS,
                num_gpus=1 if shape.gpus else None)
    ds = ds.map(Finish, fn_constructor_args=(model, options, sink, tally, limit), compute=pool(shape.cpu_actors),
                num_cpus=STEP_CPUS)
    yield from ds.iter_rows()
    if _log.isEnabledFor(logging.DEBUG):  # per-operator times: ALPHACUT_DEBUG-style digging
        _log.debug("%s", ds.stats())


@dataclass(frozen=True)
class Layout:
    """How a pass is laid out on the cluster: actors per step, and rows per input block."""

    gpus: int
    cpus: float
    #: Infer actors: one per GPU, or one per node with CPUs (``--actors`` overrides)
    model_actors: int
    #: Decode and Finish actors each: one per node with CPUs, or one per two CPUs
    cpu_actors: int

    def blocks(self, rows: int) -> int:
        """Input blocks for ``rows`` rows: one row each up to ``MIN_BLOCKS`` (and four per CPU,
        so every actor has work), then up to ``ROWS_PER_BLOCK`` rows each, more only past
        ``MAX_BLOCKS`` blocks. Ray keeps state on the driver per task and per block, so one row
        per block made the driver grow with the batch (bench/ray_cluster.py); each step still
        works and fails row by row."""
        per = max(ROWS_PER_BLOCK, -(-rows // MAX_BLOCKS))
        return max(1, min(rows, max(-(-rows // per), MIN_BLOCKS, 4 * max(1, int(self.cpus)))))


def layout(resources: dict[str, float], nodes: list[dict[str, Any]], actors: int | None = None) -> Layout:
    """The pass's ``Layout`` from Ray's view of the cluster (``cluster_resources``, ``nodes``)."""
    gpus = int(resources.get("GPU", 0))
    cpus = float(resources.get("CPU", 0))
    with_cpus = sum(1 for n in nodes if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0)
    return Layout(gpus=gpus, cpus=cpus, model_actors=actors or (gpus if gpus else max(1, with_cpus)),
                  cpu_actors=max(1, with_cpus, int(cpus // 2)))
