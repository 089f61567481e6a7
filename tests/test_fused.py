"""The fused full-resolution pass (matte/fused.py) against the two stages it replaces, and the
engine's measured thread split (jobs/layout.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from alphacut.jobs.layout import FinishThreads, initial_threads
from alphacut.matte.decontaminate import estimate_foreground
from alphacut.matte.fused import fuses, upsample_and_decontaminate
from alphacut.matte.upsample import upsample_matte


def _photo(h: int, w: int, dtype: type = np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """A textured subject with a furry (noisy, soft) outline over a textured background, and
    the model-resolution matte a model would give (1024², stretched)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((yy - h * 0.55) / h, (xx - w * 0.45) / w) * 2 - 0.6
    fur = cv2.resize(rng.normal(0, 1, (h // 16, w // 16)).astype(np.float32), (w, h))
    alpha = np.clip(0.5 - (d + 0.02 * fur) * 60, 0, 1).astype(np.float32)
    fg = np.stack([0.8 + 0.1 * np.sin(xx / 7), 0.5 + 0.2 * np.cos(yy / 11), 0.2 + 0 * xx], -1)
    bg = np.stack([0.1 + 0 * xx, 0.6 + 0.2 * np.sin((xx + yy) / 23), 0.3 + 0.3 * xx / w], -1)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg + rng.normal(0, 0.01, (h, w, 3))
    top = 65535 if dtype == np.uint16 else 255
    img = np.clip(np.round(img * top), 0, top).astype(dtype)
    coarse = cv2.resize(alpha, (1024, 1024), interpolation=cv2.INTER_AREA)
    return img, coarse


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fused_pass_gives_the_same_matte_and_the_colour_within_one_level(dtype):
    """The matte is bit for bit ``upsample_matte``'s; the colour is ``estimate_foreground``'s of
    that matte within one 8-bit level anywhere (the blur passes read the working-resolution
    picture and matte instead of shrinking the full-size ones) and 0.01 levels on average."""
    img, coarse = _photo(2200, 3000, dtype)
    assert fuses(img.shape)
    matte, fg = upsample_and_decontaminate(coarse, img)
    apart = upsample_matte(coarse, img)
    assert np.array_equal(matte, apart)
    reference = estimate_foreground(img, apart)
    level = 257.0 if dtype == np.uint16 else 1.0
    diff = np.abs(fg.astype(np.int64) - reference.astype(np.int64)) / level
    assert diff.max() <= 1.0 and diff.mean() < 0.01
    soft = (apart > 1 / 512) & (apart < 1 - 1 / 512)
    assert soft.sum() > 10_000  # the test has an edge to decontaminate
    changed = np.any(fg != img, axis=2)
    assert changed[soft].mean() > 0.5 and not changed[~soft].any()  # only the soft band changes


def test_fused_pass_without_a_soft_pixel_keeps_the_photo():
    img, _ = _photo(2100, 2400)
    coarse = np.ones((1024, 1024), np.float32)
    matte, fg = upsample_and_decontaminate(coarse, img)
    assert np.all(matte == 1.0) and np.array_equal(fg, img) and fg is not img


def test_pipeline_runs_the_fused_pass_on_large_photos_only():
    from alphacut import pipeline
    from alphacut.imageio.decode import Picture
    from alphacut.pipeline import Inferred, Options

    for h, w, fused in ((2200, 3000, True), (900, 1200, False)):
        img, coarse = _photo(h, w)
        pic = Picture(img, name="synthetic")
        cut = pipeline.finish(Inferred(pic, coarse, None, Options()))
        assert ("upsample+decontaminate" in cut.timings) is fused
        assert np.array_equal(cut.matte, upsample_matte(coarse, img))


def test_finishing_threads_start_from_the_provider_and_follow_the_slower_side():
    assert initial_threads(8, "CUDAExecutionProvider") == 8  # the device infers: the CPU finishes
    assert initial_threads(2, "CPUExecutionProvider") == 1
    assert initial_threads(8, "CPUExecutionProvider") == 2
    f = FinishThreads.start(4, "CPUExecutionProvider")
    assert f.threads == 1
    for _ in range(6):  # finishing takes twice the model pass: it is what the batch waits for
        f.observe(1.0, 2.0 / f.threads)
    assert f.threads >= 2 and f.finish_s <= f.infer_s * 1.05
    for _ in range(8):  # now it is fast: threads go back to the model until it just keeps up
        f.observe(1.0, 0.2 / f.threads)
    assert f.threads == 1
    g = FinishThreads.start(2, "CPUExecutionProvider")
    assert {g.observe(2.0, 9.0) for _ in range(5)} <= {1, 2}  # never more than the worker's cores
