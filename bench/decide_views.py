"""What more opinions and the oracles give the decided fusion, at coarse-matte level.

``matte/decide.py`` decides each region where IS-Net and U²-Netp disagree. This bench asks, per
set (sod-dev objects by default), how far the opinions we have can go and whether more of them
help, on the models' coarse mattes against the truth (IoU at 0.5, gross = IoU < 0.8):

- ``fast rule`` / ``best rule``: ``decide_mattes`` as each tier calls it (the best tier reads
  U²-Netp's min-max normalised "no" as relative, ``other_relative``);
- ``region oracle``: every contested region decided by its truth (the most any rule over these
  two opinions can reach); ``photo oracle``: per photo the better of the two models' mattes;
- ``+ views``: the fast rule plus a third and fourth opinion in the contested regions only —
  IS-Net and U²-Netp on the mirrored photo, and each on a crop around both models' subject
  (15% margin) — their mean log-odds (clipped at ±4) over the region, times ``--weight``,
  added to the region's score; never averaged into agreed regions.

    PYTHONPATH=src .venv/bin/python bench/decide_views.py --sets sod --weight 0.5

Model passes go through ``raw_cache`` (four extra passes a photo the first time: minutes).
Measured (2026-11-30, sod-dev objects): fast rule 0.740 / 44 gross, best rule 0.747 / 41,
photo oracle 0.760 / 40, region oracle 0.777 / 36; every view combination 0.729-0.745 and
42-48 gross, more photos worse than better (docs/quality.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

VIEWS = ("isnet_mirror", "u2netp_mirror", "isnet_crop", "u2netp_crop")


def iou(x: np.ndarray, y: np.ndarray) -> float:
    u = (x | y).sum()
    return float((x & y).sum() / u) if u else 1.0


def crop_box(fg: np.ndarray, shape: tuple[int, ...], margin: float = 0.15) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) in ``shape``'s pixels around ``fg`` (a coarse mask), grown by ``margin``
    of the box's larger side."""
    H, W = shape[:2]
    h, w = fg.shape
    if not fg.any():
        return None
    ys, xs = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    bx0, bx1, by0, by1 = xs[0] * W / w, (xs[-1] + 1) * W / w, ys[0] * H / h, (ys[-1] + 1) * H / h
    m = margin * max(bx1 - bx0, by1 - by0)
    return max(0, int(bx0 - m)), max(0, int(by0 - m)), min(W, int(np.ceil(bx1 + m))), min(H, int(np.ceil(by1 + m)))


def opinions(ac, helper, hspec, img: np.ndarray) -> dict[str, np.ndarray]:
    """IS-Net's coarse matte ``a``, U²-Netp's ``b`` at its size, the views (NaN outside a crop)
    and the model's view ``seen``."""
    from alphacut.matte.predict import model_view, predict_matte
    from alphacut.pipeline import plan_inference_image

    small = plan_inference_image(img)
    seen = model_view(small, ac.spec)
    a = predict_matte(ac.session, seen, ac.spec)
    h, w = a.shape

    def at_a(m: np.ndarray) -> np.ndarray:
        return cv2.resize(np.ascontiguousarray(m), (w, h), interpolation=cv2.INTER_LINEAR)

    out = {"a": a, "b": at_a(predict_matte(helper, small, hspec)), "seen": seen}
    mirrored = small[:, ::-1].copy()
    out["isnet_mirror"] = predict_matte(ac.session, model_view(mirrored, ac.spec), ac.spec)[:, ::-1]
    out["u2netp_mirror"] = at_a(predict_matte(helper, mirrored, hspec)[:, ::-1])
    box = crop_box((out["a"] >= 0.5) | (out["b"] >= 0.5), small.shape)
    if box is not None:
        x0, y0, x1, y1 = box
        Hs, Ws = small.shape[:2]
        sx0, sy0, sx1, sy1 = (int(round(v)) for v in (x0 * w / Ws, y0 * h / Hs, x1 * w / Ws, y1 * h / Hs))
        for name, (session, spec) in {"isnet_crop": (ac.session, ac.spec), "u2netp_crop": (helper, hspec)}.items():
            m = predict_matte(session, small[y0:y1, x0:x1], spec)
            full = np.full((h, w), np.nan, np.float32)
            full[sy0:sy1, sx0:sx1] = cv2.resize(m, (max(1, sx1 - sx0), max(1, sy1 - sy0)),
                                                interpolation=cv2.INTER_LINEAR)
            out[name] = full
    return out


def with_views(o: dict[str, np.ndarray], t: np.ndarray, views: tuple[str, ...], weight: float) -> np.ndarray:
    """The fast rule's decision with the views' votes added to each contested region's score
    (before the edge vote, which is asked only where the score is within its reach)."""
    from decide_regions import regions_of, votes

    from alphacut.matte import decide as D
    from alphacut.matte.fuse import logit

    a, b = o["a"], o["b"]
    out = D.decide_mattes(a, b, o["seen"]) >= 0.5
    fa, fb = a >= 0.5, b >= 0.5
    _, labels, _ = D._regions(fa & ~fb, ~fa & fb)
    z = {v: np.clip(logit(np.nan_to_num(o[v], nan=0.5)), -D.VOTE_CLIP, D.VOTE_CLIP) for v in views if v in o}
    for r in regions_of(a, b, o["seen"], t.astype(np.float32)):
        region = labels == r["label"]
        yes, no_a, no_b, attached, edge, _ = votes(r)
        s = yes + D.NO_WEIGHT * (no_a + no_b) + D.ADJACENCY_WEIGHT * attached + D.TIE_BREAK
        for v, zv in z.items():
            covered = region & ~np.isnan(o[v])
            if covered.sum() >= 0.5 * region.sum():
                s += weight * float(zv[covered].mean())
        if r["edge"] is not None and abs(s) <= 2 * D.EDGE_WEIGHT:
            s += D.EDGE_WEIGHT * edge
        out[region] = s > 0
    return out


def main() -> int:
    import quality
    from alphacut.matte import decide as D
    from alphacut.models.store import ModelStore

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="sod", help="any of am,sod,sodx")
    ap.add_argument("--weight", type=float, default=0.5)
    args = ap.parse_args()
    ac = quality.CachedAlphacut("isnet", ModelStore())
    (helper, hspec), _ = ac.helper("isnet")
    for key in args.sets.split(","):
        items = quality.set_items(key, argparse.Namespace(davis_step=5, limit_sod=None))
        if not items:
            print(f"{key}: no data")
            continue
        scores: dict[str, list[float]] = {}
        for name, load in items:
            img, truth = load()
            o = opinions(ac, helper, hspec, img)
            h, w = o["a"].shape
            t = cv2.resize(truth.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
            fa, fb = o["a"] >= 0.5, o["b"] >= 0.5
            n, labels, _ = D._regions(fa & ~fb, ~fa & fb)
            truth_share = np.bincount(labels.ravel(), t.ravel().astype(float), minlength=n) / np.maximum(
                np.bincount(labels.ravel(), minlength=n), 1)
            row = {
                "fast rule": iou(D.decide_mattes(o["a"], o["b"], o["seen"]) >= 0.5, t),
                "best rule": iou(D.decide_mattes(o["a"], o["b"], o["seen"], other_relative=True) >= 0.5, t),
                "photo oracle": max(iou(fa, t), iou(fb, t)),
                "region oracle": iou((fa & fb) | ((labels > 0) & (truth_share[labels] > 0.5)), t),
                "+ mirror views": iou(with_views(o, t, VIEWS[:2], args.weight), t),
                "+ crop views": iou(with_views(o, t, VIEWS[2:], args.weight), t),
                "+ all views": iou(with_views(o, t, VIEWS, args.weight), t),
            }
            for k, v in row.items():
                scores.setdefault(k, []).append(v)
        print(f"\n{key} ({len(items)} photos), coarse mattes\n\n| decision | mean IoU | gross | better / worse than the fast rule |")
        print("|---|---|---|---|")
        ref = np.array(scores["fast rule"])
        for k, v in scores.items():
            v = np.array(v)
            print(f"| {k} | {v.mean():.3f} | {int((v < 0.8).sum())} | {int((v - ref > 0.02).sum())} / {int((v - ref < -0.02).sum())} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
