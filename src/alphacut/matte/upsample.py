"""Bring the model's low-resolution matte to full resolution, guided by the image's own edges.

A plain resize blurs a 1024² matte over a 12 MP photo; a guided filter (He et al., 2010) fits
the matte locally as a linear function of the image, so the edges follow the photo. The
coefficients are solved at a bounded working resolution and applied at full resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

#: the longest side at which the guided-filter coefficients are solved
WORK_SIDE = 1536


def _gray01(rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    if size is not None and (size[0] != rgb.shape[1] or size[1] != rgb.shape[0]):
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray *= np.float32(1.0 / (65535.0 if rgb.dtype == np.uint16 else 255.0))
    return gray


def upsample_matte(matte: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """float32 (h,w) matte + (H,W,3) image → float32 (H,W) matte in 0..1."""
    height, width = guide.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    lw, lh = max(1, round(width * scale)), max(1, round(height * scale))
    guide_lo = _gray01(guide, (lw, lh))
    p = cv2.resize(matte, (lw, lh), interpolation=cv2.INTER_LINEAR)
    radius = max(2, round(4 * max(lw, lh) / 1024))
    eps = np.float32(1e-3)
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide_lo), box(p)
    cov_ip = box(guide_lo * p) - mean_i * mean_p
    var_i = box(guide_lo * guide_lo) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a, mean_b = box(a), box(b)
    if (lw, lh) == (width, height):
        out = mean_a * guide_lo + mean_b
    else:
        out = cv2.resize(mean_a, (width, height), interpolation=cv2.INTER_LINEAR)
        out *= _gray01(guide)
        out += cv2.resize(mean_b, (width, height), interpolation=cv2.INTER_LINEAR)
    return snap_extremes(out)


#: guided-filter ripple this close to 0 or 1 is filter noise, not soft alpha: it is below half an
#: 8-bit level, so 8-bit output rounds it away anyway; snapping it keeps "fully transparent" and
#: "fully opaque" exact for 16-bit output and for the edge band that decontamination works on.
SNAP = 0.5 / 255.0


def snap_extremes(matte: np.ndarray) -> np.ndarray:
    np.clip(matte, 0.0, 1.0, out=matte)
    matte[matte < SNAP] = 0.0
    matte[matte > 1.0 - SNAP] = 1.0
    return matte
