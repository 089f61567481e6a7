"""Matte and colour quality, alphacut vs rembg 2.x on the same model files, in one run.

    .venv/bin/python bench/quality.py                       # u2netp + isnet, fast + best, 30 DAVIS frames
    .venv/bin/python bench/quality.py --models u2netp --limit 10 --no-rembg
    .venv/bin/python bench/quality.py --timing12           # also: 12 MP fast vs best, isnet
    .venv/bin/python bench/quality.py --tiers fast,best-nocrop,best --rembg-modes default,-dc
                        # best-nocrop: best without the second model pass on a small subject's crop

Data: ``<repo>/../shared/eval`` (alphamatting-dev, davis345); skipped cleanly when absent.
Models: alphacut's model store (``ALPHACUT_HOME`` or the user cache); ``--model-dir DIR`` imports
``DIR/<name>.onnx`` into a temporary store first. rembg (``pip install "rembg[cpu,cli]"``) is run
on the very same files (``u2netp`` session; ``dis_custom`` pointed at the isnet file), with
``U2NET_HOME`` set to a temporary folder holding links to them, so it downloads nothing.

Metrics (alpha in 0..1, colours in 0..255):
- alphamatting-dev: SAD = sum|a_hat - a| / 1000, MSE x 1000, IoU at 0.5; DAVIS: IoU at 0.5.
- composite test: I = a*F + (1-a)*B with the set's photo F, its GT alpha a and a DAVIS frame B;
  the cutout of I is put over a new background N (another DAVIS frame):
  edge error = MAE(a_hat*F_hat + (1-a_hat)*N, a*F + (1-a)*N) over GT 0<a<1 dilated 5 px;
  colour error = MAE(a*F_hat, a*F) over GT 0<a<1 (our colours composed with the GT alpha).
- verify: share of our results whose PNG encoding passes alphacut's own verification.
rembg rows: ``default`` (its naive cutout: colour multiplied by alpha), ``-a`` (alpha matting),
``-dc`` (decontaminate: pymatting's multi-level foreground estimation on its mask).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
sys.path.insert(0, str(REPO / "src"))


def imread(path: Path) -> np.ndarray:
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if im is None:
        raise OSError(f"cannot read {path}")
    if im.ndim == 3:
        im = cv2.cvtColor(im[..., :3], cv2.COLOR_BGR2RGB)
    return im


def gray01(path: Path) -> np.ndarray:
    a = imread(path)
    if a.ndim == 3:
        a = a[..., 0]
    return a.astype(np.float32) / 255.0


def load_sets(limit: int):
    import cv2

    am_dir, dv_dir = EVAL / "alphamatting-dev", EVAL / "davis345"
    names = sorted(p.stem for p in (am_dir / "image").glob("*.png"))
    am = [(n, imread(am_dir / "image" / f"{n}.png"), gray01(am_dir / "alpha" / f"{n}.png")) for n in names]
    dv_all = sorted(p.stem for p in (dv_dir / "image").glob("*.jpg"))
    step = max(1, len(dv_all) // max(1, limit))
    dv = [(n, imread(dv_dir / "image" / f"{n}.jpg"), (gray01(dv_dir / "alpha" / f"{n}.png") > 0.5))
          for n in dv_all[::step][:limit]]
    comps = []
    for k, (n, F, a) in enumerate(am):
        h, w = a.shape
        B = cv2.resize(imread(dv_dir / "image" / f"{dv_all[(k * 20) % len(dv_all)]}.jpg"), (w, h),
                       interpolation=cv2.INTER_AREA).astype(np.float32)
        N = cv2.resize(imread(dv_dir / "image" / f"{dv_all[(k * 20 + 7) % len(dv_all)]}.jpg"), (w, h),
                       interpolation=cv2.INTER_AREA).astype(np.float32)
        I = np.clip(np.round(a[..., None] * F + (1 - a[..., None]) * B), 0, 255).astype(np.uint8)
        comps.append((n, I, F.astype(np.float32), a, N))
    return am, dv, comps


def alpha_metrics(ah: np.ndarray, a: np.ndarray) -> tuple[float, float, float]:
    d = ah.astype(np.float32) - a
    return float(np.abs(d).sum() / 1000), float((d * d).mean() * 1000), iou(ah > 0.5, a > 0.5)


def iou(x: np.ndarray, y: np.ndarray) -> float:
    u = np.logical_or(x, y).sum()
    return float(np.logical_and(x, y).sum() / u) if u else 1.0


def composite_metrics(ah, Fh, a, F, N) -> tuple[float, float]:
    import cv2

    band = (a > 0) & (a < 1)
    wide = cv2.dilate(band.astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
    a3, ah3 = a[..., None], ah.astype(np.float32)[..., None]
    Fh = Fh.astype(np.float32)
    edge = np.abs(ah3 * Fh + (1 - ah3) * N - (a3 * F + (1 - a3) * N))[wide].mean()
    colour = (a3 * np.abs(Fh - F))[band].mean()
    return float(edge), float(colour)


# --- the contestants: each maps an RGB uint8 image to (alpha float32 0..1, colours uint8) ----

def alphacut_runner(model: str, tier: str, store):
    """``tier``: fast, best, or best with ``-nocrop`` (no second pass on a small subject's crop),
    ``-solo`` (no second model's opinion) and/or ``-noview`` (no second input size) appended."""
    from alphacut import pipeline
    from alphacut.api import Remover

    remover = Remover(model, store=store)
    verify = {"ok": 0, "n": 0}
    quality, *off = tier.split("-")
    switches = {"SUBJECT_CROP_PASS": "nocrop" not in off, "SECOND_OPINION": "solo" not in off,
                "SECOND_VIEW": "noview" not in off}

    def run(img):
        saved = {k: getattr(pipeline, k) for k in switches}
        for k, v in switches.items():
            setattr(pipeline, k, v)
        try:
            res = remover.remove(img, quality=quality)
        finally:
            for k, v in saved.items():
                setattr(pipeline, k, v)
        verify["n"] += 1
        try:
            res.encode("png")
            verify["ok"] += 1
        except Exception as exc:  # noqa: BLE001 - counted, shown
            print(f"  verification failed: {exc}", file=sys.stderr)
        return res.matte, res.foreground

    return run, verify


def rembg_runner(model: str, mode: str, rembg_home: Path):
    from PIL import Image
    from rembg import new_session, remove

    if model == "isnet":
        session = new_session("dis_custom", model_path=str(rembg_home / "isnet.onnx"))
    else:
        session = new_session(model)
    kw = {"alpha_matting": mode == "-a", "decontaminate": mode == "-dc"}

    def run(img):
        out = np.asarray(remove(Image.fromarray(img), session=session, **kw).convert("RGBA"))
        return out[..., 3].astype(np.float32) / 255.0, out[..., :3]

    return run, None


def evaluate(run, am, dv, comps) -> dict[str, float]:
    t = time.perf_counter()
    sad, mse, iou_am = zip(*(alpha_metrics(run(img)[0], a) for _, img, a in am))
    iou_dv = [iou(run(img)[0] > 0.5, m) for _, img, m in dv]
    edge, colour = zip(*(composite_metrics(*run(I), a, F, N) for _, I, F, a, N in comps))
    n = len(am) + len(dv) + len(comps)
    return {"SAD": np.mean(sad), "MSE": np.mean(mse), "IoU_am": np.mean(iou_am),
            "IoU_davis": np.mean(iou_dv) if iou_dv else float("nan"), "edge": np.mean(edge),
            "colour": np.mean(colour), "s/img": (time.perf_counter() - t) / n}


#: a real 12-megapixel phone photo (libavif test data, BSD-2-Clause): a shaggy dog
DOG_12MP = EVAL / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"


def timing12(store, model: str = "isnet") -> None:
    import cv2

    from alphacut.api import Remover, picture_from

    if DOG_12MP.is_file():
        big = picture_from(DOG_12MP).rgb
    else:  # an upscaled matting photo, when the format corpus is absent
        img = imread(EVAL / "alphamatting-dev" / "image" / "GT03.png")
        big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    r = Remover(model, store=store)
    r.remove(big[:64, :64])  # load the session outside the clock
    print(f"\n12 MP ({big.shape[1]}x{big.shape[0]}), {model}, matte+colours+verified PNG encode:")
    res = {}
    for tier in ("fast", "best", "fast", "best"):
        t = time.perf_counter()
        out = r.remove(big, quality=tier)
        out.encode("png")
        dt = time.perf_counter() - t
        res.setdefault(tier, []).append(dt)
        print(f"  {tier}: {dt:.1f} s  stages: " + ", ".join(f"{k} {v:.1f}" for k, v in out.timings.items()))
    f, b = min(res["fast"]), min(res["best"])
    print(f"  best / fast = {b / f:.2f}  (target <= 3)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="u2netp,isnet")
    ap.add_argument("--tiers", default="fast,best")
    ap.add_argument("--limit", type=int, default=30, help="DAVIS frames (evenly spaced)")
    ap.add_argument("--model-dir", type=Path, default=None, help="import <dir>/<name>.onnx into a temp store")
    ap.add_argument("--no-rembg", action="store_true")
    ap.add_argument("--rembg-modes", default="default,-dc,-a",
                    help="rembg rows to run (-a, its alpha matting, is slow)")
    ap.add_argument("--timing12", action="store_true")
    args = ap.parse_args(argv)

    if not (EVAL / "alphamatting-dev").is_dir() or not (EVAL / "davis345").is_dir():
        print(f"bench/quality.py: evaluation data not found at {EVAL}; skipped.")
        return 0
    import cv2

    cv2.setNumThreads(max(1, os.cpu_count() or 1))
    from alphacut.models.store import ModelStore

    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    models = [m for m in args.models.split(",") if m]
    if args.model_dir:
        store = ModelStore(home=tmp / "home")
        from alphacut.second_opinion import HELPERS

        for m in dict.fromkeys(models + [HELPERS[m] for m in models if m in HELPERS]):
            store.import_file(args.model_dir / f"{m}.onnx", name=m)
    else:
        store = ModelStore()

    am, dv, comps = load_sets(args.limit)
    print(f"data: {len(am)} alphamatting-dev, {len(dv)} DAVIS frames, {len(comps)} composites")

    rembg_ok = False
    if not args.no_rembg:
        try:
            import rembg  # noqa: F401

            rhome = tmp / "u2net"
            rhome.mkdir()
            for m in models:
                os.symlink(store.path(m), rhome / f"{m}.onnx")
            os.environ["U2NET_HOME"] = str(rhome)
            rembg_ok = True
        except ImportError:
            print("rembg not installed: its rows are skipped (pip install 'rembg[cpu,cli]')")

    rows = []
    for m in models:
        for tier in args.tiers.split(","):
            run, ver = alphacut_runner(m, tier, store)
            r = evaluate(run, am, dv, comps)
            r["verify"] = ver["ok"] / max(1, ver["n"])
            rows.append((m, f"alphacut {tier}", r))
            print(f"  {m} alphacut {tier}: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()), flush=True)
        if rembg_ok:
            for mode in args.rembg_modes.split(","):
                run, _ = rembg_runner(m, mode, Path(os.environ["U2NET_HOME"]))
                r = evaluate(run, am, dv, comps)
                rows.append((m, f"rembg {mode}", r))
                print(f"  {m} rembg {mode}: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()), flush=True)

    keys = ["SAD", "MSE", "IoU_am", "IoU_davis", "edge", "colour", "s/img", "verify"]
    print("\n| model | method | " + " | ".join(keys) + " |")
    print("|" + "---|" * (len(keys) + 2))
    for m, name, r in rows:
        cells = [f"{r[k]:.3f}" if k in r else "" for k in keys]
        print(f"| {m} | {name} | " + " | ".join(cells) + " |")

    if rembg_ok:
        print("\nratios ours / rembg (lower is better; targets: colour <= 0.4 x default and <= 0.7 x -dc;"
              " edge <= 0.85 x default; SAD fast <= 1.0 x default, best <= 0.8 x default)")
        print("| model | tier | SAD/default | edge/default | colour/default | colour/-dc | SAD/-a |")
        print("|---|---|---|---|---|---|---|")
        nan = {"SAD": float("nan"), "edge": float("nan"), "colour": float("nan")}
        for m in models:
            ref = {name: r for mm, name, r in rows if mm == m}
            for tier in args.tiers.split(","):
                o = ref[f"alphacut {tier}"]
                d, dc, aa = (ref.get(f"rembg {k}", nan) for k in ("default", "-dc", "-a"))
                print(f"| {m} | {tier} | {o['SAD'] / d['SAD']:.2f} | {o['edge'] / d['edge']:.2f} | "
                      f"{o['colour'] / d['colour']:.2f} | {o['colour'] / dc['colour']:.2f} | {o['SAD'] / aa['SAD']:.2f} |")

    if args.timing12:
        timing12(store, models[-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
