"""Matte editing: brush, wand, selections, undo/redo, reset — on the float matte."""

from __future__ import annotations

import numpy as np
import pytest

from alphacut.errors import UsageError
from alphacut.matte.edit import EditHistory, apply_operation, brush_footprint, magic_wand, selection_mask


def _scene():
    img = np.zeros((100, 120, 3), np.uint8)
    img[:, :] = (20, 200, 30)  # green background
    img[30:70, 40:80] = (200, 50, 50)  # red subject
    matte = np.zeros((100, 120), np.float32)
    matte[30:70, 40:80] = 1.0
    matte[30:70, 38:40] = 0.4  # soft edge
    return img, matte


def test_brush_footprint_hard_and_soft():
    box, w = brush_footprint((100, 100), [[50, 50]], size=20, softness=0)
    x0, y0, _, _ = box
    assert w[50 - y0, 50 - x0] == 1.0
    assert w[50 - y0, 50 - x0 + 12] == 0.0
    _, ws = brush_footprint((100, 100), [[50, 50]], size=20, softness=1.0)
    assert 0.0 < ws[50 - y0, 50 - x0 + 5] < 1.0
    assert ws.dtype == np.float32


def test_brush_stroke_line_covers_between_points():
    box, w = brush_footprint((100, 200), [[10, 50], [190, 50]], size=6, softness=0)
    x0, y0, _, _ = box
    assert (w[50 - y0, 20 - x0:180 - x0] == 1.0).all()


def test_brush_erase_and_restore_keep_float():
    img, matte = _scene()
    original = matte.copy()
    apply_operation(matte, img, {"op": "brush", "mode": "erase", "points": [[60, 50]], "size": 10, "softness": 0.5})
    assert matte[50, 60] == 0.0
    assert matte.dtype == np.float32
    soft = matte[50, 64]
    assert 0.0 < soft < 1.0  # soft rim: partial alpha, never thresholded
    apply_operation(matte, img, {"op": "brush", "mode": "restore", "points": [[39, 50]], "size": 3, "softness": 0,
                                 "target": "original"}, original=original)
    assert matte[50, 39] == pytest.approx(0.4)
    apply_operation(matte, img, {"op": "brush", "mode": "restore", "points": [[10, 10]], "size": 4, "softness": 0})
    assert matte[10, 10] == 1.0


def test_selection_confines_brush():
    img, matte = _scene()
    sel = {"type": "rect", "x0": 40, "y0": 30, "x1": 60, "y1": 70}
    apply_operation(matte, img, {"op": "brush", "mode": "erase", "points": [[50, 50], [75, 50]], "size": 8,
                                 "softness": 0, "selection": sel})
    assert matte[50, 50] == 0.0 and matte[50, 58] == 0.0
    assert matte[50, 65] == 1.0 and matte[50, 75] == 1.0


def test_lasso_selection():
    m = selection_mask((50, 50), {"type": "lasso", "points": [[10, 10], [40, 10], [40, 40], [10, 40]]})
    assert m[25, 25] == 1 and m[5, 5] == 0
    with pytest.raises(UsageError):
        selection_mask((50, 50), {"type": "lasso", "points": [[1, 1]]})
    with pytest.raises(UsageError):
        selection_mask((50, 50), {"type": "circle"})


def test_magic_wand_connected_region_and_tolerance():
    img, _ = _scene()
    img[0:5, 0:5] = (25, 205, 35)  # close to the background
    region = magic_wand(img, (2, 90), tolerance=10)
    assert region[2, 2] and region[95, 115] and not region[50, 60]
    tight = magic_wand(img, (2, 90), tolerance=2)
    assert not tight[2, 2]
    # not contiguous: an island of background inside the subject is still picked
    img[50:52, 50:52] = (20, 200, 30)
    assert not magic_wand(img, (2, 90), 10)[50, 50]
    assert magic_wand(img, (2, 90), 10, contiguous=False)[50, 50]
    with pytest.raises(UsageError):
        magic_wand(img, (500, 5), 10)


def test_wand_erase_leftover_background():
    img, matte = _scene()
    matte[0:10, 0:10] = 0.7  # the model kept a bit of wall
    apply_operation(matte, img, {"op": "wand", "mode": "erase", "x": 3, "y": 3, "tolerance": 20})
    assert matte[5, 5] == 0.0 and matte[50, 60] == 1.0


def test_history_undo_redo_reset():
    img, matte = _scene()
    h = EditHistory(original=matte, image=img)
    assert h.apply({"op": "brush", "mode": "erase", "points": [[60, 50]], "size": 10, "softness": 0}) is not None
    edited = h.matte.copy()
    assert h.matte[50, 60] == 0.0 and h.can_undo and not h.can_redo
    h.undo()
    assert np.array_equal(h.matte, matte) and h.can_redo
    h.redo()
    assert np.array_equal(h.matte, edited)
    h.apply({"op": "reset"})
    assert np.array_equal(h.matte, matte)
    h.undo()
    assert np.array_equal(h.matte, edited)
    # a no-op edit (outside the image) is not a step
    steps = h.state()["steps"]
    assert h.apply({"op": "brush", "mode": "erase", "points": [[-100, -100]], "size": 4}) is None
    assert h.state()["steps"] == steps
    assert np.array_equal(h.original, matte)  # never modified


def test_history_memory_is_bounded():
    img, matte = _scene()
    h = EditHistory(original=matte, image=img, max_bytes=20_000)
    for i in range(50):
        h.apply({"op": "brush", "mode": "erase" if i % 2 else "restore", "points": [[60, 50]], "size": 30})
    assert sum(s.nbytes for s in h._undo) <= 20_000


def test_sixteen_bit_image_wand():
    img, _ = _scene()
    img16 = img.astype(np.uint16) * 257
    assert magic_wand(img16, (2, 2), 10)[90, 110]
