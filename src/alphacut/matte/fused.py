"""Upsampling and decontamination of a large photo in one full-resolution pass.

Done apart (``upsample.upsample_matte``, then ``decontaminate.estimate_foreground``), a 12 MP
photo is read at full resolution four times before its tiles are touched: the guide shrunk to
the filter's working resolution, then the finished full-size matte and the photo shrunk again
for decontamination's blur passes, and every tile's matte scanned once more for soft pixels.
The blur passes need a small alpha *before* any tile is decontaminated, which is what forced
the second pass.

Here that small alpha comes from the guided filter evaluated at its own working resolution
(the same coefficients, the same band blend, on the working-resolution guide), area-averaged
to the blur grid, and the small photo from the working-resolution guide: no full-resolution
read. Then one pass over the tiles evaluates the filter on each tile (exactly what
``upsample_matte`` computes: the matte is the same to the last bit) and decontaminates that
tile while its matte is still in cache; tiles without a band pixel only get the soft-pixel
check. The colour differs from the two-pass result only through the blur passes' inputs
(shrunk from the working resolution instead of from full size): at most a few levels on a
handful of edge pixels (tolerance and figures: docs/speed.md; ``tests/test_fused.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .decontaminate import CONFIDENCE_POWER, WORK_MAX_SIDE, BlurFields, blur_grid
from ..parallel import map_pieces
from .tiles import Tile, all_tiles
from .upsample import GuidedFit, plan_upsample, to_unit_float

__all__ = ["fuses", "upsample_and_decontaminate"]


def fuses(shape: tuple[int, ...]) -> bool:
    """Whether a picture this size goes through the fused pass (decontamination's large path)."""
    return max(shape[0], shape[1]) > WORK_MAX_SIDE


def _working_output(plan: GuidedFit, t: Tile, c: np.ndarray, out: np.ndarray) -> None:
    """The filter's output on the working-resolution pixels that tile ``t`` owns (those whose
    row and column fall in the tile's share of the grid), blended into ``out`` as ``apply``
    blends the full-resolution one."""
    (wh, ww), (H, W) = plan.grid, (plan.H, plan.W)
    y0, y1, x0, x1 = t
    oy0, oy1 = round(y0 * wh / H), round(y1 * wh / H)
    ox0, ox1 = round(x0 * ww / W), round(x1 * ww / W)
    wy0, _, wx0, _ = plan.window(t)
    if oy1 <= oy0 or ox1 <= ox0:
        return
    cc = c[oy0 - wy0:oy1 - wy0, ox0 - wx0:ox1 - wx0]
    I = to_unit_float(plan.Iw[oy0:oy1, ox0:ox1])
    q = cc[..., 3] + cc[..., 0] * I[..., 0]
    q += cc[..., 1] * I[..., 1]
    q += cc[..., 2] * I[..., 2]
    np.clip(q, 0.0, 1.0, out=q)
    seg = out[oy0:oy1, ox0:ox1]
    q -= seg
    q *= plan.band_f[oy0:oy1, ox0:ox1]
    seg += q


def upsample_and_decontaminate(coarse: np.ndarray, image: np.ndarray, *,
                               confidence_power: float = CONFIDENCE_POWER,
                               in_place: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The full-resolution matte (equal to ``upsample_matte(coarse, image)``) and the
    decontaminated foreground (``estimate_foreground`` of it, within the tolerance above) of
    a picture larger than ``decontaminate.WORK_MAX_SIDE``, in one pass over the tiles.

    ``in_place``: the foreground is ``image`` itself, decontaminated where it stands (for a
    caller that no longer needs the original colours: one full-size copy fewer, 36 MB at
    12 MP; a read-only ``image`` is still copied). Each tile reads only its own pixels, its
    matte before its colour, so the result is the same."""
    H, W = image.shape[:2]
    power = np.float32(confidence_power)
    plan = plan_upsample(coarse, image)
    bw, bh = blur_grid(H, W)
    if isinstance(plan, np.ndarray):  # no soft pixel anywhere: nothing to decontaminate either
        return plan, (image if in_place and image.flags.writeable else image.copy())

    # 1. every band tile's coefficients, and the filter's output at working resolution
    fits: dict[Tile, np.ndarray] = {}
    working = plan.p.copy()

    def fit(t: Tile) -> None:
        c = plan.fit(t)
        _working_output(plan, t, c, working)
        fits[t] = c

    map_pieces(fit, plan.tiles)
    Iw = plan.Iw
    plan.release_fit_inputs()

    # 2. the blur passes on the working-resolution picture and matte, shrunk to the blur grid
    small_image = cv2.resize(Iw, (bw, bh), interpolation=cv2.INTER_AREA)
    small_alpha = np.clip(cv2.resize(working, (bw, bh), interpolation=cv2.INTER_AREA), 0.0, 1.0)
    del Iw, working  # what is held through the blur passes is what the tiles need (the peak)
    fields = BlurFields.fit(small_image, small_alpha, image.dtype, power)
    del small_image, small_alpha

    # 3. one pass at full resolution: each tile's matte, then its colour
    matte, out = plan.output(), (image if in_place and image.flags.writeable else image.copy())

    def finish(t: Tile) -> None:
        c = fits.pop(t, None)
        if c is not None:
            plan.apply(t, c)
        fields.correct(image, matte, out, t)

    map_pieces(finish, all_tiles(H, W))
    return matte, out
