"""Read a written clip back and check it against what was meant to be written.

While frames are written, a ``Ledger`` keeps, per frame, its time, a digest of its exact
pixels (lossless outputs) and a 64×64 area-averaged thumbnail; and, for up to
``FULL_SAMPLES`` frames spread over the clip, the whole frame. Thumbnails and samples go to
a temporary file, not memory; what stays in memory per frame is packed into flat arrays:
8 bytes of time, 8 of the thumbnail's place in the file and 16 of digest (lossless outputs
only), at most 32 bytes a frame (3.2 MB at the 100,000-frame limit).

``verify_clip`` then decodes the file (VP9 with libvpx: FFmpeg's own VP9 decoder drops
alpha) and checks container and codec, frame count, size, each frame's time, pixels within
the plan's ``Tolerance`` (exact for lossless codecs), and an audio stream when one was
written. Any failure raises ``VerificationError``; the caller then deletes the file.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from array import array
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
from PIL import Image

from ..errors import VerificationError
from .outputs import OutputPlan, Tolerance

THUMB = 64
#: bytes of a frame's digest
DIGEST = 16
#: whole frames kept (on disk) for the full-resolution check
FULL_SAMPLES = 12
#: frame times must read back within this (WebM stores milliseconds; GIF centiseconds)
TIME_SLACK = {"gif": 0.0101, "webp": 0.0011, "apng": 0.0011}
DEFAULT_TIME_SLACK = 0.0011
#: codec names the read-back stream must have
CODEC_NAMES = {"libvpx-vp9": {"vp9"}, "libx264": {"h264"}, "prores_ks": {"prores"}, "png": {"png"},
               "qtrle": {"qtrle"}}
_CONTAINERS = {"webm": "webm", "mkv": "matroska", "mov": "mov", "mp4": "mp4"}


def _digest(pixels: np.ndarray) -> bytes:
    """Exact pixels; for RGBA, colour under fully transparent pixels does not count (lossless
    WebP may drop it)."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        rgb = np.where(pixels[:, :, 3:4] > 0, pixels[:, :, :3], 0)
        return hashlib.blake2b(rgb.tobytes() + pixels[:, :, 3].tobytes(), digest_size=DIGEST).digest()
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=DIGEST).digest()


def _checked_plane(pixels: np.ndarray, content: str) -> np.ndarray:
    """The plane the tolerance applies to: alpha for a cutout, grey for a mask, luma for a composite."""
    if content == "rgba":
        return pixels[:, :, 3]
    if content == "mask":
        return pixels if pixels.ndim == 2 else pixels[:, :, 1]
    # a composite: its luma (BT.709 weights). 4:2:0 video halves the colour resolution, so a
    # saturated edge moves tens of levels in R, G or B by design; the picture is in the luma
    rgb = pixels[:, :, :3].astype(np.float32)
    return np.rint(rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.uint8)


def _thumb(plane: np.ndarray) -> np.ndarray:
    return cv2.resize(plane, (THUMB, THUMB), interpolation=cv2.INTER_AREA)


class Ledger:
    """What each written frame was, in bounded memory (see the module's docstring)."""

    def __init__(self, plan: OutputPlan, expected_frames: int) -> None:
        self.plan = plan
        self.times = array("d")
        self._digests = bytearray()  # DIGEST bytes per frame (lossless outputs)
        self.size: tuple[int, int] | None = None
        self.stride = max(1, expected_frames // FULL_SAMPLES) if expected_frames else 1
        self._spool = tempfile.TemporaryFile(prefix="alphacut-verify-")
        self._thumbs = array("q")  # each frame's thumbnail's offset in the spool
        self._samples: dict[int, tuple[int, tuple[int, ...]]] = {}

    def record(self, pixels: np.ndarray, time: float) -> None:
        i = len(self.times)
        self.times.append(time)
        self.size = (pixels.shape[1], pixels.shape[0])
        if self.plan.tolerance.exact:
            self._digests += _digest(pixels)
        plane = _checked_plane(pixels, self.plan.content)
        self._thumbs.append(self._put(_thumb(plane)))
        if i % self.stride == 0 and len(self._samples) < FULL_SAMPLES:
            self._samples[i] = (self._put(np.ascontiguousarray(plane)), plane.shape)

    def _put(self, arr: np.ndarray) -> int:
        self._spool.seek(0, io.SEEK_END)
        offset = self._spool.tell()
        self._spool.write(arr.tobytes())
        return offset

    def _get(self, offset: int, shape: tuple[int, ...]) -> np.ndarray:
        self._spool.seek(offset)
        n = int(np.prod(shape))
        return np.frombuffer(self._spool.read(n), np.uint8).reshape(shape)

    def digest(self, i: int) -> bytes:
        return bytes(self._digests[DIGEST * i:DIGEST * (i + 1)])

    def thumb(self, i: int, channels: int) -> np.ndarray:
        shape = (THUMB, THUMB) if channels == 1 else (THUMB, THUMB, channels)
        return self._get(self._thumbs[i], shape)

    def sample(self, i: int) -> np.ndarray | None:
        if i not in self._samples:
            return None
        offset, shape = self._samples[i]
        return self._get(offset, shape)

    def close(self) -> None:
        self._spool.close()

    def __len__(self) -> int:
        return len(self.times)


def _compare(i: int, got: np.ndarray, want: np.ndarray, tol: Tolerance, what: str, name: str) -> None:
    err = np.abs(got.astype(np.int16) - want.astype(np.int16))
    mean = float(err.mean())
    high = float(np.percentile(err, tol.percentile)) if tol.percentile < 100 else float(err.max())
    if mean > tol.mean or high > tol.high:
        raise VerificationError(
            f"frame {i + 1} reads back different from what was written ({what}: mean error {mean:.2f} levels, "
            f"{tol.percentile:g}th percentile {high:.0f}; allowed {tol.mean:g} and {tol.high:g})", path=name)


def check_frames(decoded: Iterator[tuple[np.ndarray, float, float | None]], ledger: Ledger, name: str) -> int:
    """Compare decoded (pixels, time, duration) with the ledger; returns the frames checked.

    Animated encoders merge identical consecutive frames into one longer frame (libwebp's
    and Pillow's APNG/GIF writers do): a decoded frame with a duration stands for every
    written frame whose time falls inside it, and is checked against each of them.
    """
    plan = ledger.plan
    slack = TIME_SLACK.get(plan.format, DEFAULT_TIME_SLACK)
    i = 0
    for k, (pixels, t, duration) in enumerate(decoded):
        if i >= len(ledger):
            raise VerificationError(f"the file holds more frames than the {len(ledger)} written", path=name)
        if (pixels.shape[1], pixels.shape[0]) != ledger.size:
            raise VerificationError(f"frame {k + 1} reads back as {pixels.shape[1]}x{pixels.shape[0]}, not "
                                    f"{ledger.size[0]}x{ledger.size[1]}", path=name)
        if abs(t - ledger.times[i]) > slack:
            raise VerificationError(f"frame {i + 1} reads back at {t:.4f} s, written at {ledger.times[i]:.4f} s",
                                    path=name)
        _check_pixels(i, pixels, ledger, name)
        i += 1
        while duration is not None and i < len(ledger) and ledger.times[i] < t + duration - slack:
            _check_pixels(i, pixels, ledger, name)  # merged into this frame by the encoder
            i += 1
    if i != len(ledger):
        raise VerificationError(f"the file holds {i} frames, {len(ledger)} were written", path=name)
    return i


def _check_pixels(i: int, pixels: np.ndarray, ledger: Ledger, name: str) -> None:
    plan, tol = ledger.plan, ledger.plan.tolerance
    plane = _checked_plane(pixels, plan.content)
    if tol.exact:
        if _digest(pixels if plan.content != "mask" else plane) != ledger.digest(i):
            raise VerificationError(f"frame {i + 1} of a lossless output reads back different from what "
                                    "was written", path=name)
        return
    channels = 1 if plane.ndim == 2 else plane.shape[2]
    _compare(i, _thumb(plane), ledger.thumb(i, channels), tol, "thumbnail", name)
    full = ledger.sample(i)
    if full is not None:
        _compare(i, plane, full, tol, "whole frame", name)


# --- reading back -------------------------------------------------------------------------


def _video_frames(path: Path, plan: OutputPlan, name: str) -> Iterator[tuple[np.ndarray, float, None]]:
    import av

    with av.open(str(path)) as c:
        if not c.streams.video:
            raise VerificationError("the written file has no video stream", path=name)
        stream = c.streams.video[0]
        codec = stream.codec_context.name
        if codec not in CODEC_NAMES.get(plan.codec, {plan.codec}):
            raise VerificationError(f"the written file's video is {codec}, not {plan.codec}", path=name)
        if plan.format == "webm" and plan.alpha and str(stream.metadata.get("alpha_mode", "")) != "1":
            raise VerificationError("the WebM does not declare its alpha channel (AlphaMode)", path=name)
        ctx = av.CodecContext.create("libvpx-vp9", "r") if codec == "vp9" else stream.codec_context
        fmt = "rgba" if plan.alpha else "rgb24"  # a mask reads back as grey RGB

        def convert(frame: Any) -> tuple[np.ndarray, float, None]:
            kwargs: dict[str, Any] = {}
            if frame.format.name.startswith("yuv"):
                matrix = {1: "ITU709", 9: "BT2020", 10: "BT2020"}.get(int(frame.colorspace), "ITU709")
                kwargs = {"src_colorspace": matrix, "src_color_range": "MPEG", "dst_color_range": "JPEG"}
            return frame.reformat(format=fmt, **kwargs).to_ndarray(), float(frame.time), None

        for packet in c.demux(stream):
            for frame in ctx.decode(packet):
                yield convert(frame)


def _animation_frames(path: Path, plan: OutputPlan, name: str) -> Iterator[tuple[np.ndarray, float, float]]:
    expected = {"webp": "WEBP", "apng": "PNG", "gif": "GIF"}[plan.format]
    with Image.open(path) as img:
        if img.format != expected:
            raise VerificationError(f"the written file reads as {img.format}, not {expected}", path=name)
        t = 0.0
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            if plan.content == "mask":
                arr = np.asarray(img.convert("L"))
            elif plan.content == "opaque":
                arr = np.asarray(img.convert("RGB"))
            else:
                arr = np.asarray(img.convert("RGBA"))
            duration = int(img.info.get("duration") or 0) / 1000.0
            yield arr, t, duration
            t += duration


def verify_clip(path: str | Path, ledger: Ledger, *, name: str, audio: bool = False) -> int:
    """Decode the written file and check it against ``ledger``; returns the frame count."""
    path = Path(path)
    plan = ledger.plan
    try:
        if plan.family == "animation":
            n = check_frames(_animation_frames(path, plan, name), ledger, name)
        else:
            n = check_frames(_video_frames(path, plan, name), ledger, name)
            if audio:
                _check_audio(path, name)
    except VerificationError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is not deliverable
        raise VerificationError(f"the written file cannot be read back ({type(exc).__name__}: {exc})",
                                path=name) from None
    return n


def _check_audio(path: Path, name: str) -> None:
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise VerificationError("the input had audio but the written file has none", path=name)
        for packet in c.demux(c.streams.audio[0]):
            if packet.size:
                return
    raise VerificationError("the written file's audio stream is empty", path=name)
