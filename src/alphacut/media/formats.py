"""The moving-picture formats, registered in the format registry (``imageio.formats``).

Video containers are their own formats (kind "video"), found by signature: MP4, MOV, WebM,
Matroska, AVI, MPEG-TS. Animated GIF, PNG (APNG) and WebP share their signatures with the
stills: they stay the still formats and gain a frame encoder here (``register(...,
replace=True)``); whether a file of theirs is an animation is its frame count's business
(``media.sniff.clip_kind``).

The frame decoders and encoders registered here are the plain streams the registry's seams
describe (``FrameDecoder``, ``FrameEncoder``: frames at a constant rate, no verification);
``media.write_clip`` is the full route: frame times, audio, the temporal stage and the
read-back check.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..imageio.formats import EncodeSettings, Format, Kind, by_name, iso_brands, register

#: ISO-BMFF brands of video files (MP4, 3GP, M4V, DASH, XAVC, F4V); images and others stay out
VIDEO_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VH",
                b"M4VP", b"3gp4", b"3gp5", b"3gp6", b"3gp7", b"3ge6", b"3ge7", b"3gg6", b"3g2a", b"3g2b", b"3g2c",
                b"dash", b"mmp4", b"MSNV", b"XAVC", b"f4v ", b"NDAS", b"hvc1", b"av01"}
_STILL_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevx", b"mif1", b"msf1", b"avif", b"avis", b"avio"}


def _is_mp4(head: bytes) -> bool:
    brands = iso_brands(head)
    if brands is None or brands[0] == b"qt  " or brands[0] in _STILL_BRANDS:
        return False
    return bool(brands[1] & VIDEO_BRANDS)


def _is_mov(head: bytes) -> bool:
    brands = iso_brands(head)
    if brands is not None:
        return brands[0] == b"qt  "
    return len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def _is_matroska(head: bytes) -> bool:
    return head[:4] == b"\x1a\x45\xdf\xa3"


def _is_webm(head: bytes) -> bool:
    return _is_matroska(head) and b"webm" in head[:64]


def _is_ts(head: bytes) -> bool:
    # 188-byte packets start 0x47 (M2TS: a 4-byte timestamp first); GIF ('G', 'I') is asked first
    return (head[:1] == b"\x47" and head[1:3] != b"IF") or (len(head) > 4 and head[4:5] == b"\x47" and head[:1] != b"\x47")


class _Frames:
    """``FrameDecoder``: a clip → upright ``Picture``s, one at a time."""

    def __call__(self, source: Path, fmt: Format, *, name: str, max_pixels: int) -> Iterator[Any]:
        from ..imageio.decode import Picture
        from .limits import DEFAULT_LIMITS
        from .loop import open_clip

        limits = dataclasses.replace(DEFAULT_LIMITS, max_frame_pixels=min(max_pixels, DEFAULT_LIMITS.max_frame_pixels))
        clip = open_clip(source, name=name, limits=limits)
        for frame in clip.frames():
            yield Picture(frame.rgb, frame.alpha, name=f"{name} (frame {frame.index + 1})", format=fmt.name)


class _Writer:
    """``FrameWriter`` over a media sink, frames at a constant rate."""

    def __init__(self, sink: Any, rate: Fraction, path: Path) -> None:
        self.sink, self.rate, self.path, self.n = sink, rate, path, 0

    def write(self, pixels: np.ndarray) -> None:
        t = float(self.n / self.rate)
        if hasattr(self.sink, "prepare"):
            self.sink.write(self.sink.prepare(pixels), t, float(1 / self.rate))
        else:
            self.sink.write(pixels, t)
        self.n += 1

    def close(self) -> None:
        if hasattr(self.sink, "encode"):
            self.path.write_bytes(self.sink.encode())
        else:
            self.sink.close()


@dataclasses.dataclass(frozen=True)
class _Encoder:
    """``FrameEncoder`` for one output format (``media.outputs`` names its codec)."""

    format: str
    kinds: tuple[Kind, ...] = ("animation", "video")

    def open(self, path: Path, settings: EncodeSettings, *, width: int, height: int, rate: Fraction) -> _Writer:
        from .clip import ClipInfo
        from .outputs import plan_output

        plan = plan_output(self.format)
        info = ClipInfo("video", str(path), self.format, plan.codec, width, height, 0, 0, 0.0, float(rate))
        if plan.family == "animation":
            from .animation_out import AnimationSink

            return _Writer(AnimationSink(plan, info), rate, Path(path))
        from .video_out import VideoSink

        return _Writer(VideoSink(path, plan, info), rate, Path(path))


_FRAMES = _Frames()


def _video(name: str, accept: Any, extensions: tuple[str, ...], mime: str, *, writes: bool) -> Format:
    return register(Format(name, "video", accept, extensions, mime, bit_depths=(8,) if writes else (),
                           frames=_FRAMES, frame_encoder=_Encoder(name) if writes else None))


MP4 = _video("mp4", _is_mp4, (".mp4", ".m4v", ".3gp"), "video/mp4", writes=True)
MOV = _video("mov", _is_mov, (".mov", ".qt"), "video/quicktime", writes=True)
WEBM = _video("webm", _is_webm, (".webm",), "video/webm", writes=True)
MKV = _video("mkv", _is_matroska, (".mkv",), "video/x-matroska", writes=True)
AVI = _video("avi", lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI ", (".avi",), "video/x-msvideo", writes=False)
MPEGTS = _video("mpegts", _is_ts, (".ts", ".mts", ".m2ts"), "video/mp2t", writes=False)

# the animated side of three still formats
register(dataclasses.replace(by_name("webp"), frames=_FRAMES, frame_encoder=_Encoder("webp")), replace=True)
register(dataclasses.replace(by_name("png"), aliases=("apng",), frames=_FRAMES, frame_encoder=_Encoder("apng")),
         replace=True)
register(dataclasses.replace(by_name("gif"), bit_depths=(8,), frames=_FRAMES, frame_encoder=_Encoder("gif")),
         replace=True)
