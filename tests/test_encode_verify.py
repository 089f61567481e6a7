"""Straight alpha in every format, and verification that catches premultiplied or thresholded files."""

import io

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import VerificationError
from alphacut.imageio.encode import EncodeSettings, encode_pixels, quantize, straight_rgba
from alphacut.imageio.verify import verify_encoded

from conftest import subject_image


def _ramp(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rgb = subject_image(w, h)
    alpha = np.tile(np.linspace(0.0, 1.0, w, dtype=np.float32), (h, 1))
    return rgb, alpha


def test_quantize_rounds_and_never_thresholds() -> None:
    a = np.array([0.0, 0.001, 0.5 / 255, 0.3, 0.5, 0.999, 1.0], np.float32)
    assert quantize(np.array([0.004, 0.006], np.float32), 8).tolist() == [1, 2]  # soft stays soft
    assert quantize(a, 8).tolist() == [0, 0, 0, 76, 128, 255, 255]  # halves round to even, like round()
    assert quantize(a, 16).tolist() == [0, 66, 128, 19660, 32768, 65469, 65535]


def test_colour_is_not_multiplied_by_alpha() -> None:
    rgb, alpha = _ramp()
    rgba = straight_rgba(rgb, alpha, 8)
    assert np.array_equal(rgba[:, :, :3], rgb)
    assert np.array_equal(rgba[:, :, 3], np.rint(alpha * 255).astype(np.uint8))


@pytest.mark.parametrize(
    "settings",
    [EncodeSettings("png"), EncodeSettings("png", 16), EncodeSettings("webp"), EncodeSettings("avif"),
     EncodeSettings("tiff"), EncodeSettings("tiff", 16), EncodeSettings("webp", lossless=False, quality=85),
     EncodeSettings("avif", lossless=False, quality=80)],
    ids=lambda s: f"{s.format}{s.bit_depth}{'' if s.lossless else '-lossy'}",
)
def test_every_format_round_trips_and_verifies(settings: EncodeSettings) -> None:
    rgb, alpha = _ramp()
    if settings.bit_depth == 16:
        rgb = rgb.astype(np.uint16) * 257 + 100
    pixels = straight_rgba(rgb, alpha, settings.bit_depth)
    data = encode_pixels(pixels, settings)
    verify_encoded(data, pixels, settings)  # raises on failure


def test_semi_transparent_colour_survives_a_png_round_trip_exactly() -> None:
    rgb = np.full((4, 4, 3), (200, 100, 50), np.uint8)
    alpha = np.full((4, 4), 0.25, np.float32)
    data = encode_pixels(straight_rgba(rgb, alpha, 8), EncodeSettings("png"))
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert back[0, 0].tolist() == [200, 100, 50, 64]  # not [50, 25, 12, 64]


def test_premultiplied_file_fails_verification() -> None:
    rgb, alpha = _ramp()
    expected = straight_rgba(rgb, alpha, 8)
    premultiplied = expected.copy()
    premultiplied[:, :, :3] = np.rint(rgb * alpha[:, :, None]).astype(np.uint8)
    data = encode_pixels(premultiplied, EncodeSettings("png"))
    with pytest.raises(VerificationError, match="premultiplied"):
        verify_encoded(data, expected, EncodeSettings("png"))


def test_thresholded_file_fails_verification() -> None:
    rgb, alpha = _ramp()
    expected = straight_rgba(rgb, alpha, 8)
    hard = expected.copy()
    hard[:, :, 3] = np.where(alpha >= 0.5, 255, 0).astype(np.uint8)
    with pytest.raises(VerificationError, match="alpha differs"):
        verify_encoded(encode_pixels(hard, EncodeSettings("png")), expected, EncodeSettings("png"))


def test_wrong_format_wrong_size_and_garbage_fail() -> None:
    rgb, alpha = _ramp()
    expected = straight_rgba(rgb, alpha, 8)
    with pytest.raises(VerificationError, match="signature"):
        verify_encoded(encode_pixels(expected, EncodeSettings("webp")), expected, EncodeSettings("png"))
    with pytest.raises(VerificationError, match="size"):
        verify_encoded(encode_pixels(expected[:10], EncodeSettings("png")), expected, EncodeSettings("png"))
    good = encode_pixels(expected, EncodeSettings("png"))
    with pytest.raises(VerificationError, match="decode"):
        verify_encoded(good[: len(good) // 2], expected, EncodeSettings("png"))


def test_sixteen_bit_png_carries_icc_and_exif() -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rgb, alpha = _ramp()
    pixels = straight_rgba(rgb.astype(np.uint16) * 257, alpha, 16)
    data = encode_pixels(pixels, EncodeSettings("png", 16, icc_profile=profile))
    img = Image.open(io.BytesIO(data))
    assert img.info.get("icc_profile") == profile


def test_straight_rgba_alpha_is_round_of_matte_times_max_at_the_edges_of_the_range():
    """The 8-bit strip builder (OpenCV) quantises exactly as ``quantize``: rounding, clipping."""
    from alphacut.imageio.encode import StraightRGBA, quantize

    rng = np.random.default_rng(5)
    fg = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    a = rng.random((64, 80), dtype=np.float32)
    a[0, :10] = [0, 1, 0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255, -0.1, 1.2, 0.002, 0.998]
    for depth in (8, 16):
        rgba = StraightRGBA(fg, a, depth).materialize()
        assert np.array_equal(rgba[..., 3], quantize(a, depth))
        assert rgba[0, 6, 3] == 0 and rgba[0, 7, 3] == (255 if depth == 8 else 65535)
    assert np.array_equal(StraightRGBA(fg, a, 8).materialize()[..., :3], fg), "colour is never premultiplied"
