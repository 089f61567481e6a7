"""TEST ONLY: a small in-process stand-in for ``alphacut.jobs`` JobEngine.

It exists so the server can be tested apart from the real engine: it satisfies the same
``alphacut.jobs.protocol.Engine`` (real ``Job``s moved by the real state machine, real
``JobEvent``s), runs the real pipeline with the real model, but on threads instead of isolated
worker processes. It is never used by the product; ``alphacut serve`` always builds the real
engine. The server takes it through ``ServerSettings(engine_factory=...)``.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable

from alphacut import pipeline
from alphacut.api import Remover
from alphacut.errors import AlphacutError, CancelledError, QueueFullError, UsageError
from alphacut.jobs.protocol import Subscriber
from alphacut.jobs.state import ORDER, Job, JobEvent, Stage, transition


class ThreadEngineForTests:
    """TEST ONLY (see module doc). ``gate`` can hold workers to fill the queue deterministically."""

    def __init__(self, model: str = "u2netp", workers: int | None = 1, max_queue: int = 256,
                 store: Any = None) -> None:
        self.model = model
        self.workers = workers or 1
        self.max_queue = max_queue
        self._jobs: dict[str, Job] = {}
        self._sources: dict[str, Path | bytes] = {}
        self._cutouts: dict[str, pipeline.Cutout] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._subs: list[Subscriber] = []
        self._lock = threading.RLock()
        self._remover: Remover | None = None
        self._store = store
        self._closed = False
        self.gate = threading.Event()
        self.gate.set()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for t in self._threads:
            t.start()

    @property
    def capacity(self) -> int:
        return self.workers

    def submit(self, source: Path | str | bytes, *, name: str | None = None, options: Any = None,
               output: Path | str | None = None, clip: bool = False, clip_settings: Any = None) -> Job:
        if clip:  # clips run in the real engine's workers (jobs/clips.py); this stand-in has none
            raise UsageError("the TEST-ONLY thread engine runs stills only; clips need the real JobEngine")
        opts = options or pipeline.Options(model=self.model)
        if opts.model != self.model:
            raise UsageError(f"this engine runs {self.model!r}, not {opts.model!r}")
        is_bytes = isinstance(source, (bytes, bytearray, memoryview))
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.stage is Stage.QUEUED)
            if waiting >= self.max_queue:
                raise QueueFullError(f"the queue is full ({self.max_queue} waiting)")
            job = Job(name=name or ("<bytes>" if is_bytes else Path(source).name), options=opts)  # type: ignore[arg-type]
            job.input_path = None if is_bytes else str(source)
            self._jobs[job.id] = job
            self._sources[job.id] = bytes(source) if is_bytes else Path(source)  # type: ignore[arg-type]
        self._emit(job, "queued")
        self._queue.put(job.id)
        return job

    def _emit(self, job: Job, message: str = "") -> None:
        event = JobEvent(job.id, job.stage, job.progress, message, time.time(), job.public())
        with self._lock:
            subs = list(self._subs)
        for cb in subs:
            cb(event)

    def _advance(self, job: Job, stage: str, frac: float) -> None:
        """Move through every stage up to ``stage`` (the state machine allows no skipping)."""
        target = Stage(stage)
        with self._lock:
            if job.final:
                raise CancelledError("cancelled")
            if target in ORDER and job.stage in ORDER:
                for st in ORDER[ORDER.index(job.stage) + 1:ORDER.index(target)]:
                    transition(job, st)
            transition(job, target, frac)
        self._emit(job, target.value)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            self.gate.wait()
            job = self._jobs[job_id]
            if job.final:
                continue
            try:
                source = self._sources.pop(job_id)
                data = source if isinstance(source, bytes) else source.read_bytes()
                on_stage: Callable[[str, float], None] = lambda stage, frac: self._advance(job, stage, frac)
                picture = pipeline.decode_input(data, name=job.name, options=job.options, on_stage=on_stage)
                if self._remover is None:
                    self._remover = Remover(self.model, store=self._store)
                cutout = self._remover.process(picture, job.options, on_stage=on_stage)
                pipeline.render(cutout, name=job.name, on_stage=on_stage)
                with self._lock:
                    self._cutouts[job.id] = cutout
                    job.provider, job.warnings = cutout.provider, list(cutout.warnings)
                    job.timings.update(cutout.timings)
                self._advance(job, "verifying", 1.0)  # CancelledError if it was cancelled meanwhile
                with self._lock:
                    if job.final:
                        continue
                    transition(job, Stage.DONE)
                self._emit(job, "done")
            except CancelledError:
                pass
            except AlphacutError as err:
                self._end(job, Stage.FAILED, err.reason, err.code)
            except Exception as err:  # noqa: BLE001
                self._end(job, Stage.FAILED, f"{type(err).__name__}: {err}", "internal")

    def _end(self, job: Job, stage: Stage, reason: str, code: str) -> bool:
        with self._lock:
            if job.final:
                return False
            transition(job, stage, reason=reason, code=code)
        self._emit(job, reason)
        return True

    def cancel(self, job_id: str) -> bool:
        job = self._jobs[job_id]
        return self._end(job, Stage.CANCELLED, f"{job.name}: cancelled", "cancelled")

    def cancel_all(self) -> int:
        return sum(self.cancel(j.id) for j in self.jobs())

    def get(self, job_id: str) -> Job:
        return self._jobs[job_id]

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def forget(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.final:
                del self._jobs[job_id]
                self._cutouts.pop(job_id, None)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        end = None if timeout is None else time.monotonic() + timeout
        while not self._jobs[job_id].final:
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"job {job_id} not finished after {timeout} s")
            time.sleep(0.02)
        return self._jobs[job_id]

    def load_cutout(self, job: Job) -> pipeline.Cutout:
        return self._cutouts[job.id]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.cancel_all()
        self.gate.set()
        for _ in self._threads:
            self._queue.put(None)
