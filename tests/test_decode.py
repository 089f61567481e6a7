import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import (
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    TruncatedImageError,
    UnsupportedFormatError,
)
from alphacut.imageio.decode import decode
from alphacut.imageio.encode import EncodeSettings, encode_pixels

from conftest import CORPUS, EVAL, encode_image, subject_image

FORMATS = ["PNG", "JPEG", "WEBP", "AVIF", "TIFF", "BMP", "GIF", "HEIF"]


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    if fmt == "HEIF":
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(Image.fromarray(arr)).save(buf, quality=95)
        return buf.getvalue()
    return encode_image(arr, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_accepted_format_decodes(fmt: str) -> None:
    arr = subject_image(64, 48)
    pic = decode(_encode(arr, fmt), name=f"x.{fmt.lower()}")
    assert pic.rgb.shape == (48, 64, 3) and pic.rgb.dtype == np.uint8
    tolerance = 0.5 if fmt in ("PNG", "TIFF", "BMP") else 40
    assert np.abs(pic.rgb.astype(int) - arr).mean() <= tolerance


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "HEIF"])
def test_mislabelled_extension_still_works(tmp_path: Path, fmt: str) -> None:
    wrong = tmp_path / "actually-not.gif"
    wrong.write_bytes(_encode(subject_image(40, 30), fmt))
    pic = decode(wrong.read_bytes(), name=str(wrong))
    assert pic.format == ("heif" if fmt == "HEIF" else fmt.lower())
    assert pic.rgb.shape == (30, 40, 3)


def test_empty_file() -> None:
    with pytest.raises(EmptyFileError, match="empty.png"):
        decode(b"", name="empty.png")


def test_unknown_file() -> None:
    with pytest.raises(UnsupportedFormatError, match="notes.jpg"):
        decode(b"hello, this is text", name="notes.jpg")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_truncated_file_is_a_clear_error(fmt: str) -> None:
    data = _encode(subject_image(200, 150), fmt)
    with pytest.raises((TruncatedImageError, CorruptImageError)) as exc:
        decode(data[: len(data) // 2], name=f"half.{fmt.lower()}")
    assert f"half.{fmt.lower()}" in str(exc.value)


def test_corrupt_body_is_a_clear_error() -> None:
    data = bytearray(_encode(subject_image(64, 64), "PNG"))
    data[40:80] = b"\x00" * 40  # inside IDAT: CRC and zlib stream now wrong
    with pytest.raises(CorruptImageError, match="bad.png"):
        decode(bytes(data), name="bad.png")


def test_png_with_a_valid_frame_but_broken_pixel_data_is_refused_not_black() -> None:
    """Header, chunk CRCs and IEND all valid; the IDAT holds no zlib stream. Reading the PNG's
    EXIF loads it and fails quietly; the pixels must still be refused, not come out black."""
    ihdr = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
    idat = b"garbage-not-zlib" * 10

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    with pytest.raises(CorruptImageError, match="broken.png"):
        decode(data, name="broken.png")


def test_corpus_truncated_jpeg_and_corrupt_heic() -> None:
    with pytest.raises(TruncatedImageError):
        decode((CORPUS / "jpeg_odd/truncated_jpeg.jpg").read_bytes(), name="truncated_jpeg.jpg")
    with pytest.raises(CorruptImageError):
        decode((CORPUS / "heic/error_cases/corrupted.heic").read_bytes(), name="corrupted.heic")


def _png_header_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # a real header and the start of a pixel stream that would expand to ~10 GB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="megapixels"):
        decode(_png_header_claiming(60000, 60000), name="bomb.png")


def test_pixel_limit_is_configurable() -> None:
    data = _encode(subject_image(100, 100), "PNG")
    with pytest.raises(ImageTooLargeError):
        decode(data, name="a.png", max_pixels=5000)


# EXIF orientation: the file stores a transformed image plus a tag; decoding must undo it.
_STORE = {  # orientation -> how the camera stored the upright image
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


def _asymmetric(width: int = 60, height: int = 40) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4 % 256, y * 6 % 256, (x * y) % 256], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = _asymmetric()
    stored = Image.fromarray(upright)
    if orientation in _STORE:
        stored = stored.transpose(_STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "PNG", exif=exif.tobytes())
    pic = decode(buf.getvalue(), name=f"o{orientation}.png")
    assert np.array_equal(pic.rgb, upright)
    if pic.exif:  # the kept EXIF no longer claims a rotation
        kept = Image.Exif()
        kept.load(pic.exif)
        assert 0x0112 not in kept


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_on_the_16bit_path(orientation: int) -> None:
    upright = _asymmetric().astype(np.uint16) * 257 + 3
    stored = upright
    if orientation == 3:
        stored = upright[::-1, ::-1]
    elif orientation == 6:  # stored rotated 90° counter-clockwise
        stored = np.rot90(upright, 1)
    elif orientation == 8:
        stored = np.rot90(upright, -1)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode_pixels(np.ascontiguousarray(stored), EncodeSettings("png", 16, exif=exif.tobytes()))
    pic = decode(data, name="o.png")
    assert pic.rgb.dtype == np.uint16
    assert np.array_equal(pic.rgb, upright)


def test_sixteen_bit_png_keeps_its_precision() -> None:
    pic = decode((CORPUS / "png16/RGB_16__128x128.png").read_bytes(), name="rgb16.png")
    assert pic.rgb.dtype == np.uint16
    assert (pic.rgb % 257 != 0).any()  # real 16-bit values, not 8-bit ones scaled


def test_cmyk_jpeg_becomes_rgb() -> None:
    pic = decode((CORPUS / "jpeg_odd/pil_sample_cmyk.jpg").read_bytes(), name="cmyk.jpg")
    assert pic.rgb.shape[2] == 3 and pic.rgb.dtype == np.uint8


def test_icc_profile_is_kept() -> None:
    pic = decode((CORPUS / "avif/libavif/paris_icc_exif_xmp.avif").read_bytes(), name="paris.avif")
    assert pic.icc_profile and len(pic.icc_profile) > 100


def test_source_alpha_is_kept_as_float() -> None:
    pic = decode((CORPUS / "webp/transparent.webp").read_bytes(), name="t.webp")
    assert pic.alpha is not None and pic.alpha.dtype == np.float32
    assert 0.0 <= pic.alpha.min() < pic.alpha.max() <= 1.0


def test_every_corpus_file_decodes_or_is_refused_clearly() -> None:
    refused = {"truncated_jpeg.jpg", "corrupted.heic"}
    for path in sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix not in (".md", ".pillow")):
        if path.name in refused:
            continue
        pic = decode(path.read_bytes(), name=str(path))
        assert pic.rgb.ndim == 3 and pic.rgb.shape[2] == 3, path


@pytest.mark.skipif(not (EVAL / "formats").is_dir(), reason="../shared/eval/formats is absent")
def test_eval_orientation_set_matches_the_reference() -> None:
    base = EVAL / "formats/jpeg_exif_orientation"
    ref = decode((base / "hopper_orientation_1_reference.jpg").read_bytes()).rgb.astype(int)
    for i in range(2, 9):
        pic = decode((base / f"hopper_orientation_{i}.jpg").read_bytes())
        assert np.abs(pic.rgb.astype(int) - ref).mean() < 8, i
