"""A video or animation as one job inside a worker: every frame through the worker's own
``Stages`` (``media.write_clip``), a ``StageReached`` per finished frame (the engine's
timeout then applies to each frame, so it scales with the clip), the verified file written
where the job's output goes. A clip that came as bytes (a ZIP member, an upload) is copied to
a temporary file beside the output first: FFmpeg reads it several times (probe, frames, audio)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from ..fsutil import temp_prefix
from .wire import Finished, StageReached, Task


def clip_source(task: Task) -> Path | None:
    """The task's input as a clip file, or None when it is a still (left to the stages)."""
    from ..media.sniff import clip_kind

    if not task.clip:
        return None
    src = task.source
    if isinstance(src, (str, Path)):
        return Path(src) if Path(src).is_file() and clip_kind(src) is not None else None
    if isinstance(src, (bytes, bytearray)):
        from ..errors import InputError
        from ..imageio.formats import SNIFF_BYTES, sniff
        from ..media.animation_in import animation_signature

        try:
            fmt = sniff(bytes(src[:SNIFF_BYTES]), name=task.name)
        except InputError:
            return None
        if fmt.kind != "video" and not animation_signature(bytes(src[:SNIFF_BYTES])):
            return None
        # beside the output, named as its temporary files are, so that a worker killed mid-clip
        # (cancel, timeout) leaves nothing: the engine removes them (``engine.remove_partial``)
        out = Path(task.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(out), suffix=".part" + fmt.extension, dir=out.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(src)
        path = Path(tmp)
        if fmt.kind != "video" and clip_kind(path) is None:  # a one-frame GIF/PNG/WebP: a still
            path.unlink()
            return None
        task.source = None  # the bytes now live in the file
        return path
    return None


def run_clip_task(worker: Any, task: Task, clip: Path) -> None:
    """Cut out the clip and report ``Finished`` (errors propagate to the worker's guard)."""
    from ..media.loop import write_clip

    temporary = task.input_path is None and clip.name.startswith(temp_prefix(Path(task.output)))
    settings = task.clip_settings
    extra: dict[str, Any] = {}
    if settings is not None:
        extra = {"video_codec": settings.video_codec, "limits": settings.limits}

    def on_frame(done: int, total: int, seconds: float) -> None:
        worker.send(StageReached(task.id, "inferring", done / total if total else 0.0, frame=done, frames=total))

    try:
        worker.send(StageReached(task.id, "decoding", 0.0))
        result = write_clip(worker.stages, clip, task.output, options=task.options, name=task.name,
                            on_frame=on_frame, **extra)
    finally:
        if temporary:
            clip.unlink(missing_ok=True)
    digest = hashlib.sha256()
    with open(result.path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    worker.send(Finished(task.id, output=str(result.path), sha256=digest.hexdigest(), bytes=result.bytes,
                         timings={"clip": result.seconds}, provider=result.provider,
                         warnings=tuple(dict.fromkeys(result.warnings)), artifacts=None))
