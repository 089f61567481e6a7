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


# --- issue 17, second round: the same results with less work and memory --------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_point_evaluation_equals_the_whole_tile(dtype, monkeypatch):
    """Where few pixels of a tile change, the guided filter and decontamination evaluate only
    those (``tiles.few_points``); the matte and colour are bit for bit the whole tile's, in the
    fused pass and apart."""
    from alphacut.matte import decontaminate, tiles, upsample

    img, coarse = _photo(2200, 3000, dtype)
    fast = upsample_and_decontaminate(coarse, img)
    fast_apart = upsample_matte(coarse, img)
    fast_fg = estimate_foreground(img, fast_apart)
    calls = []

    def whole_tile(mask, share=tiles.POINT_SHARE):
        calls.append(mask.mean())
        return None

    monkeypatch.setattr(upsample, "few_points", whole_tile)
    monkeypatch.setattr(decontaminate, "few_points", whole_tile)
    slow = upsample_and_decontaminate(coarse, img)
    assert sum(share <= tiles.POINT_SHARE for share in calls) > 20  # the point path ran on many tiles
    assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1])
    assert np.array_equal(fast_apart, upsample_matte(coarse, img))
    assert np.array_equal(fast_fg, estimate_foreground(img, fast_apart))


def test_resample_points_are_the_tiles_own_values():
    """``resample_points`` equals ``resample_tile`` at those pixels, for 1 and 4 channels, a
    window with an origin, and more points than one remap row holds."""
    from alphacut.matte.tiles import resample_points, resample_tile

    rng = np.random.default_rng(5)
    field4 = rng.random((300, 400, 4), dtype=np.float32)
    field1 = np.ascontiguousarray(field4[..., 0])
    H, W = 1500, 2000
    for t in [(0, 256, 0, 256), (1244, 1500, 1792, 2000), (512, 768, 1024, 1280)]:
        mask = rng.random((t[1] - t[0], t[3] - t[2])) < 0.4
        rows, cols = np.nonzero(mask)
        assert rows.size > 1024
        for field in (field4, field1):
            whole = resample_tile(field, H, W, t).reshape(mask.shape + (-1,))
            assert np.array_equal(resample_points(field, H, W, t, rows, cols), whole[mask])
        window, origin = field4[40:120, 300:400], (40, 300)
        t2 = (300, 400, 1560, 1800)
        m2 = rng.random((100, 240)) < 0.4
        r2, c2 = np.nonzero(m2)
        whole = resample_tile(window, H, W, t2, grid=(300, 400), origin=origin)
        assert np.array_equal(resample_points(window, H, W, t2, r2, c2, grid=(300, 400), origin=origin), whole[m2])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fused_pass_in_place_gives_the_same_and_spares_the_copy(dtype):
    """``in_place``: the foreground is the photo's own array, decontaminated where it stands,
    equal to the copying pass's; a read-only photo is copied (never written)."""
    img, coarse = _photo(2200, 3000, dtype)
    matte, fg = upsample_and_decontaminate(coarse, img)
    mine = img.copy()
    matte2, fg2 = upsample_and_decontaminate(coarse, mine, in_place=True)
    assert fg2 is mine and np.array_equal(fg2, fg) and np.array_equal(matte2, matte)
    frozen = img.copy()
    frozen.flags.writeable = False
    _, fg3 = upsample_and_decontaminate(coarse, frozen, in_place=True)
    assert fg3 is not frozen and np.array_equal(fg3, fg) and np.array_equal(frozen, img)


def test_model_input_is_the_normalised_view_bit_for_bit():
    """``prepare_input`` writes plane by plane what ``(view / divisor - mean) / std``, transposed,
    gives — for every catalogued model's normalisation (a fixed divisor and the image max)."""
    from alphacut.matte.predict import model_view, prepare_input
    from alphacut.models.catalog import CATALOG

    rng = np.random.default_rng(7)
    for img in (rng.integers(0, 256, (900, 1300, 3), dtype=np.uint8),
                rng.integers(0, 60000, (500, 700, 3), dtype=np.uint16)):
        for spec in CATALOG.values():
            view = model_view(img, spec).astype(np.float32)
            norm = spec.normalization
            divisor = max(float(view.max()), 1e-6) if norm.divisor == "max" else float(norm.divisor)
            ref = (view / np.float32(divisor) - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32)
            ref = np.ascontiguousarray(ref.transpose(2, 0, 1)[None])
            got = prepare_input(img, spec)
            assert got.dtype == np.float32 and got.flags.c_contiguous and np.array_equal(got, ref), spec.name


def test_finish_without_the_original_gives_the_same_cutout_from_one_array():
    """``pipeline.finish(keep_original=False)`` (the engine's workers, when nothing composes
    with the original colours): the same matte and foreground as keeping it, decontaminated in
    the decoded photo's own array, which the cutout's picture then holds."""
    from alphacut.imageio.decode import Picture
    from alphacut.pipeline import Inferred, Options, finish

    img, coarse = _photo(2200, 3000)
    kept = finish(Inferred(Picture(img.copy(), None, None, None, "png", "p"), coarse, None, Options()))
    mine = img.copy()
    spared = finish(Inferred(Picture(mine, None, None, None, "png", "p"), coarse, None, Options()),
                    keep_original=False)
    assert np.array_equal(kept.matte, spared.matte) and np.array_equal(kept.foreground, spared.foreground)
    assert spared.foreground is mine and spared.picture.rgb is mine
    assert np.array_equal(kept.picture.rgb, img) and not np.array_equal(kept.foreground, img)
