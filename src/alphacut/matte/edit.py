"""Manual refinement of the float matte: brush, magic wand, selections, undo/redo, reset.

Pure NumPy/OpenCV over plain arrays; nothing here knows about HTTP. The web app sends edits as
JSON operations (``apply_operation``) and an ``EditHistory`` per job keeps undo/redo as
snapshots of only the region each operation changed.

Operations (all coordinates in full-resolution image pixels)::

    {"op": "brush", "mode": "restore" | "erase", "points": [[x, y], ...],
     "size": 40, "softness": 0.5, "strength": 1.0, "target": "opaque" | "original",
     "selection": {...}}
    {"op": "wand", "mode": "erase" | "restore", "x": 10, "y": 20, "tolerance": 32,
     "contiguous": true, "selection": {...}}
    {"op": "reset"}

    selection: {"type": "rect", "x0": .., "y0": .., "x1": .., "y1": ..}
             | {"type": "lasso", "points": [[x, y], ...]}

The matte stays float32 in 0..1: restore moves alpha toward 1 (or toward the model's original
matte with ``target="original"``), erase toward 0, weighted by the brush's soft footprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from ..errors import UsageError

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)

MAX_POINTS = 20_000
MAX_BRUSH = 2_000


# --- footprints -------------------------------------------------------------------------------


def _clip_box(box: Box, shape: tuple[int, int]) -> Box | None:
    h, w = shape
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def brush_footprint(shape: tuple[int, int], points: Sequence[Sequence[float]], size: float,
                    softness: float = 0.0) -> tuple[Box, np.ndarray] | None:
    """The weight (0..1) a stroke puts on each pixel, cropped to its bounding box.

    ``size`` is the brush diameter in pixels; ``softness`` (0..1) is the share of the radius over
    which the weight falls from 1 to 0 (0 = hard edge with a one-pixel anti-aliased rim).
    """
    if not points:
        return None
    if len(points) > MAX_POINTS:
        raise UsageError(f"a stroke may have at most {MAX_POINTS} points")
    radius = max(0.5, min(float(size), MAX_BRUSH) / 2.0)
    softness = float(np.clip(softness, 0.0, 1.0))
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise UsageError("stroke points must be finite numbers")
    pad = int(np.ceil(radius)) + 2
    box = _clip_box((int(np.floor(pts[:, 0].min())) - pad, int(np.floor(pts[:, 1].min())) - pad,
                     int(np.ceil(pts[:, 0].max())) + pad + 1, int(np.ceil(pts[:, 1].max())) + pad + 1), shape)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    # distance from every pixel centre to the stroke's centre line (sub-pixel via 4x fixed point)
    line = np.full((y1 - y0, x1 - x0), 255, np.uint8)
    shift = 2
    local = np.rint((pts - (x0, y0)) * (1 << shift)).astype(np.int32)
    if len(local) == 1:
        cv2.circle(line, tuple(int(v) for v in local[0]), 0, 0, -1, cv2.LINE_8, shift)
    else:
        cv2.polylines(line, [local.reshape(-1, 1, 2)], False, 0, 1, cv2.LINE_8, shift)
    dist = cv2.distanceTransform(line, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    feather = max(1.0, radius * softness)
    weight = np.clip((radius - dist) / feather + (0.5 if softness == 0 else 0.0), 0.0, 1.0).astype(np.float32)
    return box, weight


def selection_mask(shape: tuple[int, int], selection: Mapping[str, Any] | None) -> np.ndarray | None:
    """A float32 (H, W) 0/1 mask of where edits may act, or None for "everywhere"."""
    if not selection:
        return None
    h, w = shape
    kind = selection.get("type")
    mask = np.zeros((h, w), np.uint8)
    if kind == "rect":
        try:
            xs = sorted((float(selection["x0"]), float(selection["x1"])))
            ys = sorted((float(selection["y0"]), float(selection["y1"])))
        except (KeyError, TypeError, ValueError):
            raise UsageError("a rectangle selection needs numbers x0, y0, x1, y1") from None
        box = _clip_box((int(np.floor(xs[0])), int(np.floor(ys[0])), int(np.ceil(xs[1])), int(np.ceil(ys[1]))), shape)
        if box is not None:
            mask[box[1]:box[3], box[0]:box[2]] = 1
    elif kind == "lasso":
        pts = np.asarray(selection.get("points") or [], dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            raise UsageError("a lasso selection needs at least three points")
        if len(pts) > MAX_POINTS:
            raise UsageError(f"a lasso may have at most {MAX_POINTS} points")
        cv2.fillPoly(mask, [np.rint(pts).astype(np.int32).reshape(-1, 1, 2)], 1, cv2.LINE_8)
    else:
        raise UsageError(f"unknown selection type {kind!r}; use 'rect' or 'lasso'")
    return mask.astype(np.float32)


def magic_wand(image: np.ndarray, seed: tuple[int, int], tolerance: float, *, contiguous: bool = True) -> np.ndarray:
    """Pixels whose colour is within ``tolerance`` (0..255 per channel) of the seed's colour.

    ``contiguous`` (the default) keeps only the region connected to the seed (8-connected flood
    fill); otherwise every similar pixel in the image. Returns a bool (H, W) mask.
    """
    h, w = image.shape[:2]
    x, y = int(seed[0]), int(seed[1])
    if not (0 <= x < w and 0 <= y < h):
        raise UsageError(f"the wand's point ({x}, {y}) is outside the {w}x{h} image")
    img = image[:, :, :3]
    if img.dtype == np.uint16:
        img = (img.astype(np.uint32) * 255 + 32767) // 65535
    img = np.ascontiguousarray(img.astype(np.uint8))
    tol = float(np.clip(tolerance, 0, 255))
    if not contiguous:
        diff = np.abs(img.astype(np.int16) - img[y, x].astype(np.int16)).max(axis=2)
        return diff <= tol
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(img, mask, (x, y), (0, 0, 0), (tol,) * 3, (tol,) * 3, flags)
    return mask[1:-1, 1:-1] > 0


def _mask_box(mask: np.ndarray) -> Box | None:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


# --- applying ---------------------------------------------------------------------------------


def blend(matte: np.ndarray, box: Box, weight: np.ndarray, mode: str, *, original: np.ndarray | None = None,
          target: str = "opaque") -> None:
    """Move ``matte[box]`` toward its target by ``weight`` (in place)."""
    x0, y0, x1, y1 = box
    region = matte[y0:y1, x0:x1]
    if mode == "erase":
        region *= 1.0 - weight
    elif mode == "restore":
        if target == "original":
            if original is None:
                raise UsageError("restoring to the original matte needs the original matte")
            goal = original[y0:y1, x0:x1]
        elif target == "opaque":
            goal = np.float32(1.0)
        else:
            raise UsageError(f"unknown restore target {target!r}; use 'opaque' or 'original'")
        region += weight * (goal - region)
    else:
        raise UsageError(f"unknown mode {mode!r}; use 'restore' or 'erase'")
    np.clip(region, 0.0, 1.0, out=region)


def operation_box(matte: np.ndarray, image: np.ndarray, op: Mapping[str, Any]) -> tuple[Box, np.ndarray] | None:
    """Where an operation acts and with what weight, before the selection is applied."""
    kind = op.get("op")
    shape = matte.shape
    if kind == "brush":
        return brush_footprint(shape, op.get("points") or [], float(op.get("size", 30)), float(op.get("softness", 0.5)))
    if kind == "wand":
        try:
            seed = (int(op["x"]), int(op["y"]))
        except (KeyError, TypeError, ValueError):
            raise UsageError("the wand needs integer x and y") from None
        region = magic_wand(image, seed, float(op.get("tolerance", 32)), contiguous=bool(op.get("contiguous", True)))
        box = _mask_box(region)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        return box, region[y0:y1, x0:x1].astype(np.float32)
    if kind == "reset":
        return (0, 0, shape[1], shape[0]), np.ones(shape, np.float32)
    raise UsageError(f"unknown edit {kind!r}; use 'brush', 'wand' or 'reset'")


def apply_operation(matte: np.ndarray, image: np.ndarray, op: Mapping[str, Any], *,
                    original: np.ndarray | None = None) -> Box | None:
    """Apply one JSON operation to ``matte`` in place; returns the changed box (or None)."""
    found = operation_box(matte, image, op)
    if found is None:
        return None
    box, weight = found
    x0, y0, x1, y1 = box
    if op.get("op") == "reset":
        if original is None:
            raise UsageError("reset needs the original matte")
        matte[...] = original
        return box
    sel = selection_mask(matte.shape, op.get("selection"))
    if sel is not None:
        weight = weight * sel[y0:y1, x0:x1]
        inner = _mask_box(weight > 0)
        if inner is None:
            return None
        ix0, iy0, ix1, iy1 = inner
        weight = weight[iy0:iy1, ix0:ix1]
        box = (x0 + ix0, y0 + iy0, x0 + ix1, y0 + iy1)
    strength = float(np.clip(op.get("strength", 1.0), 0.0, 1.0))
    if strength < 1.0:
        weight = weight * np.float32(strength)
    blend(matte, box, weight, str(op.get("mode", "erase")), original=original, target=str(op.get("target", "opaque")))
    return box


# --- history ----------------------------------------------------------------------------------


@dataclass
class _Step:
    box: Box
    before: np.ndarray
    after: np.ndarray
    op: dict[str, Any]

    @property
    def nbytes(self) -> int:
        return self.before.nbytes + self.after.nbytes


@dataclass
class EditHistory:
    """The current matte of one job with undo/redo, kept as snapshots of changed regions.

    ``original`` is the model's matte and is never modified; ``matte`` is the edited copy.
    History memory is bounded: the oldest steps are forgotten past ``max_bytes``.
    """

    original: np.ndarray
    image: np.ndarray
    matte: np.ndarray = field(init=False)
    max_bytes: int = 256 * 1024 * 1024
    _undo: list[_Step] = field(default_factory=list, init=False)
    _redo: list[_Step] = field(default_factory=list, init=False)
    version: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.original.dtype != np.float32 or self.original.ndim != 2:
            raise UsageError("the matte must be a float32 (H, W) array")
        self.matte = self.original.copy()

    def apply(self, op: Mapping[str, Any]) -> Box | None:
        before_full = None
        found = None
        if op.get("op") == "reset":
            before_full = self.matte.copy()
        else:
            found = operation_box(self.matte, self.image, op)
            if found is None:
                return None
        # snapshot only the area the op can touch
        box = (0, 0, self.matte.shape[1], self.matte.shape[0]) if found is None else found[0]
        x0, y0, x1, y1 = box
        before = before_full if before_full is not None else self.matte[y0:y1, x0:x1].copy()
        changed = apply_operation(self.matte, self.image, op, original=self.original)
        if changed is None:
            return None
        after = self.matte[y0:y1, x0:x1].copy()
        if np.array_equal(before, after):
            return None
        self._undo.append(_Step(box, before, after, dict(op)))
        self._redo.clear()
        self._trim()
        self.version += 1
        return changed

    def _trim(self) -> None:
        total = sum(s.nbytes for s in self._undo)
        while self._undo and total > self.max_bytes:
            total -= self._undo.pop(0).nbytes

    def undo(self) -> Box | None:
        if not self._undo:
            return None
        step = self._undo.pop()
        x0, y0, x1, y1 = step.box
        self.matte[y0:y1, x0:x1] = step.before
        self._redo.append(step)
        self.version += 1
        return step.box

    def redo(self) -> Box | None:
        if not self._redo:
            return None
        step = self._redo.pop()
        x0, y0, x1, y1 = step.box
        self.matte[y0:y1, x0:x1] = step.after
        self._undo.append(step)
        self.version += 1
        return step.box

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def edited(self) -> bool:
        return not np.array_equal(self.matte, self.original)

    def state(self) -> dict[str, Any]:
        return {"version": self.version, "can_undo": self.can_undo, "can_redo": self.can_redo,
                "steps": len(self._undo)}
