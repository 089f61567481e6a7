"""TEST ONLY: a real worker process that really crashes, hangs or bloats on a given file.

``JobEngine(..., worker_main=faulty_worker_main)`` (or ``engine_kwargs={"worker_main": ...}`` for
``run_batch``) runs ``FaultyWorker``, a subclass of the product's ``worker.Worker``, in each real
``spawn`` process. When a job whose file name is listed in ``ALPHACUT_TEST_FAULT`` reaches
inference, the process SIGKILLs itself (``kill:NAME``), calls ``os._exit(3)`` (``exit:NAME``),
segfaults (``segv:NAME``), sleeps for an hour (``hang:NAME``) or allocates and holds ~800 MB
(``bloat:NAME``); entries are separated by ``;``. Nothing is mocked: the engine sees a real
death, a real hang, real memory. The product's worker has no switch for any of this.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import PurePath
from typing import Any

from alphacut.jobs.wire import StageReached, WorkerConfig
from alphacut.jobs.worker import InFlight, Worker, worker_main

FAULT_ENV = "ALPHACUT_TEST_FAULT"


def planned_faults() -> dict[str, str]:
    """file name -> fault kind, from ``ALPHACUT_TEST_FAULT`` (inherited from the test process)."""
    out: dict[str, str] = {}
    for entry in os.environ.get(FAULT_ENV, "").split(";"):
        kind, _, name = entry.strip().partition(":")
        if kind and name:
            out[name] = kind
    return out


def cause(kind: str) -> None:  # pragma: no cover - runs in a process that dies
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "exit":
        os._exit(3)
    elif kind == "segv":
        import ctypes

        ctypes.string_at(0)
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "bloat":
        import numpy as np

        hog = np.ones(800 * 1024 * 1024 // 8)  # touched: counts in RSS
        time.sleep(60)
        del hog


class FaultyWorker(Worker):
    def __init__(self, conn: Any, cfg: WorkerConfig) -> None:
        super().__init__(conn, cfg)
        self.faults = planned_faults()

    def infer(self, item: InFlight) -> InFlight:
        kind = self.faults.get(PurePath(item.task.name).name)
        if kind:
            self.send(StageReached(item.task.id, "inferring", 0.0))  # the job is in inference when it happens
            cause(kind)
        return super().infer(item)


def faulty_worker_main(conn: Any, cfg: WorkerConfig) -> None:
    worker_main(conn, cfg, FaultyWorker)
