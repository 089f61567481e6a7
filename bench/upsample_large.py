"""Edge-aware upsampling on large photos: matte error against the working resolution.

alphamatting-dev's photos are ~800 px, where the guided filter runs at full resolution; on a
12-megapixel photo it fits its coefficients at ``WORK_MAX_SIDE`` and applies them tile by tile.
This bench upscales each photo and its true alpha (default 4x, ~3200 px), runs the model once
per photo (cached for the run), upsamples its matte at several working sides and prints SAD
(sum |a_hat - a| / 1000, divided by scale² so it reads like the set's own SAD), the error in
the true soft band, and the CPU time. Skips when ``../shared/eval`` is absent.

    PYTHONPATH=src .venv/bin/python bench/upsample_large.py --model isnet --sides 2048,1536,1024
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from alphacut.matte import upsample

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def photos(scale: int, limit: int):
    """(photo uint8 RGB, true alpha float32) at ``scale`` times the set's resolution."""
    for path in sorted((EVAL / "alphamatting-dev" / "alpha").glob("*.png"))[:limit]:
        img = cv2.cvtColor(cv2.imread(str(EVAL / "alphamatting-dev" / "image" / path.name)), cv2.COLOR_BGR2RGB)
        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        size = (img.shape[1] * scale, img.shape[0] * scale)
        yield (cv2.resize(img, size, interpolation=cv2.INTER_CUBIC),
               np.clip(cv2.resize(a, size, interpolation=cv2.INTER_LINEAR), 0, 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--sides", default="2048,1536,1024")
    ap.add_argument("--limit", type=int, default=8)
    args = ap.parse_args()
    if not (EVAL / "alphamatting-dev").is_dir():
        print(f"skipped: {EVAL} is absent")
        return 0
    from alphacut.api import Remover
    from alphacut.matte.predict import predict_matte
    from alphacut.pipeline import plan_inference_image

    remover = Remover(args.model)
    cases = [(img, a, predict_matte(remover.session, plan_inference_image(img), remover.spec))
             for img, a in photos(args.scale, args.limit)]
    print(f"alphamatting-dev x{args.scale}, {len(cases)} photos, model {args.model}")
    print("| working side | SAD (/scale²) | mean |error| in the soft band | CPU s |\n|---|---|---|---|")
    saved = upsample.WORK_MAX_SIDE
    try:
        for side in (int(s) for s in args.sides.split(",")):
            upsample.WORK_MAX_SIDE = side
            sad, band_err, cpu = [], [], 0.0
            for img, a, coarse in cases:
                t = time.process_time()
                m = upsample.upsample_matte(coarse, img)
                cpu += time.process_time() - t
                err = np.abs(m - a)
                sad.append(float(err.sum()) / 1000 / args.scale**2)
                band_err.append(float(err[(a > 0) & (a < 1)].mean()))
            print(f"| {side} | {np.mean(sad):.3f} | {np.mean(band_err):.4f} | {cpu:.1f} |")
    finally:
        upsample.WORK_MAX_SIDE = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
