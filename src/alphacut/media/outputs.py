"""Which file a clip becomes: container, codec, pixel format and how exactly it must read back.

Chosen from the output's suffix (or ``--format``), the codec the user asked for, and whether
the output is transparent, a mask or a composite over a background. Each plan states its
read-back tolerance (checked by ``media.verify``):

============================  ==============================  ==================================
output                        codec, pixels                   alpha read back
============================  ==============================  ==================================
``.webm`` (video default)     VP9 (libvpx), yuva420p          lossy: mean |err| ≤ 2 levels per
                                                              frame, 99.5th pct ≤ 24 (edges)
``.mov``                      ProRes 4444 (prores_ks),        alpha 16-bit in the codec: ±1
                              yuva444p10le
``.mov --video-codec png``    PNG, rgba                       exact (RGBA)
``.mov --video-codec qtrle``  QuickTime Animation, argb       exact (RGBA)
``.mp4`` (needs a bg)         H.264 (libx264), yuv420p        no alpha; luma mean |err| ≤ 4,
                                                              99.5th pct ≤ 40
``.webp`` (animation default) animated WebP, lossless, exact  exact (RGBA)
``.png`` / ``.apng``          APNG                            exact (RGBA)
``.gif``                      GIF, 1-bit alpha (≥ 50 % kept)  exact on the 1-bit alpha (colours:
                              255-colour palette per frame    palette, not checked exactly)
frames (folder or ``.zip``)   PNG per frame                   exact (each PNG verified)
============================  ==============================  ==================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import UsageError

Family = Literal["video", "animation", "frames"]

VIDEO_FORMATS = ("webm", "mov", "mp4", "mkv")
ANIMATION_FORMATS = ("webp", "apng", "gif")
FORMATS = VIDEO_FORMATS + ANIMATION_FORMATS + ("frames",)
#: the default output per input kind
DEFAULT_FORMAT = {"video": "webm", "animation": "webp"}
EXTENSION = {"webm": ".webm", "mov": ".mov", "mp4": ".mp4", "mkv": ".mkv", "webp": ".webp",
             "apng": ".png", "gif": ".gif", "frames": ""}
MOV_CODECS = ("prores", "png", "qtrle")


@dataclass(frozen=True)
class Tolerance:
    """How closely a written frame must read back (levels of 255)."""

    exact: bool = False
    #: largest mean absolute error per frame
    mean: float = 0.0
    #: the given percentile of absolute error must not pass ``high``
    percentile: float = 99.5
    high: float = 0.0


EXACT = Tolerance(exact=True)


@dataclass(frozen=True)
class OutputPlan:
    family: Family
    format: str
    codec: str = ""
    pix_fmt: str = ""
    #: what the pixels are: a transparent cutout, a greyscale mask or a composite (opaque)
    content: Literal["rgba", "mask", "opaque"] = "rgba"
    tolerance: Tolerance = EXACT
    #: frames: a ZIP archive rather than a folder
    zipped: bool = False
    #: FFmpeg encoder options (the speed setting lives here)
    codec_options: tuple[tuple[str, str], ...] = ()

    @property
    def alpha(self) -> bool:
        return self.content == "rgba"


#: VP9: the realtime deadline keeps the encoder from bounding throughput: about 40 ms of CPU
#: a 1080p frame with alpha, 4% of a U²-Netp frame's work, against 2-3x that at the "good"
#: deadline. Within realtime, speeds 5-8 cost the same CPU within the measurement's noise
#: and speed 6 writes files 17-22% smaller than 8 (``bench/video.py encoder``, docs/video.md),
#: so 6. CRF 30 with row multithreading. Alpha is a second VP9 stream with the same settings.
VP9_OPTIONS = (("deadline", "realtime"), ("cpu-used", "6"), ("crf", "30"), ("b", "0"), ("row-mt", "1"),
               ("lag-in-frames", "0"))
X264_OPTIONS = (("preset", "veryfast"), ("crf", "18"))
PRORES_OPTIONS = (("profile", "4"), ("vendor", "apl0"), ("alpha_bits", "16"))
PRORES_HQ_OPTIONS = (("profile", "3"), ("vendor", "apl0"))
VP9_ALPHA = Tolerance(mean=2.0, percentile=99.5, high=24.0)
VP9_OPAQUE = Tolerance(mean=4.0, percentile=99.5, high=40.0)
PRORES_ALPHA = Tolerance(mean=0.5, percentile=100.0, high=1.0)
OPAQUE_LOSSY = Tolerance(mean=4.0, percentile=99.5, high=40.0)
#: a composite squeezed into a 255-colour palette
GIF_OPAQUE = Tolerance(mean=8.0, percentile=99.0, high=64.0)


def output_format(dst: str | Path | None, format: str | None, input_kind: str) -> str:
    """The output format: ``format`` when given, else the suffix of ``dst``, else the default
    for the input's kind."""
    if format:
        fmt = {"png": "apng", "zip": "frames", "m4v": "mp4"}.get(format.lower(), format.lower())
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {format!r} for a {input_kind}; choose one of {', '.join(FORMATS)}")
        return fmt
    if dst is not None:
        suffix = Path(dst).suffix.lower()
        if suffix == ".zip":
            return "frames"
        if suffix == ".apng":
            return "apng"
        from ..imageio.formats import by_extension, output_formats

        registered = by_extension(suffix) if suffix else None
        if registered is not None and registered.writes(input_kind):  # type: ignore[arg-type]
            return "apng" if registered.name == "png" else registered.name
        if suffix:
            endings = sorted({f.extension for f in output_formats(input_kind)} | {".zip"})  # type: ignore[arg-type]
            raise UsageError(f"{Path(dst).name}: {suffix} is not an output alphacut writes for a {input_kind} "
                             f"(choose {', '.join(endings)}, or a folder with --format frames)")
    return DEFAULT_FORMAT[input_kind]


def plan_output(fmt: str, *, mask: bool = False, background: bool = False, video_codec: str | None = None,
                zipped: bool = False) -> OutputPlan:
    """The plan for ``fmt`` given what the frames hold; refuses combinations that cannot work."""
    content: Literal["rgba", "mask", "opaque"] = "mask" if mask else "opaque" if background else "rgba"
    if video_codec and fmt != "mov":
        raise UsageError("--video-codec applies to .mov output only (png, qtrle or prores)")
    if fmt == "frames":
        return OutputPlan("frames", "frames", "png", content=content, zipped=zipped)
    if fmt == "gif":  # palette colours: the 1-bit alpha (or the grey of a mask) is what reads back exactly
        tol = GIF_OPAQUE if content == "opaque" else Tolerance(mean=0.0, percentile=100.0, high=0.0)
        return OutputPlan("animation", fmt, fmt, content=content, tolerance=tol)
    if fmt in ANIMATION_FORMATS:
        return OutputPlan("animation", fmt, fmt, content=content)
    if fmt == "mp4":
        if content == "rgba":
            raise UsageError("MP4 (H.264) cannot carry alpha: add a background (--bg COLOUR, --bg-image FILE "
                             "or --bg-blur SIGMA), use --mask-only, or write .webm or .mov for transparency")
        return OutputPlan("video", "mp4", "libx264", "yuv420p", content, OPAQUE_LOSSY, codec_options=X264_OPTIONS)
    if fmt in ("webm", "mkv"):
        if content == "rgba":
            return OutputPlan("video", fmt, "libvpx-vp9", "yuva420p", content, VP9_ALPHA, codec_options=VP9_OPTIONS)
        return OutputPlan("video", fmt, "libvpx-vp9", "yuv420p", content, VP9_OPAQUE, codec_options=VP9_OPTIONS)
    if fmt == "mov":
        codec = (video_codec or "prores").lower()
        if codec not in MOV_CODECS:
            raise UsageError(f"unknown --video-codec {video_codec!r}; choose png, qtrle or prores")
        if codec == "png":
            return OutputPlan("video", "mov", "png", "rgba" if content == "rgba" else "rgb24", content, EXACT)
        if codec == "qtrle":
            return OutputPlan("video", "mov", "qtrle", "argb" if content == "rgba" else "rgb24", content, EXACT)
        if content == "rgba":
            return OutputPlan("video", "mov", "prores_ks", "yuva444p10le", content, PRORES_ALPHA,
                              codec_options=PRORES_OPTIONS)
        return OutputPlan("video", "mov", "prores_ks", "yuv422p10le", content, OPAQUE_LOSSY,
                          codec_options=PRORES_HQ_OPTIONS)
    raise UsageError(f"unknown output format {fmt!r}")


def default_output(src: str | Path, fmt: str, *, zipped: bool = False) -> Path:
    """``clip.mp4`` → ``clip.cutout.webm`` beside it (``clip.cutout`` folder, or ``.zip``, for frames)."""
    p = Path(src)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    ext = ".zip" if fmt == "frames" and zipped else EXTENSION[fmt]
    return p.with_name(f"{stem}.cutout{ext}")
