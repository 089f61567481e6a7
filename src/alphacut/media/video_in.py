"""Video in, frame by frame, through PyAV (FFmpeg): one decoded frame in memory at a time.

What this module owns: which decoder reads the stream (libvpx for VP8/VP9 that carry alpha:
FFmpeg's own VP9 decoder silently drops it), deinterlacing (FFmpeg's ``bwdif`` filter),
the display rotation of phone clips (applied to the pixels), colour conversion to 8-bit RGB
with the stream's own matrix and range, frame times from the timestamps (variable frame rates
kept), and damaged input: a frame the decoder rejects in the middle is skipped and reported;
a clip that yields no frame, or more than ``MAX_CORRUPT_SHARE`` of rejected ones, is refused.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import CorruptImageError, InputError, InputNotFoundError, TruncatedImageError, UnsupportedFormatError
from .clip import AudioInfo, ClipInfo, ColourTags, Frame
from .limits import DEFAULT_LIMITS, MediaLimits

#: more than this share of a clip's packets rejected by the decoder: the clip is refused
MAX_CORRUPT_SHARE = 0.10
#: a clip that ends before this share of the frames its header declares is truncated
TRUNCATED_SHARE = 0.9
#: when the header gives no frame count, the count is implied by the duration × rate, and the
#: container's duration spans every stream: an audio track commonly runs past the last frame
#: (the encoder's priming and its final packet, ~0.1 s in our own WebM). Frames missing within
#: this many seconds are that, not a cut file
IMPLIED_SLACK_S = 0.3
#: colour matrices swscale knows by number (AVCOL_SPC_*): BT.709, FCC, BT.470BG, SMPTE 170M, 240M, BT.2020
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        raise UnsupportedFormatError("video needs PyAV (pip install av)") from None
    return av


def open_container(path: str | Path, name: str) -> Any:
    """An FFmpeg input container, or a clear error naming the file."""
    av = _av()
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError("no such file", path=name)
    if p.is_dir():
        raise InputError("is a folder, not a video file", path=name)
    try:
        return av.open(str(p), "r", options={"probesize": "5000000"})
    except av.error.InvalidDataError as exc:
        raise CorruptImageError(
            f"FFmpeg cannot read this file: the container is damaged or incomplete ({_why(exc)})",
            path=name) from None
    except av.error.FFmpegError as exc:
        raise CorruptImageError(f"FFmpeg cannot open this file ({_why(exc)})", path=name) from None
    except PermissionError:
        raise InputError("permission denied", path=name) from None


def _why(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if text else type(exc).__name__


def _video_stream(container: Any, name: str) -> Any:
    streams = container.streams.video
    if not streams:
        what = "an audio-only file" if container.streams.audio else "a file with no video stream"
        raise UnsupportedFormatError(f"{what}: there are no pictures to cut out", path=name)
    stream = streams[0]
    if stream.codec_context is None or getattr(stream.codec_context, "name", None) is None:
        raise CorruptImageError("the video stream's codec cannot be read (damaged or missing "
                                "sample description)", path=name)
    if stream.codec_context.pix_fmt is None and not _alpha_decoder(stream):
        raise CorruptImageError("the video stream has no readable picture format: its bitstream is "
                                "damaged or invalid", path=name)
    return stream


def _alpha_decoder(stream: Any) -> str | None:
    """libvpx's decoder for VP8/VP9 streams that carry alpha (Matroska AlphaMode=1)."""
    alpha = str(stream.metadata.get("alpha_mode", stream.metadata.get("ALPHA_MODE", ""))) == "1"
    name = stream.codec_context.name
    if alpha and name == "vp9":
        return "libvpx-vp9"
    if alpha and name == "vp8":
        return "libvpx"
    return None


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt or f"{depth}le" in pix_fmt or f"{depth}be" in pix_fmt:
            return depth
    return 8


class VideoSource:
    """One video file: ``info`` (read from the header and the first frame), ``frames()``."""

    def __init__(self, path: str | Path, *, name: str | None = None, limits: MediaLimits = DEFAULT_LIMITS) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        self.limits = limits
        self.warnings: list[str] = []
        #: frames the decoder rejected (skipped), with their approximate times
        self.skipped: list[float] = []
        self.info = self._probe()

    # --- probing ------------------------------------------------------------------------

    def _probe(self) -> ClipInfo:
        with open_container(self.path, self.name) as c:
            stream = _video_stream(c, self.name)
            cc = stream.codec_context
            w, h = int(cc.width or 0), int(cc.height or 0)
            self.limits.check_frame(w, h, self.name)
            declared = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            duration = self._duration(c, stream)
            expected = declared or (max(1, round(duration * fps)) if duration and fps else 0)
            if expected:
                self.limits.check_count(expected, w, h, self.name, animation=False, declared=bool(declared))
            first = self._first_frame(c, stream)
            rotation = _rotation(first)
            uw, uh = (h, w) if rotation in (90, 270) else (w, h)
            audio = None
            if c.streams.audio:
                a = c.streams.audio[0].codec_context
                if a is not None and a.name:
                    audio = AudioInfo(a.name, int(a.sample_rate or 0), int(getattr(a, "channels", 0) or 0))
                else:
                    self.warnings.append("the audio track cannot be read (damaged or missing description): "
                                         "the output has no sound")
            colour = ColourTags(int(first.color_primaries), int(first.color_trc), int(first.colorspace),
                                int(first.color_range) == 2 or str(cc.pix_fmt or "").startswith("yuvj"))
            pix_fmt = first.format.name
            info = ClipInfo(
                kind="video", name=self.name, container=c.format.name, codec=cc.name, width=uw, height=uh,
                declared_frames=declared, expected_frames=expected, duration=duration, fps=fps,
                rotation=rotation, bit_depth=_bit_depth(pix_fmt),
                has_alpha=pix_fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya", "pal8")),
                pix_fmt=pix_fmt, colour=colour, audio=audio,
                interlaced=bool(first.interlaced_frame), start=float(first.time or 0.0))
        self.skipped.clear()
        return info

    @staticmethod
    def _duration(c: Any, stream: Any) -> float:
        if stream.duration is not None and stream.time_base:
            return float(stream.duration * stream.time_base)
        if c.duration:
            return c.duration / 1_000_000
        return 0.0

    def _first_frame(self, c: Any, stream: Any) -> Any:
        for frame in self._decoded(c, stream, limit_errors=False):
            return frame
        raise CorruptImageError("no frame of the video could be decoded (zero frames, or every frame "
                                "damaged)", path=self.name)

    # --- decoding -----------------------------------------------------------------------

    def _decoded(self, c: Any, stream: Any, *, limit_errors: bool = True) -> Iterator[Any]:
        """Raw FFmpeg frames in presentation order; packets the decoder rejects are skipped
        (and counted in ``self.skipped``)."""
        av = _av()
        special = _alpha_decoder(stream)
        if special:
            ctx = av.CodecContext.create(special, "r")
        else:
            ctx = stream.codec_context
            ctx.thread_type = "AUTO"
        packets = 0
        try:
            for packet in c.demux(stream):
                try:
                    frames = ctx.decode(packet)  # a None packet (the end) drains the decoder
                except (av.error.InvalidDataError, av.error.BlockingIOError):
                    self.skipped.append(float(packet.pts * packet.time_base) if packet.pts is not None else -1.0)
                    continue
                if packet.size:
                    packets += 1
                yield from frames
        except av.error.EOFError:
            return
        except av.error.InvalidDataError as exc:
            raise TruncatedImageError(f"the video's data ends or breaks off early ({_why(exc)})",
                                      path=self.name) from None
        if limit_errors and self.skipped and len(self.skipped) > MAX_CORRUPT_SHARE * max(1, packets + len(self.skipped)):
            raise CorruptImageError(
                f"{len(self.skipped)} of {packets + len(self.skipped)} video packets are damaged "
                f"(more than {MAX_CORRUPT_SHARE:.0%}): refused rather than cut out with holes", path=self.name)

    def _filtered(self, c: Any, stream: Any) -> Iterator[Any]:
        """Decoded frames, deinterlaced with FFmpeg's bwdif when the clip is interlaced."""
        if not self.info.interlaced:
            yield from self._decoded(c, stream)
            return
        av = _av()
        graph = None
        for frame in self._decoded(c, stream):
            if graph is None:
                graph = av.filter.Graph()
                src = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                                       time_base=frame.time_base or stream.time_base)
                bw = graph.add("bwdif", "mode=send_frame:parity=auto:deint=interlaced")
                sink = graph.add("buffersink")
                src.link_to(bw)
                bw.link_to(sink)
                graph.configure()
            graph.push(frame)
            yield from _pull_all(graph)
        if graph is not None:
            graph.push(None)
            yield from _pull_all(graph)

    def frames(self) -> Iterator[Frame]:
        """Upright 8-bit RGB frames with their times (seconds from the first frame); alpha
        when the stream has it. One frame is held back to learn each frame's duration."""
        info = self.info
        fallback = 1.0 / info.fps if info.fps > 0 else 1.0 / 25.0
        with open_container(self.path, self.name) as c:
            stream = _video_stream(c, self.name)
            t0: float | None = None
            pending: tuple[np.ndarray, np.ndarray | None, float, float] | None = None
            index = 0
            last_time = -math.inf
            for raw in self._filtered(c, stream):
                t = raw.time if raw.time is not None else (index * fallback)
                if t0 is None:
                    t0 = t
                t = t - t0
                if t <= last_time:  # repeated or backward timestamps: place it one tick on
                    t = last_time + fallback
                rgb, alpha = self._pixels(raw)
                own = float(raw.duration * raw.time_base) if raw.duration and raw.time_base else fallback
                if pending is not None:
                    p_rgb, p_alpha, p_t, _ = pending
                    yield Frame(index, p_rgb, p_alpha, p_t, t - p_t)
                    index += 1
                    self.limits.check_count(index + 1, info.width, info.height, self.name, animation=False,
                                            declared=False)
                pending = (rgb, alpha, t, own)
                last_time = t
            if pending is None:
                raise CorruptImageError("no frame of the video could be decoded", path=self.name)
            got = index + 1 + len(self.skipped)
            missing = info.expected_frames - got
            slack = 0.0 if info.declared_frames else IMPLIED_SLACK_S * info.fps
            if info.expected_frames and got < TRUNCATED_SHARE * info.expected_frames and missing > slack:
                raise TruncatedImageError(
                    f"the file is truncated: it ends after {index + 1} of the {info.expected_frames} frames "
                    f"its header {'declares' if info.declared_frames else 'implies (duration × rate)'}",
                    path=self.name)
            p_rgb, p_alpha, p_t, own = pending
            yield Frame(index, p_rgb, p_alpha, p_t, own)
        if self.skipped:
            self.warnings.append(
                f"{len(self.skipped)} damaged frame(s) skipped (at "
                + ", ".join(f"{s:.2f} s" for s in self.skipped[:5]) + (" …" if len(self.skipped) > 5 else "") + ")")

    def _pixels(self, raw: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """One FFmpeg frame → upright uint8 RGB and float alpha (or None), converted with the
        stream's own matrix and range (an unlabelled HD stream is read as BT.709, as players do)."""
        matrix = int(raw.colorspace)
        sws = _SWS_MATRIX.get(matrix) or ("ITU709" if raw.height >= 720 else "ITU601")
        full = int(raw.color_range) == 2 or raw.format.name.startswith("yuvj")
        fmt = "rgba" if self.info.has_alpha else "rgb24"
        kwargs: dict[str, Any] = {}
        if raw.format.name.startswith(("yuv", "nv", "p0", "p2", "y2")):
            kwargs = {"src_colorspace": sws, "src_color_range": "JPEG" if full else "MPEG",
                      "dst_color_range": "JPEG"}
        arr = raw.reformat(format=fmt, **kwargs).to_ndarray()
        k = (self.info.rotation // 90) % 4
        if k:
            arr = np.rot90(arr, k)
        arr = np.ascontiguousarray(arr)
        if fmt == "rgb24":
            return arr, None
        a = arr[:, :, 3]
        alpha = None if a.min() == 255 else a.astype(np.float32) * np.float32(1 / 255)
        return np.ascontiguousarray(arr[:, :, :3]), alpha


def _pull_all(graph: Any) -> Iterator[Any]:
    av = _av()
    while True:
        try:
            yield graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def _rotation(frame: Any) -> int:
    """Degrees to turn the picture counter-clockwise to show it upright (the display matrix)."""
    try:
        r = float(frame.rotation or 0)
    except Exception:  # noqa: BLE001 - a frame without a readable display matrix is upright
        return 0
    return int(round(r / 90.0)) * 90 % 360
