"""The code that runs inside one isolated worker process (started with ``spawn``).

A worker loads one ``ModelSession`` and then runs jobs sent by the engine over a pipe. With
``pipelined`` set it keeps three threads busy on three different jobs — one decoding (and
reading the file), one running the model (``Stages.infer``), one finishing the matte at full
resolution (``Stages.finish``), encoding, verifying and writing — so everything but the model
pass of one image overlaps the inference of the next. The finishing thread's pools (tiles, PNG
strips) get the share of the cores ``layout.FinishThreads`` measures they need, not every core
beside ONNX Runtime's threads. The stages, their order, provider,
warnings and timings are ``steps.Stages``'s; this module adds only the threads and the pipe. ONNX
Runtime, OpenCV, zlib and Pillow's codecs release the GIL, so these threads really overlap.

The messages both ways are ``wire``'s dataclasses; they are sent under a lock, so they arrive
in order. ``worker_main`` takes the ``Worker`` class to run, so a subclass (the tests' one
that really crashes, hangs or bloats on a given file) runs in a real worker process without a
switch in this module.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import plain_reason
from .wire import Failed, Fatal, Finished, FromWorker, Ready, StageReached, Task, ToWorker, WorkerConfig, Waiting

_STOP = object()


@dataclass
class InFlight:
    """One job inside the worker: its task and what each thread hands the next."""

    task: Task
    decoded: Any = None
    inferred: Any = None
    #: wall seconds of its model pass (the finishing side's thread count is set against it)
    infer_s: float = 0.0




class Worker:
    """One worker process's model session and threads; ``run`` serves the pipe until ``Stop``."""

    def __init__(self, conn: Any, cfg: WorkerConfig) -> None:
        self.conn = conn
        self.cfg = cfg
        self.lock = threading.Lock()
        self.artifacts = Path(cfg.artifacts_dir) if cfg.artifacts_dir else None
        self.finish_threads: Any = None
        #: jobs this worker holds (received, not yet finished or failed): when the one being
        #: finished is the only one, no model pass runs beside it and it may use every core
        self.held = 0

    def send(self, msg: FromWorker) -> None:
        with self.lock:
            if isinstance(msg, (Finished, Failed)):
                self.held -= 1
            self.conn.send(msg)

    def reporter(self, job_id: str) -> Any:
        """``on_stage`` for the stages: each change goes to the engine."""

        def on_stage(stage: str, fraction: float) -> None:
            self.send(StageReached(job_id, stage, fraction))

        return on_stage

    # --- the three steps ------------------------------------------------------------------

    def decode(self, item: InFlight) -> InFlight | None:
        task = item.task
        from .clips import clip_source, run_clip_task

        clip = clip_source(task)
        if clip is not None:  # a video or an animation: the whole clip here, frame by frame
            run_clip_task(self, task, clip)
            return None
        source, task.source = task.source, None  # let go of the bytes once decoded
        item.decoded = self.stages.decode(source, name=task.name, options=task.options,
                                          on_stage=self.reporter(task.id))
        return item

    def infer(self, item: InFlight) -> InFlight:
        task = item.task
        self.send(StageReached(task.id, "inferring", 0.0))
        # only the model passes here: the full-resolution work runs on the encoding thread
        # (``encode``), beside the next image's inference, on as many threads as ``layout``
        # measures it needs to keep up (docs/speed.md, "Batches")
        decoded, item.decoded = item.decoded, None
        t = time.perf_counter()
        item.inferred = self.stages.infer(decoded, task.options, on_stage=self.reporter(task.id))
        item.infer_s = time.perf_counter() - t
        return item

    def encode(self, item: InFlight) -> None:
        from ..errors import OutputError
        from ..fsutil import atomic_write, same_file
        from ..steps import timed

        task = item.task
        on_stage = self.reporter(task.id)
        inferred, item.inferred = item.inferred, None
        t = time.perf_counter()
        alone = self._widen()
        # the decoded photo is this worker's own: unless the background is a blur of it or the
        # job's artifacts keep it, a large one is decontaminated in place (one copy fewer)
        keep_original = self.artifacts is not None or task.options.compose.blur is not None
        cutout = self.stages.finish(inferred, on_stage=on_stage, keep_original=keep_original)
        del inferred  # the photo lives on in the cutout only
        timings = cutout.timings  # decode, the model passes, finish, encode, verify: the stages'
        provider, warnings = cutout.provider, tuple(dict.fromkeys(cutout.warnings))
        pixels, settings = self.stages.output_pixels(cutout, task.options, timings=timings, on_stage=on_stage)
        # the built pixels are all the output needs: without artifacts to keep, the matte, the
        # colour and the photo go now, not after encoding and verification (which overlap the
        # next image's inference: the worker's peak memory; docs/speed.md, "Batches")
        keep = cutout if self.artifacts is not None else None
        del cutout
        data = self.stages.encode_verified(pixels, settings, name=task.name, timings=timings, on_stage=on_stage)
        del pixels
        self._balance(item.infer_s, time.perf_counter() - t, alone)
        kept: str | None = None
        with timed(timings, "write"):
            out = Path(task.output)
            if task.input_path and same_file(out, task.input_path):
                raise OutputError("the output would overwrite the input; refusing", path=out)
            atomic_write(out, data)
            if self.artifacts is not None:
                from .artifacts import save_artifacts

                save_artifacts(self.artifacts / task.id, keep, task.name)
                kept = str(self.artifacts / task.id)
        self.send(Finished(
            task.id, output=str(out), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
            timings=dict(timings), provider=provider, warnings=warnings, artifacts=kept,
        ))

    def _widen(self) -> bool:
        """A pipelined worker finishing its only job (a batch's last image, a lone upload): no
        model pass runs beside it, so its tiles and PNG strips get every core (measured: the
        batch's tail, docs/speed.md "Batches"). True when it did."""
        if self.finish_threads is None or self.held > 1:
            return False
        from ..parallel import use_threads

        use_threads(self.finish_threads.cores)
        return True

    def _balance(self, infer_s: float, finish_s: float, alone: bool = False) -> None:
        """A pipelined worker: the finishing side's threads for the next image (``layout``);
        an image finished alone on every core says nothing about the shared case."""
        if self.finish_threads is not None:
            from ..parallel import use_threads

            use_threads(self.finish_threads.threads if alone else self.finish_threads.observe(infer_s, finish_s))

    # --- threads --------------------------------------------------------------------------

    def _guard(self, item: InFlight, step: Any) -> Any:
        try:
            return step(item)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a plain reason
            code, reason = plain_reason(exc)
            if code == "internal" and os.environ.get("ALPHACUT_DEBUG"):
                traceback.print_exc()
            self.send(Failed(item.task.id, code, reason))
            return None

    def _stage_thread(self, inbox: queue.Queue, step: Any, outbox: queue.Queue | None) -> None:
        while True:
            item = inbox.get()
            if item is _STOP:
                if outbox is not None:
                    outbox.put(_STOP)
                return
            result = self._guard(item, step)
            if result is not None and outbox is not None:
                self.send(Waiting(item.task.id))
                outbox.put(result)

    def run(self) -> None:
        from ..models.catalog import get_spec
        from ..models.session import ModelSession
        from ..second_opinion import helper_loader
        from ..steps import Stages

        cfg = self.cfg
        try:
            self.spec = get_spec(cfg.model)
            helper = helper_loader()
            self._preload_helper(helper, cfg.model)
            self.session = ModelSession(cfg.model_path, cpu_path=cfg.cpu_model_path,
                                        providers=cfg.providers, threads=cfg.threads)
            #: the one stage sequence, run here in halves on the threads below
            self.stages = Stages(self.session, self.spec, helper=helper)
        except BaseException as exc:  # noqa: BLE001
            code, reason = plain_reason(exc)
            self.send(Fatal(code, reason))
            return
        self.send(Ready(os.getpid(), self.session.provider, tuple(self.session.warnings)))
        if cfg.pipelined:
            from ..parallel import use_threads
            from ..models.session import physical_cores
            from .layout import FinishThreads

            #: the finishing side's share of the cores, measured image by image (``layout``)
            self.finish_threads = FinishThreads.start(cfg.cores or physical_cores(), self.session.provider)
            use_threads(self.finish_threads.threads)
            q_dec: queue.Queue = queue.Queue()
            q_inf: queue.Queue = queue.Queue(maxsize=1)
            q_enc: queue.Queue = queue.Queue(maxsize=1)
            threads = [
                threading.Thread(target=self._stage_thread, args=(q_dec, self.decode, q_inf), daemon=True),
                threading.Thread(target=self._stage_thread, args=(q_inf, self.infer, q_enc), daemon=True),
                threading.Thread(target=self._stage_thread, args=(q_enc, self.encode, None), daemon=True),
            ]
            for th in threads:
                th.start()
            while True:
                msg = self._recv()
                if not isinstance(msg, Task):  # Stop, or the engine is gone
                    q_dec.put(_STOP)
                    for th in threads:
                        th.join()
                    return
                with self.lock:
                    self.held += 1
                q_dec.put(InFlight(msg))
        else:
            while True:
                msg = self._recv()
                if not isinstance(msg, Task):
                    return
                with self.lock:
                    self.held += 1
                item = self._guard(InFlight(msg), self.decode)
                item = item and self._guard(item, self.infer)
                if item:
                    self._guard(item, self.encode)

    @staticmethod
    def _preload_helper(helper: Any, model: str) -> None:
        """Open the second opinion's session (if the model has one) on a thread of its own
        while this one builds the model's: the two loads overlap instead of the helper's
        holding up the first image's model pass. The first image asks the same ``helper``
        loader (its sessions are shared, ``second_opinion``), which reports a missing or
        damaged helper then."""
        from ..second_opinion import HELPERS

        if model not in HELPERS:
            return

        def load() -> None:
            try:
                helper(model)
            except Exception:  # noqa: BLE001 - the first image's own call reports it
                pass

        threading.Thread(target=load, name="alphacut-helper-load", daemon=True).start()

    def _recv(self) -> ToWorker | None:
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None


def worker_main(conn: Any, cfg: WorkerConfig, worker_class: type[Worker] = Worker) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    try:
        worker_class(conn, cfg).run()
    finally:
        try:
            conn.close()
        except OSError:
            pass
