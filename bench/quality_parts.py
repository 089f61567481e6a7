"""Where the error is: per-image SAD and edge error split into their parts, one model and tier.

    PYTHONPATH=src .venv/bin/python bench/quality_parts.py --model isnet --tier best

Same data, metrics and runner as ``bench/quality.py`` (alphamatting-dev and its composites);
it answers "would a better edge refinement, or better colours, move this number?":

- SAD (sum|a_hat - a| / 1000) split into the part within ±5 px of our matte's 0.5 contour
  (what an edge refinement can reach) and the rest (regions the model got wrong);
- edge error split into *gross* pixels (|a_hat - a| > 0.3: a region or a hair mass on the wrong
  side) and *fine* ones; and the edge error with the true colours (alpha's share) and with the
  true alpha (the colours' share).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q  # noqa: E402  (bench/quality.py: data, metrics, runner)

#: |a_hat - a| above this is a gross error: the pixel is on the wrong side, not merely soft
GROSS = 0.3
#: half-width of the contour band that counts as "edge" for the SAD split (pixels)
BAND_PX = 5


def sad_parts(ah: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """(SAD within ±BAND_PX of a_hat's 0.5 contour, SAD elsewhere), both / 1000."""
    import cv2

    fg = (ah >= 0.5).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND_PX + 1, 2 * BAND_PX + 1))
    band = cv2.dilate(fg, k) != cv2.erode(fg, k)
    d = np.abs(ah.astype(np.float32) - a)
    return float(d[band].sum() / 1000), float(d[~band].sum() / 1000)


def edge_parts(ah, Fh, a, F, N) -> dict[str, float]:
    """The composite test's edge error and its parts, each a mean over the same pixels."""
    import cv2

    band = (a > 0) & (a < 1)
    wide = cv2.dilate(band.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
    a3, ah3, Fh = a[..., None], ah.astype(np.float32)[..., None], Fh.astype(np.float32)
    truth = a3 * F + (1 - a3) * N
    err = np.abs(ah3 * Fh + (1 - ah3) * N - truth).mean(axis=2)
    gross = np.abs(ah - a) > GROSS
    n = wide.sum()
    return {
        "edge": float(err[wide].mean()),
        "gross": float(err[wide & gross].sum() / n),
        "fine": float(err[wide & ~gross].sum() / n),
        "alpha_only": float(np.abs(ah3 * F + (1 - ah3) * N - truth).mean(axis=2)[wide].mean()),
        "colour_only": float(np.abs(a3 * Fh + (1 - a3) * N - truth).mean(axis=2)[wide].mean()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--tier", default="fast", help="as in bench/quality.py: fast, best, best-solo, ...")
    args = ap.parse_args(argv)
    if not (Q.EVAL / "alphamatting-dev").is_dir() or not (Q.EVAL / "davis345").is_dir():
        print(f"bench/quality_parts.py: evaluation data not found at {Q.EVAL}; skipped.")
        return 0
    from alphacut.models.store import ModelStore

    am, _, comps = Q.load_sets(1)
    run, _ = Q.alphacut_runner(args.model, args.tier, ModelStore())
    print(f"{args.model} {args.tier}\n")
    print("| image | SAD | in ±5 px of contour | elsewhere | edge | gross | fine | alpha only | colour only |")
    print("|---|---|---|---|---|---|---|---|---|")
    tot = np.zeros(8)
    for (n, img, a), (_, I, F, ca, N) in zip(am, comps):
        ah = run(img)[0]
        near, far = sad_parts(ah, a)
        e = edge_parts(*run(I), ca, F, N)
        row = np.array([near + far, near, far, e["edge"], e["gross"], e["fine"], e["alpha_only"], e["colour_only"]])
        tot += row
        print(f"| {n} | " + " | ".join(f"{v:.1f}" for v in row) + " |", flush=True)
    print("| mean | " + " | ".join(f"{v:.2f}" for v in tot / len(am)) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
