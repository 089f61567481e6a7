"""Turn image bytes into an upright ``Picture``: pixels, source alpha, ICC profile and EXIF.

Pillow (with pillow-heif for HEIC/HEIF) does the decoding. OpenCV decodes 16-bit PNG and TIFF,
because Pillow folds 48/64-bit RGB(A) down to 8 bits and we promise to keep 16-bit precision.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from ..errors import (
    CorruptImageError,
    ImageTooLargeError,
    InputError,
    InputNotFoundError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from .formats import SNIFF_BYTES, Format, sniff

try:  # pillow-heif registers a HEIF opener with Pillow; without it HEIC input is refused.
    import pillow_heif

    pillow_heif.register_heif_opener()
    HAVE_HEIF = True
except ImportError:  # pragma: no cover - pillow-heif is a hard dependency
    HAVE_HEIF = False

#: default refusal limit for decompression bombs (pixels); the 200 MP phone photos must pass
DEFAULT_MAX_PIXELS = 260_000_000

_EXIF_ORIENTATION = 0x0112

# We do our own pixel-limit check (with a clear error) before decoding.
Image.MAX_IMAGE_PIXELS = None


@dataclass
class Picture:
    """Decoded, upright pixels and the metadata worth keeping for the output.

    ``rgb`` is (H, W, 3) uint8 or uint16; ``alpha`` is the source's own transparency as float32
    0..1, or None when the source is opaque.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str = "png"
    name: str = "<image>"
    info: dict[str, object] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8


def read_input(src: str | Path | bytes, *, name: str | None = None) -> tuple[bytes, str]:
    """Bytes and a display name for a path or bytes, with clear errors for missing files."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), name or "<bytes>"
    path = Path(src)
    try:
        return path.read_bytes(), name or str(path)
    except FileNotFoundError:
        raise InputNotFoundError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a folder, not an image file", path=path) from None
    except PermissionError:
        raise InputError("permission denied", path=path) from None


def decode(data: bytes, *, name: str = "<image>", max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``data`` into an upright Picture, or raise an InputError that names ``name``.

    The format comes from the bytes' signature (``formats.sniff``), the decoder from the
    format's registration (``decode_still`` for every still format alphacut ships)."""
    fmt = sniff(data[:SNIFF_BYTES], name=name)
    if fmt.decoder is None:
        raise UnsupportedFormatError(
            f"a {fmt.name.upper()} file holds a {fmt.kind}, not a single image to decode", path=name)
    return fmt.decoder(data, fmt, name=name, max_pixels=max_pixels)


def decode_still(data: bytes, format: Format, *, name: str, max_pixels: int) -> Picture:
    """The still formats' decoder: Pillow (pillow-heif for HEIF, OpenCV for 16-bit PNG/TIFF)."""
    fmt = format.name
    if format.declared_size is not None:
        declared = format.declared_size(data)
        if declared:
            _check_pixels(declared, name, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Corrupt EXIF data": EXIF is optional
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_pixels(img.size, name, max_pixels)
            _check_expansion(img.size, len(data), name)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)  # first frame of animations and multi-page files
            picture = _from_pillow(img, data, fmt, name)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"refused as a decompression bomb: {exc}", path=name) from None
    except Image.UnidentifiedImageError:
        # Pillow names the BytesIO object here, which tells a user nothing: say what we know.
        raise CorruptImageError(
            f"the file has the {fmt.upper()} signature but its contents are corrupt or unreadable", path=name
        ) from None
    except OSError as exc:
        text = str(exc)
        if "truncated" in text.lower() or "end of file" in text.lower() or "premature" in text.lower():
            raise TruncatedImageError(f"the {fmt.upper()} file is truncated ({text})", path=name) from None
        raise CorruptImageError(f"the {fmt.upper()} file is corrupt or unreadable ({text})", path=name) from None
    except (ValueError, SyntaxError, EOFError, RuntimeError, IndexError, KeyError, TypeError,
            ArithmeticError, struct.error) as exc:  # Pillow plugins' arithmetic on hostile headers
        raise CorruptImageError(f"the {fmt.upper()} file is corrupt or unreadable ({exc})", path=name) from None
    except MemoryError:
        raise ImageTooLargeError("not enough memory to decode this image", path=name) from None
    return picture


def _check_pixels(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise CorruptImageError(f"the image declares an empty size {w}x{h}", path=name)
    if w * h > max_pixels:
        raise ImageTooLargeError(
            f"{w}x{h} is {_megapixels(w * h)}, over the limit of {_megapixels(max_pixels)} "
            "(raise the pixel limit, max_pixels, if this is intended)",
            path=name,
        )


#: above this many pixels, a file must hold at least one byte per BOMB_PIXELS_PER_BYTE pixels
BOMB_MIN_PIXELS = 50_000_000
#: real photos sit below ~100 pixels per byte (the 200 MP HEIC: 83); a blank PNG reaches ~350
BOMB_PIXELS_PER_BYTE = 2_000


def _check_expansion(size: tuple[int, int], nbytes: int, name: str) -> None:
    """Refuse a tiny file that declares a huge canvas, even under the pixel limit.

    Fuzzing found a 6 KB AVIF whose 'ispe' box says 16000x16000: under the default limit, it
    decoded to a 768 MB array (and the pipeline would need several GB more). No real image of
    50+ megapixels fits in 1 byte per 2,000 pixels, so such a file is a decompression bomb.
    """
    pixels = size[0] * size[1]
    if pixels > BOMB_MIN_PIXELS and pixels > nbytes * BOMB_PIXELS_PER_BYTE:
        raise ImageTooLargeError(
            f"{size[0]}x{size[1]} ({_megapixels(pixels)}) from a file of only {nbytes:,} bytes: "
            "refused as a decompression bomb", path=name)


def _megapixels(pixels: int) -> str:
    """'268 megapixels', or exact pixels for small limits (a limit of 0.001 MP reads as '0')."""
    return f"{pixels / 1e6:.0f} megapixels" if pixels >= 10_000_000 else f"{pixels:,} pixels"


def _from_pillow(img: Image.Image, data: bytes, fmt: str, name: str) -> Picture:
    sixteen = fmt in ("png", "tiff") and _is_16bit(img, data, fmt)
    if fmt != "heif" and not sixteen:
        # Pixels first: reading a PNG's EXIF loads the image, and our EXIF reading forgives
        # errors (EXIF is optional) — after a load that failed there, a second load() returns
        # the half-filled (black) canvas without complaint, so a PNG with broken pixel data
        # would come out as a black cutout instead of an error.
        img.load()
    icc = img.info.get("icc_profile") or None
    exif = _exif_without_orientation(img)
    orientation = _orientation(img)

    if sixteen:
        safe = _png_for_cv2(data, name) if fmt == "png" else _tiff_checked_for_cv2(img, data, name)
        rgb, alpha = _decode_16bit_cv2(safe, name)
        rgb, alpha = _orient_arrays(rgb, alpha, orientation)
        return Picture(rgb, alpha, icc, exif, fmt, name)

    if fmt == "heif":
        # libheif has already applied the container's rotation and mirroring
        rgb, alpha, depth = _decode_heif(data)
        return Picture(rgb, alpha, icc, exif, fmt, name, {"bit_depth": depth})

    img.load()
    if img.mode == "CMYK":
        img, icc = _cmyk_to_srgb(img, icc)
    # upright after the copy out of Pillow (OpenCV's rotation, not Pillow's transpose and then a
    # copy: 0.03 instead of 0.04 CPU s for a 12 MP phone photo, the same pixels)
    rgb, alpha = _orient_arrays(*_pillow_to_arrays(img), orientation)
    return Picture(rgb, alpha, icc, exif, fmt, name)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop the decode
        return 1


def _exif_without_orientation(img: Image.Image) -> bytes | None:
    """EXIF to carry into the output, with orientation reset (pixels are already upright)."""
    try:
        exif = img.getexif()
        if not exif:
            return None
        copy = Image.Exif()  # a copy: the image's own Exif must keep its orientation for exif_transpose
        copy.load(exif.tobytes())
        copy.pop(_EXIF_ORIENTATION, None)
        return copy.tobytes()
    except Exception:  # noqa: BLE001 - unreadable EXIF is dropped, never fatal
        return None


def _pillow_to_arrays(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = np.asarray(img)
        if mode == "I":
            gray = np.clip(gray, 0, 65535)
        gray16 = gray.astype(np.uint16)
        return np.repeat(gray16[:, :, None], 3, axis=2), None
    if mode == "F":
        gray = np.clip(np.asarray(img), 0.0, 1.0) if np.asarray(img).max() <= 1.0 else np.asarray(img) / 255.0
        gray16 = np.round(np.clip(gray, 0, 1) * 65535).astype(np.uint16)
        return np.repeat(gray16[:, :, None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    target = "RGBA" if has_alpha else "RGB"
    if mode != target:  # convert() copies even when the mode already matches
        img = img.convert(target)
    arr = np.asarray(img)  # one copy out of Pillow's buffer
    if not has_alpha:
        return arr, None
    alpha = arr[:, :, 3]
    rgb = np.ascontiguousarray(arr[:, :, :3])
    if alpha.min() == 255:
        return rgb, None
    return rgb, alpha.astype(np.float32) / 255.0


def _is_16bit(img: Image.Image, data: bytes, fmt: str) -> bool:
    if fmt == "png":
        return len(data) > 24 and data[24] == 16
    bits = img.tag_v2.get(258) if hasattr(img, "tag_v2") else None  # BitsPerSample
    if isinstance(bits, tuple):
        return any(b == 16 for b in bits)
    return bits == 16


#: the chunks a still PNG needs; OpenCV is handed nothing else
_CV2_PNG_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}


def _png_for_cv2(data: bytes, name: str) -> bytes:
    """A minimal copy of a PNG for OpenCV: only the still image's chunks, each inside the file.

    Fuzzing found two ways raw bytes hurt OpenCV 5's reader: a malformed APNG (acTL/fcTL/fdAT)
    segfaults it, and a chunk declaring more bytes than the file holds makes it spin for
    seconds. Pillow has already parsed the header; we keep IHDR/PLTE/tRNS/IDAT/IEND only.
    """
    out = [data[:8]]
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise TruncatedImageError(
                f"the PNG file is truncated (its {ctype.decode('latin-1')!r} chunk declares {length} bytes "
                f"but only {len(data) - pos - 12} follow)", path=name)
        if ctype in _CV2_PNG_CHUNKS:
            out.append(data[pos:end])
        pos = end
        if ctype == b"IEND":
            return b"".join(out)
    # no IEND: libpng (and Pillow on the 8-bit path) read such files when the IDATs are whole
    return b"".join(out) + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _tiff_checked_for_cv2(img: Image.Image, data: bytes, name: str) -> bytes:
    """Refuse 16-bit TIFF layouts OpenCV's libtiff path cannot handle, before it sees them."""
    tags = img.tag_v2
    samples = int(tags.get(277, 1) or 1)  # SamplesPerPixel
    bits = tags.get(258, (16,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    if not 1 <= samples <= 4 or len(bits) not in (1, samples) or any(b != 16 for b in bits):
        raise CorruptImageError(
            f"the 16-bit TIFF declares {samples} samples of {'/'.join(map(str, bits))} bits per pixel, "
            "which is not an image layout alphacut reads", path=name)
    return data


def _decode_16bit_cv2(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if arr is None:
        raise CorruptImageError("the 16-bit image could not be decoded", path=name)
    if arr.dtype != np.uint16:
        arr = arr.astype(np.uint16) * 257
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2), None
    if arr.shape[2] == 2:  # gray + alpha
        gray, a = arr[:, :, 0], arr[:, :, 1]
        return np.repeat(gray[:, :, None], 3, axis=2), a.astype(np.float32) / 65535.0
    if arr.shape[2] == 4:
        rgb = np.ascontiguousarray(arr[:, :, 2::-1])
        a = arr[:, :, 3]
        return rgb, (None if a.min() == 65535 else a.astype(np.float32) / 65535.0)
    return np.ascontiguousarray(arr[:, :, ::-1]), None


#: EXIF orientation (2-8) → the OpenCV operation that makes the picture upright
_UPRIGHT = {
    2: lambda a: cv2.flip(a, 1),  # mirrored left-right
    3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
    4: lambda a: cv2.flip(a, 0),  # mirrored top-bottom
    5: lambda a: cv2.transpose(a),
    6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
    7: lambda a: cv2.rotate(cv2.transpose(a), cv2.ROTATE_180),
    8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _orient_arrays(rgb: np.ndarray, alpha: np.ndarray | None, orientation: int):
    """Apply an EXIF orientation (1-8) to decoded arrays: a new upright, C-contiguous array
    from OpenCV's rotations and flips (exact pixel moves, several times NumPy's strided copy)."""
    fix = _UPRIGHT.get(orientation)
    if fix is None:
        return rgb, alpha
    return fix(rgb), (fix(alpha) if alpha is not None else None)


def _decode_heif(data: bytes) -> tuple[np.ndarray, np.ndarray | None, int]:
    """HEIF pixels straight from libheif's buffer (no Pillow copies: a 200 MP photo is 600 MB)."""
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=False)
    depth = int(heif.info.get("bit_depth", 8) or 8)
    arr = np.asarray(heif)  # a view of the decoded buffer, kept alive by the array
    top = 65535.0 if arr.dtype == np.uint16 else 255.0
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2), None, depth
    if arr.shape[2] == 2:
        return np.repeat(arr[:, :, :1], 3, axis=2), arr[:, :, 1].astype(np.float32) / np.float32(top), depth
    if arr.shape[2] == 4:
        a = arr[:, :, 3]
        alpha = None if a.min() == top else a.astype(np.float32) / np.float32(top)
        return np.ascontiguousarray(arr[:, :, :3]), alpha, depth
    return arr, None, depth


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_ICC: bytes = _SRGB.tobytes()


def _cmyk_to_srgb(img: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    """CMYK is for print: convert through its profile (when it has one) to tagged sRGB."""
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, src, _SRGB, outputMode="RGB"), SRGB_ICC
        except (ImageCms.PyCMSError, OSError):
            pass
    return img.convert("RGB"), None


def to_srgb(picture: Picture) -> Picture:
    """Convert pixels from the embedded ICC profile to sRGB and tag the result as sRGB."""
    if not picture.icc_profile or picture.rgb.dtype != np.uint8:
        # 16-bit ICC transforms are not supported by Pillow's LittleCMS binding; keep the profile.
        return picture
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(picture.icc_profile))
        img = ImageCms.profileToProfile(Image.fromarray(picture.rgb), src, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):
        return picture
    return Picture(np.asarray(img), picture.alpha, SRGB_ICC, picture.exif, picture.format, picture.name, picture.info)

