"""Containment policy: what the engine does when a worker crashes, hangs, grows or gets old.

The engine (``engine.py``) owns the queue and the processes; it asks this module what a fault
means and applies the answer.

- A worker that dies (segfault, ``os._exit``, SIGKILL / the kernel's OOM killer) fails the job
  to blame with a plain reason; every other job it held goes back to the front of the queue.
  When several jobs were active in it (pipelining) and the blame is unclear, each of them is
  retried once *alone* on a fresh worker (quarantined); one that kills its worker again fails.
- A job active for longer than ``job_timeout`` seconds (time spent waiting for the worker's
  next thread does not count) ends its worker and fails as a timeout.
- A worker above ``max_rss_mb`` is ended: the one active job fails as over the memory limit;
  with several active, each is retried alone, as for a crash.
- Workers retire (finish what they hold, then a fresh one starts) after ``recycle_after`` jobs
  or above ``recycle_rss_mb``.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Iterable

from ..errors import AlphacutError, JobTimeoutError, MemoryLimitError, WorkerCrashedError
from .state import Job

_SIGNALS = {int(s): s.name for s in signal.Signals}


def rss_mb(pid: int) -> float:
    """Resident memory of one process in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        return 0.0


def describe_exit(code: int | None) -> str:
    """A worker's exit status in plain words (the reason a crashed job shows)."""
    if code is None:
        return "the worker process stopped responding"
    if code < 0:
        name = _SIGNALS.get(-code, f"signal {-code}")
        if -code == signal.SIGKILL:
            return "the worker process was killed (SIGKILL; out of memory?)"
        if -code == signal.SIGSEGV:
            return "the worker process crashed (SIGSEGV, a segmentation fault)"
        return f"the worker process was killed by {name}"
    return f"the worker process exited unexpectedly (status {code})"


@dataclass(frozen=True)
class Kill:
    """Why the engine itself ends a worker, and which job (if any) is to blame."""

    reason: str
    error: type[AlphacutError]
    blamed: str | None


@dataclass(frozen=True)
class Stop:
    """End this worker now. ``kill`` records the blame; None: unclear (retry each alone)."""

    kill: Kill | None


@dataclass(frozen=True)
class Verdict:
    """What becomes of one job its dead worker held: failed (``error``, ``reason``) or requeued."""

    job: Job
    error: type[AlphacutError] | None = None
    reason: str = ""
    quarantine: bool = False

    @property
    def fails(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Policy:
    """The limits one engine runs under."""

    job_timeout: float | None = 600.0
    max_rss_mb: float | None = None
    recycle_after: int | None = 200
    recycle_rss_mb: float | None = None

    # --- while workers run ----------------------------------------------------------------

    def check(self, jobs: list[Job], pid: int, now: float | None = None) -> Stop | None:
        """A running worker's jobs (in the order it got them): should it be ended now?"""
        now = time.monotonic() if now is None else now
        if self.job_timeout:
            for job in jobs:
                t0 = job.active_since
                spent = job.active_seconds + (now - t0 if t0 is not None else 0.0)
                if job.frames_total and job.frame_at is not None and t0 is not None:
                    spent = now - job.frame_at  # a clip: each frame gets the whole timeout
                if spent > self.job_timeout:
                    return Stop(Kill(f"{job.name}: no result after {self.job_timeout:g} s (stuck while "
                                     f"{job.stage.value}); stopped", JobTimeoutError, job.id))
        if self.max_rss_mb and pid:
            used = rss_mb(pid)
            if used > self.max_rss_mb:
                active = [j for j in jobs if j.active_since is not None]
                if len(active) != 1:
                    return Stop(None)  # unclear: retry each alone, as for a crash
                blamed = active[0]
                return Stop(Kill(f"{blamed.name}: used {used:.0f} MB, above the {self.max_rss_mb:g} MB "
                                 "memory limit; stopped", MemoryLimitError, blamed.id))
        return None

    def retire_after_assign(self, assigned: int) -> bool:
        """No more work for a worker that was handed this many jobs (a replacement starts)."""
        return bool(self.recycle_after and assigned >= self.recycle_after)

    def retire_after_job(self, pid: int) -> bool:
        """Retire a worker that has grown past ``recycle_rss_mb``."""
        return bool(self.recycle_rss_mb and rss_mb(pid) > self.recycle_rss_mb)

    # --- after a worker died ----------------------------------------------------------------

    def verdicts(self, jobs: list[Job], kill: Kill | None, exitcode: int | None) -> Iterable[Verdict]:
        """What becomes of each unfinished job a dead worker held, in the order to apply them
        (requeued jobs go to the front of the queue, so their order is kept by going last-first)."""
        if kill is not None:
            for job in jobs:
                if job.id == kill.blamed:
                    yield Verdict(job, kill.error, kill.reason)
                else:
                    yield Verdict(job)
            return
        what = describe_exit(exitcode)
        active = [j for j in jobs if j.active_since is not None] or jobs
        if len(active) == 1 or any(j.quarantined for j in active):
            for job in jobs:
                if job in active:
                    yield Verdict(job, WorkerCrashedError, f"{job.name}: {what} while {job.stage.value}")
                else:
                    yield Verdict(job)
        else:
            for job in reversed(jobs):
                yield Verdict(job, quarantine=job in active)


def unstartable(exitcode: int | None) -> str:
    """Why the engine gives up after workers that die before they are ready."""
    return f"the worker process cannot start ({describe_exit(exitcode)})"

