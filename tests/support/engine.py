"""TEST ONLY: a small in-process stand-in for ``alphacut.jobs`` JobEngine.

It exists so the server can be tested before (or independently of) the real engine: same
interface (submit/cancel/get/jobs/subscribe/wait/close, ``load_cutout``), the real pipeline and
the real model, but threads instead of isolated worker processes. It is never used by the
product; ``alphacut serve`` always builds the real engine.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from alphacut import pipeline
from alphacut.api import Remover
from alphacut.errors import AlphacutError, CancelledError


class QueueFullForTests(AlphacutError):
    code = "queue-full"


@dataclass
class TestJob:
    id: str
    name: str
    options: pipeline.Options
    source: Any
    stage: str = "queued"
    progress: float = 0.0
    reason: str | None = None
    code: str | None = None
    provider: str | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    output: Path | None = None
    cutout: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("id", "name", "stage", "progress", "reason", "code", "provider")}


@dataclass
class TestJobEvent:
    job_id: str
    stage: str
    progress: float


class ThreadEngineForTests:
    """TEST ONLY (see module doc). ``gate`` can hold workers to fill the queue deterministically."""

    def __init__(self, model: str = "u2netp", workers: int | None = 1, max_queue: int = 256,
                 artifacts_dir: Path | None = None, store: Any = None) -> None:
        self.model = model
        self.workers = workers or 1
        self.max_queue = max_queue
        self._jobs: dict[str, TestJob] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._subs: list[Callable[[Any], None]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._removers: dict[str, Remover] = {}
        self._store = store
        self.gate = threading.Event()
        self.gate.set()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for t in self._threads:
            t.start()

    def submit(self, source: Path | bytes, *, name: str, options: pipeline.Options, output: Path | None = None) -> TestJob:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.stage == "queued")
            if waiting >= self.max_queue:
                raise QueueFullForTests(f"the queue is full ({self.max_queue} waiting)")
            job = TestJob(f"t{next(self._ids):04d}{int(time.time() * 1000) % 100000:05d}", name, options, source)
            self._jobs[job.id] = job
        self._emit(job)
        self._queue.put(job.id)
        return job

    def _emit(self, job: TestJob) -> None:
        for cb in list(self._subs):
            cb(TestJobEvent(job.id, job.stage, job.progress))

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            self.gate.wait()
            job = self._jobs[job_id]
            if job.stage == "cancelled":
                continue

            def on_stage(stage: str, frac: float) -> None:
                if job.stage == "cancelled":
                    raise CancelledError("cancelled")
                job.stage, job.progress = stage, frac
                self._emit(job)

            try:
                data = Path(job.source).read_bytes() if not isinstance(job.source, bytes) else job.source
                picture = pipeline.decode_input(data, name=job.name, options=job.options, on_stage=on_stage)
                remover = self._removers.get(job.options.model)
                if remover is None:
                    remover = self._removers[job.options.model] = Remover(job.options.model, store=self._store)
                cutout = remover.process(picture, job.options, on_stage=on_stage)
                pipeline.render(cutout, name=job.name, on_stage=on_stage)
                job.cutout = cutout
                job.provider, job.warnings, job.timings = cutout.provider, list(cutout.warnings), dict(cutout.timings)
                job.stage, job.progress = "done", 1.0
            except CancelledError:
                job.stage = "cancelled"
            except AlphacutError as err:
                job.stage, job.reason, job.code = "failed", err.reason, err.code
            except Exception as err:  # noqa: BLE001
                job.stage, job.reason, job.code = "failed", f"{type(err).__name__}: {err}", "internal"
            self._emit(job)

    def cancel(self, job_id: str) -> bool:
        job = self._jobs[job_id]
        if job.stage in ("done", "failed", "cancelled"):
            return False
        job.stage = "cancelled"
        self._emit(job)
        return True

    def get(self, job_id: str) -> TestJob:
        return self._jobs[job_id]

    def jobs(self) -> list[TestJob]:
        return list(self._jobs.values())

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        self._subs.append(callback)
        return lambda: self._subs.remove(callback) if callback in self._subs else None

    def wait(self, job_id: str, timeout: float | None = None) -> TestJob:
        end = None if timeout is None else time.monotonic() + timeout
        while self._jobs[job_id].stage not in ("done", "failed", "cancelled"):
            if end is not None and time.monotonic() > end:
                break
            time.sleep(0.02)
        return self._jobs[job_id]

    def close(self) -> None:
        self.gate.set()
        for _ in self._threads:
            self._queue.put(None)


def load_cutout_for_tests(job: TestJob) -> pipeline.Cutout:
    return job.cutout
