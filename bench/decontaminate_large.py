"""Decontamination on large photos: colour error of the bounded path against the exact one.

alphamatting-dev's photos are ~800 px, so ``bench/quality.py`` never reaches the path that runs
the blur passes at ``BLUR_SIDE`` for photos over 2048 px. This bench upscales each photo and its
true alpha (2x, 4x), composes them over a DAVIS frame, decontaminates with the **true** alpha
(isolating the colour estimate from matte errors) and prints the colour error
``mean(a·|F̂ − F|)`` in 0..255 over ``0 < a < 1`` and the CPU time, per blur side. Skips when
``../shared/eval`` is absent.

    PYTHONPATH=src .venv/bin/python bench/decontaminate_large.py --scale 4 --sides 2048,1024,512
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from alphacut.matte import decontaminate

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def composites(scale: int, limit: int):
    """(I uint8, true alpha, true F float) at ``scale`` times the set's resolution."""
    alphas = sorted((EVAL / "alphamatting-dev" / "alpha").glob("*.png"))[:limit]
    backs = sorted((EVAL / "davis345" / "image").glob("*"))
    for k, path in enumerate(alphas):
        F = cv2.cvtColor(cv2.imread(str(EVAL / "alphamatting-dev" / "image" / path.name)), cv2.COLOR_BGR2RGB)
        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        h, w = a.shape
        size = (w * scale, h * scale)
        F = cv2.resize(F, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
        a = np.clip(cv2.resize(a, size, interpolation=cv2.INTER_LINEAR), 0, 1)
        B = cv2.cvtColor(cv2.imread(str(backs[(k * 7) % len(backs)])), cv2.COLOR_BGR2RGB)
        B = cv2.resize(B, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
        I = a[..., None] * F + (1 - a[..., None]) * B
        yield np.rint(np.clip(I, 0, 1) * 255).astype(np.uint8), a, F


def colour_error(scale: int, limit: int, blur_side: int | None) -> tuple[float, float]:
    """Mean colour error and CPU seconds; ``blur_side`` None = the exact full-resolution path."""
    saved = decontaminate.WORK_MAX_SIDE, decontaminate.BLUR_SIDE
    if blur_side is None:
        decontaminate.WORK_MAX_SIDE = 10**9
    else:
        decontaminate.WORK_MAX_SIDE, decontaminate.BLUR_SIDE = 1, blur_side
    errors, cpu = [], 0.0
    try:
        for I, a, F in composites(scale, limit):
            t = time.process_time()
            Fh = decontaminate.estimate_foreground(I, a).astype(np.float32) / 255
            cpu += time.process_time() - t
            band = (a > 0) & (a < 1)
            errors.append(float((a[..., None] * np.abs(Fh - F))[band].mean() * 255))
    finally:
        decontaminate.WORK_MAX_SIDE, decontaminate.BLUR_SIDE = saved
    return float(np.mean(errors)), cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--sides", default="2048,1024,512", help="blur sides to compare")
    ap.add_argument("--limit", type=int, default=8, help="photos to use")
    ap.add_argument("--exact", action="store_true", help="also run the full-resolution path (slow)")
    args = ap.parse_args()
    if not (EVAL / "alphamatting-dev").is_dir():
        print(f"skipped: {EVAL} is absent")
        return 0
    print(f"alphamatting-dev x{args.scale}, {args.limit} photos, true alpha; colour error 0..255")
    print("| blur side | colour error | CPU s |\n|---|---|---|")
    sides: list[int | None] = [int(s) for s in args.sides.split(",")] + ([None] if args.exact else [])
    for side in sides:
        err, cpu = colour_error(args.scale, args.limit, side)
        print(f"| {side or 'full resolution'} | {err:.3f} | {cpu:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
