"""The gross-failure metrics of ``bench/gross.py`` on synthetic masks (no models, no data)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # last: bench/ holds scripts, not packages
import gross  # noqa: E402


def _square(h: int = 100, w: int = 100, box: tuple[int, int, int, int] = (20, 80, 20, 80)) -> np.ndarray:
    m = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1.0
    return m


def test_a_perfect_cutout_scores_perfect() -> None:
    gt = _square()
    r = gross.image_metrics(gt.copy(), gt)
    assert r == {"SAD": 0.0, "IoU": 1.0, "lost": 0.0, "kept": 0.0, "holes": 0.0, "gross": 0.0}


def test_a_hole_inside_the_subject_is_a_hole_and_lost() -> None:
    gt = _square()  # 60x60 = 3600 px of subject
    cut = gt.copy()
    cut[40:50, 40:50] = 0.2  # 100 px punched out, enclosed by the cutout
    r = gross.image_metrics(cut, gt)
    assert r["holes"] == pytest.approx(100 / 3600)
    assert r["lost"] == pytest.approx(100 / 3600)
    assert r["kept"] == 0.0


def test_a_bite_from_the_outline_is_lost_but_not_a_hole() -> None:
    gt = _square()
    cut = gt.copy()
    cut[20:30, 20:80] = 0.0  # the top 10 rows dropped: open to the border through the background
    r = gross.image_metrics(cut, gt)
    assert r["lost"] == pytest.approx(600 / 3600)
    assert r["holes"] == 0.0


def test_a_hole_touching_the_outside_only_diagonally_is_still_a_hole() -> None:
    gt = _square()
    cut = gt.copy()
    cut[20, 20] = 0.0  # the corner dropped: open to the border
    cut[21, 21] = 0.0  # its diagonal neighbour: enclosed (background connects 4-way only)
    r = gross.image_metrics(cut, gt)
    assert r["lost"] == pytest.approx(2 / 3600)
    assert r["holes"] == pytest.approx(1 / 3600)


def test_kept_background_and_gross() -> None:
    gt = _square()
    cut = gt.copy()
    cut[:, :20] = 0.9  # a band of background 100x20 kept
    r = gross.image_metrics(cut, gt)
    assert r["kept"] == pytest.approx(2000 / 3600)
    assert r["IoU"] == pytest.approx(3600 / 5600)
    assert r["gross"] == 1.0
    assert r["SAD"] == pytest.approx(2000 * 0.9 / 1000, rel=1e-5)


def test_best_vs_fast_rule_and_summary() -> None:
    fast = {"SAD": 10.0, "IoU": 0.90}
    assert gross.best_not_worse(fast, {"SAD": 12.0, "IoU": 0.80})  # SAD within 1.15x + 0.5
    assert gross.best_not_worse(fast, {"SAD": 30.0, "IoU": 0.89})  # IoU within 0.02
    assert not gross.best_not_worse(fast, {"SAD": 12.1, "IoU": 0.87})
    rows = {"a": gross.image_metrics(_square(), _square()), "b": gross.image_metrics(np.zeros((100, 100)), _square())}
    s = gross.summarise(rows)
    assert s["gross_count"] == 1 and s["IoU_mean"] == pytest.approx(0.5) and s["lost_median"] == pytest.approx(0.5)
    assert [n for n, _ in gross.worst(rows, 1)] == ["b"]
