"""Full-resolution work done tile by tile, only where it matters, on every core.

The matte stages fit smooth fields (guided-filter coefficients, blur-fusion colour estimates) at
a bounded working resolution and then evaluate a per-pixel formula at full resolution. On a
12-megapixel photo most tiles hold no soft edge at all, and the ones that do are independent:
``band_tiles`` lists the tiles worth touching, ``resample_tile`` brings a low-resolution field
to one tile, and ``parallel.map_pieces`` runs a function over tiles on a small thread pool
(OpenCV and NumPy release the GIL on arrays this size, so threads use every core without
copying data).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Tile", "all_tiles", "band_tiles", "few_points", "resample_points", "resample_tile", "window_for"]

#: full-resolution tile side: big enough that per-tile Python overhead is noise, small enough
#: that skipping tiles without a soft edge saves most of the work on a typical photo
TILE = 256

Tile = tuple[int, int, int, int]  # y0, y1, x0, x1 in full-resolution pixels


def all_tiles(height: int, width: int, tile: int = TILE) -> list[Tile]:
    return [(y0, min(height, y0 + tile), x0, min(width, x0 + tile))
            for y0 in range(0, height, tile) for x0 in range(0, width, tile)]


def band_tiles(band: np.ndarray, height: int, width: int, tile: int = TILE) -> list[Tile]:
    """Full-resolution tiles whose area overlaps a True pixel of ``band`` (a mask at any
    resolution covering the same image), with one low-resolution pixel of slack for the
    bilinear footprint."""
    h, w = band.shape
    sy, sx = h / height, w / width
    # an integral image answers "any True pixel in this rectangle" in O(1) per tile
    integral = cv2.integral(band.astype(np.uint8))
    out = []
    for t in all_tiles(height, width, tile):
        y0, y1, x0, x1 = t
        ly0, ly1 = max(0, int(y0 * sy) - 1), min(h, int(np.ceil(y1 * sy)) + 1)
        lx0, lx1 = max(0, int(x0 * sx) - 1), min(w, int(np.ceil(x1 * sx)) + 1)
        if integral[ly1, lx1] - integral[ly0, lx1] - integral[ly1, lx0] + integral[ly0, lx0] > 0:
            out.append(t)
    return out


def resample_tile(field: np.ndarray, height: int, width: int, t: Tile, *,
                  grid: tuple[int, int] | None = None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A low-resolution map of the whole image (any channel count; 1 and 4 channels take
    OpenCV's vectorised path, 3 and 6 are several times slower) bilinearly resampled onto
    full-resolution tile ``t``, pixel centres aligned (as ``cv2.resize`` would for the whole
    image). ``field`` may be a window of that map: ``grid`` is the whole map's (h, w) and
    ``origin`` the (y, x) of ``field[0, 0]`` in it; the window must hold every map pixel the
    tile's bilinear footprint reads (``window_for``)."""
    y0, y1, x0, x1 = t
    xs, ys = _sample_coords(height, width, t, grid or field.shape[:2], origin)
    mx = np.ascontiguousarray(np.broadcast_to(xs[None, :], (y1 - y0, x1 - x0)))
    my = np.ascontiguousarray(np.broadcast_to(ys[:, None], (y1 - y0, x1 - x0)))
    return cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _sample_coords(height: int, width: int, t: Tile, grid: tuple[int, int], origin: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The map coordinates (float32) of tile ``t``'s pixel centres: its columns' x and its rows' y."""
    y0, y1, x0, x1 = t
    h, w = grid
    oy, ox = origin
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5) * np.float32(w / width) - np.float32(0.5 + ox)
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5) * np.float32(h / height) - np.float32(0.5 + oy)
    return xs, ys


#: above this share of a tile's pixels, gathering them costs more than working the whole tile
POINT_SHARE = 0.5


def few_points(mask: np.ndarray, share: float = POINT_SHARE) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(flat indices, rows, columns) of ``mask``'s True pixels in row-major order when they
    are at most ``share`` of it, else None (work the whole tile)."""
    idx = np.flatnonzero(mask)
    if idx.size > share * mask.size:
        return None
    rows = np.repeat(np.arange(mask.shape[0]), np.count_nonzero(mask, axis=1))  # no division
    return idx, rows, idx - rows * mask.shape[1]


#: cv2.remap's output must be narrower than SHRT_MAX pixels: a point list goes in rows this wide
_POINT_ROW = 1024


def resample_points(field: np.ndarray, height: int, width: int, t: Tile, rows: np.ndarray, cols: np.ndarray, *,
                    grid: tuple[int, int] | None = None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``resample_tile(field, ...)[rows, cols]`` without resampling the rest of the tile:
    (n, channels) for the n tile pixels at (``rows``, ``cols``), tile-relative.

    The same coordinates go through the same ``cv2.remap`` (each output pixel depends only
    on its own coordinates), so the values are bit for bit those of the whole tile; where
    only a fraction of a tile needs them (decontamination touches the soft pixels only) this
    is that fraction of the work."""
    xs, ys = _sample_coords(height, width, t, grid or field.shape[:2], origin)
    n = rows.size
    channels = 1 if field.ndim == 2 else field.shape[2]
    if n == 0:
        return np.empty((0, channels), field.dtype)
    padded = -(-n // _POINT_ROW) * _POINT_ROW
    mx = np.zeros(padded, np.float32)
    my = np.zeros(padded, np.float32)
    np.take(xs, cols, out=mx[:n])
    np.take(ys, rows, out=my[:n])
    shape = (padded // _POINT_ROW, _POINT_ROW)
    out = cv2.remap(field, mx.reshape(shape), my.reshape(shape), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(padded, channels)[:n]


def window_for(t: Tile, height: int, width: int, grid: tuple[int, int]) -> Tile:
    """The (y0, y1, x0, x1) window of a low-resolution map (shape ``grid``) that bilinear
    resampling onto full-resolution tile ``t`` reads: the floor and floor + 1 neighbours of
    every sample, plus one pixel of slack each side (float32 rounding of the sample
    coordinates), clipped to the map (where ``BORDER_REPLICATE`` then reads the same pixels as
    it would on the whole map)."""
    y0, y1, x0, x1 = t
    h, w = grid

    def span(a: int, b: int, low: int, full: int) -> tuple[int, int]:
        s = low / full
        first = int(np.floor((a + 0.5) * s - 0.5))
        last = int(np.floor((b - 0.5) * s - 0.5)) + 1
        return max(0, first - 1), min(low, last + 2)

    wy0, wy1 = span(y0, y1, h, height)
    wx0, wx1 = span(x0, x1, w, width)
    return wy0, wy1, wx0, wx1
