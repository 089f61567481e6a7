"""The one job engine: a bounded queue feeding isolated worker processes.

Everything — ``alphacut remove`` batches, the web server, library users with many images —
runs images through ``JobEngine``; there is no second queue anywhere. ``protocol.Engine`` is
the interface the server and the batch runner use.

This module is the queue and the workers' lifecycle: submit, dispatch, events to subscribers,
starting, stopping and replacing ``spawn`` processes. What a crash, a timeout, too much memory
or an old worker means is ``containment.Policy``'s to decide; the messages over each worker's
pipe are ``wire``'s dataclasses; what runs inside a worker is ``worker.py``. The supervisor
thread (``_loop``) watches every worker's pipe and process sentinel. ``isolate="job"`` gives
every job a fresh process.

Overlap
    Each worker runs a three-thread pipeline (decode | model passes | finish + encode + verify +
    write) over up to three jobs at once, so one image is finished while the next is inferred
    inside one process. Worker count and ORT threads per worker are chosen from the machine
    (``default_layout``) and can be overridden; how many threads the finishing side may use
    beside ONNX Runtime's is measured image by image inside each worker (``layout``).
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing as mp
import multiprocessing.connection as mpc
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from ..errors import AlphacutError, QueueFullError, UsageError, WorkerCrashedError
from ..imageio.formats import by_name
from ..memory import use_huge_pages_in_children
from ..models.session import physical_cores
from .containment import Kill, Policy, rss_mb, unstartable
from .protocol import Subscriber, Subscribers
from .state import Job, JobEvent, Stage, transition
from .wire import Failed, Fatal, Finished, FromWorker, Ready, StageReached, Stop, Task, Waiting, WorkerConfig
from .worker import worker_main

Isolate = Literal["worker", "job"]
#: what a worker process runs: ``worker.worker_main`` (or a function that calls it with a subclass of ``Worker``)
WorkerMain = Callable[[Any, WorkerConfig], None]


def default_layout(cores: int | None = None) -> tuple[int, int]:
    """(workers, ORT threads per worker) for this machine.

    Up to 4 physical cores: one pipelined worker whose session uses every core (its decode and
    encode threads fill the gaps inference leaves; a second model copy costs memory). Above
    that, workers of about four cores each. Measured on 2 cores (bench/batch.py, IS-Net, ten
    12 MP photos): 1 worker x 2 threads 0.76 of the inference limit at 1.2 GB for the process
    tree; 2 workers x 1 thread 0.69 at 2.0 GB.
    """
    cores = cores or physical_cores()
    if cores <= 4:
        return 1, cores
    workers = max(1, cores // 4)
    return workers, max(1, cores // workers)


@dataclass
class WorkerHandle:
    """The engine's view of one worker process."""

    index: int
    process: Any
    conn: Any
    ready: bool = False
    pid: int = 0
    provider: str = ""
    warnings: list[str] = field(default_factory=list)
    #: ids of the jobs it holds, in the order it got them
    inflight: list[str] = field(default_factory=list)
    assigned: int = 0
    completed: int = 0
    retiring: bool = False
    exclusive: bool = False
    #: set when the engine itself ends the worker: why, and the job to blame
    kill: Kill | None = None
    stop_sent: bool = False
    started: float = field(default_factory=time.monotonic)
    dead: bool = False
    #: outputs of jobs cancelled while it ran them: their temporary files go when it has died
    leftovers: list[str] = field(default_factory=list)


class JobEngine:
    """Runs jobs on isolated worker processes (a ``protocol.Engine``). Thread-safe; use as a
    context manager."""

    def __init__(
        self,
        model: str | None = None,
        *,
        workers: int | None = None,
        threads_per_worker: int | None = None,
        max_queue: int = 256,
        job_timeout: float | None = 600.0,
        max_rss_mb: float | None = None,
        recycle_after: int | None = 200,
        recycle_rss_mb: float | None = None,
        isolate: Isolate = "worker",
        artifacts_dir: str | Path | None = None,
        pipelined: bool = True,
        providers: list[str] | None = None,
        model_path: str | Path | None = None,
        cpu_model_path: str | Path | None = None,
        accept_license: bool = False,
        worker_main: WorkerMain = worker_main,
    ) -> None:
        from ..models.catalog import DEFAULT_MODEL, get_spec

        if isolate not in ("worker", "job"):
            raise UsageError(f"isolate must be 'worker' or 'job', not {isolate!r}")
        self.model = get_spec(model or DEFAULT_MODEL).name
        if model_path is None:
            from ..models.store import ModelStore

            store = ModelStore()
            model_path = store.ensure(self.model, accept_license=accept_license)
            cpu_model_path = store.cpu_file(self.model)
        self.model_path = Path(model_path)
        #: a float32 copy of a float16 model, run when CPU heads the provider chain
        self.cpu_model_path = Path(cpu_model_path) if cpu_model_path is not None else None
        dw, dt = default_layout()
        self.workers = max(1, workers or dw)
        self.threads_per_worker = max(1, threads_per_worker or (dt if workers is None else max(1, physical_cores() // self.workers)))
        self.max_queue = max_queue
        self.isolate = isolate
        #: crash, timeout, memory and recycling limits (``containment``)
        self.policy = Policy(job_timeout=job_timeout, max_rss_mb=max_rss_mb,
                             recycle_after=1 if isolate == "job" else recycle_after,
                             recycle_rss_mb=recycle_rss_mb)
        self._worker_main = worker_main
        self.pipelined = pipelined and isolate != "job"
        self.slots = 3 if self.pipelined else 1
        self.providers = providers
        self._own_workdir = artifacts_dir is None
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self._workdir: Path | None = self.artifacts_dir
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        #: what each unfinished job reads (a path, or the bytes), until it ends
        self._sources: dict[str, bytes | str] = {}
        #: a clip job's codec choice and limits, until it ends
        self._clip_settings: dict[str, Any] = {}
        #: the worker holding each job it was handed, until the job ends or is requeued
        self._holder: dict[str, WorkerHandle] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._workers: list[WorkerHandle] = []
        self._counter = itertools.count()
        self._subscribers = Subscribers()
        self._events: list[JobEvent] = []
        self._closing = False
        self._closed = False
        self._broken: tuple[str, str] | None = None
        self._startup_failures = 0
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._thread = threading.Thread(target=self._loop, name="alphacut-engine", daemon=True)
        self._thread.start()

    @property
    def capacity(self) -> int:
        """Jobs in the workers at once: each worker holds ``slots`` (three when pipelined)."""
        return self.workers * self.slots

    @property
    def job_timeout(self) -> float | None:
        return self.policy.job_timeout

    @property
    def max_rss_mb(self) -> float | None:
        return self.policy.max_rss_mb

    @property
    def recycle_after(self) -> int | None:
        return self.policy.recycle_after

    @property
    def recycle_rss_mb(self) -> float | None:
        return self.policy.recycle_rss_mb

    # --- public API ---------------------------------------------------------------------------

    def submit(self, source: Path | str | bytes, *, name: str | None = None, options: Any = None,
               output: Path | str | None = None, clip: bool = False, clip_settings: Any = None) -> Job:
        """Queue one image (or, with ``clip``, one video or animation cut out frame by frame
        into ``output``; ``clip_settings``: a ``media.clip.ClipSettings``). Raises
        ``QueueFullError`` when ``max_queue`` jobs are waiting."""
        from ..pipeline import Options

        opts = options or Options(model=self.model)
        if opts.model != self.model:
            raise UsageError(f"this engine runs {self.model!r}, not {opts.model!r}")
        is_bytes = isinstance(source, (bytes, bytearray, memoryview))
        if name is None:
            name = "<bytes>" if is_bytes else Path(source).name  # type: ignore[arg-type]
        with self._lock:
            if self._closing:
                raise UsageError("the job engine is closed")
            if len(self._pending) >= self.max_queue:
                raise QueueFullError(f"the job queue is full ({self.max_queue} waiting); try again shortly")
            job = Job(name=name, options=opts, clip=clip)
            job.input_path = None if is_bytes else str(source)
            self._sources[job.id] = bytes(source) if is_bytes else str(source)  # type: ignore[arg-type]
            if clip and clip_settings is not None:
                self._clip_settings[job.id] = clip_settings
            job.output_path = str(output) if output is not None else str(self._default_output(job))
            self._jobs[job.id] = job
            if self._broken:
                transition(job, Stage.FAILED, reason=f"{name}: {self._broken[1]}", code=self._broken[0])
                self._finish_bookkeeping(job)
            else:
                self._pending.append(job.id)
            self._emit(job, "queued" if not job.final else job.reason or "")
        self._deliver()
        self._wake()
        return job

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job (a running one's worker is ended and replaced)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.final:
                return False
            self._cancel_locked(job)
        self._deliver()
        self._wake()
        return True

    def cancel_all(self) -> int:
        with self._lock:
            live = [j for j in self._jobs.values() if not j.final]
            for job in live:
                self._cancel_locked(job)
        self._deliver()
        self._wake()
        return len(live)

    def get(self, job_id: str) -> Job:
        with self._lock:
            try:
                return self._jobs[job_id]
            except KeyError:
                raise KeyError(f"no job {job_id!r}") from None

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def forget(self, job_id: str) -> None:
        """Drop a finished job from memory (its files stay)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.final:
                del self._jobs[job_id]

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """``callback(event)`` for every job event, called on the engine's thread: keep it cheap."""
        return self._subscribers.add(callback)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            job = self.get(job_id)
            while not job.final:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"job {job_id} not finished after {timeout} s")
                self._cond.wait(left if left is not None else 1.0)
            return job

    def wait_all(self, timeout: float | None = None) -> list[Job]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while any(not j.final for j in self._jobs.values()):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("jobs not finished in time")
                self._cond.wait(left if left is not None else 1.0)
            return list(self._jobs.values())

    def stats(self) -> dict[str, Any]:
        """What the capability panel shows: workers, their pids, provider, memory."""
        with self._lock:
            return {
                "model": self.model,
                "workers": self.workers,
                "threads_per_worker": self.threads_per_worker,
                "isolate": self.isolate,
                "pipelined": self.pipelined,
                "queued": len(self._pending),
                "max_queue": self.max_queue,
                "processes": [
                    {"pid": w.pid, "ready": w.ready, "provider": w.provider, "warnings": list(w.warnings),
                     "jobs": list(w.inflight), "completed": w.completed, "rss_mb": round(rss_mb(w.pid), 1)}
                    for w in self._workers if not w.dead
                ],
            }

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._workers if w.ready and not w.dead]

    def close(self, *, cancel: bool = True, timeout: float = 10.0) -> None:
        """Stop: cancel what is left (or wait for it with ``cancel=False``), then end the workers."""
        if self._closed:
            return
        if not cancel:
            try:
                self.wait_all()
            except KeyboardInterrupt:
                pass
        with self._lock:
            self._closing = True
            if cancel:
                for job in [j for j in self._jobs.values() if not j.final]:
                    self._cancel_locked(job)
        self._deliver()
        self._wake()
        self._thread.join(timeout)
        with self._lock:
            for w in self._workers:
                self._end_worker(w, graceful=True)
            for w in self._workers:
                w.process.join(timeout=max(0.1, timeout / 2))
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(1.0)
            self._workers.clear()
            self._closed = True
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "JobEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- loading artifacts ----------------------------------------------------------------------

    def load_cutout(self, job: Job | str) -> Any:
        from .artifacts import load_cutout

        job = self.get(job) if isinstance(job, str) else job
        if self.artifacts_dir is None:
            raise UsageError("this engine keeps no artifacts (artifacts_dir is not set)")
        return load_cutout(job.artifacts or self.artifacts_dir / job.id, job.options)

    # --- internals: bookkeeping (call with the lock held) ------------------------------------

    def _default_output(self, job: Job) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="alphacut-jobs-"))
        stem = _short(re.sub(r"[^\w.-]+", "_", Path(job.name).stem)) or "image"
        return self._workdir / job.id / f"{stem}{by_name(job.options.format).extension}"

    def _emit(self, job: Job, message: str = "") -> None:
        self._events.append(JobEvent(job.id, job.stage, job.progress, message, time.time(), job.public()))
        if job.final:
            self._cond.notify_all()

    def _deliver(self) -> None:
        """Hand queued events to subscribers, outside the lock, in order."""
        with self._lock:
            events, self._events = self._events, []
        self._subscribers.publish(events)

    def _finish_bookkeeping(self, job: Job) -> None:
        self._sources.pop(job.id, None)
        self._clip_settings.pop(job.id, None)
        job.active_since = None
        w = self._holder.pop(job.id, None)
        if w is not None and job.id in w.inflight:
            w.inflight.remove(job.id)
            if not w.inflight:
                w.exclusive = False

    def _cancel_locked(self, job: Job) -> None:
        w = self._holder.get(job.id)
        if job.id in self._pending:
            self._pending.remove(job.id)
        transition(job, Stage.CANCELLED, reason=f"{job.name}: cancelled", code="cancelled")
        self._emit(job, "cancelled")
        self._finish_bookkeeping(job)
        if w is not None and not w.dead:
            # a job inside a worker cannot be stopped politely in the middle of inference: end
            # the worker; the supervisor requeues the other jobs it held and starts a new one,
            # and removes what the killed job had half written once the process is gone
            if job.output_path:
                w.leftovers.append(job.output_path)
            if w.kill is None:
                w.kill = Kill("cancelled", WorkerCrashedError, None)
            try:
                w.process.kill()
            except (OSError, ValueError):
                pass

    def _fail(self, job: Job, err: type[AlphacutError] | str, reason: str) -> None:
        code = err if isinstance(err, str) else err.code
        transition(job, Stage.FAILED, reason=reason, code=code)
        self._emit(job, reason)
        self._finish_bookkeeping(job)

    def _requeue(self, job: Job, *, quarantine: bool = False) -> None:
        self._holder.pop(job.id, None)
        job.active_since = None
        job.active_seconds = 0.0
        if quarantine:
            job.quarantined = True
        transition(job, Stage.QUEUED)
        self._pending.appendleft(job.id)
        self._emit(job, "requeued")

    # --- internals: workers -------------------------------------------------------------------

    def _spawn(self) -> WorkerHandle:
        parent, child = self._ctx.Pipe(duplex=True)
        cfg = WorkerConfig(
            model=self.model,
            model_path=str(self.model_path),
            cpu_model_path=str(self.cpu_model_path) if self.cpu_model_path is not None else None,
            threads=self.threads_per_worker,
            providers=self.providers,
            artifacts_dir=str(self.artifacts_dir) if self.artifacts_dir is not None else None,
            pipelined=self.pipelined,
            cores=max(1, physical_cores() // self.workers),
        )
        proc = self._ctx.Process(target=self._worker_main, args=(child, cfg), name="alphacut-worker", daemon=True)
        use_huge_pages_in_children()  # a fresh process reads glibc's tunables at start (see memory)
        proc.start()
        child.close()
        w = WorkerHandle(next(self._counter), proc, parent, pid=proc.pid or 0)
        self._workers.append(w)
        return w

    def _end_worker(self, w: WorkerHandle, *, graceful: bool) -> None:
        if w.dead:
            return
        if graceful and not w.stop_sent:
            w.stop_sent = True
            try:
                w.conn.send(Stop())
            except (OSError, ValueError):
                pass
        elif not graceful:
            try:
                w.process.kill()
            except (OSError, ValueError):
                pass

    def _live(self) -> list[WorkerHandle]:
        return [w for w in self._workers if not w.dead and not w.retiring]

    def _ensure_workers(self) -> None:
        if self._closing or self._broken:
            return
        busy = bool(self._pending) or any(w.inflight for w in self._workers)
        if not busy and not self._live():
            return  # start lazily: no process until there is work
        while len(self._live()) < self.workers:
            self._spawn()

    def _dispatch(self) -> None:
        for w in self._live():
            if not w.ready or w.exclusive:
                continue
            while self._pending and len(w.inflight) < self.slots and not w.retiring:
                jid = self._pending[0]
                job = self._jobs[jid]
                if job.quarantined:
                    if w.inflight:
                        break
                    w.exclusive = True
                self._pending.popleft()
                task = Task(id=jid, name=job.name, source=self._sources[jid], options=job.options,
                            output=job.output_path or "", input_path=job.input_path, clip=job.clip,
                            clip_settings=self._clip_settings.get(jid))
                try:
                    w.conn.send(task)
                except (OSError, ValueError):
                    self._pending.appendleft(jid)
                    w.exclusive = False
                    break
                job.attempts += 1
                self._holder[jid] = w
                job.worker_pid = w.pid
                w.inflight.append(jid)
                w.assigned += 1
                if self.policy.retire_after_assign(w.assigned):
                    w.retiring = True  # no more work for it; a replacement starts now
                if w.exclusive:
                    break

    def _on_message(self, w: WorkerHandle, msg: FromWorker) -> None:
        if isinstance(msg, Ready):
            w.ready, w.pid, w.provider, w.warnings = True, msg.pid, msg.provider, list(msg.warnings)
            self._startup_failures = 0
            return
        if isinstance(msg, Fatal):
            self._broken = (msg.code, msg.reason)
            for jid in list(self._pending):
                job = self._jobs[jid]
                self._pending.remove(jid)
                self._fail(job, msg.code, f"{job.name}: {msg.reason}")
            return
        job = self._jobs.get(msg.job_id)
        if job is None or job.final or self._holder.get(job.id) is not w:
            return  # cancelled meanwhile, or a stale message
        now = time.monotonic()
        if isinstance(msg, StageReached):
            stage, frac = Stage(msg.stage), float(msg.progress)
            if job.active_since is None:
                job.active_since = now
            if msg.frames:  # a clip: one event per finished frame
                job.frames_done, job.frames_total, job.frame_at = msg.frame, msg.frames, now
            if stage is not job.stage:
                transition(job, stage, frac)
                self._emit(job, stage.value)
            else:
                transition(job, stage, frac)
                self._emit(job, "")
        elif isinstance(msg, Waiting):
            t0, job.active_since = job.active_since, None
            if t0 is not None:
                job.active_seconds += now - t0
            s0, job.stage_started = job.stage_started, None  # waiting for the next thread is not stage time
            if s0 is not None and not job.final:
                job.timings[job.stage.value] = job.timings.get(job.stage.value, 0.0) + now - s0
        elif isinstance(msg, Finished):
            job.output_path = msg.output
            job.output_sha256 = msg.sha256
            job.output_bytes = msg.bytes
            job.provider = msg.provider
            job.warnings = list(msg.warnings)
            job.artifacts = msg.artifacts
            if job.stage is not Stage.VERIFYING:  # a job always passes through every stage
                for st in (Stage.DECODING, Stage.INFERRING, Stage.REFINING, Stage.ENCODING, Stage.VERIFYING):
                    if Stage(st) in _after(job.stage):
                        transition(job, st)
            transition(job, Stage.DONE)
            for k, v in msg.timings.items():
                job.timings[k] = v
            self._emit(job, "done")
            self._finish_bookkeeping(job)
            w.completed += 1
            self._maybe_retire(w)
        elif isinstance(msg, Failed):
            reason = msg.reason
            self._fail(job, msg.code, reason if job.name in reason else f"{job.name}: {reason}")
            w.completed += 1
            self._maybe_retire(w)

    def _maybe_retire(self, w: WorkerHandle) -> None:
        if not w.retiring and self.policy.retire_after_job(w.pid):
            w.retiring = True
        if w.retiring and not w.inflight:
            self._end_worker(w, graceful=True)

    def _on_death(self, w: WorkerHandle) -> None:
        w.dead = True
        w.process.join(0.5)
        try:
            w.conn.close()
        except OSError:
            pass
        jobs = [self._jobs[j] for j in list(w.inflight) if j in self._jobs and not self._jobs[j].final]
        w.inflight.clear()
        # the process is gone: nothing writes beside these outputs any more (a retry starts afresh)
        for output in w.leftovers + [j.output_path for j in jobs if j.output_path]:
            remove_partial(output)
        w.leftovers.clear()
        if not w.ready and w.kill is None and not w.stop_sent:
            self._startup_failures += 1
            if self._startup_failures >= 3:
                self._broken = ("worker-crashed", unstartable(w.process.exitcode))
                for jid in list(self._pending):
                    self._pending.remove(jid)
                    job = self._jobs[jid]
                    self._fail(job, "worker-crashed", f"{job.name}: {self._broken[1]}")
        for verdict in self.policy.verdicts(jobs, w.kill, w.process.exitcode):
            if verdict.error is not None:
                self._fail(verdict.job, verdict.error, verdict.reason)
            else:
                self._requeue(verdict.job, quarantine=verdict.quarantine)

    def _police(self) -> None:
        """Timeouts and the hard memory limit (``containment.Policy.check``)."""
        now = time.monotonic()
        for w in self._workers:
            if w.dead or w.kill is not None or not w.inflight:
                continue
            stop = self.policy.check([self._jobs[j] for j in w.inflight], w.pid, now)
            if stop is None:
                continue
            w.kill = stop.kill  # None: the blame is unclear, and each job is retried alone
            if stop.kill is None:
                w.process.kill()
            else:
                self._end_worker(w, graceful=False)

    def _wake(self) -> None:
        try:
            self._wake_w.send_bytes(b"x")
        except (OSError, ValueError):
            pass

    def _loop(self) -> None:
        last_police = 0.0
        while True:
            with self._lock:
                if self._closing and not any(not j.final for j in self._jobs.values()):
                    break
                try:
                    self._ensure_workers()
                except Exception as exc:  # noqa: BLE001 - cannot start processes at all
                    self._broken = ("worker-crashed", f"cannot start a worker process ({exc})")
                    for jid in list(self._pending):
                        self._pending.remove(jid)
                        self._fail(self._jobs[jid], "worker-crashed", f"{self._jobs[jid].name}: {self._broken[1]}")
                self._dispatch()
                waitables: list[Any] = [self._wake_r]
                for w in self._workers:
                    if not w.dead:
                        waitables += [w.conn, w.process.sentinel]
            self._deliver()
            try:
                ready = mpc.wait(waitables, timeout=0.2)
            except OSError:
                ready = []
            with self._lock:
                if self._wake_r in ready:
                    try:
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    except (EOFError, OSError):
                        pass
                for w in list(self._workers):
                    if w.dead:
                        continue
                    if w.conn in ready or w.process.sentinel in ready:
                        try:
                            while w.conn.poll():
                                self._on_message(w, w.conn.recv())
                        except (EOFError, OSError):
                            pass
                        if w.process.sentinel in ready or not w.process.is_alive():
                            try:  # anything it sent just before dying
                                while w.conn.poll():
                                    self._on_message(w, w.conn.recv())
                            except (EOFError, OSError):
                                pass
                            self._on_death(w)
                self._workers = [w for w in self._workers if not w.dead]
                if time.monotonic() - last_police > 0.2:
                    last_police = time.monotonic()
                    self._police()
            self._deliver()


def remove_partial(output: str | Path) -> int:
    """Remove what a killed worker left half written beside ``output``: the temporary files and
    folders ``tempfile`` made with ``fsutil.temp_prefix`` (``.NAME.`` + 8 random characters +
    ``.part``, and a clip's copied source, ``.part.EXT``). Matched exactly, so another output's
    temporary file (``.NAME.png.….part`` beside ``NAME``) is never taken. Returns how many went."""
    from ..fsutil import temp_prefix

    path = Path(output)
    pattern = re.compile(re.escape(temp_prefix(path)) + r"[A-Za-z0-9_]{8}\.part(\.[A-Za-z0-9]+)?")
    removed = 0
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _short(stem: str, limit: int = 120) -> str:
    """At most ``limit`` UTF-8 bytes: file names are limited to 255 bytes, not characters, and an
    atomic write's temporary name adds to it (80 CJK characters are already 240 bytes)."""
    return stem.encode("utf-8")[:limit].decode("utf-8", "ignore")


def _after(stage: Stage) -> tuple[Stage, ...]:
    from .state import ORDER

    return ORDER[ORDER.index(stage) + 1:] if stage in ORDER else ()
