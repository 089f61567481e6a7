"""Edge-aware upsampling of the model's low-resolution matte to the full image.

Method: a colour *guided filter* (He, Sun & Tang 2010) run as a *fast guided filter*
(He & Sun 2015). The local linear model ``alpha ≈ A · I + b`` is fitted at a bounded working
resolution (never more than ``WORK_MAX_SIDE`` on the long side) and evaluated on the
full-resolution guide. Both happen tile by tile (``fit_and_apply``): only full-resolution tiles
that hold a soft edge are touched, each fits ``A``/``b`` on just the working-resolution window it
reads (exact, thanks to a margin of the filter's reach), and the tiles run on every core
(``tiles``). Edges follow the real image at every resolution, temporaries stay in cache, and a
200-megapixel photo never holds more than the output matte plus a few tiles of float32.

Everything is float32; the matte is never stretched, thresholded or quantised here.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..parallel import map_pieces
from .tiles import TILE, Tile, band_tiles, few_points, resample_points, resample_tile, window_for

__all__ = ["GuidedFit", "upsample_matte", "plan_upsample", "guided_filter_coefficients", "fit_and_apply",
           "to_unit_float"]

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
    c = coefficient_planes(I, p, r, eps)
    return np.ascontiguousarray(c[..., :3]), np.ascontiguousarray(c[..., 3])


def coefficient_planes(I: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """The guided filter's box-averaged coefficients as one (h, w, 4) array ``[A_r, A_g, A_b, b]``.

    Worked one colour plane at a time (NumPy is several times slower on a trailing axis of 3),
    with the 3x3 covariance inverted through its adjugate, and returned as 4 channels: the
    layout OpenCV box-filters and resamples on its vectorised path.
    """
    R, G, B = cv2.split(np.ascontiguousarray(I, dtype=np.float32))
    p = np.ascontiguousarray(p, dtype=np.float32)
    mr, mg, mb, mp = _box(R, r), _box(G, r), _box(B, r), _box(p, r)
    cr = _box(R * p, r) - mr * mp
    cg = _box(G * p, r) - mg * mp
    cb = _box(B * p, r) - mb * mp
    e = np.float32(eps)
    vrr = _box(R * R, r) - mr * mr + e
    vrg = _box(R * G, r) - mr * mg
    vrb = _box(R * B, r) - mr * mb
    vgg = _box(G * G, r) - mg * mg + e
    vgb = _box(G * B, r) - mg * mb
    vbb = _box(B * B, r) - mb * mb + e
    del R, G, B
    # inverse via the adjugate
    i_rr = vgg * vbb - vgb * vgb
    i_rg = vgb * vrb - vrg * vbb
    i_rb = vrg * vgb - vgg * vrb
    i_gg = vrr * vbb - vrb * vrb
    i_gb = vrb * vrg - vrr * vgb
    i_bb = vrr * vgg - vrg * vrg
    inv_det = np.float32(1.0) / np.maximum(vrr * i_rr + vrg * i_rg + vrb * i_rb, np.float32(1e-12))
    del vrr, vrg, vrb, vgg, vgb, vbb
    a_r = (i_rr * cr + i_rg * cg + i_rb * cb) * inv_det
    a_g = (i_rg * cr + i_gg * cg + i_gb * cb) * inv_det
    a_b = (i_rb * cr + i_gb * cg + i_bb * cb) * inv_det
    b = mp - a_r * mr - a_g * mg - a_b * mb
    return _box(cv2.merge([a_r, a_g, a_b, b]), r)


class GuidedFit:
    """The guided filter planned for one image: what every tile needs to fit its coefficients
    at working resolution and evaluate them at full resolution (see ``fit_and_apply``).

    ``fit(t)`` and ``apply(t, ...)`` are the two halves of one tile's work; ``fit_and_apply``
    runs them back to back on every band tile, and ``matte.fused`` runs the fits first (it needs
    the filter's output at working resolution before the full-resolution pass) and then
    applies each tile together with that tile's decontamination.
    """

    def __init__(self, guide: np.ndarray, Iw: np.ndarray, p: np.ndarray, band: np.ndarray, r: int,
                 base: np.ndarray | None, tile: int | None = None, *, coarse: np.ndarray | None = None) -> None:
        self.guide, self.Iw, self.p, self.r = guide, Iw, p, r
        #: the full-resolution output, or None until ``output`` makes it from ``coarse``
        self.base: np.ndarray = base  # type: ignore[assignment]
        self.coarse = coarse
        self.H, self.W = guide.shape[:2]
        self.grid = p.shape
        self.same = self.grid == (self.H, self.W)
        self.band_f = band.astype(np.float32)
        self.margin = 2 * r + 1
        self.tiles = band_tiles(band, self.H, self.W, tile or TILE)

    def output(self) -> np.ndarray:
        """The full-resolution matte ``apply`` blends into (the model's matte plainly resized),
        made on the first call: the fused pass makes it after its blur passes, so its 48 MB
        (12 MP) are not held through them."""
        if self.base is None:
            base = _resize(self.coarse, (self.W, self.H))  # a new float32 array (cv2.resize)
            self.base = base.copy() if base is self.coarse else base
        return self.base

    def release_fit_inputs(self) -> None:
        """Every tile's coefficients are fitted: let go of what only ``fit`` reads (the working
        matte and guide; 22 MB at 12 MP), keeping what ``apply`` needs."""
        self.p = self.Iw = None  # type: ignore[assignment]

    def window(self, t: Tile) -> Tile:
        """The working-resolution window (y0, y1, x0, x1) tile ``t`` reads."""
        return t if self.same else window_for(t, self.H, self.W, self.grid)

    def fit(self, t: Tile) -> np.ndarray:
        """The box-averaged coefficients ``[A_r, A_g, A_b, b]`` over ``window(t)``, fitted on
        that window plus the filter's reach (exactly the whole-image fit there)."""
        wh, ww = self.grid
        wy0, wy1, wx0, wx1 = self.window(t)
        m = self.margin
        fy0, fy1 = max(0, wy0 - m), min(wh, wy1 + m)
        fx0, fx1 = max(0, wx0 - m), min(ww, wx1 + m)
        fit = coefficient_planes(to_unit_float(self.Iw[fy0:fy1, fx0:fx1]), self.p[fy0:fy1, fx0:fx1], self.r, EPS)
        return fit[wy0 - fy0:wy1 - fy0, wx0 - fx0:wx1 - fx0]

    def apply(self, t: Tile, c: np.ndarray) -> None:
        """Evaluate the fitted coefficients on full-resolution tile ``t`` and blend the result
        into ``base`` by the band's (resampled) weight.

        Where the weight is 0 the blend leaves ``base`` as it is, so on a larger picture, when
        few of the tile's pixels have a weight (a third of a band tile on average), only they
        are evaluated: the coefficients are resampled at just those pixels and the same float32
        operations run on the gathered values, so the matte is bit for bit the whole tile's."""
        y0, y1, x0, x1 = t
        wy0, wy1, wx0, wx1 = self.window(t)
        if self.same:
            self._apply_tile(t, c, self.band_f[y0:y1, x0:x1])
            return
        weight = resample_tile(self.band_f[wy0:wy1, wx0:wx1], self.H, self.W, t, grid=self.grid, origin=(wy0, wx0))
        inside = weight > 0
        points = few_points(inside) if self.base.flags.c_contiguous and self.guide.flags.c_contiguous else None
        if points is None:
            self._apply_tile(t, resample_tile(c, self.H, self.W, t, grid=self.grid, origin=(wy0, wx0)), weight)
            return
        _, rows, cols = points
        c = resample_points(c, self.H, self.W, t, rows, cols, grid=self.grid, origin=(wy0, wx0))
        flat = (rows + y0) * self.W + (cols + x0)
        q = _evaluate(c, to_unit_float(np.take(self.guide.reshape(-1, self.guide.shape[2]), flat, axis=0)))
        base = self.base.reshape(-1)
        seg = np.take(base, flat)
        q -= seg
        q *= weight[inside]
        seg += q
        np.put(base, flat, seg)

    def _apply_tile(self, t: Tile, c: np.ndarray, weight: np.ndarray) -> None:
        """``apply`` over the whole tile: ``c`` and ``weight`` already at full resolution."""
        y0, y1, x0, x1 = t
        q = _evaluate(c, to_unit_float(self.guide[y0:y1, x0:x1]))
        seg = self.base[y0:y1, x0:x1]
        q -= seg
        q *= weight
        seg += q


def _evaluate(c: np.ndarray, I: np.ndarray) -> np.ndarray:
    """The guided filter's output a·I + b, clipped to 0..1, from coefficients ``c`` (…, 4: three
    slopes and the offset; overwritten) and the guide ``I`` (…, 3) — a tile or gathered pixels."""
    q = c[..., 3]
    q += c[..., 0] * I[..., 0]
    q += c[..., 1] * I[..., 1]
    q += c[..., 2] * I[..., 2]
    return np.clip(q, 0.0, 1.0, out=q)

def fit_and_apply(guide: np.ndarray, Iw: np.ndarray, p: np.ndarray, band: np.ndarray, r: int,
                  base: np.ndarray, tile: int | None = None) -> np.ndarray:
    """The guided filter, fitted at working resolution and evaluated at full resolution, one
    full-resolution tile at a time: only tiles that hold a band pixel, on every core.

    For each such tile the coefficients are fitted on just the working-resolution window its
    bilinear footprint reads, plus ``2r + 1`` pixels of margin (each coefficient depends on
    inputs within ``2r``: a box filter of box-filtered statistics), so the result equals the
    whole-image fit; at the image's own borders the window reaches the border, reflected as in
    the whole-image call. Fitting tile by tile keeps every temporary in cache (about half the
    time of one whole-image fit, before any tile is skipped) and never holds full-size
    coefficient maps.

    ``guide`` full-resolution RGB (uint8/uint16), ``Iw`` the guide at working resolution
    (float32 0..1 or an integer type), ``p`` the matte at working resolution, ``band`` where
    the filter may change it (bool, working resolution); ``base`` (full resolution, float32) is
    modified in place — blended towards the filter by the band's bilinear weight — and returned.
    """
    plan = GuidedFit(guide, Iw, p, band, r, base, tile)
    map_pieces(lambda t: plan.apply(t, plan.fit(t)), plan.tiles)
    return base


def plan_upsample(matte: np.ndarray, guide: np.ndarray) -> GuidedFit | np.ndarray:
    """What ``upsample_matte`` does before the tiles: the working resolution, the band and the
    plainly resized matte. Returns the finished matte when no pixel is soft, else the plan."""
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
    Iw = _resize(guide, (ww, wh))  # converted to float window by window

    # radius: about one model pixel in working pixels (at least 2), so the filter can move
    # an edge by up to a model pixel towards the colour edge that caused it
    up = max(ww / w, wh / h)
    r = int(max(2, min(16, round(RADIUS_MODEL_PX * up))))

    band = (p > CERTAIN) & (p < 1.0 - CERTAIN)
    if not band.any():
        return _resize(m, (W, H))
    k = 2 * r + 1
    band = cv2.dilate(band.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0

    return GuidedFit(guide, Iw, p, band, r, None, coarse=m)  # the output: ``GuidedFit.output``


def upsample_matte(matte: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """matte: float32 (h, w) in 0..1 at model resolution (may have a different aspect than
    guide: the model input was a stretched square); guide: uint8 or uint16 (H, W, 3) RGB
    full-resolution image. Returns float32 (H, W) in 0..1, edge-aware (guided by the image)."""
    plan = plan_upsample(matte, guide)
    if isinstance(plan, np.ndarray):
        return plan
    base = plan.output()
    map_pieces(lambda t: plan.apply(t, plan.fit(t)), plan.tiles)
    return base
