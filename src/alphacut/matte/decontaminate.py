"""Decontamination: estimate the true foreground colour of semi-transparent edge pixels.

A pixel on a soft edge was captured as ``I = a·F + (1 - a)·B``. Writing ``I`` with alpha ``a``
leaves the old background ``B`` in the hair; we estimate ``F`` instead.

Method: *blur-fusion* foreground estimation (Forte & Pitié, "Approximate Fast Foreground
Colour Estimation", ICIP 2021), three passes of decreasing radius, then blended with the
observed colour by ``sqrt(alpha)``: ``F = I + sqrt(a) · (F_bf - I)``. The matte we decontaminate
with is a model's estimate; where it says "nearly transparent" the extrapolated colour is the
least reliable, and keeping part of the observed colour there halves the damage of alpha errors
(colour error on alphamatting-dev composites, IS-Net matte: 8.8 plain blur-fusion -> 6.3;
U2-Netp: 7.9 -> 6.4; with the ground-truth alpha it costs nothing, 4.2 -> 4.3). It is a
handful of box filters, so it is fast at any resolution, and it is processed in bounded
tiles (with exact margins, box filters being local) that touch the edge band only.
Measured on alphamatting-dev composites it beats pymatting's multi-level estimator
(``estimate_foreground_ml``, what rembg ``-dc`` uses) on colour error; see bench/quality.py.

Only pixels with ``0 < alpha < 1`` change; ``alpha == 0`` and ``alpha == 1`` keep their
original values exactly, and the output keeps the input's dtype (uint8 or uint16).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..parallel import map_pieces, worker_threads
from .tiles import Tile, all_tiles, few_points, resample_points, resample_tile

__all__ = ["BlurFields", "blur_fusion", "blur_grid", "estimate_foreground"]

#: blur-fusion radii in pixels up to a long side of 1000 px (scaled up with larger images,
#: never down: the soft band of a small image is not proportionally thinner)
RADII = (10, 3, 1)
#: F = I + alpha**CONFIDENCE_POWER * (F_blur_fusion - I) for a model's matte (fast tier)
CONFIDENCE_POWER = 0.5
#: the same for the best tier's refined matte: it is more trustworthy where faint, and keeping
#: less of the observed colour there stops faint strands from carrying the old background
#: (whitish haze over a dark new background). U2-Netp, alphamatting-dev composites, best tier:
#: power 0.5 -> edge 12.33, colour 6.13; 0.25 -> 12.28 / 6.34; 0 (plain) -> 12.28 / 7.63.
REFINED_CONFIDENCE_POWER = 0.25
REFERENCE_SIDE = 1000
#: alpha this close to 0 or 1 is certain: the colour of a pixel that is invisible (< 1/512)
#: or opaque (> 511/512) is kept as it is — a model's matte is rarely exactly 0 or 1, and
#: "decontaminating" the whole image's noise floor costs time and changes nothing visible
CERTAIN = 1.0 / 512.0
#: above this long side the wide blur passes run at ``BLUR_SIDE`` (they are smooth by
#: construction), and only a per-pixel correction runs at full resolution, in the band
WORK_MAX_SIDE = 2048
#: long side of the blur passes on large images. Colour error with the true alpha on
#: alphamatting-dev composites upscaled 4x (~3200 px; ``bench/decontaminate_large.py``):
#: blur side 2048 -> 3.83, 1024 -> 3.83 at 0.6x the CPU time; upscaled 2x (~1600 px), 1024
#: against the full-resolution path: 3.87 vs 3.84
BLUR_SIDE = 1024


def _blur(x: np.ndarray, r: int) -> np.ndarray:
    k = 2 * r + 1
    return cv2.blur(x, (k, k), borderType=cv2.BORDER_REPLICATE)


def blur_fusion(I: np.ndarray, a: np.ndarray, radii: tuple[int, ...] = RADII) -> np.ndarray:
    """I float32 (h, w, 3) in 0..1, a float32 (h, w) in 0..1 -> F float32 (h, w, 3) in 0..1."""
    return blur_fusion_fb(I, a, radii)[0]


def blur_fusion_fb(I: np.ndarray, a: np.ndarray, radii: tuple[int, ...] = RADII
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Blur-fusion returning both estimates: foreground F and the blurred background B."""
    F, B = blur_fusion_planes(cv2.split(np.ascontiguousarray(I, dtype=np.float32)), a, radii)
    return cv2.merge(F), cv2.merge(B)


def blur_fusion_planes(observed: list[np.ndarray], a: np.ndarray, radii: tuple[int, ...] = RADII
                       ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``blur_fusion_fb`` on the picture's colour planes (float32, 0..1), returning planes.

    Worked one colour plane at a time: NumPy is several times slower broadcasting over a
    trailing axis of 3, and this halves the time of the whole estimate."""
    eps = np.float32(1e-5)
    a = np.ascontiguousarray(a, dtype=np.float32)
    rest = 1 - a
    F, B = observed, observed
    for r in radii:
        ba = _blur(a, r)
        inv_f = 1 / (ba + eps)
        inv_b = 1 / ((1 - ba) + eps)
        new_f, new_b = [], []
        for i, f_prev, b_prev in zip(observed, F, B):
            bF = _blur(f_prev * a, r)
            bF *= inv_f
            bB = _blur(b_prev * rest, r)
            bB *= inv_b
            # F = bF + a * (I - a * bF - (1 - a) * bB)
            f = i - a * bF
            f -= rest * bB
            f *= a
            f += bF
            np.clip(f, 0.0, 1.0, out=f)
            new_f.append(f)
            new_b.append(bB)
        F, B = new_f, new_b
    return F, B


def _scaled_radii(H: int, W: int) -> tuple[int, ...]:
    s = max(H, W) / REFERENCE_SIDE
    return tuple(max(1, int(round(r * max(s, 1.0)))) for r in RADII)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, *, confidence_power: float | None = None) -> np.ndarray:
    """image uint8/uint16 (H,W,3), alpha float32 (H,W) 0..1 -> foreground colours, same
    dtype/shape as image. Only the edge band changes (``0 < alpha < 1``); ``alpha == 0`` and
    ``alpha == 1`` pixels keep the original values exactly. ``confidence_power``: see
    ``CONFIDENCE_POWER`` (the default)."""
    power = np.float32(CONFIDENCE_POWER if confidence_power is None else confidence_power)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if alpha.shape != image.shape[:2]:
        raise ValueError(f"alpha shape {alpha.shape} does not match image {image.shape[:2]}")
    H, W = alpha.shape
    if max(H, W) > WORK_MAX_SIDE:
        return _estimate_foreground_large(image, alpha, power)
    out = image.copy()
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    radii = _scaled_radii(H, W)
    margin = sum(radii) * 2 + 2
    # horizontal bands, one per core (the margin makes each band exact): a 1 MP photo's blur
    # passes run on every core instead of one
    bands = max(1, min(worker_threads(), H // (4 * margin)))
    step = -(-H // bands)

    def band_pass(t: Tile) -> None:
        y0, y1, x0, x1 = t
        band = _soft(alpha[y0:y1, x0:x1])
        if band is None:
            return
        # the band's bounding box inside this strip, plus the blur passes' reach
        ys, xs = np.nonzero(band)
        ty0, ty1 = y0 + int(ys.min()), y0 + int(ys.max()) + 1
        tx0, tx1 = x0 + int(xs.min()), x0 + int(xs.max()) + 1
        band = band[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0]
        by0, by1 = max(0, ty0 - margin), min(H, ty1 + margin)
        bx0, bx1 = max(0, tx0 - margin), min(W, tx1 + margin)
        I = image[by0:by1, bx0:bx1].astype(np.float32) * np.float32(1.0 / scale)
        a = np.clip(alpha[by0:by1, bx0:bx1].astype(np.float32, copy=False), 0, 1)
        F = blur_fusion(I, a, radii)
        F -= I
        F *= _confidence(a, power)[..., None]
        F += I
        F = F[ty0 - by0:ty1 - by0, tx0 - bx0:tx1 - bx0]
        vals = np.round(F[band] * np.float32(scale)).astype(image.dtype)
        sub = out[ty0:ty1, tx0:tx1]
        sub[band] = vals

    map_pieces(band_pass, [(y0, min(H, y0 + step), 0, W) for y0 in range(0, H, step)], threads=bands)
    return out


def _soft(a: np.ndarray) -> np.ndarray | None:
    """Where ``a`` is neither certainly transparent nor certainly opaque; None if nowhere."""
    band = (a > CERTAIN) & (a < 1 - CERTAIN)
    return band if band.any() else None


def _confidence(a: np.ndarray, power: np.float32) -> np.ndarray:
    """``a ** power``; square roots for the tiers' powers (``np.power`` is 5x slower)."""
    if power == 0.5:
        return np.sqrt(a)
    if power == 0.25:
        return np.sqrt(np.sqrt(a))
    return np.power(a, power)


def _estimate_foreground_large(image: np.ndarray, alpha: np.ndarray, power: np.float32 = np.float32(CONFIDENCE_POWER)) -> np.ndarray:
    """Big images: blur-fusion at ``BLUR_SIDE``, then one exact per-pixel step at full size.

    The blur-fusion estimates are local means over tens to hundreds of pixels at full
    resolution, so computing them on a downscaled copy and resampling loses nothing visible,
    while the final step ``F = F̂ + a·(I − a·F̂ − (1 − a)·B̂)`` uses each pixel's own colour and
    alpha. Cost and memory no longer grow with the blur radius times the image area: a 12 MP
    photo takes a fraction of the tiled path's time and a 200 MP one stays bounded. The full
    resolution step runs only on tiles that hold a soft pixel, on every core.
    """
    H, W = alpha.shape
    w, h = blur_grid(H, W)
    fields = BlurFields.fit(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA),
                            np.clip(cv2.resize(alpha, (w, h), interpolation=cv2.INTER_AREA), 0.0, 1.0),
                            image.dtype, power)
    out = image.copy()
    map_pieces(lambda t: fields.correct(image, alpha, out, t), all_tiles(H, W))
    return out


def blur_grid(H: int, W: int) -> tuple[int, int]:
    """(w, h) of the blur passes for a large picture of H x W pixels (long side ``BLUR_SIDE``)."""
    s = BLUR_SIDE / max(H, W)
    return max(1, round(W * s)), max(1, round(H * s))


class BlurFields:
    """The blur-fusion estimates of a large picture at ``blur_grid`` resolution, and the exact
    per-pixel step that brings them to one full-resolution tile (``correct``)."""

    def __init__(self, f4: np.ndarray, b4: np.ndarray, top: np.float32, power: np.float32) -> None:
        self.f4, self.b4, self.top, self.power = f4, b4, top, power

    @classmethod
    def fit(cls, small_image: np.ndarray, small_alpha: np.ndarray, dtype: np.dtype,
            power: np.float32 = np.float32(CONFIDENCE_POWER)) -> "BlurFields":
        """``small_image`` the picture at ``blur_grid`` size (its own integer type), ``small_alpha``
        the matte there (float32 0..1)."""
        top = np.float32(65535.0 if np.dtype(dtype) == np.uint16 else 255.0)
        h, w = small_alpha.shape
        small_i = small_image.astype(np.float32) / top
        f_small, b_small = blur_fusion_planes(cv2.split(small_i), small_alpha, _scaled_radii(h, w))
        del small_i
        # two 4-channel fields (the 4th unused), in the image's own units: OpenCV resamples 1- and
        # 4-channel images on its vectorised path, 3- and 6-channel ones several times slower;
        # merged straight from the planes (no 3-channel copies in between)
        pad = np.zeros((h, w), np.float32)
        f4 = cv2.merge([*f_small, pad])
        del f_small
        b4 = cv2.merge([*b_small, pad])
        del b_small
        f4 *= top
        b4 *= top
        return cls(f4, b4, top, np.float32(power))

    def correct(self, image: np.ndarray, alpha: np.ndarray, out: np.ndarray, t: Tile) -> None:
        """Write the decontaminated colour of tile ``t``'s soft pixels into ``out`` (the others
        keep what ``out`` holds: the original colour).

        Where the soft pixels are few (a soft tile's band is typically a quarter of it) only
        they are computed: the fields are resampled at just those pixels and the formula runs
        on the gathered values, the same float32 operations on the same inputs as over the
        whole tile (``_correct_tile``), so the colour is bit for bit the same."""
        H, W = alpha.shape
        y0, y1, x0, x1 = t
        a = alpha[y0:y1, x0:x1]
        band = _soft(a)
        if band is None:
            return
        top = self.top
        points = few_points(band) if image.flags.c_contiguous and out.flags.c_contiguous else None
        if points is None:
            self._correct_tile(image, alpha, out, t, band)
            return
        _, rows, cols = points
        est_f = resample_points(self.f4, H, W, t, rows, cols)
        est_b = resample_points(self.b4, H, W, t, rows, cols)
        a = a[band]
        confidence = _confidence(a, self.power)
        rest = 1 - a
        flat = (rows + y0) * W + (cols + x0)  # the pixels' places in the whole picture
        observed = _take_pixels(image, flat)
        # one channel at a time: NumPy is several times slower on a trailing axis of 3
        for c in range(3):
            f = _corrected(observed[:, c], a, rest, est_f[:, c], est_b[:, c], confidence, top)
            observed[:, c] = f  # in range: a blend of two values in 0..top, rounded
        _put_pixels(out, flat, observed)

    def _correct_tile(self, image: np.ndarray, alpha: np.ndarray, out: np.ndarray, t: Tile,
                      band: np.ndarray) -> None:
        """``correct`` over the whole tile (most of it soft): the same formula."""
        H, W = alpha.shape
        y0, y1, x0, x1 = t
        a = alpha[y0:y1, x0:x1]
        top = self.top
        est_f, est_b = resample_tile(self.f4, H, W, t), resample_tile(self.b4, H, W, t)
        confidence = _confidence(a, self.power)
        rest = 1 - a
        tile_in, tile_out = image[y0:y1, x0:x1], out[y0:y1, x0:x1]
        for c in range(3):
            f = _corrected(tile_in[..., c], a, rest, est_f[..., c], est_b[..., c], confidence, top)
            np.copyto(tile_out[..., c], f, where=band, casting="unsafe")


def _corrected(observed: np.ndarray, a: np.ndarray, rest: np.ndarray, est_f: np.ndarray, est_b: np.ndarray,
               confidence: np.ndarray, top: np.float32) -> np.ndarray:
    """One colour plane's decontaminated values (float32, rounded), for a tile or for gathered
    pixels alike: F = F̂ + a·(I − a·F̂ − (1 − a)·B̂), clipped, then blended with the observed I by
    the confidence."""
    i = observed.astype(np.float32)
    f = i - a * est_f
    f -= rest * est_b
    f *= a
    f += est_f
    np.clip(f, 0.0, top, out=f)
    f -= i
    f *= confidence
    f += i
    np.rint(f, out=f)
    return f


def _take_pixels(image: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """The (n, 3) pixels of C-contiguous ``image`` (H, W, 3) at flat indices ``flat`` (a new array)."""
    return np.take(image.reshape(-1, image.shape[2]), flat, axis=0)


def _put_pixels(out: np.ndarray, flat: np.ndarray, values: np.ndarray) -> None:
    """Write (n, 3) ``values`` to C-contiguous ``out`` (H, W, 3) at flat indices ``flat``; each
    pixel as one opaque item (NumPy's fancy assignment over a trailing axis is 5x slower)."""
    item = np.dtype((np.void, out.dtype.itemsize * out.shape[2]))
    np.put(out.reshape(-1, out.shape[2]).view(item).reshape(-1), flat,
           np.ascontiguousarray(values, out.dtype).view(item).reshape(-1))
