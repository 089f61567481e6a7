"""The server's own state around the job engine: settings, uploads, edits, retention, events.

The job engine owns jobs (one state machine, isolated workers). The server adds what only a
web app needs: where each upload lives, an edit history per finished job, when a result was
last downloaded (results are kept until downloaded, then expire), and a broker that turns
engine events (from an engine thread) into Server-Sent Events for every open page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..imageio.decode import DEFAULT_MAX_PIXELS
from ..matte.edit import EditHistory
from ..models.catalog import DEFAULT_MODEL
from .security import SecurityPolicy

TERMINAL = frozenset({"done", "failed", "cancelled"})


def job_stage(job: Any) -> str:
    stage = getattr(job, "stage", "")
    return str(getattr(stage, "value", stage))


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 0
    allow_remote: bool = False
    extra_hosts: tuple[str, ...] = ()
    token: str | None = None
    model: str = DEFAULT_MODEL
    workers: int | None = None
    max_queue: int = 256
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    #: a result nobody downloaded is kept this long after its last use; a downloaded one, less
    result_ttl_s: float = 6 * 3600
    downloaded_ttl_s: float = 30 * 60
    retry_after_s: int = 5
    #: where uploads and artifacts live (a fresh temp dir, removed on exit, when None)
    work_dir: Path | None = None
    models_home: Path | None = None
    #: a ready engine object (tests); None builds ``alphacut.jobs`` JobEngine at startup
    engine: Any = None
    #: ``load_cutout(job) -> pipeline.Cutout``; None uses the job engine's own
    load_cutout: Callable[[Any], Any] | None = None


def _import_jobs() -> tuple[Any, Callable[[Any], Any]]:
    """The real job engine class and its ``load_cutout`` (module layout tolerant)."""
    errors = []
    engine_cls = loader = None
    for mod in ("alphacut.jobs.engine", "alphacut.jobs"):
        try:
            m = importlib.import_module(mod)
        except ImportError as exc:
            errors.append(f"{mod}: {exc}")
            continue
        engine_cls = engine_cls or getattr(m, "JobEngine", None)
        loader = loader or getattr(m, "load_cutout", None)
    for mod in ("alphacut.jobs.artifacts", "alphacut.jobs.results", "alphacut.jobs.pool"):
        if loader is None:
            try:
                loader = getattr(importlib.import_module(mod), "load_cutout", None)
            except ImportError:
                pass
    if engine_cls is None or loader is None:
        raise RuntimeError("the job engine (alphacut.jobs JobEngine, load_cutout) is not available: "
                           + "; ".join(errors))
    return engine_cls, loader


@dataclass
class Upload:
    job_id: str
    name: str
    path: Path
    size: int
    format: str
    width: int
    height: int
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    downloaded: bool = False
    expired: bool = False


class EditSession:
    """A finished job's cutout with its matte edit history (loaded on first use)."""

    def __init__(self, cutout: Any) -> None:
        self.cutout = cutout
        self.history = EditHistory(original=np.ascontiguousarray(cutout.matte, dtype=np.float32),
                                   image=cutout.picture.rgb)
        self.lock = threading.Lock()
        self.previews: dict[str, bytes] = {}

    def edited_cutout(self) -> Any:
        return dataclasses.replace(self.cutout, matte=self.history.matte.copy(), timings={})


class EventBroker:
    """Fan-out of events to every open SSE stream; safe to publish from any thread."""

    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]] = set()
        self._lock = threading.Lock()
        self.closed = False

    def subscribe(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]:
        entry = (asyncio.get_running_loop(), asyncio.Queue(maxsize=1000))
        with self._lock:
            self._subs.add(entry)
        return entry

    def unsubscribe(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any]]) -> None:
        with self._lock:
            self._subs.discard(entry)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, queue in subs:
            try:
                loop.call_soon_threadsafe(_put, queue, (kind, data))
            except RuntimeError:  # loop closed
                self.unsubscribe((loop, queue))

    def close(self) -> None:
        self.closed = True
        self.publish("bye", {})


def _put(queue: asyncio.Queue[Any], item: Any) -> None:
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:  # a stalled page resyncs from GET /api/jobs when it reconnects
        pass


class ServerState:
    def __init__(self, settings: ServerSettings, policy: SecurityPolicy) -> None:
        self.settings = settings
        self.policy = policy
        self.broker = EventBroker()
        self._own_dir = settings.work_dir is None
        self.work_dir = Path(settings.work_dir or tempfile.mkdtemp(prefix="alphacut-serve-"))
        self.uploads_dir = self.work_dir / "uploads"
        self.artifacts_dir = self.work_dir / "artifacts"
        self.exports_dir = self.work_dir / "exports"
        for d in (self.uploads_dir, self.artifacts_dir, self.exports_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.uploads: dict[str, Upload] = {}
        self.edits: dict[str, EditSession] = {}
        self.lock = threading.RLock()
        self.engine: Any = None
        self._load_cutout: Callable[[Any], Any] | None = settings.load_cutout
        self._unsubscribe: Callable[[], None] | None = None
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()
        self.closing = False
        self.pulls: dict[str, dict[str, Any]] = {}
        self.last_provider: str | None = None
        self.provider_warnings: list[str] = []

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        if s.engine is not None:
            self.engine = s.engine
        else:
            engine_cls, loader = _import_jobs()
            self._load_cutout = self._load_cutout or loader
            self.engine = engine_cls(model=s.model, workers=s.workers, max_queue=s.max_queue,
                                     artifacts_dir=self.artifacts_dir)
        if self._load_cutout is None:
            _, self._load_cutout = _import_jobs()
        self._unsubscribe = self.engine.subscribe(self._on_engine_event)
        self._reaper = threading.Thread(target=self._reap_loop, name="alphacut-reaper", daemon=True)
        self._reaper.start()

    def close(self) -> None:
        """Stop the engine, end event streams and remove every temporary file."""
        if self.closing:
            return
        self.closing = True
        self._stop.set()
        self.broker.close()
        try:
            if self._unsubscribe is not None:
                self._unsubscribe()
        except Exception:
            pass
        try:
            if self.engine is not None and self.settings.engine is None:
                self.engine.close()
        finally:
            self.edits.clear()
            if self._own_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            else:
                for d in (self.uploads_dir, self.artifacts_dir, self.exports_dir):
                    shutil.rmtree(d, ignore_errors=True)

    # --- jobs -------------------------------------------------------------------------------

    def job_dict(self, job: Any) -> dict[str, Any]:
        up = self.uploads.get(job.id)
        stage = job_stage(job)
        d: dict[str, Any] = {
            "id": job.id,
            "name": getattr(job, "name", up.name if up else job.id),
            "stage": stage,
            "progress": float(getattr(job, "progress", 0.0) or 0.0),
            "reason": getattr(job, "reason", None),
            "code": getattr(job, "code", None),
            "provider": getattr(job, "provider", None),
            "warnings": list(getattr(job, "warnings", None) or []),
            "timings": dict(getattr(job, "timings", None) or {}),
        }
        opts = getattr(job, "options", None)
        if opts is not None:
            d["model"] = getattr(opts, "model", None)
            d["quality"] = getattr(opts, "quality", None)
        if up is not None:
            d.update(width=up.width, height=up.height, bytes=up.size, format=up.format,
                     downloaded=up.downloaded, expired=up.expired)
        es = self.edits.get(job.id)
        d["edits"] = es.history.state() if es else {"version": 0, "can_undo": False, "can_redo": False, "steps": 0}
        return d

    def _on_engine_event(self, event: Any) -> None:
        job_id = getattr(event, "job_id", None) or getattr(getattr(event, "job", None), "id", None)
        if job_id is None and isinstance(event, dict):
            job_id = event.get("job_id") or event.get("id")
        if job_id is None:
            return
        try:
            job = self.engine.get(job_id)
        except Exception:
            return
        if getattr(job, "provider", None):
            self.last_provider = job.provider
            for w in getattr(job, "warnings", None) or []:
                if w not in self.provider_warnings:
                    self.provider_warnings.append(w)
        up = self.uploads.get(job_id)
        if up is not None:
            up.last_used = time.time()
        self.broker.publish("job", self.job_dict(job))

    def edit_session(self, job: Any) -> EditSession:
        with self.lock:
            es = self.edits.get(job.id)
            if es is None:
                assert self._load_cutout is not None
                es = self.edits[job.id] = EditSession(self._load_cutout(job))
            return es

    def touch(self, job_id: str, *, downloaded: bool = False) -> None:
        up = self.uploads.get(job_id)
        if up is not None:
            up.last_used = time.time()
            up.downloaded = up.downloaded or downloaded

    def forget(self, job_id: str) -> None:
        """Drop a job's files, edits and (where the engine supports it) the job itself."""
        with self.lock:
            self.edits.pop(job_id, None)
            up = self.uploads.get(job_id)
            if up is not None:
                up.expired = True
                up.path.unlink(missing_ok=True)
            shutil.rmtree(self.artifacts_dir / job_id, ignore_errors=True)
        for name in ("forget", "discard", "remove"):
            fn = getattr(self.engine, name, None)
            if callable(fn):
                try:
                    fn(job_id)
                except Exception:
                    pass
                break

    def _reap_loop(self) -> None:
        while not self._stop.wait(15.0):
            self.reap()

    def reap(self, now: float | None = None) -> list[str]:
        """Expire finished results: downloaded ones after ``downloaded_ttl_s``, others after ``result_ttl_s``."""
        now = time.time() if now is None else now
        gone = []
        for job_id, up in list(self.uploads.items()):
            if up.expired:
                continue
            try:
                stage = job_stage(self.engine.get(job_id))
            except Exception:
                stage = "done"
            if stage not in TERMINAL:
                continue
            ttl = self.settings.downloaded_ttl_s if up.downloaded else self.settings.result_ttl_s
            if now - up.last_used > ttl:
                self.forget(job_id)
                gone.append(job_id)
                self.broker.publish("expired", {"id": job_id})
        return gone
