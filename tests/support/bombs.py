"""Small files that declare (or really expand to) enormous canvases, one per container format.

Each is a few hundred bytes to ~100 KB; decoded, they would need gigabytes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png_bomb(side: int) -> bytes:
    """A real 1-bit PNG of ``side`` x ``side`` zeros: every row is there, compressed ~1000:1."""
    row = b"\x00" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = [comp.compress(row * 1024) for _ in range(side // 1024)]
    parts.append(comp.compress(row * (side % 1024)))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")


def gif_screen_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A 1x1 frame on a logical screen of width x height."""
    small = io.BytesIO()
    Image.new("P", (1, 1)).save(small, "GIF")
    data = bytearray(small.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def gif_frame_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A 10x10 screen whose first frame declares width x height (Pillow grows the canvas)."""
    small = io.BytesIO()
    Image.new("P", (10, 10)).save(small, "GIF")
    data = bytearray(small.getvalue())
    pos = data.index(b"\x2c", 13)  # image descriptor
    data[pos + 5:pos + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def webp_canvas_bomb(side: int = 16384) -> bytes:
    """An animated WebP of two 4x4 frames whose VP8X canvas is ``side`` x ``side`` (valid: frames may be smaller)."""
    frames = [Image.fromarray(np.full((4, 4, 3), i * 60, np.uint8)) for i in range(2)]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = bytearray(buf.getvalue())
    pos = data.index(b"VP8X")
    data[pos + 12:pos + 18] = (side - 1).to_bytes(3, "little") + (side - 1).to_bytes(3, "little")
    return bytes(data)


def jpeg_sof_bomb(width: int = 65500, height: int = 65500) -> bytes:
    small = io.BytesIO()
    Image.new("RGB", (8, 8)).save(small, "JPEG")
    data = bytearray(small.getvalue())
    pos = data.index(b"\xff\xc0")
    data[pos + 5:pos + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    small = io.BytesIO()
    Image.new("RGB", (8, 8)).save(small, "TIFF")
    img = Image.open(io.BytesIO(small.getvalue()))
    img.tag_v2[256], img.tag_v2[257] = width, height
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "TIFF")
    data = bytearray(out.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        pos = ifd + 2 + 12 * i
        tag, typ = struct.unpack("<HH", data[pos:pos + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            data[pos + 2:pos + 4] = struct.pack("<H", 4)  # LONG
            data[pos + 8:pos + 12] = struct.pack("<I", value)
    return bytes(data)


def bmp_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    small = io.BytesIO()
    Image.new("RGB", (4, 4)).save(small, "BMP")
    data = bytearray(small.getvalue())
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def all_bombs() -> dict[str, bytes]:
    """name -> bytes; every one declares more than the default 260 MP limit."""
    return {
        "png-1bit-20000x20000-real": png_bomb(20_000),
        "gif-screen-65535x65535": gif_screen_bomb(),
        "gif-frame-60000x60000": gif_frame_bomb(),
        "webp-anim-canvas-16384x16384": webp_canvas_bomb(),
        "jpeg-sof-65500x65500": jpeg_sof_bomb(),
        "tiff-100000x100000": tiff_bomb(),
        "bmp-100000x100000": bmp_bomb(),
    }


def avif_ispe_bomb(side: int = 16000) -> bytes:
    """A 64x64 AVIF whose 'ispe' boxes declare side x side: libavif then decodes a side x side canvas."""
    small = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(small, "AVIF")
    data = bytearray(small.getvalue())
    pos = data.find(b"ispe")
    while pos != -1:
        data[pos + 8:pos + 16] = struct.pack(">II", side, side)
        pos = data.find(b"ispe", pos + 4)
    return bytes(data)
