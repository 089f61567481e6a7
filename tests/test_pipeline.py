"""The one-image pipeline with real models (u2netp, and isnet for the default path)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import alphacut
from alphacut.api import Remover
from alphacut.errors import UsageError
from alphacut.matte.predict import prepare_input, read_output
from alphacut.models.catalog import get_spec
from alphacut.models.session import provider_chain
from alphacut.pipeline import Options, compose

from conftest import encode_image, subject_image


def _disc_matte_ok(matte: np.ndarray) -> None:
    """The test image is a disc in the middle: the centre is subject, the corners are not."""
    h, w = matte.shape
    assert matte.dtype == np.float32
    assert matte[h // 2, w // 2] > 0.8
    assert max(matte[2, 2], matte[2, -3], matte[-3, 2], matte[-3, -3]) < 0.2


def test_remove_accepts_path_bytes_pil_and_array(u2netp: Remover, photo_jpeg: Path, photo: np.ndarray) -> None:
    for src in (photo_jpeg, str(photo_jpeg), photo_jpeg.read_bytes(), Image.fromarray(photo), photo):
        result = u2netp.remove(src)
        assert result.matte.shape == photo.shape[:2]
        _disc_matte_ok(result.matte)
        assert result.rgba.shape == photo.shape[:2] + (4,)
        # the head of this machine's chain (CUDA where onnxruntime-gpu sees a GPU), never a fallback
        assert result.provider == provider_chain()[0]


def test_matte_is_float_and_soft_not_thresholded(u2netp: Remover, photo: np.ndarray) -> None:
    matte = u2netp.remove(photo).matte
    soft = (matte > 0.02) & (matte < 0.98)
    assert soft.any(), "a soft edge must survive"
    assert len(np.unique(matte)) > 256, "more levels than 8-bit: the matte is not quantised"


def test_probability_output_is_not_stretched() -> None:
    spec = get_spec("isnet")
    raw = np.full((1, 1, 8, 8), 0.4, np.float32)
    raw[0, 0, 0, 0] = 0.6
    matte = read_output(raw, spec)
    assert matte.max() == pytest.approx(0.6) and matte.min() == pytest.approx(0.4)


def test_preprocessing_follows_the_spec() -> None:
    x = prepare_input(np.full((10, 20, 3), 128, np.uint8), get_spec("isnet"))
    assert x.shape == (1, 3, 1024, 1024) and np.allclose(x, 0.0)
    y = prepare_input(np.full((100, 200, 3), 255, np.uint8), get_spec("modnet"))
    assert y.shape == (1, 3, 512, 1024) and np.allclose(y, 1.0)


def test_straight_alpha_known_answer(u2netp: Remover, tmp_path: Path) -> None:
    """Source pixels with their own 50% alpha: the colour written must be the colour read."""
    rgb = subject_image(160, 120)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    result = u2netp.remove(rgba, decontaminate=False)
    out = tmp_path / "half.png"
    result.save(out)
    back = np.asarray(Image.open(out))
    visible = back[:, :, 3] > 0
    assert visible.any()
    assert (back[:, :, 3][visible] <= 129).all(), "source alpha is respected"
    assert np.array_equal(back[:, :, :3][visible], rgb[visible]), "colour is not scaled by alpha"


def test_large_image_is_inferred_small_but_cut_at_full_resolution(u2netp: Remover) -> None:
    big = subject_image(4400, 300)
    result = u2netp.remove(big)
    assert result.matte.shape == (300, 4400)
    data = result.encode("png")
    img = Image.open(__import__("io").BytesIO(data))
    assert img.size == (4400, 300) and img.mode == "RGBA"


def test_sixteen_bit_input_gives_sixteen_bit_png(u2netp: Remover, tmp_path: Path) -> None:
    import cv2

    rgb16 = subject_image(96, 64).astype(np.uint16) * 257 + 7
    src = tmp_path / "deep.png"
    cv2.imwrite(str(src), rgb16[:, :, ::-1])
    result = u2netp.remove(src)
    out = result.save(tmp_path / "deep-out.png")
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape == (64, 96, 4)


def test_outputs_in_every_format(u2netp: Remover, photo: np.ndarray, tmp_path: Path) -> None:
    result = u2netp.remove(photo)
    for name in ("a.png", "a.webp", "a.avif", "a.tif"):
        path = result.save(tmp_path / name)
        assert path.stat().st_size > 0
        with Image.open(path) as img:
            assert img.size == (photo.shape[1], photo.shape[0]) and "A" in img.mode


def test_mask_background_and_crop(u2netp: Remover, photo: np.ndarray) -> None:
    result = u2netp.remove(photo)
    mask, _ = compose(result.cutout, Options(model="u2netp", mask_only=True))
    assert mask.ndim == 2 and mask.dtype == np.uint8
    over, _ = compose(result.cutout, Options(model="u2netp", background=(255, 255, 255)))
    assert over.shape == photo.shape and over[1, 1].min() > 200  # background became white
    cropped, _ = compose(result.cutout, Options(model="u2netp", crop=True))
    assert cropped.shape[0] < photo.shape[0] and cropped.shape[1] < photo.shape[1]


def test_unknown_option_is_a_usage_error(u2netp: Remover, photo: np.ndarray) -> None:
    with pytest.raises(UsageError, match="unknown option"):
        u2netp.remove(photo, colour="blue")


def test_default_model_isnet_end_to_end(isnet: Remover, tmp_path: Path) -> None:
    photo = subject_image(400, 300)
    result = isnet.remove(photo)
    _disc_matte_ok(result.matte)
    out = result.save(tmp_path / "isnet.png")
    assert Image.open(out).mode == "RGBA"


def test_module_level_remove(photo_jpeg: Path) -> None:
    result = alphacut.remove(photo_jpeg, model="u2netp")
    _disc_matte_ok(result.matte)


def test_best_tier_runs_the_model_again_on_a_small_subject(u2netp: Remover) -> None:
    """A small subject in a large frame: the best tier's second pass on its crop runs, the
    subject stays and the far background stays clear; a large subject gets no second pass."""
    small = np.full((480, 640, 3), 0, np.uint8)
    small[:] = subject_image(640, 480)[5, 5]  # the background colour everywhere
    small[200:280, 280:360] = subject_image(80, 80)  # a small disc picture in the middle
    result = u2netp.remove(small, quality="best")
    assert "crop_pass" in result.timings
    assert result.matte[240, 320] > 0.8 and result.matte[20, 20] < 0.1
    big = u2netp.remove(subject_image(320, 240), quality="best")
    assert "crop_pass" not in big.timings


class _ConstRunner:
    """A stand-in model: the same output map for every input, at the model's own size."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.calls = 0

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        return [self.value[None, None]]


def test_both_tiers_weigh_the_second_opinion_and_say_when_it_is_missing() -> None:
    """IS-Net asks U2-Netp in both tiers: where IS-Net is unsure (0.45) the helper decides; when
    the helper cannot be had the tier runs alone and says so."""
    from alphacut.api import picture_from
    from alphacut.steps import Stages

    picture = picture_from(subject_image(160, 120))
    main = _ConstRunner(np.full((1024, 1024), 0.45, np.float32))
    left = np.zeros((320, 320), np.float32)
    left[:, :160] = 1.0
    helper = _ConstRunner(left)
    asked: list[str] = []

    def loader(model: str):
        asked.append(model)
        return (helper, get_spec("u2netp")), None

    for quality in ("best", "fast"):
        stages = Stages(main, get_spec("isnet"), helper=loader)
        out = stages.cut_out(picture, Options(model="isnet", quality=quality))
        assert out.matte[60, 10] > 0.9 and out.matte[60, 150] < 0.1 and not out.warnings
    assert asked == ["isnet", "isnet"] and helper.calls == 2

    offline = Stages(main, get_spec("isnet"), helper=lambda m: (None, "u2netp: offline"))
    alone = offline.cut_out(picture, Options(model="isnet"))
    assert alone.warnings == ["u2netp: offline"]
    assert 0.4 < alone.matte[60, 10] < 0.6 and 0.4 < alone.matte[60, 150] < 0.6


def test_preload_loads_an_installed_model_in_the_background(store, tmp_path: Path) -> None:  # noqa: ANN001
    import time

    from alphacut.models.store import ModelStore

    store.ensure("u2netp")
    remover = Remover("u2netp", store=store)
    remover.preload()
    deadline = time.monotonic() + 60
    while remover._session is None:  # loaded without anyone asking for it
        assert time.monotonic() < deadline, "preload never loaded the session"
        time.sleep(0.02)
    assert remover.session.provider
    # a model that is not installed is left alone: no thread, no download, nothing to show
    empty = Remover("u2netp", store=ModelStore(tmp_path / "home", offline=True))
    empty.preload()
    time.sleep(0.3)
    assert empty._session is None and not (tmp_path / "home" / "models" / "u2netp.onnx").exists()
