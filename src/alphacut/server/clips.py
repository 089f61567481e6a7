"""A video or an animation uploaded to the web app: one clip job, and its downloads.

The upload route (``POST /api/jobs``) sniffs every file through the format registry; a video,
or an animation of more than one frame (``media.sniff.clip_kind``), comes here unless the user
asked for its first frame only. Its header is read against the server's limits
(``ServerSettings.media_limits``, the pixel limit per frame) before anything is queued, so a
damaged or oversized clip is refused with the CLI's codes (``truncated``, ``corrupt``,
``too-large``, ``unsupported-format``). It is then ONE job in the job engine
(``submit(..., clip=True)``): the worker cuts out every frame through the same stages and
sends an event per frame; cancel, crash containment and the per-frame timeout are the engine's.

What the job writes is a lossless master: PNG-in-MOV for a video (exact RGBA, the input's
audio carried), animated WebP for an animation (exact, frame durations and loop kept). Every
download is that master written again by ``media.rewrite_clip`` — the same composer, writers
and read-back check as the CLI, without running the model again — in the format asked for
(``CLIP_EXPORTS``), cached per format and background until the job expires.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import AlphacutError
from ..media.clip import ClipSettings
from ..media.limits import MediaLimits
from ..pipeline import Options
from .errors import ApiError, from_alphacut, submit_refused
from .state import ServerState, Upload


@dataclasses.dataclass(frozen=True)
class ClipExport:
    """One download choice for a clip: the media format, its MOV codec, what it holds."""

    label: str
    format: str
    mime: str
    extension: str
    video_codec: str | None = None
    mask: bool = False
    #: the format has no alpha: only offered over a background colour
    needs_background: bool = False
    #: the format keeps soft alpha exactly or within a few levels (GIF has 1 bit)
    soft_alpha: bool = True


CLIP_EXPORTS: dict[str, ClipExport] = {
    "webm": ClipExport("WebM (VP9 with alpha)", "webm", "video/webm", ".webm"),
    "mov": ClipExport("MOV (ProRes 4444 with alpha)", "mov", "video/quicktime", ".mov"),
    "mov-png": ClipExport("MOV (lossless PNG)", "mov", "video/quicktime", ".mov", video_codec="png"),
    "mp4": ClipExport("MP4 (H.264, over a colour)", "mp4", "video/mp4", ".mp4", needs_background=True),
    "webp": ClipExport("Animated WebP (lossless)", "webp", "image/webp", ".webp"),
    "apng": ClipExport("APNG", "apng", "image/apng", ".png"),
    "gif": ClipExport("GIF (1-bit alpha)", "gif", "image/gif", ".gif", soft_alpha=False),
    "frames": ClipExport("PNG frames (ZIP)", "frames", "application/zip", ".zip"),
    "mask": ClipExport("Mask (grey video)", "webm", "video/webm", ".webm", mask=True),
}
#: what a clip is downloaded (and previewed) as unless the user picks: the CLI's defaults
DEFAULT_EXPORT = {"video": "webm", "animation": "webp"}
#: the job's own lossless file, per kind: (ending, MOV codec)
MASTER = {"video": (".mov", "png"), "animation": (".webp", None)}
_STATUS = {"too-large": 413, "unsupported-format": 415}


def server_limits(state: ServerState) -> MediaLimits:
    """The server's clip limits: its media limits, with its pixel limit for each frame."""
    s = state.settings
    limits = s.media_limits
    return dataclasses.replace(limits, max_frame_pixels=min(limits.max_frame_pixels, s.max_pixels))


def queue_clip(state: ServerState, path: Path, name: str, size: int, fmt: str, kind: str, *, model: str | None,
               quality: str, decontaminate: bool) -> dict[str, Any]:
    """An uploaded clip at ``path`` → one queued clip job (the file is removed if not queued)."""
    from ..media.loop import open_clip

    s = state.settings
    limits = server_limits(state)
    folder = state.clips_dir / secrets.token_hex(8)
    try:
        try:
            info = open_clip(path, name=name, limits=limits).info  # the header, against the limits
            if kind == "video":
                limits.check_count(max(info.expected_frames, 1), info.width, info.height, name, animation=False)
            opts = Options(model=model or s.model, quality=quality, decontaminate=decontaminate,  # type: ignore[arg-type]
                           max_pixels=s.max_pixels)
            from ..models.catalog import get_spec

            get_spec(opts.model)
        except AlphacutError as err:
            raise ApiError(_STATUS.get(err.code, 422), err.code, str(err)) from None
        ending, codec = MASTER[kind]
        stem = _stem(name)
        folder.mkdir(parents=True)
        master = folder / f"{stem}.master{ending}"
        try:
            job = state.engine.submit(path, name=name, options=opts, output=master, clip=True,
                                      clip_settings=ClipSettings(video_codec=codec, limits=limits))
        except AlphacutError as err:
            raise submit_refused(err, opts.model, s.retry_after_s) from None
    except BaseException:
        path.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise
    clip = {"kind": kind, "frames": info.expected_frames, "fps": round(info.fps, 3),
            "duration": round(info.duration, 3), "audio": info.audio.codec if info.audio else None,
            "codec": info.codec, "loop": info.loop}
    state.uploads[job.id] = Upload(job.id, name, path, size, fmt, info.width, info.height, clip=clip,
                                   clip_dir=folder, master=master)
    return state.job_dict(job)


def progress(job: Any, up: Upload) -> dict[str, Any]:
    """What the page shows while a clip runs: frame i of n, frames per second, time left."""
    clip = dict(up.clip or {})
    done, total = int(job.frames_done), int(job.frames_total or clip.get("frames") or 0)
    rate = eta = None
    if job.started and done and not job.final:
        elapsed = time.time() - job.started
        rate = done / elapsed if elapsed > 0 else None
        if rate and total >= done:
            eta = (total - done) / rate
    elif job.final and job.started and job.finished and done:
        rate = done / max(job.finished - job.started, 1e-6)
    clip.update(frames_done=done, frames_total=total, rate=round(rate, 3) if rate else None,
                eta_s=round(eta, 1) if eta is not None else None,
                default_format=DEFAULT_EXPORT[clip.get("kind", "video")])
    return clip


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(job_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(job_id, threading.Lock())


def clip_file(state: ServerState, job: Any, up: Upload, fmt: str | None, bg: tuple[int, int, int] | None) -> tuple[Path, ClipExport]:
    """The clip's result as ``fmt`` (over ``bg``), written from the master and verified; kept
    for the next request. The master itself when it is already what was asked."""
    from ..media.loop import rewrite_clip

    kind = (up.clip or {}).get("kind", "video")
    fmt = fmt or DEFAULT_EXPORT[kind]
    export = CLIP_EXPORTS.get(fmt)
    if export is None:
        raise ApiError(422, "usage", f"{up.name} is a clip: choose one of {', '.join(CLIP_EXPORTS)} "
                       "(still formats are for single images)")
    if export.needs_background and bg is None:
        raise ApiError(422, "usage", "MP4 (H.264) cannot carry alpha: choose a background colour, "
                       "or download WebM or MOV for transparency")
    if export.mask and bg is not None:
        raise ApiError(422, "usage", "a mask has no background colour")
    master = up.master
    assert master is not None and up.clip_dir is not None
    ending, codec = MASTER[kind]
    if bg is None and not export.mask and export.extension == ending and export.video_codec == codec:
        return master, export  # the job's own verified file
    key = f"{fmt}-{'%02x%02x%02x' % bg if bg else 'clear'}"
    out = up.clip_dir / key / download_name(up.name, fmt, export)  # a frames ZIP's folder is its stem
    with _lock(job.id):
        if out.exists():
            return out, export
        out.parent.mkdir(exist_ok=True)
        opts = dataclasses.replace(job.options, background=bg, mask_only=export.mask, crop=False)
        try:
            rewrite_clip(master, up.path, out, options=opts, format=export.format, video_codec=export.video_codec,
                         name=up.name, limits=server_limits(state))
        except AlphacutError as err:
            raise from_alphacut(err) from None
    return out, export


def download_name(name: str, fmt: str, export: ClipExport) -> str:
    suffix = "-mask" if export.mask else "-frames" if export.format == "frames" else "-cutout"
    return f"{_stem(name)}{suffix}{export.extension}"


def forget(job_id: str) -> None:
    with _locks_guard:
        _locks.pop(job_id, None)


def _stem(name: str) -> str:
    import re

    stem = name.rsplit(".", 1)[0] if "." in name else name
    return re.sub(r"[^\w\-. ]+", "_", stem).strip()[:100] or "clip"
