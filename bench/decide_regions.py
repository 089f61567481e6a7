"""The decided fusion's regions, one by one: what each model said, the evidence, the truth.

``matte/decide.py`` decides every region where only one of the two models (IS-Net, U²-Netp)
says "foreground" from a handful of votes. This bench lists those regions per set with their
evidence (each model's mean log-odds, the connectivity to the agreed subject, the photo's edge
log-ratio) and the truth (the share of the region the set's mask calls foreground), then says
how often the shipped rule decides them right — by count and by area, which is what IoU feels —
and what a rule *fitted* on one set (area-weighted logistic regression over the same votes)
would do on the others. It answers one question before anyone tunes a weight: do the sets
agree on what a contested region is?

    PYTHONPATH=src .venv/bin/python bench/decide_regions.py --sets sodx,sod,am,davis

(model outputs come from ``raw_cache``: after ``bench/quality.py --sets ...`` this takes a few
minutes). The "shipped rule" here is the fast tier's (the best tier also clips U²-Netp's "no"
at ``RELATIVE_NO_CLIP``, ``other_relative``). Measured (2026-11-30): they do not agree.
Contested regions are foreground in 81–83% of cases on sod-dev (every salient object counts) and 35% on davis2016-video (one annotated
object); a rule fitted on sod-dev's other photos decides 74% of sod-dev objects' contested area
right (the shipped rule 55%) but 39% of DAVIS's (shipped 77%). See docs/quality.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

Region = dict[str, Any]


def regions_of(a: np.ndarray, b: np.ndarray, seen: np.ndarray, truth: np.ndarray) -> list[Region]:
    """The contested regions ``decide_mattes`` would decide, with their evidence and truth.
    ``a``: IS-Net's matte, ``b``: U²-Netp's at ``a``'s size, ``seen``: the model's view,
    ``truth``: the mask at ``a``'s size (0..1)."""
    from alphacut.matte import decide as D

    h, w = a.shape
    za, zb = D.logit(a), D.logit(b)
    fa, fb = a >= 0.5, b >= 0.5
    k = max(3, int(round(D.SLIVER_FRACTION * max(h, w))) | 1)
    core = cv2.morphologyEx((fa ^ fb).astype(np.uint8), cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    _, labels, stats = D._regions(fa & ~fb, ~fa & fb)
    chosen = np.unique(labels[core > 0])
    gradient = D._edge_strength(seen, (w, h))
    agreed_fg, agreed_bg = (fa & fb).view(np.uint8), (~fa & ~fb).view(np.uint8)
    saw_a, saw_b = float(fa.mean()) >= D.SAW_NOTHING, float(fb.mean()) >= D.SAW_NOTHING
    out = []
    for i in chosen[chosen > 0]:
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(w, x + bw + 1), min(h, y + bh + 1)
        region = labels[y0:y1, x0:x1] == i
        ring = (cv2.dilate(region.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~region
        on_fg = ring & (agreed_fg[y0:y1, x0:x1] > 0)
        on_bg = ring & (agreed_bg[y0:y1, x0:x1] > 0)
        tf, tb = int(on_fg.sum()), int(on_bg.sum())
        edge = None
        if tf > 10 and tb > 10:
            g = gradient[y0:y1, x0:x1]
            edge = float(np.clip(np.log((g[on_bg].mean() + 1) / (g[on_fg].mean() + 1)), -2, 2))
        out.append({
            "area": int(region.sum()), "isnet_yes": bool(fa[y0:y1, x0:x1][region].all()),
            "za": float(za[y0:y1, x0:x1][region].mean()), "zb": float(zb[y0:y1, x0:x1][region].mean()),
            "za_yes": float(np.minimum(za[y0:y1, x0:x1][region], D.VOTE_CLIP).mean()),
            "zb_yes": float(np.minimum(zb[y0:y1, x0:x1][region], D.VOTE_CLIP).mean()),
            "attached": (tf - tb) / max(1, tf + tb), "edge": edge, "saw_a": saw_a, "saw_b": saw_b,
            "truth": float(truth[y0:y1, x0:x1][region].mean()), "label": int(i),
        })
    return out


def votes(r: Region) -> list[float]:
    """The rule's inputs: the "yes" (clipped), IS-Net's "no", U²-Netp's "no", connectivity,
    the edge log-ratio, a constant."""
    if r["isnet_yes"]:
        return [r["za_yes"], 0.0, r["zb"] if r["saw_b"] else 0.0, r["attached"], r["edge"] or 0.0, 1.0]
    return [r["zb_yes"], r["za"] if r["saw_a"] else 0.0, 0.0, r["attached"], r["edge"] or 0.0, 1.0]


def shipped_score(r: Region) -> float:
    """``decide_mattes``'s score for the region, with its constants."""
    from alphacut.matte import decide as D

    yes, no_a, no_b, attached, edge, _ = votes(r)
    s = yes + D.NO_WEIGHT * (no_a + no_b) + D.ADJACENCY_WEIGHT * attached + D.TIE_BREAK
    if r["edge"] is not None and abs(s) <= 2 * D.EDGE_WEIGHT:
        s += D.EDGE_WEIGHT * edge
    return s


def fit(rows: list[Region], l2: float = 0.1) -> np.ndarray:
    """Weights for ``votes`` by logistic regression (Newton steps), each region weighted by the
    square root of its area (big regions matter more to IoU, but not all of it)."""
    X = np.array([votes(r) for r in rows])
    y = np.array([r["truth"] > 0.5 for r in rows], float)
    wt = np.sqrt(np.array([r["area"] for r in rows], float))
    wt /= wt.mean()
    beta = np.zeros(X.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ beta))
        grad = X.T @ (wt * (p - y)) + l2 * beta
        hess = (X * (wt * p * (1 - p))[:, None]).T @ X + l2 * np.eye(len(beta))
        beta -= np.linalg.solve(hess, grad)
    return beta


def accuracy(rows: list[Region], scores: np.ndarray) -> tuple[float, float]:
    """(share of regions decided right, share of contested area decided right)."""
    right = (scores > 0) == np.array([r["truth"] > 0.5 for r in rows])
    return float(right.mean()), float(np.average(right, weights=[r["area"] for r in rows]))


def collect(key: str, davis_step: int) -> list[Region]:
    import quality
    from alphacut.matte.predict import model_view, predict_matte
    from alphacut.models.store import ModelStore
    from alphacut.pipeline import plan_inference_image

    ac = quality.CachedAlphacut("isnet", ModelStore())
    helper, helper_spec = ac.helper("isnet")[0]
    items = quality.set_items(key, argparse.Namespace(davis_step=davis_step, limit_sod=None)) or []
    rows: list[Region] = []
    for name, load in items:
        img, truth = load()
        small = plan_inference_image(img)
        seen = model_view(small, ac.spec)
        a = predict_matte(ac.session, seen, ac.spec)
        h, w = a.shape
        b = cv2.resize(predict_matte(helper, small, helper_spec), (w, h), interpolation=cv2.INTER_LINEAR)
        t = cv2.resize(truth.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        rows += [dict(r, image=name) for r in regions_of(a, b, seen, t)]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="sodx,sod,am,davis", help="any of am,sod,sodx,davis")
    ap.add_argument("--davis-step", type=int, default=5)
    args = ap.parse_args()
    sets = {k: collect(k, args.davis_step) for k in args.sets.split(",")}
    sets = {k: v for k, v in sets.items() if v}
    if not sets:
        print("no evaluation data (../shared/eval)")
        return 0
    print("| set | contested regions | truly foreground | shipped rule: right (count) | right (area) |")
    print("|---|---|---|---|---|")
    for k, rows in sets.items():
        c, a = accuracy(rows, np.array([shipped_score(r) for r in rows]))
        fg = np.mean([r["truth"] > 0.5 for r in rows])
        print(f"| {k} | {len(rows)} | {fg:.2f} | {c:.2f} | {a:.2f} |")
    print("\nA rule fitted on one set (rows), applied to each set (columns): area decided right")
    print("| fitted on | weights (yes, IS-Net no, U²-Netp no, attached, edge, constant) | "
          + " | ".join(sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for k, rows in sets.items():
        beta = fit(rows)
        cells = [f"{accuracy(r, np.array([votes(x) for x in r]) @ beta)[1]:.2f}" for r in sets.values()]
        print(f"| {k} | {', '.join(f'{v:.2f}' for v in beta)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
