"""Is this file a moving picture? By signature first, then (for formats that are stills as
often as animations: GIF, PNG, WebP, AVIF) by the frame count Pillow reads."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .animation_in import animation_signature

#: ISO-BMFF brands that are still images (HEIF/AVIF stills), not video
_STILL_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis", b"avio"}


def video_signature(head: bytes) -> str | None:
    """The container a file's first bytes announce: 'mp4' (MP4/MOV/3GP), 'matroska'
    (MKV/WebM), 'avi', 'mpegts', 'mpegps', 'flv', 'ogg', or None."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return None if head[8:12] in _STILL_BRANDS else "mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mp4"  # QuickTime files without an ftyp box
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "mpegts"
    if len(head) > 196 and head[4:5] == b"\x47" and head[196:197] == b"\x47":
        return "mpegts"  # M2TS (AVCHD camera files): 192-byte packets, a 4-byte timestamp first
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpegps"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    return None


def clip_kind(path: str | Path) -> Literal["video", "animation"] | None:
    """'video', 'animation' (more than one frame), or None for a still or anything else."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if video_signature(head):
        return "video"
    if animation_signature(head):
        return "animation" if _frames(path) > 1 else None
    return None


def _frames(path: str | Path) -> int:
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None  # the limits are checked by the readers, with clear errors
            with Image.open(path) as img:
                if img.format == "PNG":  # APNG declares its frames in acTL: no need to walk them
                    return int(getattr(img, "n_frames", 1))
                return 2 if getattr(img, "is_animated", False) else 1
    except Exception:  # noqa: BLE001 - not readable as an animation: the still path reports it
        return 1
