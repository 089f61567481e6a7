"""The one job state machine, used by the library, the CLI and the web server alike.

::

    queued ─► decoding ─► inferring ─► refining ─► encoding ─► verifying ─► done
       ▲          │            │            │            │            │
       └──────────┴────────────┴────────────┴────────────┴────────────┘  (requeued: its worker
                                                                          died for another job)
    any non-final stage ─► failed | cancelled

Every stage change goes through ``transition``; an illegal move raises ``IllegalTransition``.
A job's ``reason`` is plain words (file and cause), never a traceback.
"""

from __future__ import annotations

import enum
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class Stage(str, enum.Enum):
    QUEUED = "queued"
    DECODING = "decoding"
    INFERRING = "inferring"
    REFINING = "refining"
    ENCODING = "encoding"
    VERIFYING = "verifying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL

    def __str__(self) -> str:
        return self.value


FINAL = frozenset({Stage.DONE, Stage.FAILED, Stage.CANCELLED})
#: the working stages, in order
ORDER = (Stage.QUEUED, Stage.DECODING, Stage.INFERRING, Stage.REFINING, Stage.ENCODING, Stage.VERIFYING, Stage.DONE)

_ALLOWED: dict[Stage, frozenset[Stage]] = {}
for _i, _s in enumerate(ORDER[:-1]):
    _nxt = {ORDER[_i + 1], Stage.FAILED, Stage.CANCELLED}
    if _s is not Stage.QUEUED:
        _nxt.add(Stage.QUEUED)  # requeued after its worker died for another job's fault
    _ALLOWED[_s] = frozenset(_nxt)
for _s in FINAL:
    _ALLOWED[_s] = frozenset()
ALLOWED: dict[Stage, frozenset[Stage]] = dict(_ALLOWED)


class IllegalTransition(RuntimeError):
    """A programming error: a stage change the state machine does not allow."""


@dataclass
class Job:
    """One image going through the pipeline. ``public()`` is what the browser and manifest see."""

    name: str
    options: Any
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    input_path: str | None = None
    output_path: str | None = None
    stage: Stage = Stage.QUEUED
    progress: float = 0.0
    reason: str | None = None
    error_code: str | None = None
    provider: str | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    output_sha256: str | None = None
    output_bytes: int | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    attempts: int = 0
    #: the worker process that ran (or is running) the job's latest attempt
    worker_pid: int | None = None
    #: the folder holding the job's matte for editing (``artifacts.load_cutout``), if kept
    artifacts: str | None = None
    # --- bookkeeping of the engine and of ``transition``; not in ``public()`` ---
    #: when the current stage began (``time.monotonic``), for ``timings``
    stage_started: float | None = field(default=None, repr=False)
    #: when the job last became active in its worker (monotonic); None while it waits
    active_since: float | None = field(default=None, repr=False)
    #: seconds active in this attempt before ``active_since`` (the timeout counts these, not waits)
    active_seconds: float = field(default=0.0, repr=False)
    #: retried alone on a fresh worker after a crash whose blame was unclear
    quarantined: bool = field(default=False, repr=False)
    #: a video or animation cut out frame by frame (``submit(..., clip=True)``)
    clip: bool = False
    #: a clip's job: frames finished, frames expected, and when the last frame finished
    #: (monotonic): the timeout applies to each frame, so it scales with the clip
    frames_done: int = 0
    frames_total: int = 0
    frame_at: float | None = field(default=None, repr=False)

    @property
    def final(self) -> bool:
        return self.stage in FINAL

    @property
    def ok(self) -> bool:
        return self.stage is Stage.DONE

    def public(self) -> dict[str, Any]:
        """A JSON-able dict (sent to the browser, written to manifests)."""
        return {
            "id": self.id,
            "name": self.name,
            "input": self.input_path,
            "output": self.output_path,
            "stage": self.stage.value,
            "progress": round(self.progress, 4),
            "reason": self.reason,
            "code": self.error_code,
            "provider": self.provider,
            "warnings": list(self.warnings),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "sha256": self.output_sha256,
            "bytes": self.output_bytes,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class JobEvent:
    """One change of one job: what the CLI draws and the web server pushes."""

    job_id: str
    stage: Stage
    progress: float
    message: str
    time: float
    job: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "stage": self.stage.value,
            "progress": round(self.progress, 4),
            "message": self.message,
            "time": self.time,
            "job": self.job,
        }


def can_transition(current: Stage, new: Stage) -> bool:
    return new is current and not current.final or new in ALLOWED[current]


def transition(job: Job, stage: Stage | str, progress: float = 0.0, *, reason: str | None = None,
               code: str | None = None) -> Job:
    """Move ``job`` to ``stage`` (the one place that does); same-stage calls only update progress."""
    new = Stage(stage)
    cur = job.stage
    if not can_transition(cur, new):
        raise IllegalTransition(f"job {job.id} ({job.name}): {cur.value} -> {new.value} is not allowed")
    now = time.time()
    if new is not cur:
        if cur is not Stage.QUEUED and not cur.final:
            t0, job.stage_started = job.stage_started, None
            if t0 is not None:
                job.timings[cur.value] = job.timings.get(cur.value, 0.0) + (time.monotonic() - t0)
        job.stage_started = time.monotonic()
        if new is Stage.DECODING and job.started is None:
            job.started = now
        if new is Stage.QUEUED:
            job.progress = 0.0
    job.stage = new
    job.progress = 1.0 if new is Stage.DONE else max(0.0, min(1.0, float(progress)))
    if new in (Stage.FAILED, Stage.CANCELLED):
        job.reason = reason or job.reason or ("cancelled" if new is Stage.CANCELLED else "failed")
        job.error_code = code or job.error_code or ("cancelled" if new is Stage.CANCELLED else "error")
    if new.final:
        job.finished = now
        job.stage_started = None
    return job
