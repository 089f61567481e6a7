"""Unit tests for the matte quality stages: upsample, refine, decontaminate (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from alphacut.matte.decontaminate import estimate_foreground
from alphacut.matte.fuse import fuse_mattes
from alphacut.matte.refine import crop_pass_gain, make_trimap, paste_crop_matte, refine_matte, subject_crop_box
from alphacut.matte.upsample import upsample_matte


def _scene(h=120, w=160, dtype=np.uint8, soft=6.0):
    """A red disc on a green/blue gradient, true soft alpha, and the composite."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(yy - h / 2, xx - w / 2) - min(h, w) * 0.3
    alpha = np.clip(0.5 - d / soft, 0, 1).astype(np.float32)
    F = np.zeros((h, w, 3), np.float32)
    F[..., 0] = 0.9
    F[..., 1] = 0.2
    F[..., 2] = 0.1
    B = np.zeros((h, w, 3), np.float32)
    B[..., 1] = 0.8
    B[..., 2] = xx / w
    I = alpha[..., None] * F + (1 - alpha[..., None]) * B
    scale = 65535 if dtype == np.uint16 else 255
    return (np.round(I * scale)).astype(dtype), alpha, F, B


def test_upsample_shape_dtype_range_and_stretched_aspect():
    img, alpha, _, _ = _scene()
    small = np.ascontiguousarray(alpha[::4, ::2][:32, :32])  # square, stretched
    out = upsample_matte(small, img)
    assert out.shape == alpha.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_upsample_edge_aware_beats_plain_resize():
    import cv2

    img, alpha, _, _ = _scene(240, 320, soft=2.0)
    low = cv2.resize(alpha, (40, 40), interpolation=cv2.INTER_AREA)
    plain = cv2.resize(low, (320, 240), interpolation=cv2.INTER_LINEAR)
    ours = upsample_matte(low, img)
    assert np.abs(ours - alpha).mean() <= np.abs(plain - alpha).mean()


def test_upsample_never_stretches_and_keeps_certain_regions():
    img, _, _, _ = _scene()
    m = np.full((30, 40), 0.4, np.float32)  # a flat 0.4 matte stays 0.4 (no min-max stretch)
    out = upsample_matte(m, img)
    assert np.allclose(out, 0.4, atol=1e-4)
    zeros = upsample_matte(np.zeros((30, 40), np.float32), img)
    assert not zeros.any()


def test_upsample_uint16_and_large_tile_path(monkeypatch):
    import alphacut.matte.upsample as U

    monkeypatch.setattr(U, "WORK_MAX_SIDE", 64)  # force the low-res fit + tile-wise apply
    monkeypatch.setattr(U, "TILE", 17)
    img, alpha, _, _ = _scene(dtype=np.uint16)
    import cv2

    low = cv2.resize(alpha, (32, 32), interpolation=cv2.INTER_AREA)
    out = U.upsample_matte(low, img)
    assert out.shape == alpha.shape and out.dtype == np.float32
    assert np.abs(out - alpha).mean() < 0.05


def test_decontaminate_recovers_foreground_and_keeps_sure_pixels():
    img, alpha, F, _ = _scene(soft=10.0)
    out = estimate_foreground(img, alpha)
    assert out.dtype == img.dtype and out.shape == img.shape
    sure = (alpha == 0) | (alpha == 1)
    assert np.array_equal(out[sure], img[sure])
    band = (alpha > 0.3) & (alpha < 1)
    w = alpha[band][:, None]  # the error a new composite shows: alpha * |F_hat - F|
    before = (w * np.abs(img[band] / 255.0 - F[band])).mean()
    after = (w * np.abs(out[band] / 255.0 - F[band])).mean()
    assert after < 0.6 * before


def test_decontaminate_uint16_bands(monkeypatch):
    import alphacut.matte.decontaminate as D

    img, alpha, F, _ = _scene(600, 400, dtype=np.uint16, soft=10.0)
    monkeypatch.setenv("ALPHACUT_TILE_THREADS", "4")  # four row bands, each with its margin
    out = D.estimate_foreground(img, alpha)
    assert out.dtype == np.uint16
    sure = (alpha == 0) | (alpha == 1)
    assert np.array_equal(out[sure], img[sure])
    monkeypatch.setenv("ALPHACUT_TILE_THREADS", "1")
    whole = estimate_foreground(img, alpha)
    # bands with exact margins give the same answer as one piece
    assert np.array_equal(out, whole)


def test_decontaminate_rejects_bad_shapes():
    img, alpha, _, _ = _scene()
    with pytest.raises(ValueError):
        estimate_foreground(img, alpha[:10])


def test_trimap_has_a_band_around_the_contour():
    _, alpha, _, _ = _scene(soft=0.5)
    hard = (alpha > 0.5).astype(np.float32)
    tri = make_trimap(hard, 3)
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    assert (tri == 0.5).sum() > 0


def test_refine_improves_a_too_hard_matte_and_keeps_far_pixels():
    img, alpha, _, _ = _scene(soft=8.0)
    hard = (alpha > 0.5).astype(np.float32)
    out = refine_matte(hard, img)
    assert out.dtype == np.float32 and out.shape == alpha.shape
    assert np.abs(out - alpha).sum() < np.abs(hard - alpha).sum()
    assert out[0, 0] == 0.0 and out[60, 80] == 1.0


def test_refine_bounded_resolution():
    img, alpha, _, _ = _scene(240, 320, soft=8.0)
    hard = (alpha > 0.5).astype(np.float32)
    out = refine_matte(hard, img, max_side=100)
    assert out.shape == alpha.shape and 0 <= out.min() and out.max() <= 1


def test_subject_crop_box_small_and_large():
    m = np.zeros((100, 100), np.float32)
    assert subject_crop_box(m, (1000, 1000, 3)) is None
    m[40:50, 60:70] = 1
    box = subject_crop_box(m, (1000, 2000, 3))
    assert box is not None
    x0, y0, x1, y1 = box
    assert x0 < 1200 and x1 > 1400 and y0 < 400 and y1 > 500
    m[:] = 1
    assert subject_crop_box(m, (1000, 1000, 3)) is None


def test_paste_crop_matte_feathers_inside_only():
    m = np.zeros((50, 60), np.float32)
    crop = np.ones((20, 30), np.float32)
    out = paste_crop_matte(m, crop, (10, 10, 40, 30), feather=4)
    assert out[20, 25] == 1.0 and out[0, 0] == 0.0
    assert 0 < out[10, 25] < 1  # feathered at an inner edge
    full = paste_crop_matte(m, np.ones((50, 60), np.float32), (0, 0, 60, 50))
    assert np.all(full == 1.0)  # image borders are not feathered


def _whole_image_guided_upsample(low: np.ndarray, img: np.ndarray, U) -> np.ndarray:
    """The reference the tile-by-tile filter must equal: one whole-image fit, one whole-image
    resample of the coefficients and the band, then the blend (what ``fit_and_apply`` does per tile)."""
    import cv2

    from alphacut.matte.tiles import resample_tile

    H, W = img.shape[:2]
    s = min(1.0, U.WORK_MAX_SIDE / max(H, W))
    ww, wh = max(1, round(W * s)), max(1, round(H * s))
    p = U._resize(low, (ww, wh))
    Iw = U.to_unit_float(U._resize(img, (ww, wh)))
    r = int(max(2, min(16, round(U.RADIUS_MODEL_PX * max(ww / low.shape[1], wh / low.shape[0])))))
    band = (p > U.CERTAIN) & (p < 1 - U.CERTAIN)
    k = 2 * r + 1
    band = cv2.dilate(band.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    A, b = U.guided_filter_coefficients(Iw, p, r, U.EPS)
    whole = (0, H, 0, W)
    c = resample_tile(np.concatenate([A, b[..., None]], axis=2), H, W, whole)
    weight = resample_tile(band.astype(np.float32), H, W, whole)
    I = U.to_unit_float(img)
    q = np.clip((c[..., :3] * I).sum(axis=2) + c[..., 3], 0, 1)
    base = U._resize(low, (W, H))
    return base + weight * (q - base)


@pytest.mark.parametrize("work_side, tile", [(700, 64), (700, 256), (5000, 100)])
def test_tile_by_tile_filter_equals_the_whole_image_fit(monkeypatch, work_side, tile):
    """Each tile fits the coefficients on its own window plus 2r+1 pixels of margin; the matte
    must equal one whole-image fit (to float rounding), at image borders too, and tiles away
    from the soft band keep the plain upsampled matte."""
    import cv2

    import alphacut.matte.upsample as U

    img, alpha, _, _ = _scene(900, 1400, soft=4.0)
    small = np.zeros_like(alpha)
    small[300:520, 100:760] = cv2.resize(alpha, (660, 220), interpolation=cv2.INTER_AREA)  # off-centre subject
    small[0:80, 1300:1400] = 0.5  # a soft patch on the image's corner: windows clipped at two borders
    img = (img.astype(np.float32) * 0.5 + small[..., None] * 120).astype(np.uint8)
    low = cv2.resize(small, (256, 256), interpolation=cv2.INTER_AREA)
    monkeypatch.setattr(U, "WORK_MAX_SIDE", work_side)  # 700: a low-resolution fit; 5000: full resolution
    monkeypatch.setattr(U, "TILE", tile)
    monkeypatch.setenv("ALPHACUT_TILE_THREADS", "3")
    tiled = U.upsample_matte(low, img)
    whole = _whole_image_guided_upsample(low, img, U)
    assert np.abs(tiled - whole).max() < 1e-5
    far = (slice(700, 900), slice(0, 1200))  # no soft pixel near: the plain upsampled matte
    assert np.array_equal(tiled[far], U._resize(low, (1400, 900))[far])


@pytest.mark.parametrize("h, w", [(480, 2600), (900, 700)])
def test_decontamination_tiles_run_on_threads_with_the_same_result(monkeypatch, h, w):
    """Large path (long side above WORK_MAX_SIDE): tiles; small path: row bands with the blur
    passes' reach as margin. Either way the threads must not change a single value."""
    import alphacut.matte.decontaminate as D

    img, alpha, _, _ = _scene(h, w, soft=10.0)
    monkeypatch.setenv("ALPHACUT_TILE_THREADS", "1")
    one = D.estimate_foreground(img, alpha)
    monkeypatch.setenv("ALPHACUT_TILE_THREADS", "4")
    assert np.array_equal(one, D.estimate_foreground(img, alpha))


def test_crop_pass_gain_counts_real_pixels_only():
    # U2-Netp (320²) on an 854x480 frame, a 300x200 crop: the model sees the subject 2.7x sharper
    assert crop_pass_gain((480, 854), (320, 320), (200, 300), (320, 320)) == pytest.approx(854 / 320)
    # IS-Net (1024²): the whole frame is already enlarged, the crop adds no real detail
    assert crop_pass_gain((480, 854), (1024, 1024), (200, 300), (1024, 1024)) == 1.0
    # IS-Net on a 12 MP photo: the crop does show more
    assert crop_pass_gain((3024, 4032), (1024, 1024), (1200, 1500), (1024, 1024)) > 2


def test_fuse_mattes_confident_model_overrules_an_unsure_one():
    unsure = np.full((4, 4), 0.5, np.float32)
    sure = np.zeros((2, 2), np.float32)  # another resolution, same framing
    sure[:, 1] = 1.0
    out = fuse_mattes(unsure, sure)
    assert out.shape == (4, 4) and out.dtype == np.float32
    assert out[:, 0].max() < 0.01 and out[:, -1].min() > 0.99
    # agreement sharpens, disagreement of equal strength stays undecided
    assert fuse_mattes(np.float32([[0.8]]), np.float32([[0.8]]))[0, 0] > 0.9
    assert fuse_mattes(np.float32([[0.8]]), np.float32([[0.2]]))[0, 0] == pytest.approx(0.5, abs=1e-5)


def test_trimap_leaves_a_decided_plateau_alone():
    """The solver refines edges; it does not re-decide a region the fusion settled, however
    soft: a 0.7 plateau far from the contour is known foreground, a 0.3 one known background.
    A single model's unsure plateau is left to the solver."""
    m = np.zeros((100, 100), np.float32)
    m[10:90, 10:90] = 0.7
    m[30:70, 30:70] = 0.3  # a hole the fusion left soft (a window in a fence, say)
    tri = make_trimap(m, 2, decided=True)
    assert tri[20, 20] == 1.0 and tri[50, 50] == 0.0 and tri[5, 5] == 0.0
    assert tri[10, 50] == 0.5 and tri[30, 50] == 0.5
    one_model = make_trimap(m, 2)  # one model's unsure pixels are the solver's to decide
    assert one_model[20, 20] == 0.5 and one_model[50, 50] == 0.5


def test_trimap_keeps_parts_thinner_than_the_band():
    """In a decided matte, a far giraffe's leg, two pixels wide, inside a band three pixels
    wide would be all unknown with no known foreground to hold it: it keeps its values."""
    m = np.zeros((120, 120), np.float32)
    m[20:100, 20:60] = 0.99  # a body: its edge is a band
    m[40:100, 80:82] = 0.95  # a leg two pixels wide
    tri = make_trimap(m, 3, decided=True)
    assert (tri[40:100, 80:82] == 1.0).all()
    assert tri[20, 40] == 0.5 and tri[60, 40] == 1.0
    img = np.zeros((120, 120, 3), np.uint8)
    img[m > 0.5] = (200, 180, 90)
    out = refine_matte(m, img, decided=True)
    assert out[40:100, 80:82].min() >= 0.9
