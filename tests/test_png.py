"""The fast PNG writer must produce standard PNGs that other decoders read back exactly."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from alphacut.imageio import png


@pytest.mark.parametrize("shape", [(37, 53), (37, 53, 2), (37, 53, 3), (37, 53, 4)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_every_layout(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=np.int64).astype(dtype)
    data = png.write_png(pixels)
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if len(shape) == 3 and shape[2] == 2:  # OpenCV expands gray+alpha to BGRA
        back = back[:, :, [0, 3]]
    elif back.ndim == 3 and back.shape[2] in (3, 4):
        back = back[:, :, [2, 1, 0, 3][: back.shape[2]]]
    assert back.dtype == dtype and np.array_equal(back, pixels)


def test_many_strips_in_parallel_make_one_valid_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png, "STRIP_BYTES", 1000)  # force dozens of strips
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(300, 200, 4), dtype=np.uint8)
    data = png.write_png(pixels, threads=4)
    img = Image.open(io.BytesIO(data))
    img.load()
    assert np.array_equal(np.asarray(img), pixels)


def test_metadata_chunks() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "alphacut-test"  # Make
    data = png.write_png(np.zeros((4, 4, 3), np.uint8), icc_profile=icc, exif=exif.tobytes())
    img = Image.open(io.BytesIO(data))
    assert img.info["icc_profile"] == icc
    assert img.getexif()[0x010F] == "alphacut-test"


def test_stream_checksum_is_right_across_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib.decompress checks the adler32 that the strips' checksums were combined into."""
    import struct
    import zlib

    monkeypatch.setattr(png, "STRIP_BYTES", 777)
    pixels = np.random.default_rng(3).integers(0, 256, size=(90, 70, 3), dtype=np.uint8)
    data = png.write_png(pixels, threads=3)
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)  # raises on a wrong checksum
    assert len(raw) == 90 * (70 * 3 + 1)
