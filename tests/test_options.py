"""Options grouped (compose, encode) with the earlier flat keywords still working, tier switches
that reach the engine's worker processes, and library errors that name no CLI flag."""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import alphacut
from alphacut import Compose, Encode, Options
from alphacut.errors import AlphacutError, ImageTooLargeError, UsageError
from alphacut.options import FLAT, KEYWORDS

from conftest import encode_image, subject_image

#: every flat keyword of earlier versions, with a value that differs from its default
OLD_KEYWORDS = {
    "format": "webp", "bit_depth": 8, "lossless": False, "quality_level": 70, "clear_transparent": True,
    "background": (10, 20, 30), "background_fit": "fit", "crop": True, "crop_margin": 6,
}


def test_every_earlier_keyword_is_accepted_and_read_back_flat_and_grouped() -> None:
    opts = Options(model="u2netp", quality="best", decontaminate=False, color="srgb", max_pixels=5_000_000,
                   **OLD_KEYWORDS)
    for name, value in OLD_KEYWORDS.items():
        group, attr = FLAT[name]
        assert getattr(opts, name) == value  # the flat view
        assert getattr(getattr(opts, group), attr) == value  # the group it lives in
    assert (opts.model, opts.quality, opts.decontaminate, opts.color, opts.max_pixels) == (
        "u2netp", "best", False, "srgb", 5_000_000)
    assert opts.encode == Encode("webp", 8, lossless=False, lossy_quality=70)
    assert Options(mask_only=True).compose.mask_only
    assert Options(background_image=Path("bg.png")).compose.image == "bg.png"
    assert Options(background_blur=4.0).background_blur == 4.0
    assert set(FLAT) <= KEYWORDS and {"compose", "encode", "second_opinion", "subject_crop_pass"} <= KEYWORDS


def test_flat_and_grouped_are_the_same_value() -> None:
    flat = Options(format="avif", quality_level=60, lossless=False, background=(1, 2, 3), crop=True)
    grouped = Options(encode=Encode("avif", lossless=False, lossy_quality=60),
                      compose=Compose(background=(1, 2, 3), crop=True))
    assert flat == grouped and hash(flat) == hash(grouped)
    # a flat keyword overrides the same choice in a group given beside it
    assert Options(encode=Encode("avif"), format="tiff").format == "tiff"
    # dataclasses.replace (the server's exports, Result.encode) takes the flat keywords too
    moved = dataclasses.replace(flat, format="png", background=None, mask_only=True)
    assert moved.encode.format == "png" and moved.compose.mask_only and moved.compose.crop
    assert moved.encode.lossy_quality == 60 and moved.quality == "fast"


def test_the_encoders_level_cannot_be_mistaken_for_the_tier() -> None:
    opts = Options(quality="best", lossy_quality=55)
    assert opts.quality == "best" and opts.encode.lossy_quality == 55 == opts.quality_level
    with pytest.raises(UsageError, match="quality must be 'fast' or 'best'"):
        Options(quality=80)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="between 0 and 100"):
        Options(quality_level=120)


def test_formats_and_depths_are_checked_when_the_options_are_made() -> None:
    assert Options(format="tif").format == "tiff"  # an alias names its format
    with pytest.raises(UsageError, match="unknown output format 'jpeg'; choose one of png, webp, avif, tiff"):
        Options(format="jpeg")
    with pytest.raises(UsageError, match="WEBP output is 8-bit only"):
        Options(format="webp", bit_depth=16)


@pytest.mark.parametrize("bad", [
    dict(mask_only=True, background=(0, 0, 0)), dict(mask_only=True, background_blur=2.0),
    dict(background_image="bg.png", background_blur=2.0), dict(background_fit="stretch"),
    dict(background_blur=-1.0), dict(format="webp", bit_depth=16), dict(color="p3"),
])
def test_option_errors_name_no_cli_flag(bad: dict) -> None:
    with pytest.raises(UsageError) as exc:
        Options(**bad)
    assert "--" not in str(exc.value)


def test_the_pixel_limit_error_names_no_cli_flag() -> None:
    from alphacut.imageio.decode import decode

    with pytest.raises(ImageTooLargeError) as exc:
        decode(encode_image(subject_image(40, 30), "PNG"), name="a.png", max_pixels=100)
    assert "max_pixels" in str(exc.value) and "--" not in str(exc.value)


def test_options_pickle_whole() -> None:
    opts = Options(model="u2netp", quality="best", second_opinion=False, subject_crop_pass=False,
                   **OLD_KEYWORDS)
    back = pickle.loads(pickle.dumps(opts))
    assert back == opts and back.compose == opts.compose and back.encode == opts.encode
    assert (back.second_opinion, back.subject_crop_pass) == (False, False)


def test_remove_keeps_its_keyword_arguments(u2netp, monkeypatch) -> None:
    """``alphacut.remove`` with the flat keywords of earlier versions, end to end."""
    from alphacut import api

    monkeypatch.setitem(api._default_removers, "u2netp", u2netp)  # the fixture's loaded session
    img = subject_image(96, 72)
    result = alphacut.remove(img, model="u2netp", format="webp", lossless=False, quality_level=80,
                             background=(255, 255, 255), crop=True, crop_margin=2)
    opts = result.cutout.options
    assert opts.encode == Encode("webp", lossless=False, lossy_quality=80)
    assert opts.compose == Compose(background=(255, 255, 255), crop=True, margin=2)
    data = result.encode()
    with Image.open(io.BytesIO(data)) as out:
        assert out.format == "WEBP" and out.mode == "RGB"  # composited: opaque
    mask = result.encode("png", mask_only=True, background=None)
    with Image.open(io.BytesIO(mask)) as out:
        assert out.mode == "L"
    with pytest.raises(UsageError, match="unknown option\\(s\\): colour"):
        alphacut.remove(img, model="u2netp", colour="red")
    grouped = alphacut.remove(img, model="u2netp", encode=Encode("tiff"), compose=Compose(mask_only=True))
    assert grouped.encode()[:4] in (b"II*\x00", b"MM\x00*")


def _small_subject(path: Path) -> Path:
    """A 1280x960 frame with a small subject: the best tier's crop pass runs on it with u2netp."""
    y, x = np.mgrid[0:960, 0:1280]
    big = np.stack([40 + 60 * x / 1280, 120 + 40 * y / 960, 190 + 0 * x], -1).astype(np.uint8)
    big[390:570, 520:760] = subject_image(240, 180)
    path.write_bytes(encode_image(big, "PNG"))
    return path


@pytest.mark.slow
def test_tier_switches_reach_the_engines_workers(tmp_path: Path) -> None:
    """The switches travel inside Options to a spawned worker: with the crop pass off there, the
    worker's timings have no crop pass (a module-level switch set here would not reach it)."""
    from alphacut.jobs.engine import JobEngine
    from alphacut.jobs.state import Stage

    src = _small_subject(tmp_path / "small.png")
    with JobEngine("u2netp", workers=1) as eng:
        on = eng.wait(eng.submit(src, options=Options(model="u2netp", quality="best")).id, 180)
        off = eng.wait(eng.submit(src, options=Options(model="u2netp", quality="best",
                                                        subject_crop_pass=False)).id, 180)
    assert on.stage is Stage.DONE and off.stage is Stage.DONE, (on.reason, off.reason)
    assert "crop_pass" in on.timings and "crop_pass" not in off.timings
    assert off.options.subject_crop_pass is False and on.options.subject_crop_pass is True


def test_errors_are_alphacut_errors() -> None:
    with pytest.raises(AlphacutError):
        Options(format="bmp")
