"""A fast PNG writer: NumPy row filtering plus ISA-L deflate, split across threads.

Why by hand: Pillow's and OpenCV's PNG writers run single-threaded zlib with adaptive (Paeth)
filtering, and on a 12-megapixel cutout they take about as long as the model itself. No
maintained Python library writes PNG with a fast deflate. This writer uses the "Up" filter
(one vectorised subtraction, which compresses photos as well as adaptive filtering at low
levels and keeps decoding cheap), ISA-L's deflate (``isal``, several times faster than zlib at
the same size; plain zlib when it is not installed), and compresses horizontal strips in
parallel threads: each strip ends with a full flush, so the concatenation is one valid zlib
stream (the technique pigz uses). Metadata chunks (iCCP, eXIf) go before the pixels.

The output is a standard PNG; ``verify`` decodes it again with Pillow or OpenCV.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # ISA-L: the same deflate format, much faster
    from isal import isal_zlib as _deflate

    _LEVEL = 1  # ISA-L's level 1 ≈ zlib's level 3-6 in size, at several times the speed
except ImportError:  # pragma: no cover - isal is a dependency; zlib keeps the writer working
    _deflate = zlib  # type: ignore[assignment]
    _LEVEL = 1

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: rows per compressed strip; small enough to spread over cores, large enough to compress well
STRIP_BYTES = 4 << 20


def chunk(kind: bytes, data: bytes) -> bytes:
    """length + type + data + CRC32 (PNG spec, section 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _filtered_rows(pixels: np.ndarray) -> np.ndarray:
    """Each row prefixed by filter type 2 ("Up": the byte minus the byte above)."""
    h = pixels.shape[0]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2", copy=False)
    flat = np.ascontiguousarray(pixels).view(np.uint8).reshape(h, -1)
    out = np.empty((h, flat.shape[1] + 1), np.uint8)
    out[:, 0] = 2
    out[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=out[1:, 1:])  # wraps modulo 256, as PNG requires
    return out


def _compress_strip(data: memoryview, last: bool) -> bytes:
    comp = _deflate.compressobj(_LEVEL, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


def _zlib_stream(raw: np.ndarray, threads: int) -> bytes:
    buf = memoryview(raw.reshape(-1))
    rows_per_strip = max(1, STRIP_BYTES // raw.shape[1])
    bounds = [(i * raw.shape[1], min(raw.shape[0], i + rows_per_strip) * raw.shape[1])
              for i in range(0, raw.shape[0], rows_per_strip)]
    parts = [(buf[a:b], i == len(bounds) - 1) for i, (a, b) in enumerate(bounds)]
    if threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:  # deflate releases the GIL
            body = b"".join(pool.map(lambda p: _compress_strip(*p), parts))
    else:
        body = b"".join(_compress_strip(*p) for p in parts)
    return b"\x78\x01" + body + struct.pack(">I", zlib.adler32(buf) & 0xFFFFFFFF)


def write_png(
    pixels: np.ndarray,
    *,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    threads: int | None = None,
) -> bytes:
    """Encode (H,W), (H,W,3) or (H,W,4) uint8/uint16 pixels as PNG bytes."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG pixels must be uint8 or uint16, not {pixels.dtype}")
    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    depth = 16 if pixels.dtype == np.uint16 else 8
    out = [SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 0))]
    if icc_profile and channels >= 3:
        out.append(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        out.append(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif))
    stream = _zlib_stream(_filtered_rows(pixels), threads or min(4, os.cpu_count() or 1))
    for start in range(0, len(stream), 1 << 24):  # IDAT chunks of at most 16 MiB
        out.append(chunk(b"IDAT", stream[start : start + (1 << 24)]))
    out.append(chunk(b"IEND", b""))
    return b"".join(out)
