"""Before/after crops for docs/quality.md: rembg default | alphacut fast | alphacut best, at 100%.

    PYTHONPATH=src .venv/bin/python bench/doc_crops.py --model-dir /tmp/dl

Only photos whose licence allows redistribution (see docs/quality.md for the credits):
- libavif test data (BSD-2-Clause): ``jpeg_odd/libavif/dog_exif_extended_xmp_icc.jpg``, a shaggy dog;
- pillow-heif test data (BSD-3-Clause): ``heic/pug.heic``.
Each cutout (straight RGBA, as written to a file) is composed over one flat colour the way an
editor does (``a·rgb + (1-a)·colour``), so halos and old-background fringes show.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FORMATS = REPO.parent / "shared" / "eval" / "formats"
sys.path.insert(0, str(REPO / "src"))

#: (photo, output name, crop centre (x, y) in full-resolution pixels, flat colour)
CROPS = [
    ("jpeg_odd/libavif/dog_exif_extended_xmp_icc.jpg", "fur-dog-ear", (840, 2000), (38, 64, 150)),
    ("jpeg_odd/libavif/dog_exif_extended_xmp_icc.jpg", "fur-dog-head", (2330, 1640), (38, 64, 150)),
    ("heic/pug.heic", "fur-pug-neck", (1680, 1600), (24, 32, 44)),
]
SIDE = 340


def over(rgb: np.ndarray, alpha01: np.ndarray, colour) -> np.ndarray:
    a = alpha01[..., None].astype(np.float32)
    out = rgb.astype(np.float32) * a + np.asarray(colour, np.float32) * (1 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def label(panel: np.ndarray, text: str) -> np.ndarray:
    import cv2

    bar = np.full((26, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, panel])


def main(argv=None) -> int:
    import cv2
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = ap.parse_args(argv)
    if not FORMATS.is_dir():
        print(f"doc_crops: {FORMATS} not found; skipped.")
        return 0

    from rembg import new_session, remove

    from alphacut.api import Remover, picture_from
    from alphacut.models.store import ModelStore

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-crops-"))
    if args.model_dir:
        from alphacut.second_opinion import HELPERS

        store = ModelStore(home=tmp / "home")
        for m in dict.fromkeys([args.model, HELPERS.get(args.model, args.model)]):
            store.import_file(args.model_dir / f"{m}.onnx", name=m)  # with the best tier's helper
    else:
        store = ModelStore()
    (tmp / "u2net").mkdir()
    os.symlink(store.path(args.model), tmp / "u2net" / f"{args.model}.onnx")
    os.environ["U2NET_HOME"] = str(tmp / "u2net")
    session = (new_session("dis_custom", model_path=str(tmp / "u2net" / "isnet.onnx"))
               if args.model == "isnet" else new_session(args.model))
    remover = Remover(args.model, store=store)
    args.out.mkdir(parents=True, exist_ok=True)

    done: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for photo, name, (cx, cy), colour in CROPS:
        if photo not in done:
            pic = picture_from(FORMATS / photo)
            rb = np.asarray(remove(Image.fromarray(pic.rgb), session=session).convert("RGBA"))
            results = {"rembg default": (rb[..., :3], rb[..., 3].astype(np.float32) / 255)}
            for tier in ("fast", "best"):
                res = remover.remove(pic.rgb, quality=tier)
                rgba = res.rgba  # straight RGBA exactly as the encoders write it
                results[f"alphacut {tier}"] = (rgba[..., :3], rgba[..., 3].astype(np.float32) / 255)
            done[photo] = results
        x0, y0 = cx - SIDE // 2, cy - SIDE // 2
        panels = []
        for title, (rgb, a) in done[photo].items():
            crop = over(rgb[y0:y0 + SIDE, x0:x0 + SIDE], a[y0:y0 + SIDE, x0:x0 + SIDE], colour)
            panels.append(label(crop, f"{title} ({args.model})"))
            panels.append(np.full((panels[-1].shape[0], 4, 3), 255, np.uint8))
        sheet = np.hstack(panels[:-1])
        path = args.out / f"{name}.png"
        Image.fromarray(sheet).save(path, optimize=True)
        print(f"{path}: {sheet.shape[1]}x{sheet.shape[0]}, {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
