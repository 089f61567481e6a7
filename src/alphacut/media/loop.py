"""The frame loop: a clip's frames through the ONE stage sequence (``steps.Stages``), into a
writer, verified, delivered atomically.

    decode (thread) ─► Stages.infer (thread) ─► Stages.finish ─► temporal stage ─► compose ─► encode
                                                                                   └► ledger ─► verify

Three threads overlap: one decodes the next frames, one runs the model, and the caller's
thread finishes (upsampling, decontamination), stabilises, composes and encodes. Queues
between them hold ``PREFETCH`` frames each, so memory is a handful of frames whatever the
clip's length. Nothing reaches the destination until the whole file has been read back
and checked (``media.verify``); a failure leaves no output.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from .. import pipeline
from ..errors import CancelledError, OutputError, UsageError, VerificationError
from ..fsutil import atomic_file, same_file
from ..imageio.decode import Picture
from ..pipeline import Cutout, Options
from ..steps import Decoded, Stages
from .animation_in import AnimationSource
from .animation_out import AnimationSink
from .clip import ClipInfo, Frame
from .frames_out import FramesSink
from .limits import DEFAULT_LIMITS, MediaLimits
from .outputs import OutputPlan, default_output, output_format, plan_output
from .sniff import clip_kind
from .stabilise import Stabiliser, default_stabiliser, unpack
from .verify import Ledger, verify_clip
from .video_in import VideoSource

T = TypeVar("T")
#: frames waiting between two threads
PREFETCH = 2
#: progress: (frames done, frames expected or 0, seconds so far)
FrameCallback = Callable[[int, int, float], None]
Source = VideoSource | AnimationSource


def open_clip(path: str | Path, *, name: str | None = None, limits: MediaLimits = DEFAULT_LIMITS) -> Source:
    """A clip's reader, by what the file is (a still raises ``UsageError``)."""
    kind = clip_kind(path)
    if kind == "animation":
        return AnimationSource(path, name=name, limits=limits)
    if kind == "video":
        return VideoSource(path, name=name, limits=limits)
    raise UsageError("not a video or an animation", path=name or str(path))


@dataclass
class ClipResult:
    """What ``write_clip`` delivered."""

    path: Path
    info: ClipInfo
    plan: OutputPlan
    frames: int
    audio: bool
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0
    provider: str = ""
    #: what became of the audio: "aac copied", "aac → libopus", or "" (none)
    audio_route: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Prefetch(Iterator[T]):
    """Runs ``items`` on a thread, ``size`` ahead of the consumer; errors arrive in order."""

    _END = object()

    def __init__(self, items: Iterable[T], size: int, name: str) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[T]) -> None:
        try:
            for item in items:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put((False, exc))
            return
        self._put((True, self._END))

    def _put(self, entry: tuple[bool, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        ok, item = self._q.get()
        if not ok:
            raise item  # type: ignore[misc]
        if item is self._END:
            raise StopIteration
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def cutouts(stages: Stages, source: Source, options: Options, *, stabiliser: Stabiliser | None = None,
            cancel: threading.Event | None = None) -> Iterator[tuple[Frame, Cutout]]:
    """Each frame of ``source`` with its cutout, in order, streaming (the library's iterator).

    The cutout's matte is the temporal stage's output; frames go through ``Stages.infer``
    and ``Stages.finish`` exactly as a still does.
    """
    stab = stabiliser if stabiliser is not None else default_stabiliser()
    name = source.name

    def infer_all(frames: Iterable[Frame]) -> Iterator[tuple[Frame, object]]:
        for frame in frames:
            if cancel is not None and cancel.is_set():
                return
            picture = Picture(frame.rgb, frame.alpha, name=f"{name} (frame {frame.index + 1})",
                              format=source.info.codec)
            yield frame, stages.infer(Decoded(picture), options)

    decoded = _Prefetch(source.frames(), PREFETCH, "alphacut-decode")
    inferred = _Prefetch(infer_all(decoded), PREFETCH, "alphacut-infer")
    waiting: deque[tuple[Frame, Cutout]] = deque()
    try:
        for frame, inf in inferred:
            if cancel is not None and cancel.is_set():
                raise CancelledError("cancelled", path=name)
            cutout = stages.finish(inf)  # type: ignore[arg-type]
            waiting.append((frame, cutout))
            for ready in stab.push(frame.rgb, cutout.matte):
                f, c = waiting.popleft()
                c.matte = unpack(ready, f.index)
                yield f, c
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled", path=name)
        for ready in stab.flush():
            f, c = waiting.popleft()
            c.matte = unpack(ready, f.index)
            yield f, c
        if waiting:
            raise RuntimeError(f"the temporal stage gave back {len(waiting)} matte(s) too few")
    finally:
        inferred.close()
        decoded.close()


class FrameComposer:
    """A cutout → the exact pixels to write: straight RGBA, a grey mask, or a composite.

    ``pipeline.compose`` does the work; a background image is decoded and fitted once per
    clip here (compose would decode it again for every frame)."""

    def __init__(self, options: Options) -> None:
        self.options = replace(options, format="png", bit_depth=8)
        self._backdrop: np.ndarray | None = None

    def __call__(self, cutout: Cutout) -> np.ndarray:
        opts = self.options
        if opts.background_image is not None and not opts.mask_only:
            if self._backdrop is None:
                h, w = cutout.matte.shape
                self._backdrop = pipeline.background_pixels(cutout, opts, (0, 0, w, h))
            from ..imageio.encode import quantize
            from ..matte.upsample import to_unit_float

            a = cutout.matte[:, :, None]
            return quantize(to_unit_float(cutout.foreground) * a + self._backdrop * (1.0 - a), 8)
        pixels, _ = pipeline.compose(cutout, opts)
        if isinstance(pixels, np.ndarray):
            return pixels
        return pixels.materialize()


def plan_clip(src: str | Path, dst: str | Path | None, kind: str, options: Options, *, format: str | None = None,
              video_codec: str | None = None) -> tuple[OutputPlan, Path]:
    """The output plan and path for a clip of ``kind``; a UsageError for a combination that
    cannot work (MP4 without a background, say), before any frame is decoded."""
    zipped = dst is not None and str(dst).lower().endswith(".zip")
    fmt = output_format(dst, format, kind)
    background = (options.background is not None or options.background_image is not None
                  or options.background_blur is not None)
    plan = plan_output(fmt, mask=options.mask_only, background=background, video_codec=video_codec, zipped=zipped)
    return plan, (Path(dst) if dst is not None else default_output(src, fmt, zipped=zipped))


def write_clip(stages: Stages, src: str | Path, dst: str | Path | None = None, *, options: Options,
               format: str | None = None, video_codec: str | None = None, name: str | None = None,
               limits: MediaLimits = DEFAULT_LIMITS, stabiliser: Stabiliser | None = None,
               on_frame: FrameCallback | None = None, cancel: threading.Event | None = None,
               source: Source | None = None) -> ClipResult:
    """Cut out every frame of ``src`` and write ``dst`` (default: ``clip.cutout.webm`` beside a
    video, ``anim.cutout.webp`` beside an animation); verified, then moved into place."""
    t_start = time.perf_counter()
    display = name or str(src)
    if options.crop:
        raise UsageError("--crop does not apply to clips (every frame keeps the clip's size)", path=display)
    source = source or open_clip(src, name=display, limits=limits)
    pairs = cutouts(stages, source, options, stabiliser=stabiliser, cancel=cancel)
    return _deliver(pairs, source, src, dst, options=options, format=format, video_codec=video_codec,
                    display=display, limits=limits, on_frame=on_frame, t_start=t_start,
                    render=stages.render)


def rewrite_clip(master: str | Path, original: str | Path, dst: str | Path, *, options: Options,
                 format: str | None = None, video_codec: str | None = None, name: str | None = None,
                 limits: MediaLimits = DEFAULT_LIMITS, on_frame: FrameCallback | None = None) -> ClipResult:
    """Write a finished cutout again in another format, without the model: ``master`` is a
    lossless transparent clip ``write_clip`` made from ``original`` (PNG-in-MOV, or animated
    WebP), whose frames (colour + alpha, exact) become the cutouts; ``original`` gives the
    clip's colour description, timing, loop and audio. The same composer, writers, ledger and
    read-back check as ``write_clip`` (``options`` may add a background colour or ask for the
    mask). This is how the web server offers every format from one job."""
    t_start = time.perf_counter()
    display = name or str(original)
    if options.crop:
        raise UsageError("--crop does not apply to clips (every frame keeps the clip's size)", path=display)
    src_info = open_clip(original, name=display, limits=limits).info
    frames = open_clip(master, name=display, limits=limits)

    def pairs() -> Iterator[tuple[Frame, Cutout]]:
        for frame in frames.frames():
            matte = (np.ones(frame.rgb.shape[:2], np.float32) if frame.alpha is None else frame.alpha)
            picture = Picture(frame.rgb, None, name=f"{display} (frame {frame.index + 1})", format=src_info.codec)
            yield frame, Cutout(picture, matte, frame.rgb, options)

    return _deliver(pairs(), _Described(frames, src_info), original, dst, options=options, format=format,
                    video_codec=video_codec, display=display, limits=limits, on_frame=on_frame, t_start=t_start,
                    render=lambda cutout, opts: pipeline.render(cutout, opts, name=cutout.picture.name))


@dataclass
class _Described:
    """A master's frames under the original clip's description (colour, audio, loop, start)."""

    source: Source
    info: ClipInfo

    @property
    def warnings(self) -> list[str]:
        return list(self.source.warnings)


def _deliver(pairs: Iterator[tuple[Frame, Cutout]], source: Source | _Described, src: str | Path,
             dst: str | Path | None, *, options: Options, format: str | None, video_codec: str | None,
             display: str, limits: MediaLimits, on_frame: FrameCallback | None, t_start: float,
             render: Callable[[Cutout, Options], bytes]) -> ClipResult:
    """Each (frame, cutout) composed, written, recorded; then the file read back and checked,
    and moved into place. ``src`` is the clip the audio comes from."""
    info = source.info
    plan, out = plan_clip(src, dst, info.kind, options, format=format, video_codec=video_codec)
    fmt = plan.format
    if same_file(src, out):
        raise UsageError("the output would overwrite the input", path=display)
    if plan.family == "animation" and info.kind == "video":
        limits.check_count(max(info.expected_frames, 1), info.width, info.height, display, animation=True)

    warnings: list[str] = []
    audio = info.audio is not None and plan.family == "video"
    if info.audio is not None and plan.family != "video":
        warnings.append(f"the clip's audio ({info.audio.codec}) is not carried: {fmt} output has no sound")
    if info.bit_depth > 8:
        hdr = info.colour.hdr
        warnings.append(f"{info.bit_depth}-bit {'HDR (' + hdr + ') ' if hdr else ''}video: frames are cut out "
                        "and written at 8 bits per channel" + (", tagged with the clip's own colour "
                        "description (no tone mapping)" if hdr else ""))
    if info.interlaced:
        warnings.append("interlaced video: deinterlaced (FFmpeg bwdif, one frame per frame)")

    composer = FrameComposer(options)
    ledger = Ledger(plan, info.expected_frames)
    done = 0
    expected = info.expected_frames
    provider = ""
    audio_route = ""

    def progress() -> None:
        if on_frame is not None:
            on_frame(done, max(expected, done), time.perf_counter() - t_start)

    try:
        if plan.family == "frames":
            sink = FramesSink(out, zipped=plan.zipped)
            try:
                frame_opts = replace(options, format="png", bit_depth=8)
                for frame, cutout in pairs:
                    sink.write(render(cutout, frame_opts), frame.index, frame.time, frame.duration)
                    done += 1
                    provider = cutout.provider
                    progress()
                if done == 0:
                    raise VerificationError("no frame was written", path=display)
                sink.close()
            except BaseException:
                sink.abort()
                raise
        elif plan.family == "animation":
            anim = AnimationSink(plan, info)
            warnings.extend(anim.warnings)
            t_written = 0.0
            for frame, cutout in pairs:
                pixels = anim.prepare(composer(cutout))
                anim.write(pixels, frame.time, frame.duration)
                ledger.record(pixels, t_written)
                t_written += anim.durations[-1] / 1000.0
                done += 1
                provider = cutout.provider
                progress()
            data = anim.encode()
            with atomic_file(out) as tmp:
                tmp.write_bytes(data)
                verify_clip(tmp, ledger, name=str(out))
        else:
            with atomic_file(out) as tmp:
                from .video_out import VideoSink

                sink_v = VideoSink(tmp, plan, info, audio_from=src if audio else None)
                try:
                    for frame, cutout in pairs:
                        pixels = composer(cutout)
                        sink_v.write(pixels, frame.time)
                        ledger.record(pixels, sink_v.times[-1])
                        done += 1
                        provider = cutout.provider
                        progress()
                    sink_v.close()
                    if sink_v.audio is not None:
                        a = sink_v.audio
                        audio_route = f"{info.audio.codec} copied" if a.copy else f"{info.audio.codec} → {a.codec}"  # type: ignore[union-attr]
                except BaseException:
                    sink_v.abort()
                    raise
                verify_clip(tmp, ledger, name=str(out), audio=audio)
    finally:
        ledger.close()
        close = getattr(pairs, "close", None)
        if close is not None:
            close()
    warnings.extend(source.warnings)
    size = _size(out)
    return ClipResult(out, info, plan, done, audio, warnings, time.perf_counter() - t_start, size, provider,
                      audio_route)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir())
    return path.stat().st_size if path.exists() else 0


def first_frame(src: str | Path, *, name: str | None = None, limits: MediaLimits = DEFAULT_LIMITS) -> Picture:
    """The first frame of a clip as a still ``Picture`` (``--first-frame``)."""
    source = open_clip(src, name=name, limits=limits)
    for frame in source.frames():
        return Picture(frame.rgb, frame.alpha, name=source.name, format=source.info.codec)
    raise OutputError("the clip has no frame", path=name or str(src))  # pragma: no cover
