"""The server's own state around the job engine: settings, uploads, edits, retention, events.

The job engine owns jobs (one state machine, isolated workers). The server adds what only a
web app needs: where each upload lives, an edit history per finished job, when a result was
last downloaded (results are kept until downloaded, then expire), and a broker that turns
engine events (from an engine thread) into Server-Sent Events for every open page.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..imageio.decode import DEFAULT_MAX_PIXELS
from ..jobs.protocol import Engine, Subscriber, Subscribers
from ..jobs.state import Job, JobEvent
from ..matte.edit import EditHistory
from ..media.limits import DEFAULT_LIMITS, MediaLimits
from ..models.catalog import DEFAULT_MODEL
from .security import SecurityPolicy

TERMINAL = frozenset({"done", "failed", "cancelled"})
#: builds the engine that runs one model
EngineFactory = Callable[[str], Engine]


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
    #: videos and animations: frames, frames × pixels (docs/video.md; ``max_pixels`` bounds each frame)
    media_limits: MediaLimits = DEFAULT_LIMITS
    #: a result nobody downloaded is kept this long after its last use; a downloaded one, less
    result_ttl_s: float = 6 * 3600
    downloaded_ttl_s: float = 30 * 60
    retry_after_s: int = 5
    #: slow clients: a request head must be complete this long after connecting (or after the
    #: previous response); a body may stall this long, and must average ``body_min_rate`` bytes/s
    #: once that much time has passed (408 otherwise)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    body_min_rate: float = 8 * 1024
    #: where uploads and artifacts live (a fresh temp dir, removed on exit, when None)
    work_dir: Path | None = None
    models_home: Path | None = None
    #: builds the engine for a model on its first use; None: a ``JobEngine`` (isolated worker
    #: processes) with the model from ``models_home`` and its artifacts in the work dir
    engine_factory: EngineFactory | None = None
    #: rembg's routes (``POST/GET /api/remove``: routes_rembg.py)
    rembg_api: bool = False
    #: ``GET /api/remove?url=`` may fetch public http(s) URLs (fetch_url.py); off: 403
    rembg_fetch_urls: bool = False
    #: the rembg API may run non-commercial models (``bria-rmbg``, ``rmbg-*``)
    accept_license: bool = False


class EnginePool:
    """One job engine per model (an engine runs one model in its workers), created on first use.

    It is an ``Engine`` itself, over every model's engine: a job goes to the engine of its
    ``options.model`` (the server's default model when it has no options).
    """

    def __init__(self, factory: EngineFactory, *, default_model: str = DEFAULT_MODEL) -> None:
        self._factory = factory
        self._subscribers = Subscribers()
        self._default_model = default_model
        self._engines: dict[str, Engine] = {}
        self._owner: dict[str, Engine] = {}
        self._unsubs: list[Callable[[], None]] = []
        self._lock = threading.RLock()

    def engine_for(self, model: str) -> Engine:
        with self._lock:
            eng = self._engines.get(model)
            if eng is None:
                eng = self._engines[model] = self._factory(model)
                self._unsubs.append(eng.subscribe(self._publish))
            return eng

    @property
    def workers(self) -> int | None:
        """The first engine's worker processes (None before any engine has started)."""
        with self._lock:
            engines = list(self._engines.values())
        return getattr(engines[0], "workers", None) if engines else None

    @property
    def capacity(self) -> int:
        with self._lock:
            return sum(e.capacity for e in self._engines.values())

    @property
    def models(self) -> list[str]:
        with self._lock:
            return list(self._engines)

    def submit(self, source: Path | str | bytes, *, name: str | None = None, options: Any = None,
               output: Path | str | None = None, clip: bool = False, clip_settings: Any = None) -> Job:
        eng = self.engine_for(options.model if options is not None else self._default_model)
        job = eng.submit(source, name=name, options=options, output=output, clip=clip, clip_settings=clip_settings)
        with self._lock:
            self._owner[job.id] = eng
        return job

    def _eng(self, job_id: str) -> Engine:
        with self._lock:
            eng = self._owner.get(job_id)
        if eng is None:
            raise KeyError(f"no job {job_id!r}")
        return eng

    def get(self, job_id: str) -> Job:
        return self._eng(job_id).get(job_id)

    def cancel(self, job_id: str) -> bool:
        return bool(self._eng(job_id).cancel(job_id))

    def cancel_all(self) -> int:
        with self._lock:
            engines = list(self._engines.values())
        return sum(e.cancel_all() for e in engines)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        return self._eng(job_id).wait(job_id, timeout)

    def jobs(self) -> list[Job]:
        with self._lock:
            engines = list(self._engines.values())
        return [j for e in engines for j in e.jobs()]

    def forget(self, job_id: str) -> None:
        with self._lock:
            eng = self._owner.pop(job_id, None)
        if eng is not None:
            eng.forget(job_id)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Every engine's events, on that engine's thread."""
        return self._subscribers.add(callback)

    def _publish(self, event: JobEvent) -> None:
        self._subscribers.publish([event])

    def load_cutout(self, job: Job) -> Any:
        return self._eng(job.id).load_cutout(job)

    def drop(self, model: str) -> bool:
        """Close a model's engine when it has nothing left to do (before deleting its file)."""
        with self._lock:
            eng = self._engines.get(model)
            if eng is None:
                return True
            if any(j.stage.value not in TERMINAL for j in eng.jobs()):
                return False
            del self._engines[model]
        eng.close()
        return True

    def close(self) -> None:
        for u in self._unsubs:
            try:
                u()
            except Exception:
                pass
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for e in engines:
            try:
                e.close()
            except Exception:
                pass


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
    #: a video or animation (server/clips.py): what its header said; None for a still
    clip: dict[str, Any] | None = None
    #: a clip's folder: the job's lossless master and the downloads written from it
    clip_dir: Path | None = None
    master: Path | None = None


class EditSession:
    """A finished job's cutout with its matte edit history (loaded on first use)."""

    def __init__(self, cutout: Any, original_rgb: np.ndarray | None = None) -> None:
        self.cutout = cutout
        self.original_rgb = cutout.picture.rgb if original_rgb is None else original_rgb
        self.history = EditHistory(original=np.ascontiguousarray(cutout.matte, dtype=np.float32),
                                   image=self.original_rgb)
        self.lock = threading.Lock()
        self.previews: dict[str, bytes] = {}

    def edited_cutout(self) -> Any:
        """The cutout with the edited matte. Where an edit raised alpha above the model's, the
        colour moves back toward the source pixel (the decontaminated estimate is only meaningful
        where the model saw foreground)."""
        matte = self.history.matte.copy()
        fg = self.cutout.foreground
        src = self.original_rgb
        up = matte > self.history.original + 1e-6
        if up.any() and src.shape == fg.shape and src.dtype == fg.dtype:
            fg = fg.copy()
            a0 = self.history.original[up][:, None]
            fg[up] = np.rint(fg[up] * a0 + src[up] * (1.0 - a0)).astype(fg.dtype)
        return dataclasses.replace(self.cutout, matte=matte, foreground=fg, timings={})


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
        self.clips_dir = self.work_dir / "clips"
        for d in (self.uploads_dir, self.artifacts_dir, self.exports_dir, self.clips_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.uploads: dict[str, Upload] = {}
        self.edits: dict[str, EditSession] = {}
        self.lock = threading.RLock()
        #: every model's engine, each started on first use (``start`` warms the default one)
        self.engine = EnginePool(settings.engine_factory or self._job_engine, default_model=settings.model)
        self.engine.subscribe(self._on_engine_event)
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()
        self.closing = False
        self.pulls: dict[str, dict[str, Any]] = {}
        self.last_provider: str | None = None
        self.provider_warnings: list[str] = []
        #: rembg API results pass through here and are deleted once sent; their jobs are not the
        #: web app's, so their events are not published
        self.rembg_dir = self.work_dir / "rembg"
        #: ``fetch_url.UrlFetcher`` for ``GET /api/remove?url=`` (None: the default policy)
        self.url_fetcher: Any = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        try:  # warm the default model's workers now, so the first image is quick
            self.engine.engine_for(s.model)
        except Exception:  # not installed yet: the model manager can fetch it
            pass
        self._reaper = threading.Thread(target=self._reap_loop, name="alphacut-reaper", daemon=True)
        self._reaper.start()

    def _job_engine(self, model: str) -> Engine:
        """The product's engine for one model: isolated worker processes, artifacts kept here."""
        from ..jobs.engine import JobEngine
        from ..models.store import ModelStore

        s = self.settings
        store = ModelStore(s.models_home)
        path = store.path(model)  # ModelNotInstalledError → 409 in the API
        return JobEngine(model, workers=s.workers, max_queue=s.max_queue, artifacts_dir=self.artifacts_dir,
                         model_path=path, cpu_model_path=store.cpu_file(model))

    def close(self) -> None:
        """Stop the engine, end event streams and remove every temporary file."""
        if self.closing:
            return
        self.closing = True
        self._stop.set()
        self.broker.close()
        try:
            self.engine.close()
        finally:
            self.edits.clear()
            if self._own_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            else:
                for d in (self.uploads_dir, self.artifacts_dir, self.exports_dir, self.rembg_dir, self.clips_dir):
                    shutil.rmtree(d, ignore_errors=True)

    # --- jobs -------------------------------------------------------------------------------

    def job_dict(self, job: Job) -> dict[str, Any]:
        up = self.uploads.get(job.id)
        d: dict[str, Any] = {
            "id": job.id,
            "name": job.name,
            "stage": job.stage.value,
            "progress": float(job.progress),
            "reason": job.reason,
            "code": job.error_code,
            "provider": job.provider,
            "warnings": list(job.warnings),
            "timings": dict(job.timings),
        }
        opts = job.options
        if opts is not None:
            d["model"] = opts.model
            d["quality"] = opts.quality
        if up is not None:
            d.update(width=up.width, height=up.height, bytes=up.size, format=up.format,
                     downloaded=up.downloaded, expired=up.expired)
            if up.clip is not None:
                from .clips import progress

                d["clip"] = progress(job, up)
        es = self.edits.get(job.id)
        d["edits"] = es.history.state() if es else {"version": 0, "can_undo": False, "can_redo": False, "steps": 0}
        return d

    def _on_engine_event(self, event: JobEvent) -> None:
        job_id = event.job_id
        try:
            job = self.engine.get(job_id)
        except KeyError:
            return
        if job.provider:
            self.last_provider = job.provider
            for w in job.warnings:
                if w not in self.provider_warnings:
                    self.provider_warnings.append(w)
        if job.output_path and job.output_path.startswith(str(self.rembg_dir)):
            return  # a rembg API request's job: not in the web app's queue
        up = self.uploads.get(job_id)
        if up is not None:
            up.last_used = time.time()
        self.broker.publish("job", self.job_dict(job))

    def edit_session(self, job: Job) -> EditSession:
        with self.lock:
            es = self.edits.get(job.id)
            if es is None:
                cutout = self.engine.load_cutout(job)
                es = self.edits[job.id] = EditSession(cutout, self._original_rgb(job.id, cutout))
            return es

    def _original_rgb(self, job_id: str, cutout: Any) -> np.ndarray:
        """The source pixels (for "before" and the wand); the foreground if they cannot be had."""
        up = self.uploads.get(job_id)
        if up is not None:
            try:
                from ..imageio.decode import decode

                pic = decode(up.path.read_bytes(), name=up.name, max_pixels=self.settings.max_pixels)
                if pic.rgb.shape[:2] == cutout.matte.shape:
                    return pic.rgb
            except Exception:
                pass
        return cutout.picture.rgb

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
                if up.clip_dir is not None:
                    shutil.rmtree(up.clip_dir, ignore_errors=True)
                    from .clips import forget

                    forget(job_id)
            shutil.rmtree(self.artifacts_dir / job_id, ignore_errors=True)
        try:
            self.engine.forget(job_id)
        except Exception:
            pass

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
                stage = self.engine.get(job_id).stage.value
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
