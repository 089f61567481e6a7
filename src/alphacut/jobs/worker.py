"""The code that runs inside one isolated worker process (started with ``spawn``).

A worker loads one ``ModelSession`` and then runs jobs sent by the engine over a pipe. With
``pipelined`` set it keeps three threads busy on three different jobs — one decoding (and
reading the file), one running the model (``Stages.infer``), one finishing the matte at full
resolution (``Stages.finish``), encoding, verifying and writing — so everything but the model
pass of one image overlaps the inference of the next. The stages, their order, provider,
warnings and timings are ``steps.Stages``'s; this module adds only the threads and the pipe. ONNX
Runtime, OpenCV, zlib and Pillow's codecs release the GIL, so these threads really overlap.

Messages to the parent (one pipe, sent under a lock, so they arrive in order):

- ``("ready", pid, provider, warnings)`` once the model is loaded, or ``("fatal", code, reason)``
- ``("stage", job_id, stage, progress)`` when a job starts or advances a stage
- ``("wait", job_id)`` when a job waits for the next thread (not active: no timeout runs)
- ``("done", job_id, result)`` / ``("failed", job_id, code, reason)``

``ALPHACUT_TEST_FAULT`` (tests only) makes real faults happen when a job of a given file name
reaches inference: ``kill:NAME`` (SIGKILL itself), ``exit:NAME`` (``os._exit(3)``),
``segv:NAME`` (a real segmentation fault), ``hang:NAME`` (sleeps for an hour), ``bloat:NAME``
(allocates and holds ~800 MB), separated by ``;``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import signal
import threading
import time
import traceback
from pathlib import Path, PurePath
from typing import Any

FAULT_ENV = "ALPHACUT_TEST_FAULT"
_STOP = object()


def _faults() -> dict[str, str]:
    spec = os.environ.get(FAULT_ENV, "")
    out: dict[str, str] = {}
    for item in spec.split(";"):
        kind, _, name = item.strip().partition(":")
        if kind and name:
            out[name] = kind
    return out


def _fault(kind: str) -> None:  # pragma: no cover - runs in a process that dies
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


def save_artifacts(directory: Path, cutout: Any, name: str) -> None:
    """matte.npy (float32), foreground.npy and meta.json: enough to re-render without the model."""
    import numpy as np

    from ..fsutil import atomic_write, output_error

    directory.mkdir(parents=True, exist_ok=True)
    pic = cutout.picture
    arrays = [("matte.npy", cutout.matte), ("foreground.npy", cutout.foreground)]
    if pic.alpha is not None:
        arrays.append(("alpha.npy", pic.alpha))
    for fname, arr in arrays:
        tmp = directory / f".{fname}.part"
        try:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, directory / fname)
        except OSError as exc:  # a full work folder is "disk-full", and leaves no partial file
            tmp.unlink(missing_ok=True)
            raise output_error(exc, "cannot keep the job's matte for editing", directory / fname) from None
    meta = {
        "name": name,
        "format": pic.format,
        "bit_depth": pic.bit_depth,
        "width": pic.width,
        "height": pic.height,
        "icc_profile": base64.b64encode(pic.icc_profile).decode() if pic.icc_profile else None,
        "exif": base64.b64encode(pic.exif).decode() if pic.exif else None,
        "has_alpha": pic.alpha is not None,
        "provider": cutout.provider,
        "warnings": list(cutout.warnings),
    }
    atomic_write(directory / "meta.json", json.dumps(meta).encode())


def _plain_reason(exc: BaseException) -> tuple[str, str]:
    from ..errors import AlphacutError

    if isinstance(exc, AlphacutError):
        return exc.code, exc.reason
    if isinstance(exc, MemoryError):
        return "memory", "ran out of memory"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "internal", f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")


class _Worker:
    def __init__(self, conn: Any, cfg: dict[str, Any]) -> None:
        self.conn = conn
        self.cfg = cfg
        self.lock = threading.Lock()
        self.faults = _faults()
        self.artifacts = Path(cfg["artifacts_dir"]) if cfg.get("artifacts_dir") else None

    def send(self, msg: tuple[Any, ...]) -> None:
        with self.lock:
            self.conn.send(msg)

    # --- the three steps ------------------------------------------------------------------

    def decode(self, task: dict[str, Any]) -> dict[str, Any]:
        jid = task["id"]
        source = task.pop("source")  # let go of the bytes once decoded
        task["decoded"] = self.stages.decode(source, name=task["name"], options=task["options"],
                                             on_stage=lambda stage, fraction: self.send(("stage", jid, stage, fraction)))
        return task

    def infer(self, task: dict[str, Any]) -> dict[str, Any]:
        jid = task["id"]
        fault = self.faults.get(PurePath(task["name"]).name)
        self.send(("stage", jid, "inferring", 0.0))
        if fault:
            _fault(fault)

        def on_stage(stage: str, fraction: float) -> None:
            self.send(("stage", jid, stage, fraction))

        # only the model passes here: the full-resolution work runs on the encoding thread
        # (``encode``), beside the next image's inference — on a GPU while the device infers;
        # on 2 CPU cores it measured even (docs/speed.md, "Batches")
        task["inferred"] = self.stages.infer(task.pop("decoded"), task["options"], on_stage=on_stage)
        return task

    def encode(self, task: dict[str, Any]) -> None:
        from ..errors import OutputError
        from ..fsutil import atomic_write, same_file
        from ..steps import timed

        jid = task["id"]

        def on_stage(stage: str, fraction: float) -> None:
            self.send(("stage", jid, stage, fraction))

        cutout = self.stages.finish(task.pop("inferred"), on_stage=on_stage)
        data = self.stages.render(cutout, task["options"], name=task["name"], on_stage=on_stage)
        timings = cutout.timings  # decode, the model passes, finish, encode, verify: the stages'
        with timed(timings, "write"):
            out = Path(task["output"])
            if task.get("input_path") and same_file(out, task["input_path"]):
                raise OutputError("the output would overwrite the input; refusing", path=out)
            atomic_write(out, data)
            if self.artifacts is not None:
                save_artifacts(self.artifacts / jid, cutout, task["name"])
        self.send(("done", jid, {
            "output": str(out),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "timings": dict(timings),
            "provider": cutout.provider,
            "warnings": list(dict.fromkeys(cutout.warnings)),
        }))

    # --- threads --------------------------------------------------------------------------

    def _guard(self, task: dict[str, Any], step: Any) -> Any:
        try:
            return step(task)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a plain reason
            code, reason = _plain_reason(exc)
            if code == "internal" and os.environ.get("ALPHACUT_DEBUG"):
                traceback.print_exc()
            self.send(("failed", task["id"], code, reason))
            return None

    def _stage_thread(self, inbox: queue.Queue, step: Any, outbox: queue.Queue | None) -> None:
        while True:
            task = inbox.get()
            if task is _STOP:
                if outbox is not None:
                    outbox.put(_STOP)
                return
            result = self._guard(task, step)
            if result is not None and outbox is not None:
                self.send(("wait", task["id"]))
                outbox.put(result)

    def run(self) -> None:
        from ..models.catalog import get_spec
        from ..models.session import ModelSession
        from ..steps import Stages

        cfg = self.cfg
        try:
            self.spec = get_spec(cfg["model"])
            self.session = ModelSession(cfg["model_path"], cpu_path=cfg.get("cpu_model_path"),
                                        providers=cfg.get("providers"), threads=cfg.get("threads"))
            #: the one stage sequence, run here in halves on the threads below
            self.stages = Stages(self.session, self.spec)
        except BaseException as exc:  # noqa: BLE001
            code, reason = _plain_reason(exc)
            self.send(("fatal", code, reason))
            return
        self.send(("ready", os.getpid(), self.session.provider, list(self.session.warnings)))
        if cfg.get("pipelined", True):
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
                if msg is None or msg[0] == "stop":
                    q_dec.put(_STOP)
                    for th in threads:
                        th.join()
                    return
                q_dec.put(msg[1])
        else:
            while True:
                msg = self._recv()
                if msg is None or msg[0] == "stop":
                    return
                task = self._guard(msg[1], self.decode)
                task = task and self._guard(task, self.infer)
                if task:
                    self._guard(task, self.encode)

    def _recv(self) -> tuple[Any, ...] | None:
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None


def worker_main(conn: Any, cfg: dict[str, Any]) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    try:
        _Worker(conn, cfg).run()
    finally:
        try:
            conn.close()
        except OSError:
            pass
