"""Gross-failure accounting for ``bench/quality.py --sets``: per-image metrics, per-set
summaries, the best-vs-fast rule and the markdown report. Pure NumPy/OpenCV, no models, so
``tests/test_bench_gross.py`` can check the metrics on synthetic masks.

Per image (alpha ``a`` in 0..1, the truth mask ``T = GT > 0.5``, the cutout ``P = a >= 0.5``):

- ``SAD``: sum|a - GT| / 1000 (GT as given: soft on alphamatting-dev, 0/1 on the mask sets);
- ``IoU``: |P & T| / |P | T|;
- ``lost``: |T & ~P| / |T|, the share of the subject the cutout dropped;
- ``kept``: |~T & P| / |T|, background the cutout kept, as a share of the subject's area;
- ``holes``: truth-foreground pixels the cutout dropped *inside its own outline* (predicted
  background not connected to the image border through predicted background, 4-connected),
  as a share of |T|: a hole punched in the subject, a part of ``lost``;
- ``gross``: IoU < ``GROSS_IOU``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

#: an image whose cutout has IoU below this is a gross failure
GROSS_IOU = 0.8
#: the columns of a set's table: (key, statistic, heading)
TABLE = [("IoU", "mean", "mean IoU"), ("IoU", "median", "median IoU"), ("gross", "count", "gross"),
         ("lost", "mean", "mean lost"), ("kept", "mean", "mean kept"), ("holes", "mean", "mean holes"),
         ("SAD", "mean", "mean SAD"), ("SAD", "median", "median SAD")]
METRICS = ("SAD", "IoU", "lost", "kept", "holes")

Row = dict[str, float]


def enclosed(background: np.ndarray) -> np.ndarray:
    """The pixels of the boolean mask ``background`` that cannot reach the image border
    through ``background`` pixels (4-connected): the holes of the complementary cutout."""
    import cv2

    n, labels = cv2.connectedComponents(background.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(background, dtype=bool)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    outside = np.zeros(n, bool)
    outside[np.unique(edge)] = True
    outside[0] = True  # label 0: the cutout's own pixels
    return ~outside[labels]


def image_metrics(alpha: np.ndarray, gt: np.ndarray) -> Row:
    """Every per-image metric of the module docstring; ``alpha`` and ``gt`` in 0..1, same shape."""
    a = alpha.astype(np.float32)
    g = gt.astype(np.float32)
    if a.shape != g.shape:
        raise ValueError(f"alpha {a.shape} and truth {g.shape} differ in shape")
    truth, cut = g > 0.5, a >= 0.5
    area = max(1, int(truth.sum()))
    union = int((truth | cut).sum())
    iou = float((truth & cut).sum() / union) if union else 1.0
    return {
        "SAD": float(np.abs(a - g).sum() / 1000),
        "IoU": iou,
        "lost": float((truth & ~cut).sum() / area),
        "kept": float((~truth & cut).sum() / area),
        "holes": float((enclosed(~cut) & truth).sum() / area),
        "gross": float(iou < GROSS_IOU),
    }


def summarise(rows: Mapping[str, Row]) -> dict[str, float]:
    """Mean and median of each metric over a set's images, and the gross-failure count."""
    out: dict[str, float] = {"n": float(len(rows)), "gross_count": float(sum(r["gross"] for r in rows.values()))}
    for k in METRICS:
        v = np.array([r[k] for r in rows.values()], np.float64)
        out[f"{k}_mean"] = float(v.mean()) if v.size else float("nan")
        out[f"{k}_median"] = float(np.median(v)) if v.size else float("nan")
    return out


def worst(rows: Mapping[str, Row], n: int = 5) -> list[tuple[str, Row]]:
    """The ``n`` images with the lowest IoU."""
    return sorted(rows.items(), key=lambda kv: kv[1]["IoU"])[:n]


def best_not_worse(fast: Row, best: Row) -> bool:
    """The issue's per-image rule "best is not clearly worse than fast"."""
    return best["SAD"] <= 1.15 * fast["SAD"] + 0.5 or best["IoU"] >= fast["IoU"] - 0.02


def best_vs_fast_failures(fast: Mapping[str, Row], best: Mapping[str, Row]) -> list[str]:
    return [n for n in fast if n in best and not best_not_worse(fast[n], best[n])]


# --- markdown -------------------------------------------------------------------------------

def _cell(summary: Mapping[str, float], key: str, stat: str) -> str:
    if stat == "count":
        return f"{summary['gross_count']:.0f}"
    return f"{summary[f'{key}_{stat}']:.3f}"


def set_table(title: str, per_method: Mapping[str, Mapping[str, Row]]) -> list[str]:
    """One set's table: a row per method."""
    n = max((len(r) for r in per_method.values()), default=0)
    lines = [f"### {title} ({n} images)", "", "| method | " + " | ".join(h for _, _, h in TABLE) + " |",
             "|---|" + "---|" * len(TABLE)]
    for method, rows in per_method.items():
        s = summarise(rows)
        lines.append(f"| {method} | " + " | ".join(_cell(s, k, st) for k, st, _ in TABLE) + " |")
    return lines + [""]


def worst_lists(title: str, per_method: Mapping[str, Mapping[str, Row]], n: int = 5) -> list[str]:
    lines = [f"#### {title}: the {n} worst by IoU", ""]
    for method, rows in per_method.items():
        items = ", ".join(f"{name} (IoU {r['IoU']:.2f}, lost {r['lost']:.2f}, kept {r['kept']:.2f})"
                          for name, r in worst(rows, n))
        lines.append(f"- {method}: {items}")
    return lines + [""]


def failure_lines(title: str, fast: Mapping[str, Row], best: Mapping[str, Row]) -> list[str]:
    bad = best_vs_fast_failures(fast, best)
    lines = [f"- {title}: {len(bad)} of {len(fast)} fail \"best is not clearly worse than fast\""]
    lines += [f"  - {n}: SAD fast {fast[n]['SAD']:.2f} best {best[n]['SAD']:.2f}; "
              f"IoU fast {fast[n]['IoU']:.3f} best {best[n]['IoU']:.3f}" for n in bad]
    return lines


def target_lines(checks: Iterable[tuple[str, float, str, float]]) -> list[str]:
    """``checks``: (what, measured, comparison, limit) with comparison "<=" or ">="."""
    lines = []
    for what, got, op, limit in checks:
        ok = got <= limit if op == "<=" else got >= limit
        lines.append(f"- {'PASS' if ok else 'FAIL'} {what}: {_num(got)} {op} {_num(limit)}")
    return lines


def _num(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3f}"


def as_json(obj: Any) -> Any:
    """``obj`` with NumPy scalars made plain (for ``json.dump``)."""
    if isinstance(obj, Mapping):
        return {str(k): as_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_json(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
