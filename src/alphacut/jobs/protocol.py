"""``Engine``: what the web server and the batch runner need of a job engine, and nothing more.

``JobEngine`` (isolated worker processes) is the one engine the product runs; the server's
``EnginePool`` (one ``JobEngine`` per model) offers the same interface, and so does the tests'
thread-based stand-in (``tests/support/engine.py``). Whoever runs jobs talks to an ``Engine``:
jobs are ``state.Job``s and every change reaches subscribers as a ``state.JobEvent``.
"""

from __future__ import annotations

from pathlib import Path
import threading
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from .state import Job, JobEvent

if TYPE_CHECKING:
    from ..media.clip import ClipSettings
    from ..pipeline import Cutout

#: called with every job event, on the engine's own thread (keep it cheap)
Subscriber = Callable[[JobEvent], None]


class Subscribers:
    """The callbacks an engine tells about its events: added and removed from any thread,
    called in order outside any lock; one that raises never stops the others or the engine."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: list[Subscriber] = []

    def add(self, callback: Subscriber) -> Callable[[], None]:
        """Subscribe; returns the function that unsubscribes."""
        with self._lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def publish(self, events: list[JobEvent]) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for ev in events:
            for cb in callbacks:
                try:
                    cb(ev)
                except Exception:  # noqa: BLE001 - a broken subscriber must not stop the others
                    pass


@runtime_checkable
class Engine(Protocol):
    """A queue of images, each run through the one stage sequence, reported as ``JobEvent``s."""

    @property
    def capacity(self) -> int:
        """How many jobs it works on at once (a batch keeps about twice that submitted)."""
        ...

    def submit(self, source: Path | str | bytes, *, name: str | None = None, options: Any = None,
               output: Path | str | None = None, clip: bool = False,
               clip_settings: ClipSettings | None = None) -> Job:
        """Queue one image (a path or its bytes); raises ``QueueFullError`` when the queue is full.

        With ``clip``, a video or an animation is one job: every frame cut out into ``output``
        (its ending picks the format), a ``JobEvent`` per finished frame (``Job.frames_done`` of
        ``frames_total``); ``clip_settings`` picks the MOV codec and the limits. Without it, an
        animation is cut out from its first frame, as a still."""
        ...

    def get(self, job_id: str) -> Job:
        """The job; ``KeyError`` for an unknown (or forgotten) id."""
        ...

    def jobs(self) -> list[Job]: ...

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job; False when it had already ended."""
        ...

    def cancel_all(self) -> int: ...

    def forget(self, job_id: str) -> None:
        """Drop a finished job from memory (its files stay)."""
        ...

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has ended; ``TimeoutError`` after ``timeout`` seconds."""
        ...

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """``callback(event)`` for every job event from now on; returns the unsubscribe function."""
        ...

    def load_cutout(self, job: Job) -> Cutout:
        """A finished job's float matte and colours, to edit and render again without the model."""
        ...

    def close(self) -> None:
        """Cancel what is left and end the workers; safe to call twice."""
        ...
