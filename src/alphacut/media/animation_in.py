"""Animations in (animated GIF, APNG, animated WebP, animated AVIF), frame by frame, through Pillow.

Pillow composites each frame onto the canvas by the file's own disposal and blend rules, so
every frame comes out whole, at the canvas size; ``seek`` decodes one frame at a time. The
canvas size and the frame count are checked against the limits before the first frame is
decoded (a GIF may declare a 65,535² logical screen or thousands of frames in a small file).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from ..errors import CorruptImageError, InputError, InputNotFoundError, TruncatedImageError
from .clip import ClipInfo, Frame
from .limits import DEFAULT_LIMITS, MediaLimits

#: what a frame that declares no duration lasts (ms), as browsers play it
DEFAULT_FRAME_MS = 100
#: Pillow's format names → ours
_FORMATS = {"GIF": "gif", "PNG": "apng", "WEBP": "webp", "AVIF": "avif"}


class AnimationSource:
    """One animation file: ``info`` from its header, ``frames()`` one whole frame at a time."""

    def __init__(self, path: str | Path, *, name: str | None = None, limits: MediaLimits = DEFAULT_LIMITS) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        self.limits = limits
        self.warnings: list[str] = []
        self.skipped: list[float] = []
        self.info = self._probe()

    def _open(self) -> Image.Image:
        if not self.path.exists():
            raise InputNotFoundError("no such file", path=self.name)
        head = self.path.read_bytes()[:64]
        from ..imageio.formats import sniff

        try:
            fmt = sniff(head, name=self.name)
        except InputError:
            fmt = None
        declared = fmt.declared_size(head) if fmt is not None and fmt.declared_size else None
        if declared:  # libwebp allocates the canvas inside Image.open: check the header first
            self.limits.check_frame(*declared, self.name)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = Image.open(self.path)
        except Image.DecompressionBombError as exc:
            raise CorruptImageError(f"refused as a decompression bomb: {exc}", path=self.name) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise CorruptImageError(f"the animation cannot be read ({exc})", path=self.name) from None
        self.limits.check_frame(img.width, img.height, self.name)
        return img

    def _probe(self) -> ClipInfo:
        img = self._open()
        try:
            fmt = _FORMATS.get(img.format or "", (img.format or "?").lower())
            try:
                n = int(getattr(img, "n_frames", 1))
            except (OSError, EOFError, ValueError, SyntaxError) as exc:
                raise TruncatedImageError(f"the {fmt.upper()} frames cannot be counted ({exc})",
                                          path=self.name) from None
            self.limits.check_count(n, img.width, img.height, self.name, animation=True)
            img.seek(0)
            total_ms = 0
            for i in range(n):  # durations for the info: GIF/APNG from the frame headers
                img.seek(i)
                if fmt in ("webp", "avif"):
                    img.load()  # Pillow reads a WebP frame's duration when it decodes it
                total_ms += int(img.info.get("duration") or DEFAULT_FRAME_MS)
            loop = img.info.get("loop")
            has_alpha = "A" in img.mode or "transparency" in img.info or fmt in ("webp", "apng", "avif")
            return ClipInfo(
                kind="animation", name=self.name, container=fmt, codec=fmt, width=img.width, height=img.height,
                declared_frames=n, expected_frames=n, duration=total_ms / 1000.0,
                fps=(n / (total_ms / 1000.0)) if total_ms else 0.0, has_alpha=has_alpha,
                pix_fmt=img.mode, loop=None if loop is None else int(loop))
        except (OSError, EOFError, ValueError, SyntaxError) as exc:
            raise CorruptImageError(f"the animation is damaged ({exc})", path=self.name) from None
        finally:
            img.close()

    def frames(self) -> Iterator[Frame]:
        """Whole RGBA frames at canvas size, with times and durations in seconds."""
        img = self._open()
        t = 0.0
        try:
            for i in range(self.info.declared_frames):
                try:
                    img.seek(i)
                    rgba = np.asarray(img.convert("RGBA"))
                except (OSError, EOFError, ValueError, SyntaxError) as exc:
                    text = str(exc).lower()
                    cls = TruncatedImageError if ("truncat" in text or isinstance(exc, EOFError)) else CorruptImageError
                    raise cls(f"frame {i + 1} of {self.info.declared_frames} cannot be decoded ({exc})",
                              path=self.name) from None
                ms = int(img.info.get("duration") or DEFAULT_FRAME_MS)
                a = rgba[:, :, 3]
                alpha = None if a.min() == 255 else a.astype(np.float32) * np.float32(1 / 255)
                yield Frame(i, np.ascontiguousarray(rgba[:, :, :3]), alpha, t, ms / 1000.0)
                t += ms / 1000.0
        finally:
            img.close()


def is_animation(path: str | Path) -> bool:
    """True when Pillow reads more than one frame from a GIF, PNG (APNG), WebP or AVIF file."""
    try:
        head = Path(path).read_bytes()[:64]
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})", path=str(path)) from None
    return animation_signature(head) is not None


def animation_signature(head: bytes) -> str | None:
    """'gif', 'apng', 'webp' or 'avif' when the first bytes say a (possibly) animated file of
    that kind; the frame count is still Pillow's to read."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "apng"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avis", b"avif", b"mif1", b"msf1"):
        return "avif"
    return None
