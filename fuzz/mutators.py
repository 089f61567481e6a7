"""Structure-aware mutations of image files, for fuzzing ``sniff`` and ``decode``.

Random bit flips rarely get past a PNG CRC or a JPEG marker walk; these mutators know where the
length fields, dimension fields and nested boxes are, so the mutated files reach the code paths
that allocate memory or trust a declared size.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from typing import Callable, Iterator

Mutator = Callable[[bytes, random.Random], bytes]

#: values that break length/dimension arithmetic
INTERESTING_32 = [0, 1, 2, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE]
INTERESTING_16 = [0, 1, 0x7F, 0xFF, 0x7FFF, 0x8000, 0xFFFF]
HUGE_DIMS = [65535, 65500, 100_000, 1 << 20, 0x7FFFFFFF, 0xFFFFFFFF, 16384, 16383, 0]


def _put(data: bytes, offset: int, packed: bytes) -> bytes:
    if offset < 0 or offset + len(packed) > len(data):
        return data
    return data[:offset] + packed + data[offset + len(packed):]


# --- generic ------------------------------------------------------------------------------


def truncate(data: bytes, rng: random.Random) -> bytes:
    """Cut the file short: anywhere, near the header, or a few bytes before the end."""
    if len(data) < 2:
        return data
    where = rng.choice([rng.randrange(len(data)), rng.randrange(min(len(data), 256)), len(data) - rng.randint(1, min(64, len(data) - 1))])
    return data[:where]


def bit_flip(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buf:
            break
        # half the flips land in the first 512 bytes, where the headers are
        pos = rng.randrange(min(len(buf), 512)) if rng.random() < 0.5 else rng.randrange(len(buf))
        buf[pos] ^= 1 << rng.randrange(8)
    return bytes(buf)


def byte_set(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if buf:
            buf[rng.randrange(min(len(buf), 1024))] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x01])
    return bytes(buf)


def splice(data: bytes, rng: random.Random, other: bytes | None = None) -> bytes:
    """Another file (or this one) pasted inside this one: nested and concatenated images."""
    other = other if other is not None else data
    at = rng.randrange(len(data) + 1)
    return data[:at] + other[: rng.randint(0, len(other))] + data[at:]


# --- PNG ----------------------------------------------------------------------------------


def png_chunks(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    """(offset of the length field, type, length) for every chunk."""
    pos = 8
    while pos + 8 <= len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        yield pos, data[pos + 4:pos + 8], length
        pos += 12 + length


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png_fix_ihdr_crc(data: bytes) -> bytes:
    if len(data) >= 33 and data[12:16] == b"IHDR":
        return _put(data, 29, struct.pack(">I", zlib.crc32(data[12:29]) & 0xFFFFFFFF))
    return data


def png_wrong_length(data: bytes, rng: random.Random) -> bytes:
    chunks = list(png_chunks(data))
    if not chunks:
        return data
    pos, _, length = rng.choice(chunks)
    value = rng.choice(INTERESTING_32 + [length + 1, max(0, length - 1), length * 2])
    return _put(data, pos, struct.pack(">I", value & 0xFFFFFFFF))


def png_huge_dims(data: bytes, rng: random.Random) -> bytes:
    if data[12:16] != b"IHDR":
        return data
    w, h = rng.choice(HUGE_DIMS), rng.choice(HUGE_DIMS + [1, 16])
    out = _put(data, 16, struct.pack(">II", w & 0xFFFFFFFF, h & 0xFFFFFFFF))
    return png_fix_ihdr_crc(out) if rng.random() < 0.8 else out


def png_nested(data: bytes, rng: random.Random, other: bytes | None = None) -> bytes:
    """A whole file inside an ancillary chunk (iCCP, eXIf, zTXt, a private one) before IDAT."""
    chunks = list(png_chunks(data))
    if len(chunks) < 2:
        return data
    ctype = rng.choice([b"iCCP", b"eXIf", b"zTXt", b"iTXt", b"vpAg", b"acTL"])
    inner = other if other is not None else data
    if ctype == b"zTXt":
        inner = b"k\x00\x00" + zlib.compress(inner * rng.randint(1, 50))
    at = chunks[1][0]
    return data[:at] + png_chunk(ctype, inner) + data[at:]


# --- JPEG ---------------------------------------------------------------------------------


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset of the marker, marker byte, segment length) up to the first scan."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        yield pos, marker, length
        if marker == 0xDA:
            return
        pos += 2 + length


def jpeg_wrong_length(data: bytes, rng: random.Random) -> bytes:
    segs = list(jpeg_segments(data))
    if not segs:
        return data
    pos, _, length = rng.choice(segs)
    value = rng.choice(INTERESTING_16 + [length + 1, max(0, length - 1), 2, 3])
    return _put(data, pos + 2, struct.pack(">H", value & 0xFFFF))


def jpeg_huge_dims(data: bytes, rng: random.Random) -> bytes:
    for pos, marker, _ in jpeg_segments(data):
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = rng.choice(INTERESTING_16 + [65500]), rng.choice(INTERESTING_16 + [65500])
            return _put(data, pos + 5, struct.pack(">HH", h, w))
    return data


def jpeg_nested(data: bytes, rng: random.Random, other: bytes | None = None) -> bytes:
    """Another file in an APP segment (EXIF thumbnail, MPF, ICC) right after SOI."""
    inner = (other if other is not None else data)[:65000]
    app = rng.choice([b"\xff\xe1Exif\x00\x00", b"\xff\xe2MPF\x00", b"\xff\xe2ICC_PROFILE\x00\x01\x01", b"\xff\xed"])
    body = app[4:] + inner if len(app) > 2 else inner
    seg = app[:2] + struct.pack(">H", min(len(body) + 2, 0xFFFF)) + body
    return data[:2] + seg + data[2:]


# --- ISO-BMFF (HEIF, AVIF) ----------------------------------------------------------------

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"iprp", b"ipco", b"edts", b"grpl"}


def isobmff_boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> Iterator[tuple[int, bytes, int]]:
    """(offset of the size field, type, size) for boxes, descending into known containers."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end and depth < 8:
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        btype = data[pos + 4:pos + 8]
        yield pos, btype, size
        if size < 8:
            return
        if btype in _CONTAINERS:
            yield from isobmff_boxes(data, pos + 8, min(end, pos + size), depth + 1)
        elif btype == b"meta":
            yield from isobmff_boxes(data, pos + 12, min(end, pos + size), depth + 1)
        pos += size


def isobmff_wrong_size(data: bytes, rng: random.Random) -> bytes:
    boxes = list(isobmff_boxes(data))
    if not boxes:
        return data
    pos, _, size = rng.choice(boxes)
    value = rng.choice(INTERESTING_32 + [size + 1, max(0, size - 1), size + 8, 1])
    return _put(data, pos, struct.pack(">I", value & 0xFFFFFFFF))


def isobmff_huge_dims(data: bytes, rng: random.Random) -> bytes:
    """Patch every 'ispe' (image spatial extents) box."""
    pos = data.find(b"ispe")
    while pos != -1:
        w, h = rng.choice(HUGE_DIMS), rng.choice(HUGE_DIMS)
        data = _put(data, pos + 8, struct.pack(">II", w & 0xFFFFFFFF, h & 0xFFFFFFFF))
        pos = data.find(b"ispe", pos + 4)
    return data


def isobmff_nested(data: bytes, rng: random.Random, other: bytes | None = None) -> bytes:
    """Deeply nested containers, or another file inside a box, appended after ftyp."""
    boxes = list(isobmff_boxes(data))
    if not boxes:
        return data
    after_ftyp = boxes[0][0] + boxes[0][2] if boxes[0][1] == b"ftyp" else 0
    if rng.random() < 0.5:
        inner = b""
        for _ in range(rng.choice([10, 100, 1000])):
            inner = struct.pack(">I", len(inner) + 8) + rng.choice([b"moov", b"trak", b"iprp", b"ipco"]) + inner
    else:
        inner = other if other is not None else data
        inner = struct.pack(">I", len(inner) + 8) + rng.choice([b"mdat", b"meta", b"uuid"]) + inner
    return data[:after_ftyp] + inner + data[after_ftyp:]


# --- RIFF (WebP) --------------------------------------------------------------------------


def riff_chunks(data: bytes) -> Iterator[tuple[int, bytes, int]]:
    pos = 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield pos, data[pos:pos + 4], size
        pos += 8 + size + (size & 1)


def webp_wrong_length(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return _put(data, 4, struct.pack("<I", rng.choice(INTERESTING_32)))
    chunks = list(riff_chunks(data))
    if not chunks:
        return data
    pos, _, size = rng.choice(chunks)
    return _put(data, pos + 4, struct.pack("<I", rng.choice(INTERESTING_32 + [size + 1, size * 2]) & 0xFFFFFFFF))


def webp_huge_dims(data: bytes, rng: random.Random) -> bytes:
    for pos, fourcc, _ in riff_chunks(data):
        body = pos + 8
        if fourcc == b"VP8X":  # canvas width-1 / height-1, 24 bits each
            w, h = rng.randint(1, 1 << 24) - 1, rng.randint(1, 1 << 24) - 1
            data = _put(data, body + 4, w.to_bytes(3, "little") + h.to_bytes(3, "little"))
        elif fourcc == b"VP8L":  # 14 bits each after the 0x2f signature
            w, h = rng.choice([16383, 16000, rng.randrange(16384)]), rng.choice([16383, rng.randrange(16384)])
            bits = struct.unpack("<I", data[body + 1:body + 5])[0] if len(data) >= body + 5 else 0
            bits = (bits & ~0xFFFFFFF) | w | (h << 14)
            data = _put(data, body + 1, struct.pack("<I", bits & 0xFFFFFFFF))
        elif fourcc == b"VP8 ":  # key frame: 3-byte tag, 9d 01 2a, then 14-bit sizes
            data = _put(data, body + 6, struct.pack("<HH", rng.choice([0x3FFF, 0xFFFF, 0]), rng.choice([0x3FFF, 0xFFFF, 0])))
    return data


# --- GIF, BMP, TIFF -----------------------------------------------------------------------


def gif_huge_dims(data: bytes, rng: random.Random) -> bytes:
    w, h = rng.choice(INTERESTING_16), rng.choice(INTERESTING_16)
    if rng.random() < 0.5:
        return _put(data, 6, struct.pack("<HH", w, h))  # logical screen
    flags = data[10] if len(data) > 10 else 0
    desc = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    while desc < len(data) and data[desc] == 0x21:  # skip extensions to the image descriptor
        pos = desc + 2
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        desc = pos + 1
    if desc < len(data) and data[desc] == 0x2C:
        return _put(data, desc + 5, struct.pack("<HH", w, h))
    return data


def bmp_huge_dims(data: bytes, rng: random.Random) -> bytes:
    w = rng.choice([0x7FFFFFFF, -0x80000000, 65535, 1 << 20, 0, -1])
    h = rng.choice([0x7FFFFFFF, -0x80000000, 65535, 1 << 20, 0, -1, -(1 << 20)])
    out = _put(data, 18, struct.pack("<ii", w, h))
    if rng.random() < 0.3:
        out = _put(out, 2, struct.pack("<I", rng.choice(INTERESTING_32)))  # declared file size
    return out


def tiff_entries(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(offset of the entry, tag, type, count) for the first IFD."""
    if len(data) < 8:
        return
    e = "<" if data[:2] == b"II" else ">"
    if data[2:4] not in (b"*\x00", b"\x00*"):
        return
    ifd = struct.unpack(e + "I", data[4:8])[0]
    if ifd + 2 > len(data):
        return
    n = struct.unpack(e + "H", data[ifd:ifd + 2])[0]
    for i in range(min(n, 200)):
        pos = ifd + 2 + 12 * i
        if pos + 12 > len(data):
            return
        tag, typ, count = struct.unpack(e + "HHI", data[pos:pos + 8])
        yield pos, tag, typ, count


def tiff_huge_dims(data: bytes, rng: random.Random) -> bytes:
    e = "<" if data[:2] == b"II" else ">"
    for pos, tag, typ, _ in list(tiff_entries(data)):
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = rng.choice(HUGE_DIMS)
            packed = struct.pack(e + "H", value & 0xFFFF) + b"\x00\x00" if typ == 3 else struct.pack(e + "I", value & 0xFFFFFFFF)
            data = _put(data, pos + 8, packed)
    return data


def tiff_wrong_length(data: bytes, rng: random.Random) -> bytes:
    """Counts and offsets of IFD entries (strip offsets/byte counts, bits per sample), and IFD loops."""
    e = "<" if data[:2] == b"II" else ">"
    entries = list(tiff_entries(data))
    if not entries:
        return data
    if rng.random() < 0.2:  # the next-IFD pointer points back at the first IFD: a loop
        ifd = struct.unpack(e + "I", data[4:8])[0]
        end = entries[-1][0] + 12
        return _put(data, end, struct.pack(e + "I", ifd))
    pos, _, _, _ = rng.choice(entries)
    field = rng.choice([4, 8])
    return _put(data, pos + field, struct.pack(e + "I", rng.choice(INTERESTING_32)))


# --- dispatch -----------------------------------------------------------------------------


def kind(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"\xff\xd8"):
        return "jpeg"
    if data[4:8] == b"ftyp":
        return "isobmff"
    if data[:4] == b"RIFF":
        return "webp"
    if data[:3] == b"GIF":
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:2] in (b"II", b"MM"):
        return "tiff"
    return "other"


STRUCTURED: dict[str, list[Mutator]] = {
    "png": [png_wrong_length, png_huge_dims, png_nested],
    "jpeg": [jpeg_wrong_length, jpeg_huge_dims, jpeg_nested],
    "isobmff": [isobmff_wrong_size, isobmff_huge_dims, isobmff_nested],
    "webp": [webp_wrong_length, webp_huge_dims],
    "gif": [gif_huge_dims],
    "bmp": [bmp_huge_dims],
    "tiff": [tiff_huge_dims, tiff_wrong_length],
    "other": [],
}
GENERIC: list[Mutator] = [truncate, bit_flip, byte_set, splice]


def mutate(data: bytes, rng: random.Random, seeds: list[bytes] | None = None, rounds: int | None = None) -> bytes:
    """Apply 1-3 mutations, structure-aware ones two times out of three."""
    for _ in range(rounds or rng.randint(1, 3)):
        structured = STRUCTURED[kind(data)]
        pool = structured if structured and rng.random() < 0.67 else GENERIC
        fn = rng.choice(pool)
        other = rng.choice(seeds) if seeds and fn in (splice, png_nested, jpeg_nested, isobmff_nested) else None
        data = fn(data, rng, other) if other is not None else fn(data, rng)  # type: ignore[call-arg]
    return data


def generated_seeds() -> list[bytes]:
    """Small files for the formats the corpus lacks (TIFF, BMP, GIF, plain PNG), made with Pillow."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 255, (12, 16, 4), dtype=np.uint8))
    out = []
    for img, fmt, params in [
        (rgb, "PNG", {}), (rgba, "PNG", {}), (rgb, "PNG", {"optimize": True}), (rgb.convert("P"), "PNG", {"transparency": 0}),
        (rgb, "TIFF", {}), (rgba, "TIFF", {"compression": "tiff_deflate"}), (rgb, "TIFF", {"compression": "packbits"}),
        (Image.fromarray(rng.integers(0, 65535, (12, 16), dtype=np.uint16)), "TIFF", {}),
        (rgb, "BMP", {}), (rgba, "BMP", {}), (rgb.convert("P"), "BMP", {}),
        (rgb, "GIF", {}), (rgba, "GIF", {}),
        (rgb, "JPEG", {}), (rgb, "JPEG", {"progressive": True}), (rgb, "WEBP", {"lossless": True}), (rgba, "WEBP", {}),
    ]:
        buf = io.BytesIO()
        img.save(buf, fmt, **params)
        out.append(buf.getvalue())
    return out
