"""Small clips made on the spot for the media tests: a textured disc moving over a gradient,
written with PyAV (video, optionally with a sine tone) or Pillow (animations)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def moving_disc(index: int, width: int = 160, height: int = 120) -> np.ndarray:
    """Frame ``index``: a warm textured disc a few pixels further right each frame."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([40 + 60 * x / width, 120 + 40 * y / height, 190 + 0 * x], axis=-1)
    cx, cy, r = width * 0.35 + 3 * index, height / 2, min(width, height) * 0.3
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    disc = np.clip(r - d + 0.5, 0, 1)[..., None]
    fg = np.stack([220 - 40 * (y / height), 90 + 30 * np.sin(x / 7), 40 + 0 * x], axis=-1)
    return np.clip(fg * disc + bg * (1 - disc), 0, 255).astype(np.uint8)


def write_video(path: Path, frames: int = 8, *, codec: str = "libx264", fps: int = 12, width: int = 160,
                height: int = 120, audio: str | None = "aac", times: list[float] | None = None,
                rotation: int = 0, pix_fmt: str = "yuv420p") -> Path:
    """A short clip; ``times`` (seconds) makes it variable-frame-rate; ``audio`` a sine tone."""
    import av

    fmt = {".webm": "webm", ".mkv": "matroska", ".mov": "mov", ".mp4": "mp4", ".avi": "avi"}[path.suffix]
    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        tb = Fraction(1, 90000) if fmt != "avi" else Fraction(1, fps)
        v.time_base = tb
        v.codec_context.time_base = tb
        if rotation:
            v.set_display_rotation(rotation) if hasattr(v, "set_display_rotation") else None
        a = None
        if audio:
            a = out.add_stream(audio, rate=48000, layout="mono")
        for i in range(frames):
            t = times[i] if times else i / fps
            f = av.VideoFrame.from_ndarray(moving_disc(i, width, height), format="rgb24")
            f = f.reformat(format=pix_fmt) if pix_fmt != "rgb24" else f
            f.pts = round(t / tb)
            f.time_base = tb
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode(None):
            out.mux(p)
        if a is not None:
            mux_tone(out, a, (times[-1] if times else frames / fps) + 0.1, "fltp" if audio == "aac" else "s16")
    return path


def mux_tone(out: "av.container.OutputContainer", stream: "av.audio.stream.AudioStream", seconds: float,
             sample_format: str = "fltp") -> None:
    """A 440 Hz sine tone of ``seconds`` at 48 kHz mono into ``stream`` (float planar, or 16-bit
    for encoders that take only that), flushed: the clips' audio track."""
    import av

    n = int(48000 * seconds)
    tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 48000)).astype(np.float32)
    pts = 0
    for start in range(0, n, 1024):
        chunk = tone[start:start + 1024]
        data = chunk[None] if sample_format == "fltp" else (chunk * 32767).astype(np.int16)[None]
        af = av.AudioFrame.from_ndarray(data, format=sample_format, layout="mono")
        af.sample_rate, af.pts, af.time_base = 48000, pts, Fraction(1, 48000)
        pts += chunk.size
        for p in stream.encode(af):
            out.mux(p)
    for p in stream.encode(None):
        out.mux(p)


def write_animation(path: Path, frames: int = 6, *, width: int = 96, height: int = 72,
                    durations: list[int] | None = None, loop: int | None = 0, alpha: bool = True) -> Path:
    """An animated GIF/WebP/APNG of the moving disc (a transparent border when ``alpha``)."""
    images = []
    for i in range(frames):
        rgb = moving_disc(i, width, height)
        if alpha:
            a = np.full((height, width), 255, np.uint8)
            a[:4], a[-4:] = 0, 0
            images.append(Image.fromarray(np.dstack([rgb, a]), "RGBA"))
        else:
            images.append(Image.fromarray(rgb, "RGB"))
    kwargs = {"save_all": True, "append_images": images[1:], "duration": durations or [80] * frames}
    if loop is not None:
        kwargs["loop"] = loop
    fmt = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG", ".apng": "PNG"}[path.suffix]
    if fmt == "WEBP":
        kwargs["lossless"] = True
    images[0].save(path, fmt, **kwargs)
    return path
