"""Edge-aware upsampling of the model's low-resolution matte to the full image.

Method: a colour *guided filter* (He, Sun & Tang 2010) run as a *fast guided filter*
(He & Sun 2015). The local linear model ``alpha ≈ A · I + b`` is fitted at a bounded working
resolution (never more than ``WORK_MAX_SIDE`` on the long side) and ``A``/``b`` are then
upsampled and applied to the full-resolution guide tile by tile — only tiles that hold a soft
edge, on every core (``tiles``) — so edges follow the real image at every resolution while
memory stays bounded (a 200-megapixel photo never holds more than the output matte plus a few
tiles of float32 temporaries).

Everything is float32; the matte is never stretched, thresholded or quantised here.
"""

from __future__ import annotations

import cv2
import numpy as np

from .tiles import TILE, Tile, all_tiles, band_tiles, map_tiles, resample_tile, worker_threads

__all__ = ["upsample_matte", "guided_filter_coefficients", "apply_coefficients", "to_unit_float"]

#: long side of the working resolution where the guided filter's coefficients are fitted
WORK_MAX_SIDE = 2048
#: regularisation of the guided filter (guide in 0..1); larger = smoother, smaller = follows colour edges
EPS = 1e-4
#: matte values this close to 0 or 1 count as certain (the filter only changes the band between)
CERTAIN = 1.0 / 512.0
#: guided-filter radius in model pixels (converted to working pixels)
RADIUS_MODEL_PX = 1.0


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16/float RGB -> float32 in 0..1 (no copy of float32 input)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1.0 / 255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) * np.float32(1.0 / 65535.0)
    return np.asarray(image, dtype=np.float32)


def _resize(x: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    w, h = size_wh
    if x.shape[1] == w and x.shape[0] == h:
        return x
    shrinking = w < x.shape[1] and h < x.shape[0]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(x, (w, h), interpolation=interp)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, cv2.CV_32F, (2 * r + 1, 2 * r + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def guided_filter_coefficients(I: np.ndarray, p: np.ndarray, r: int, eps: float
                               ) -> tuple[np.ndarray, np.ndarray]:
    """Colour guided filter: returns ``A`` (h, w, 3) and ``b`` (h, w), already box-averaged,
    so that ``q = sum_c A[..., c] * I[..., c] + b``. ``I`` float32 (h, w, 3), ``p`` float32 (h, w)."""
    I = np.ascontiguousarray(I, dtype=np.float32)
    p = np.ascontiguousarray(p, dtype=np.float32)
    mI = _box(I, r)
    mp = _box(p, r)
    Ip = I * p[..., None]
    cov_Ip = _box(Ip, r) - mI * mp[..., None]
    del Ip
    # covariance matrix of I, symmetric 3x3 per pixel
    r0, g0, b0 = I[..., 0], I[..., 1], I[..., 2]
    mr, mg, mb = mI[..., 0], mI[..., 1], mI[..., 2]
    e = np.float32(eps)
    vrr = _box(r0 * r0, r) - mr * mr + e
    vrg = _box(r0 * g0, r) - mr * mg
    vrb = _box(r0 * b0, r) - mr * mb
    vgg = _box(g0 * g0, r) - mg * mg + e
    vgb = _box(g0 * b0, r) - mg * mb
    vbb = _box(b0 * b0, r) - mb * mb + e
    # inverse via the adjugate
    i_rr = vgg * vbb - vgb * vgb
    i_rg = vgb * vrb - vrg * vbb
    i_rb = vrg * vgb - vgg * vrb
    i_gg = vrr * vbb - vrb * vrb
    i_gb = vrb * vrg - vrr * vgb
    i_bb = vrr * vgg - vrg * vrg
    det = vrr * i_rr + vrg * i_rg + vrb * i_rb
    del vrr, vrg, vrb, vgg, vgb, vbb
    inv_det = np.float32(1.0) / np.maximum(det, np.float32(1e-12))
    cr, cg, cb = cov_Ip[..., 0], cov_Ip[..., 1], cov_Ip[..., 2]
    A = np.empty_like(I)
    A[..., 0] = (i_rr * cr + i_rg * cg + i_rb * cb) * inv_det
    A[..., 1] = (i_rg * cr + i_gg * cg + i_gb * cb) * inv_det
    A[..., 2] = (i_rb * cr + i_gb * cg + i_bb * cb) * inv_det
    b = mp - (A * mI).sum(axis=2)
    return _box(A, r), _box(b, r)


def parallel_coefficients(I: np.ndarray, p: np.ndarray, r: int, eps: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``guided_filter_coefficients`` computed in horizontal bands on every core.

    Each output row depends on input rows within ``2r`` (a box filter of box-filtered
    statistics), so a band computed with ``2r + 1`` rows of margin is exact; at the image's
    own top and bottom the margin is the image edge, reflected as in the whole-image call.
    """
    h, w = p.shape
    n = min(worker_threads(), h // 256)
    if n <= 1:
        return guided_filter_coefficients(I, p, r, eps)
    A = np.empty((h, w, 3), np.float32)
    b = np.empty((h, w), np.float32)
    margin = 2 * r + 1
    step = -(-h // n)

    def band(t: Tile) -> None:
        y0, y1 = t[0], t[1]
        m0, m1 = max(0, y0 - margin), min(h, y1 + margin)
        a_band, b_band = guided_filter_coefficients(I[m0:m1], p[m0:m1], r, eps)
        A[y0:y1], b[y0:y1] = a_band[y0 - m0:y1 - m0], b_band[y0 - m0:y1 - m0]

    map_tiles(band, [(y0, min(h, y0 + step), 0, w) for y0 in range(0, h, step)], threads=n)
    return A, b


def apply_coefficients(A: np.ndarray, b: np.ndarray, guide: np.ndarray, base: np.ndarray,
                       band: np.ndarray | None = None, tile: int | None = None) -> np.ndarray:
    """Evaluate ``A · I + b`` at the guide's full resolution into ``base`` (modified in place
    and returned). ``A``/``b`` may be at a lower resolution: they are bilinearly resampled with
    pixel-centre alignment. Where ``band`` (same size as ``A``) is False, ``base`` is kept, and
    tiles with no band pixel are not touched at all; the rest run on every core."""
    H, W = guide.shape[:2]
    tile = tile or TILE
    coeff = np.concatenate([A, b[..., None]], axis=2).astype(np.float32, copy=False)  # (h, w, 4)
    band_f = None if band is None else band.astype(np.float32)
    tiles = all_tiles(H, W, tile) if band is None else band_tiles(band, H, W, tile)

    def evaluate(t: Tile) -> None:
        y0, y1, x0, x1 = t
        c = resample_tile(coeff, H, W, t)
        I = to_unit_float(guide[y0:y1, x0:x1])
        q = c[..., 3]
        q += c[..., 0] * I[..., 0]
        q += c[..., 1] * I[..., 1]
        q += c[..., 2] * I[..., 2]
        np.clip(q, 0.0, 1.0, out=q)
        seg = base[y0:y1, x0:x1]
        if band_f is None:
            seg[...] = q
        else:
            seg += resample_tile(band_f, H, W, t) * (q - seg)

    map_tiles(evaluate, tiles)
    return base


def _coefficients_around(band: np.ndarray, I: np.ndarray, p: np.ndarray, r: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients fitted only over the band's bounding box (plus the filter's reach, so
    they are exact inside it); zero elsewhere, where nothing reads them. A subject that fills
    half the frame costs half the fit."""
    rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    reach = 2 * r + 2  # the fit's own footprint plus the bilinear footprint of the apply step
    h, w = p.shape
    y0, y1 = max(0, int(rows[0]) - reach), min(h, int(rows[-1]) + 1 + reach)
    x0, x1 = max(0, int(cols[0]) - reach), min(w, int(cols[-1]) + 1 + reach)
    if (y1 - y0) * (x1 - x0) > 0.9 * h * w:
        return parallel_coefficients(I, p, r, EPS)
    A = np.zeros((h, w, 3), np.float32)
    b = np.zeros((h, w), np.float32)
    A[y0:y1, x0:x1], b[y0:y1, x0:x1] = parallel_coefficients(I[y0:y1, x0:x1], p[y0:y1, x0:x1], r, EPS)
    return A, b


def upsample_matte(matte: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """matte: float32 (h, w) in 0..1 at model resolution (may have a different aspect than
    guide: the model input was a stretched square); guide: uint8 or uint16 (H, W, 3) RGB
    full-resolution image. Returns float32 (H, W) in 0..1, edge-aware (guided by the image)."""
    if matte.ndim != 2:
        raise ValueError(f"matte must be 2-D, got shape {matte.shape}")
    if guide.ndim != 3 or guide.shape[2] < 3:
        raise ValueError(f"guide must be (H, W, 3), got shape {guide.shape}")
    guide = guide[..., :3]
    H, W = guide.shape[:2]
    m = np.clip(np.asarray(matte, dtype=np.float32), 0.0, 1.0)
    h, w = m.shape

    # working resolution: the full image, capped at WORK_MAX_SIDE on the long side
    s = min(1.0, WORK_MAX_SIDE / max(H, W))
    ww, wh = max(1, round(W * s)), max(1, round(H * s))
    p = _resize(m, (ww, wh))
    Iw = to_unit_float(_resize(guide, (ww, wh)) if (ww, wh) != (W, H) else guide)

    # radius: about one model pixel in working pixels (at least 2), so the filter can move
    # an edge by up to a model pixel towards the colour edge that caused it
    up = max(ww / w, wh / h)
    r = int(max(2, min(16, round(RADIUS_MODEL_PX * up))))

    band = (p > CERTAIN) & (p < 1.0 - CERTAIN)
    if not band.any():
        return _resize(m, (W, H))
    k = 2 * r + 1
    band = cv2.dilate(band.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0

    A, b = _coefficients_around(band, Iw, p, r)
    del Iw
    base = _resize(m, (W, H))  # a new float32 array (cv2.resize), filled in place below
    if base is m:
        base = base.copy()
    if (ww, wh) == (W, H):
        q = (A * to_unit_float(guide)).sum(axis=2) + b
        np.clip(q, 0.0, 1.0, out=q)
        base[band] = q[band]
        return base
    return apply_coefficients(A, b, guide, base, band)
