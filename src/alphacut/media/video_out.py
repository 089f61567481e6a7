"""Video out through PyAV: one frame in, encoded and muxed, nothing held but the codec's own
look-ahead. VP9 with alpha in WebM, ProRes 4444 / PNG / QuickTime Animation in MOV, H.264 in
MP4; frames keep their own times (variable frame rates stay variable) and the input's colour
description; the input's audio is interleaved as frames are written (``media.audio``)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from .audio import AudioCarrier
from .clip import ClipInfo
from .outputs import OutputPlan

#: the time base frames are written in (WebM's muxer stores milliseconds whatever this is)
TIME_BASE = Fraction(1, 90000)
_CONTAINER = {"webm": "webm", "mkv": "matroska", "mov": "mov", "mp4": "mp4"}
#: swscale's names for the matrices we write with
_MATRIX_NAME = {1: "ITU709", 9: "BT2020", 10: "BT2020"}


def output_colour(info: ClipInfo) -> tuple[int, int, int]:
    """(primaries, transfer, matrix) to tag the output with: the input's own description
    when it has one; animations (sRGB) and unlabelled clips as BT.709/sRGB-like."""
    c = info.colour
    matrix = 9 if c.matrix in (9, 10) else 1
    primaries = c.primaries if c.primaries != 2 else 1
    transfer = c.transfer if c.transfer != 2 else (13 if info.kind == "animation" else 1)
    return primaries, transfer, matrix


class VideoSink:
    """Writes frames to ``path`` (a temporary file: the caller renames it after verification)."""

    def __init__(self, path: str | Path, plan: OutputPlan, info: ClipInfo, *, audio_from: str | Path | None = None,
                 threads: int | None = None) -> None:
        import av

        self.plan = plan
        self.path = Path(path)
        opts = {"movflags": "+faststart"} if plan.format in ("mp4", "mov") else {}
        self.output = av.open(str(self.path), "w", format=_CONTAINER[plan.format], options=opts)
        rate = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else Fraction(25)
        stream = self.output.add_stream(plan.codec, rate=rate)
        stream.width, stream.height = info.width, info.height
        stream.pix_fmt = plan.pix_fmt
        stream.time_base = TIME_BASE
        cc = stream.codec_context
        cc.time_base = TIME_BASE
        n = threads or os.cpu_count() or 1
        options = dict(plan.codec_options)
        if plan.codec == "libvpx-vp9":
            options.setdefault("threads", str(n))
            options.setdefault("tile-columns", "2" if info.width >= 1280 else "1")
        elif plan.codec in ("libx264", "prores_ks"):
            options.setdefault("threads", str(n))
        cc.options = options
        self.primaries, self.transfer, self.matrix = output_colour(info)
        self.yuv = plan.pix_fmt.startswith("yuv")
        if self.yuv:
            cc.color_primaries, cc.color_trc, cc.colorspace = self.primaries, self.transfer, self.matrix
            cc.color_range = 1  # limited ("MPEG"): what players expect of YUV video
        self.stream = stream
        self.frames = 0
        #: the time the last frame was written at, as the container stores it (the ledger keeps
        #: every frame's; the sink keeps nothing per frame, so its memory does not grow with the clip)
        self.last_time = 0.0
        self.audio: AudioCarrier | None = None
        if audio_from is not None:
            self.audio = AudioCarrier(audio_from, self.output, plan.format, start=info.start)

    def write(self, pixels: np.ndarray, time: float) -> None:
        """One frame: (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) grey uint8, at ``time`` seconds."""
        import av

        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        fmt = "rgba" if pixels.shape[2] == 4 else "rgb24"
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=fmt)
        if self.yuv:
            frame = frame.reformat(format=self.plan.pix_fmt, dst_colorspace=_MATRIX_NAME[self.matrix],
                                   dst_color_range="MPEG")
            frame.colorspace, frame.color_range = self.matrix, 1
            frame.color_primaries, frame.color_trc = self.primaries, self.transfer
        elif frame.format.name != self.plan.pix_fmt:
            frame = frame.reformat(format=self.plan.pix_fmt)
        pts = round(time / TIME_BASE)
        frame.pts = pts
        frame.time_base = TIME_BASE
        for packet in self.stream.encode(frame):
            self.output.mux(packet)
        self.frames += 1
        self.last_time = float(pts * TIME_BASE)
        if self.audio is not None:
            self.audio.advance(time)

    def close(self) -> None:
        """Drain the encoder and the audio, write the container's index."""
        for packet in self.stream.encode(None):
            self.output.mux(packet)
        if self.audio is not None:
            self.audio.finish()
        self.output.close()

    def abort(self) -> None:
        try:
            if self.audio is not None:
                self.audio.close()
            self.output.close()
        except Exception:  # noqa: BLE001 - cleaning up after a failure; the file is discarded
            pass
