"""Backgrounds: a colour, an image (fill / fit) and the blurred original, composited in float with
the straight foreground and the matte, written opaque and verified by the same encoders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.api import Remover
from alphacut.errors import UsageError
from alphacut.pipeline import Options, blurred_original, compose

from conftest import encode_image, subject_image

from test_cli import alphacut


def _stripes(width: int, height: int) -> np.ndarray:
    """A background image whose every region is recognisable: red left half, blue right half,
    a green band on the top quarter."""
    img = np.zeros((height, width, 3), np.uint8)
    img[:, : width // 2] = (230, 20, 20)
    img[:, width // 2:] = (20, 20, 230)
    img[: height // 4] = (20, 200, 20)
    return img


def _expected(result, backdrop01: np.ndarray) -> np.ndarray:
    a = result.matte[:, :, None].astype(np.float64)
    fg = result.foreground.astype(np.float64) / 255.0
    return np.clip(np.rint((fg * a + backdrop01 * (1 - a)) * 255), 0, 255).astype(np.uint8)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_image_background_fill(u2netp: Remover, tmp_path: Path) -> None:
    photo = subject_image(320, 240)
    bg_path = tmp_path / "bg.png"
    bg_path.write_bytes(encode_image(_stripes(160, 240), "PNG"))  # portrait: fill crops top/bottom
    result = u2netp.remove(photo)
    data = result.encode("png", background_image=str(bg_path), background_fit="fill")
    out = _decode(data)
    assert out.shape == (240, 320, 3), "opaque RGB at the photo's size"
    # fill scales 160x240 by 2 to 320x480 and keeps the middle 240 rows: the green band
    # (top 120 rows of the scaled image) is cropped away, red left, blue right
    bg = np.zeros((240, 320, 3), np.float64)
    bg[:, :160] = np.array((230, 20, 20)) / 255.0
    bg[:, 160:] = np.array((20, 20, 230)) / 255.0
    expected = _expected(result, bg)
    far = np.ones((240, 320), bool)
    far[:, 150:170] = False  # the seam of the resampled stripes
    far[:4] = False  # the green band ends exactly at the crop line: resampling blends it in
    assert np.abs(out.astype(int) - expected.astype(int))[far].max() <= 1
    # the subject stays: the centre is the foreground's own colour
    assert np.abs(out[120, 160].astype(int) - result.foreground[120, 160].astype(int)).max() <= 2


def test_image_background_fit_uses_bars_of_the_colour(u2netp: Remover, tmp_path: Path) -> None:
    photo = subject_image(320, 240)
    bg_path = tmp_path / "bg.jpg"
    bg_path.write_bytes(encode_image(np.full((240, 120, 3), (20, 200, 20), np.uint8), "JPEG", quality=95))
    result = u2netp.remove(photo)
    pixels, settings = compose(result.cutout, Options(model="u2netp", background_image=bg_path,
                                                       background_fit="fit", background=(0, 0, 0)))
    assert pixels.shape == (240, 320, 3) and pixels.dtype == np.uint8
    # fit: 120x240 stays 120x240, centred: bars of 100 px left and right in black
    assert pixels[5, 5].max() <= 1 and pixels[5, -5].max() <= 1
    assert abs(int(pixels[5, 160, 1]) - 200) <= 3 and pixels[5, 160, 0] < 30
    data = result.encode("webp", background_image=str(bg_path), background_fit="fit", background=(0, 0, 0))
    assert np.array_equal(_decode(data), pixels), "lossless WebP carries exactly the composed pixels"


def test_blurred_original_background(u2netp: Remover) -> None:
    photo = subject_image(320, 240)
    result = u2netp.remove(photo)
    data = result.encode("png", background_blur=6.0)
    out = _decode(data)
    assert out.shape == (240, 320, 3)
    backdrop = blurred_original(photo.astype(np.float32) / 255.0, result.matte, 6.0)
    assert np.abs(out.astype(int) - _expected(result, backdrop).astype(int)).max() <= 1
    # the background is blurred (the noise is gone) ...
    corner = out[5:40, 5:40].astype(np.float32)
    assert corner.std(axis=(0, 1)).max() < photo[5:40, 5:40].astype(np.float32).std(axis=(0, 1)).max() / 2
    # ... and the warm subject does not smear into it: just outside the disc the backdrop keeps
    # the cool background's colour (red well below the subject's)
    h, w = result.matte.shape
    ring_y, ring_x = h // 2, w // 2 + int(min(w, h) * 0.3) + 12
    assert result.matte[ring_y, ring_x] < 0.05
    assert backdrop[ring_y, ring_x, 0] * 255 < 150 and backdrop[ring_y, ring_x, 2] * 255 > 150


def test_backgrounds_work_at_16_bit_and_with_crop(u2netp: Remover, tmp_path: Path) -> None:
    photo16 = subject_image(160, 120).astype(np.uint16) * 257
    result = u2netp.remove(photo16)
    pixels, settings = compose(result.cutout, Options(model="u2netp", background_blur=3.0, crop=True,
                                                       crop_margin=4))
    assert pixels.dtype == np.uint16 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.shape[0] < 120 and pixels.shape[1] < 160
    data = result.encode("png", background_blur=3.0, crop=True, crop_margin=4)
    assert Image.open(io.BytesIO(data)).mode in ("RGB;16", "I;16", "RGB")  # 16-bit RGB PNG


def test_options_stay_hashable_and_check_combinations(tmp_path: Path) -> None:
    a = Options(background_image=tmp_path / "x.png")
    assert a.background_image == str(tmp_path / "x.png")
    assert hash(a) == hash(Options(background_image=str(tmp_path / "x.png")))
    with pytest.raises(UsageError):
        Options(background_image="x.png", background_blur=3.0)
    with pytest.raises(UsageError):
        Options(mask_only=True, background_blur=3.0)
    with pytest.raises(UsageError):
        Options(background_fit="stretch")  # type: ignore[arg-type]


def test_cli_bg_image_and_blur(tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    src.write_bytes(encode_image(subject_image(), "PNG"))
    bg = tmp_path / "bg.png"
    bg.write_bytes(encode_image(_stripes(64, 64), "PNG"))  # square: fit leaves 40 px bars
    proc = alphacut("remove", str(src), "-o", str(tmp_path / "img.png"), "--model", "u2netp",
                    "--bg-image", str(bg), "--bg-fit", "fit", "--bg", "#000000")
    assert proc.returncode == 0, proc.stderr.decode()
    out = np.asarray(Image.open(tmp_path / "img.png"))
    assert out.shape == (240, 320, 3)
    assert out[120, 2].max() <= 1 and out[120, -3].max() <= 1, "bars in --bg black"
    assert out[2, 160, 1] > 150, "the green band of the background image, scaled to 240x240"
    proc = alphacut("remove", str(src), "-o", str(tmp_path / "blur.webp"), "--model", "u2netp", "--bg-blur", "8")
    assert proc.returncode == 0, proc.stderr.decode()
    assert Image.open(tmp_path / "blur.webp").mode == "RGB"
    proc = alphacut("remove", str(src), "--model", "u2netp", "--bg-image", str(tmp_path / "missing.png"))
    assert proc.returncode == 2 and b"no such file" in proc.stderr
