"""Identify an image by its first bytes, never by its name.

A mislabelled file (a PNG called .jpg) must still work, and an unknown or empty one must get a
specific error before any decoder sees it. Pillow's own ``Image.open`` also sniffs, but it tries
every plugin it knows (including formats we do not accept, such as EPS) and cannot tell HEIC
from AVIF inside an ISO-BMFF container, so the signature table lives here.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EmptyFileError, UnsupportedFormatError

#: formats alphacut reads
INPUT_FORMATS = ("png", "jpeg", "webp", "avif", "heif", "tiff", "bmp", "gif")

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"mif2", b"heif"}

#: bytes needed to decide; ISO-BMFF needs the whole ftyp box (brands list)
SNIFF_BYTES = 64


def sniff(head: bytes, *, name: str | Path | None = None) -> str:
    """Return the format of an image from its first bytes (``SNIFF_BYTES`` are enough)."""
    if not head:
        raise EmptyFileError("the file is empty (0 bytes)", path=name)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 14:
        return "bmp"
    if head[4:8] == b"ftyp":
        return _sniff_isobmff(head, name)
    raise UnsupportedFormatError(
        f"not a supported image (unknown signature {head[:8].hex(' ')}); "
        f"alphacut reads {', '.join(INPUT_FORMATS)}",
        path=name,
    )


def _sniff_isobmff(head: bytes, name: str | Path | None) -> str:
    """AVIF or HEIF from the ftyp box's major and compatible brands."""
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    brands = {major} | compatible
    if major in _AVIF_BRANDS or (brands & _AVIF_BRANDS and major not in _HEIF_BRANDS - {b"mif1", b"msf1"}):
        return "avif"
    if brands & _HEIF_BRANDS:
        return "heif"
    raise UnsupportedFormatError(
        f"an ISO media file (brand {major.decode('latin-1')!r}) that is not an AVIF or HEIF image",
        path=name,
    )


def sniff_file(path: str | Path) -> str:
    """Sniff a file on disk, reading only its first bytes."""
    with open(path, "rb") as fh:
        return sniff(fh.read(SNIFF_BYTES), name=path)
