"""Encoders for the final pixels: straight (never premultiplied) alpha in every format.

The matte stays float32 until here. ``quantize`` (and ``StraightRGBA``, which does the same
rounding strip by strip) is the one place it becomes integers: ``round(alpha * 255)`` for
8-bit, ``round(alpha * 65535)`` for 16-bit. Which encoder writes which format is declared in
the format registry (``formats``, ``stills``); ``encode_pixels`` looks it up there.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import UsageError
from ..parallel import map_pieces
from .formats import EncodeSettings, by_name
from .png import write_png

__all__ = ["EncodeSettings", "StraightRGBA", "quantize", "convert_depth", "straight_rgba", "pixel_rows",
           "encode_pixels", "encode_png", "encode_webp", "encode_avif", "encode_tiff"]


def quantize(values: np.ndarray, bit_depth: int, *, strip_rows: int = 512) -> np.ndarray:
    """Float 0..1 → uint8/uint16 by rounding (never truncation, never thresholding).

    Row strips keep the float temporary small (a 200 MP matte would need another 800 MB).
    """
    top = np.float32(65535.0 if bit_depth == 16 else 255.0)
    out = np.empty(values.shape, np.uint16 if bit_depth == 16 else np.uint8)
    for y0 in range(0, values.shape[0], strip_rows):
        scaled = values[y0 : y0 + strip_rows] * top
        np.clip(scaled, 0.0, top, out=scaled)
        np.rint(scaled, out=scaled)
        out[y0 : y0 + strip_rows] = scaled
    return out


def convert_depth(rgb: np.ndarray, bit_depth: int) -> np.ndarray:
    """Colour pixels at the requested depth (16→8 rounds; 8→16 scales by 257, exact)."""
    if bit_depth == 16:
        return rgb if rgb.dtype == np.uint16 else rgb.astype(np.uint16) * 257
    if rgb.dtype == np.uint8:
        return rgb
    return ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)


def straight_rgba(foreground: np.ndarray, alpha: np.ndarray, bit_depth: int) -> np.ndarray:
    """Stack colour and quantised alpha: colour is **not** multiplied by alpha."""
    return StraightRGBA(foreground, alpha, bit_depth).materialize()


class StraightRGBA:
    """Straight-alpha RGBA pixels made strip by strip from colour and the float matte.

    The PNG writer and the verifier read it a strip at a time, so a 200-megapixel cutout is
    never held as a whole RGBA array (800 MB) next to the colour and the matte it comes from.
    Other encoders call ``materialize``.
    """

    def __init__(self, foreground: np.ndarray, alpha: np.ndarray, bit_depth: int,
                 *, clear_transparent: bool = False) -> None:
        self.foreground = foreground
        self.alpha = alpha
        self.bit_depth = bit_depth
        self.clear_transparent = clear_transparent
        self.dtype = np.dtype(np.uint16 if bit_depth == 16 else np.uint8)
        self.shape = (alpha.shape[0], alpha.shape[1], 4)
        self.ndim = 3

    def rows(self, y0: int, y1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows y0..y1 as (rows, W, 4), written into ``out`` (C-contiguous) when given."""
        rgb = convert_depth(self.foreground[y0:y1], self.bit_depth)
        if out is None:
            out = np.empty((rgb.shape[0], rgb.shape[1], 4), self.dtype)
        if self.bit_depth == 8 and self.alpha.dtype == np.float32:
            # OpenCV rounds and saturates (as ``quantize`` does) and interleaves the channels
            # in one pass each: 4x faster than NumPy's strided channel copies
            import cv2

            a8 = cv2.convertScaleAbs(cv2.max(self.alpha[y0:y1], 0.0), alpha=255.0)  # |x|: clip first
            cv2.mixChannels([np.ascontiguousarray(rgb), a8], [out], [0, 0, 1, 1, 2, 2, 3, 3])
        else:
            out[:, :, :3] = rgb
            out[:, :, 3] = quantize(self.alpha[y0:y1], self.bit_depth)
        if self.clear_transparent:
            out[out[:, :, 3] == 0, :3] = 0
        return out

    def materialize(self, strip_rows: int = 256) -> np.ndarray:
        """The whole RGBA array, built strip by strip in place, strips on every core."""
        h = self.shape[0]
        out = np.empty(self.shape, self.dtype)
        map_pieces(lambda s: self.rows(s[0], s[1], out[s[0]:s[1]]),
                   [(y0, min(h, y0 + strip_rows)) for y0 in range(0, h, strip_rows)])
        return out


def pixel_rows(pixels: np.ndarray | StraightRGBA, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1 of either an array or a strip source."""
    return pixels.rows(y0, y1) if isinstance(pixels, StraightRGBA) else pixels[y0:y1]


def encode_pixels(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    """Encode (H,W), (H,W,3) or (H,W,4) uint8/uint16 pixels with ``settings.format``'s encoder
    (from the format registry)."""
    encoder = by_name(settings.format).encoder
    assert encoder is not None  # EncodeSettings accepts output formats only
    return encoder(pixels, settings)


# --- the still encoders (declared with their formats in ``stills.py``) ------------------------


def encode_png(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    """The fast PNG writer; it reads a strip source a strip at a time."""
    return write_png(pixels, icc_profile=settings.icc_profile, exif=settings.exif)


def encode_webp(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    img, extra = _pillow_image(pixels, settings)
    buf = io.BytesIO()
    if settings.lossless:
        # exact=True keeps RGB under fully transparent pixels (libwebp would otherwise zero it)
        img.save(buf, "WEBP", lossless=True, exact=True, quality=100, method=4, **extra)
    else:
        img.save(buf, "WEBP", quality=settings.quality, exact=True, alpha_quality=100, method=4, **extra)
    return buf.getvalue()


def encode_avif(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    img, extra = _pillow_image(pixels, settings)
    buf = io.BytesIO()
    quality = 100 if settings.lossless else settings.quality
    img.save(buf, "AVIF", quality=quality, subsampling="4:4:4", speed=8, **extra)
    return buf.getvalue()


def encode_tiff(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    """8-bit TIFF through Pillow, 16-bit through OpenCV (Pillow cannot write 16-bit RGB/RGBA)."""
    pixels = pixels.materialize() if isinstance(pixels, StraightRGBA) else pixels
    if pixels.dtype == np.uint16:
        return _encode_tiff16(pixels)
    img, extra = _pillow_image(pixels, settings)
    # libtiff rejects Pillow's EXIF IFD offsets in classic TIFF; the ICC profile is kept
    extra.pop("exif", None)
    buf = io.BytesIO()
    img.save(buf, "TIFF", compression="tiff_adobe_deflate", **extra)
    return buf.getvalue()


def _pillow_image(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> tuple[Image.Image, dict[str, object]]:
    """8-bit pixels as a Pillow image, with the metadata Pillow's savers take."""
    if isinstance(pixels, StraightRGBA):
        pixels = pixels.materialize()
    if pixels.dtype != np.uint8:
        raise UsageError(f"{settings.format.upper()} output is 8-bit only")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.ndim if pixels.ndim == 2 else pixels.shape[2]]
    img = Image.fromarray(pixels, mode)
    extra: dict[str, object] = {}
    if settings.icc_profile and mode != "L":
        extra["icc_profile"] = settings.icc_profile
    if settings.exif:
        extra["exif"] = settings.exif
    return img, extra


def _encode_tiff16(pixels: np.ndarray) -> bytes:
    """16-bit TIFF through OpenCV (Pillow cannot write 16-bit RGB/RGBA)."""
    import cv2

    if pixels.ndim == 3:
        order = [2, 1, 0, 3][: pixels.shape[2]]
        pixels = np.ascontiguousarray(pixels[:, :, order])
    ok, data = cv2.imencode(".tif", pixels, [cv2.IMWRITE_TIFF_COMPRESSION, 8])
    if not ok:
        raise RuntimeError("OpenCV could not encode the 16-bit TIFF")
    return data.tobytes()
