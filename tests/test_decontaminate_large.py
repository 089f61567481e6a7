"""Decontamination on images above the working resolution (the bounded-resolution path)."""

import numpy as np

from alphacut.matte import decontaminate


def _composite(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A red subject over a green wall with a soft edge 24 px wide: I = a·F + (1 − a)·B."""
    x = np.arange(w, dtype=np.float32)
    a_row = np.clip((x - w * 0.5) / 24.0, 0, 1)
    alpha = np.tile(a_row, (h, 1))
    fg = np.array([220, 30, 30], np.float32)
    bg = np.array([20, 200, 40], np.float32)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return np.rint(img).astype(np.uint8), alpha


def test_large_image_takes_the_bounded_path_and_removes_the_spill() -> None:
    h, w = 1200, 3000  # long side above WORK_MAX_SIDE
    assert w > decontaminate.WORK_MAX_SIDE
    img, alpha = _composite(h, w)
    out = decontaminate.estimate_foreground(img, alpha)
    band = (alpha > 0.2) & (alpha < 0.8)
    green_before = img[band][:, 1].astype(float).mean()
    green_after = out[band][:, 1].astype(float).mean()
    assert green_after < green_before * 0.75, "less of the green wall bleeds into the edge"
    certain = (alpha == 0) | (alpha == 1)
    assert np.array_equal(out[certain], img[certain]), "certain pixels keep their colour"


def test_bounded_path_agrees_with_the_full_resolution_path() -> None:
    img, alpha = _composite(600, 2600)
    fast = decontaminate.estimate_foreground(img, alpha)
    saved = decontaminate.WORK_MAX_SIDE
    decontaminate.WORK_MAX_SIDE = 10**9
    try:
        exact = decontaminate.estimate_foreground(img, alpha)
    finally:
        decontaminate.WORK_MAX_SIDE = saved
    band = (alpha > decontaminate.CERTAIN) & (alpha < 1 - decontaminate.CERTAIN)
    diff = np.abs(fast.astype(int) - exact.astype(int))[band]
    assert diff.mean() < 2.0
