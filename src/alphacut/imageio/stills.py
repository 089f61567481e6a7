"""The still-image formats alphacut ships, each declared once (see ``formats``).

Reads: PNG, JPEG, WebP, AVIF, HEIF, TIFF, BMP, GIF (first frame). Writes: PNG 8/16, WebP,
AVIF, TIFF 8/16, every file verified. Registration order is sniffing order; the signature
tests do not overlap, so the order only matters to plugins whose tests might.
"""

from __future__ import annotations

import numpy as np

from .decode import decode_still
from .encode import encode_avif, encode_png, encode_tiff, encode_webp
from .formats import Check, EncodeSettings, Format, iso_brands, register
from .verify import read_back_cv2, read_back_pillow

# --- signatures ------------------------------------------------------------------------------

_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
                          b"mif1", b"msf1", b"mif2", b"heif"})
#: brands that say "HEIF still/sequence" and nothing about AVIF: an AVIF may list them as major
_HEIF_GENERIC = frozenset({b"mif1", b"msf1"})


def _is_avif(head: bytes) -> bool:
    iso = iso_brands(head)
    if iso is None:
        return False
    major, brands = iso
    return major in _AVIF_BRANDS or bool(brands & _AVIF_BRANDS and major not in _HEIF_BRANDS - _HEIF_GENERIC)


def _is_heif(head: bytes) -> bool:
    iso = iso_brands(head)
    return iso is not None and bool(iso[1] & _HEIF_BRANDS) and not _is_avif(head)


def _webp_declared_size(data: bytes) -> tuple[int, int] | None:
    """The canvas a WebP declares, read from its first chunk (VP8X, VP8L or VP8)."""
    if len(data) < 30:
        return None
    fourcc = data[12:16]
    if fourcc == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if fourcc == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if fourcc == b"VP8 ":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


# --- verification tolerances -----------------------------------------------------------------


def _scale(settings: EncodeSettings) -> float:
    return 257.0 if settings.bit_depth == 16 else 1.0


def _exact(settings: EncodeSettings) -> tuple[float, float]:
    """Lossless: the colour comes back as written (1 level of slack for rounding)."""
    return 1.0 * _scale(settings), 0.5 * _scale(settings)


def _lossy(settings: EncodeSettings) -> tuple[float, float]:
    """Lossy: noise and texture cost a few levels, premultiplication costs tens."""
    return 255.0 * _scale(settings), (6.0 + (100 - settings.quality) / 4.0) * _scale(settings)


def _webp_tolerance(settings: EncodeSettings) -> tuple[float, float]:
    return _exact(settings) if settings.lossless else _lossy(settings)


def _avif_tolerance(settings: EncodeSettings) -> tuple[float, float]:
    if settings.lossless:
        return 4.0 * _scale(settings), 1.0 * _scale(settings)  # the 4:4:4 YUV round trip
    return _lossy(settings)


def _tiff_read_back(data: bytes, settings: EncodeSettings) -> tuple[np.ndarray, bool]:
    # OpenCV reads Pillow's 8-bit RGBA TIFF (unassociated alpha) as associated; Pillow reads it right,
    # but cannot read 16-bit RGB(A): those go through libtiff in OpenCV
    return (read_back_cv2 if settings.bit_depth == 16 else read_back_pillow)(data, settings)


# --- the declarations ------------------------------------------------------------------------

PNG = register(Format(
    "png", "still", lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"), (".png",), "image/png",
    bit_depths=(8, 16), decoder=decode_still, encoder=encode_png,
    check=Check(read_back_cv2, _exact)))

JPEG = register(Format(
    "jpeg", "still", lambda h: h.startswith(b"\xff\xd8\xff"), (".jpg", ".jpeg", ".jpe", ".jfif"), "image/jpeg",
    aliases=("jpg",), alpha=False, decoder=decode_still))

WEBP = register(Format(
    "webp", "still", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", (".webp",), "image/webp",
    bit_depths=(8,), decoder=decode_still, encoder=encode_webp,
    check=Check(read_back_pillow, _webp_tolerance), declared_size=_webp_declared_size))

AVIF = register(Format(
    "avif", "still", _is_avif, (".avif",), "image/avif",
    bit_depths=(8,), decoder=decode_still, encoder=encode_avif,
    check=Check(read_back_pillow, _avif_tolerance)))

HEIF = register(Format(
    "heif", "still", _is_heif, (".heic", ".heif", ".hif"), "image/heif",
    aliases=("heic",), decoder=decode_still))

TIFF = register(Format(
    "tiff", "still", lambda h: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), (".tif", ".tiff"),
    "image/tiff", aliases=("tif",), bit_depths=(8, 16), decoder=decode_still, encoder=encode_tiff,
    check=Check(_tiff_read_back, _exact)))

BMP = register(Format(
    "bmp", "still", lambda h: h[:2] == b"BM" and len(h) >= 14, (".bmp", ".dib"), "image/bmp",
    decoder=decode_still))

GIF = register(Format(
    "gif", "still", lambda h: h[:6] in (b"GIF87a", b"GIF89a"), (".gif",), "image/gif",
    decoder=decode_still))
