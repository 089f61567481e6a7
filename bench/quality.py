"""Matte and colour quality, alphacut vs rembg 2.x on the same model files, in one run.

    PYTHONPATH=src .venv/bin/python bench/quality.py       # u2netp + isnet, fast + best, 30 DAVIS frames
    PYTHONPATH=src .venv/bin/python bench/quality.py --models u2netp --limit 10 --no-rembg
    PYTHONPATH=src .venv/bin/python bench/quality.py --timing12           # also: 12 MP fast vs best, isnet
    PYTHONPATH=src .venv/bin/python bench/quality.py --tiers fast,best-nocrop,best --rembg-modes default,-dc
                        # best-nocrop: best without the second model pass on a small subject's crop

Gross-failure accounting (``--sets``: instead of the run above; rembg in its own environment):

    PYTHONPATH=src .venv/bin/python bench/quality.py --sets am,sod,sodx,davis,dog \
        --rembg-python /path/to/rembg-venv/bin/python --json gross.json --panels /tmp/panels
    PYTHONPATH=src .venv/bin/python bench/quality.py --sets am,dog,sod --limit-sod 20 --davis-step 25 --no-rembg
    PYTHONPATH=src .venv/bin/python bench/quality.py --sets sod --tiers fast,best,best-solo --models u2netp

Data: ``<repo>/../shared/eval``; a set whose folder is absent is skipped cleanly.
Models: alphacut's model store (``ALPHACUT_HOME`` or the user cache); ``--model-dir DIR`` imports
``DIR/<name>.onnx`` into a temporary store first. Every model pass goes through
``raw_cache.CachedRunner`` (the main model and its second opinion):
a rerun skips them and still runs everything after them (upsampling, the best tier's band
matting) for real.

rembg, first run: imported here (``pip install "rembg[cpu,cli]"``) on the very same files
(``u2netp`` session; ``dis_custom`` pointed at the isnet file), with ``U2NET_HOME`` set to a
temporary folder holding links to them, so it downloads nothing. Rows: ``default`` (its naive
cutout: colour multiplied by alpha), ``-a`` (alpha matting), ``-dc`` (decontaminate:
pymatting's multi-level foreground estimation on its mask).
rembg, ``--sets``: its default mode on alphacut's own file for the model (the float32 CPU copy
of a float16 model: what alphacut runs on CPU), run by ``bench/rembg_alpha.py`` under
``--rembg-python`` (or ``$ALPHACUT_REMBG_PYTHON``) in a subprocess; its alphas are cached as PNG
in ``raw_cache.cache_dir()/rembg``, keyed by the model file's sha256, rembg's session and mode
and the exact pixels it was given: computed once per image, ever.

Metrics of the first run (alpha in 0..1, colours in 0..255):
- alphamatting-dev: SAD = sum|a_hat - a| / 1000, MSE x 1000, IoU at 0.5; DAVIS (davis345): IoU at 0.5.
- composite test: I = a*F + (1-a)*B with the set's photo F, its GT alpha a and a DAVIS frame B;
  the cutout of I is put over a new background N (another DAVIS frame):
  edge error = MAE(a_hat*F_hat + (1-a_hat)*N, a*F + (1-a)*N) over GT 0<a<1 dilated 5 px;
  colour error = MAE(a*F_hat, a*F) over GT 0<a<1 (our colours composed with the GT alpha).
- verify: share of our results whose PNG encoding passes alphacut's own verification.

``--sets`` (any of): ``am`` alphamatting-dev (14 photos, soft GT), ``sod`` sod-dev objects
(the 94 of ``objects.txt``: gated), ``sodx`` the other 47 sod-dev photos (reported apart),
``davis`` every ``--davis-step``-th frame of each davis2016-video sequence, ``dog`` the 12 MP
phone photo (decoded upright, 3024x4032). Methods: each of ``--tiers`` (default fast,best) for
each of ``--models`` (default isnet), and rembg default on the same file. Mattes only (no
decontamination: the metrics read alpha alone).
Per image (truth T = GT > 0.5, cutout P = a_hat >= 0.5), see ``bench/gross.py``:
- SAD = sum|a_hat - GT| / 1000; IoU = |P&T| / |P|T|;
- lost  = |T & ~P| / |T|: the share of the subject dropped;
- kept  = |~T & P| / |T|: background kept, as a share of the subject's area;
- holes = |T & ~P & enclosed| / |T|, enclosed = predicted background that cannot reach the
  image border through predicted background (4-connected): holes punched inside the cutout's
  own outline (a part of ``lost``);
- gross = IoU < 0.8.
Per set and method: mean and median of each (the table shows mean/median IoU, the gross count,
mean lost/kept/holes, mean/median SAD; ``--json`` has everything, per image too), and the five
worst images by IoU. Per image, on alphamatting-dev and sod-dev objects, the rule "best is not
clearly worse than fast": best SAD <= 1.15 x fast SAD + 0.5, or best IoU >= fast IoU - 0.02;
failures are listed. The dog: mean alpha over the chest (x 1250-2000, y 3050-3950) and the
front leg (x 850-1100, y 3200-3800), target >= 0.95, and over the grass (x 0-600, y 600-1500),
target <= 0.02. Targets (issue 12) against rembg on the same weights: sod-dev objects, best's
gross count <= 0.85 x rembg's and mean IoU >= rembg's + 0.03, fast's gross count <= 0.95 x
rembg's; alphamatting-dev mean SAD, fast <= 0.9 x rembg's, best <= 0.75 x rembg's.
``--panels DIR``: a PNG per photo, original | each method's cutout at full picture size over a
saturated colour far from the photo's mean colour, at most 1800 px wide: the dog, and the
``--panel-count`` sod-dev photos where fast and best differ most in IoU plus each tier's three
worst. For looking at, not for committing (sod-dev is research-licensed).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EVAL = REPO.parent / "shared" / "eval"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))


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

def tier_switches(tier: str) -> tuple[str, dict[str, bool]]:
    """``tier``: fast, best, or either with ``-solo`` (no second model's opinion) and/or, for
    best, ``-nocrop`` (no second pass on a small subject's crop) appended: the quality and the
    ``Options`` switches it sets."""
    quality, *off = tier.split("-")
    return quality, {"subject_crop_pass": "nocrop" not in off, "second_opinion": "solo" not in off}


def cached(session: Any, spec: Any) -> Any:
    """``session`` answering from the bench's raw-output cache (``raw_cache.CachedRunner``)."""
    from raw_cache import CachedRunner

    # keyed by the installed model file (the CPU's float32 copy is built from it, deterministically)
    return CachedRunner(session, session.path, keep=spec.output_index + 1)


class CachedAlphacut:
    """alphacut's pipeline for one model with every session it runs (the model and its second
    opinion) wrapped in ``raw_cache.CachedRunner``: a rerun
    skips the model passes and still runs everything after them for real."""

    def __init__(self, model: str, store: Any) -> None:
        from alphacut.models.catalog import get_spec
        from alphacut.models.session import open_session
        from alphacut.second_opinion import helper_loader

        self.spec = get_spec(model)
        self.session = cached(open_session(store, model), self.spec)
        self._helper_loader = helper_loader(store)
        self._helpers: dict[str, Any] = {}

    def helper(self, model: str) -> tuple[Any, str | None]:
        if model not in self._helpers:
            found, why = self._helper_loader(model)
            self._helpers[model] = ((cached(found[0], found[1]), found[1]) if found else None, why)
        return self._helpers[model]

    def cut(self, img: np.ndarray, tier: str, *, decontaminate: bool = True) -> Any:
        """The ``pipeline.Cutout`` of an RGB image at ``tier`` (see ``tier_switches``)."""
        from alphacut import pipeline
        from alphacut.api import picture_from
        from alphacut.steps import Stages

        quality, switches = tier_switches(tier)
        opts = pipeline.Options(model=self.spec.name, quality=quality, decontaminate=decontaminate, **switches)
        stages = Stages(self.session, self.spec, helper=self.helper)
        return stages.cut_out(picture_from(img), opts)


def alphacut_runner(model: str, tier: str, store):
    """A runner for ``evaluate``: alphacut at ``tier`` (see ``tier_switches``), its PNG
    encoding verified and counted."""
    from alphacut.api import Result

    ac = CachedAlphacut(model, store)
    verify = {"ok": 0, "n": 0}

    def run(img):
        res = Result(ac.cut(img, tier))
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


# --- gross-failure accounting (--sets): whole-subject errors per image, per set -------------

#: set key -> title in the report
SET_TITLES = {"am": "alphamatting-dev", "sod": "sod-dev objects", "sodx": "sod-dev rest (not gated)",
              "davis": "davis2016-video", "dog": "12 MP dog"}
#: the dog's regions in upright pixel coordinates: (x0, x1, y0, y1), what alpha should be there
DOG_REGIONS = {"chest": ((1250, 2000, 3050, 3950), "fg"), "leg": ((850, 1100, 3200, 3800), "fg"),
               "grass": ((0, 600, 600, 1500), "bg")}
#: dog targets: mean alpha >= this over a foreground region, <= this over a background one
DOG_FG_MIN, DOG_BG_MAX = 0.95, 0.02

#: an image of a set: its name and a loader for (RGB uint8, ground-truth alpha in 0..1)
Item = tuple[str, Callable[[], tuple[np.ndarray, np.ndarray]]]
#: one image's metrics (``gross.image_metrics``)
Row = dict[str, float]


def _pair(image: Path, alpha: Path) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    return lambda: (imread(image), gray01(alpha))


def am_items() -> list[Item]:
    d = EVAL / "alphamatting-dev"
    return [(p.stem, _pair(p, d / "alpha" / p.name)) for p in sorted((d / "image").glob("*.png"))]


def sod_items(objects: bool, limit: int | None = None) -> list[Item]:
    """sod-dev's photos on ``objects.txt`` (``objects``) or the others, in id order."""
    d = EVAL / "sod-dev"
    listed = set((d / "objects.txt").read_text().split())
    photos = sorted(p for p in (d / "image").iterdir() if p.suffix in (".jpg", ".png"))
    chosen = [p for p in photos if (p.stem in listed) == objects][:limit]
    return [(p.stem, _pair(p, d / "alpha" / f"{p.stem}.png")) for p in chosen]


def davis_items(step: int) -> list[Item]:
    """Every ``step``-th frame of each davis2016-video sequence, named ``<seq>/<frame>``."""
    d = EVAL / "davis2016-video"
    items = []
    for seq in sorted(p for p in d.iterdir() if (p / "image").is_dir()):
        for f in sorted((seq / "image").glob("*.jpg"))[::step]:
            items.append((f"{seq.name}/{f.stem}", _pair(f, seq / "alpha" / f"{f.stem}.png")))
    return items


def set_items(key: str, args: argparse.Namespace) -> list[Item] | None:
    """The images of set ``key``, or None when its data is absent."""
    folder = {"am": "alphamatting-dev", "sod": "sod-dev", "sodx": "sod-dev", "davis": "davis2016-video"}[key]
    if not (EVAL / folder).is_dir():
        return None
    if key == "am":
        return am_items()
    if key == "davis":
        return davis_items(args.davis_step)
    return sod_items(key == "sod", args.limit_sod)


class Contestants:
    """Every method of one model, as alphas: alphacut's tiers and rembg's default mode."""

    def __init__(self, model: str, tiers: list[str], store: Any, rembg_python: str | None) -> None:
        self.alphacut = CachedAlphacut(model, store)
        self.tiers = tiers
        self.rembg = None
        if rembg_python:
            from rembg_alpha import RembgAlphas

            self.rembg = RembgAlphas(rembg_python, model, store.cpu_file(model) or store.path(model))

    @property
    def methods(self) -> list[str]:
        return [f"alphacut {t}" for t in self.tiers] + (["rembg default"] if self.rembg else [])

    def alphas(self, images: list[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """Per image, {method: alpha float32 0..1}; rembg's missing alphas in one subprocess first."""
        theirs = self.rembg.alphas(images) if self.rembg else [None] * len(images)
        for img, r in zip(images, theirs):
            out = {f"alphacut {t}": self.alphacut.cut(img, t, decontaminate=False).matte for t in self.tiers}
            if r is not None:
                out["rembg default"] = r
            yield out


def run_set(items: list[Item], who: Contestants, keep: bool) -> tuple[dict[str, dict[str, Row]], dict[str, Any]]:
    """({method: {image: metrics}}, {image: {method: alpha uint8}} when ``keep``)."""
    from gross import image_metrics

    loaded = [(name, *load()) for name, load in items]
    rows: dict[str, dict[str, Row]] = {m: {} for m in who.methods}
    kept: dict[str, Any] = {}
    t = time.perf_counter()
    for k, ((name, _, gt), alphas) in enumerate(zip(loaded, who.alphas([img for _, img, _ in loaded]))):
        for m, a in alphas.items():
            rows[m][name] = image_metrics(a, gt)
        if keep:
            kept[name] = {m: np.round(a * 255).astype(np.uint8) for m, a in alphas.items()}
        print(f"  {k + 1}/{len(loaded)} {name}: " + ", ".join(f"{m} IoU {r[name]['IoU']:.3f}" for m, r in rows.items())
              + f"  ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    return rows, kept


def dog_regions(alpha: np.ndarray) -> dict[str, float]:
    return {k: float(alpha[y0:y1, x0:x1].mean()) for k, ((x0, x1, y0, y1), _) in DOG_REGIONS.items()}


def run_dog(who: Contestants) -> tuple[dict[str, dict[str, float]], np.ndarray, dict[str, np.ndarray]] | None:
    """{method: {region: mean alpha}}, the upright photo and each method's alpha (uint8)."""
    if not DOG_12MP.is_file():
        return None
    from alphacut.api import picture_from

    rgb = picture_from(DOG_12MP).rgb
    alphas = next(who.alphas([rgb]))
    return ({m: dog_regions(a) for m, a in alphas.items()}, rgb,
            {m: np.round(a * 255).astype(np.uint8) for m, a in alphas.items()})


def dog_lines(regions: dict[str, dict[str, float]]) -> list[str]:
    head = " | ".join(f"{k} ({'>=' if side == 'fg' else '<='} {DOG_FG_MIN if side == 'fg' else DOG_BG_MAX})"
                      for k, (_, side) in DOG_REGIONS.items())
    lines = ["### 12 MP dog: mean alpha per region (upright pixels)", "", f"| method | {head} |",
             "|---|" + "---|" * len(DOG_REGIONS)]
    for m, r in regions.items():
        cells = []
        for k, (_, side) in DOG_REGIONS.items():
            ok = r[k] >= DOG_FG_MIN if side == "fg" else r[k] <= DOG_BG_MAX
            cells.append(f"{r[k]:.3f}{'' if ok else ' ✗'}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def best_tier(tiers: list[str]) -> str | None:
    """The tier the best-vs-fast rule and the targets judge: ``best``, else the first best-*."""
    return "best" if "best" in tiers else next((t for t in tiers if t.startswith("best")), None)


def target_checks(rows: dict[str, dict[str, dict[str, Row]]], best: str | None) -> list[tuple[str, float, str, float]]:
    """The issue's targets against rembg on the same weights, for the sets and tiers that ran."""
    from gross import summarise

    checks = []
    sod, am = rows.get("sod", {}), rows.get("am", {})
    fast, bst, ref = "alphacut fast", f"alphacut {best}", "rembg default"
    if ref in sod:
        r = summarise(sod[ref])
        if bst in sod:
            b = summarise(sod[bst])
            checks += [(f"sod-dev objects: {best} gross count <= 0.85 x rembg's", b["gross_count"], "<=",
                        0.85 * r["gross_count"]),
                       (f"sod-dev objects: {best} mean IoU >= rembg's + 0.03", b["IoU_mean"], ">=", r["IoU_mean"] + 0.03)]
        if fast in sod:
            checks.append(("sod-dev objects: fast gross count <= 0.95 x rembg's", summarise(sod[fast])["gross_count"],
                           "<=", 0.95 * r["gross_count"]))
    if ref in am:
        r = summarise(am[ref])
        for tier, f in (("fast", 0.9), (best, 0.75)):
            if f"alphacut {tier}" in am:
                checks.append((f"alphamatting-dev: {tier} mean SAD <= {f} x rembg's",
                               summarise(am[f"alphacut {tier}"])["SAD_mean"], "<=", f * r["SAD_mean"]))
    return checks


def contrasting(rgb: np.ndarray) -> tuple[int, int, int]:
    """A saturated colour far from the photo's mean colour, to put cutouts over."""
    mean = rgb.reshape(-1, 3).astype(np.float32).mean(axis=0)
    choices = [(255, 0, 255), (0, 255, 0), (0, 128, 255), (255, 255, 0), (255, 0, 0), (0, 255, 255)]
    return max(choices, key=lambda c: float(np.abs(np.array(c, np.float32) - mean).sum()))


def panel(rgb: np.ndarray, alphas: dict[str, np.ndarray], notes: dict[str, str], max_width: int = 1800) -> np.ndarray:
    """original | each method's cutout over a contrasting colour, labelled, at most ``max_width`` wide."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, max_width / (w * (1 + len(alphas))))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    colour = np.array(contrasting(rgb), np.float32)
    tiles = [("original", cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA))]
    small = tiles[0][1].astype(np.float32)
    for m, a in alphas.items():
        a = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)[..., None] / 255.0
        tiles.append((f"{m} {notes.get(m, '')}".strip(), np.round(small * a + colour * (1 - a)).astype(np.uint8)))
    out = []
    for label, tile in tiles:
        bar = np.full((28, sw, 3), 255, np.uint8)
        cv2.putText(bar, label, (4, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        out.append(np.vstack([bar, tile]))
    return np.hstack(out)


def panel_choices(rows: dict[str, dict[str, Row]], tiers: list[str], n: int, worst_n: int = 3) -> list[str]:
    """The ``n`` images where fast and best differ most in IoU, then each tier's worst few."""
    from gross import worst

    best = best_tier(tiers)
    chosen: list[str] = []
    if "fast" in tiers and best:
        f, b = rows["alphacut fast"], rows[f"alphacut {best}"]
        chosen = sorted(f, key=lambda k: -abs(f[k]["IoU"] - b[k]["IoU"]))[:n]
    for t in tiers:
        chosen += [name for name, _ in worst(rows[f"alphacut {t}"], worst_n)]
    return list(dict.fromkeys(chosen))


def write_panels(folder: Path, sets: dict[str, tuple[list[Item], dict[str, dict[str, Row]], dict[str, Any]]],
                 tiers: list[str], n: int, dog: Any, model: str) -> int:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    if dog is not None:
        regions, rgb, alphas = dog
        notes = {m: "chest {chest:.2f} leg {leg:.2f} grass {grass:.2f}".format(**r) for m, r in regions.items()}
        Image.fromarray(panel(rgb, alphas, notes)).save(folder / f"{model}-dog.png")
        count += 1
    for key, (items, rows, kept) in sets.items():
        loaders = dict(items)
        for name in panel_choices(rows, tiers, n):
            rgb, _ = loaders[name]()
            notes = {m: f"IoU {rows[m][name]['IoU']:.3f}" for m in kept[name]}
            Image.fromarray(panel(rgb, kept[name], notes)).save(folder / f"{model}-{key}-{name.replace('/', '_')}.png")
            count += 1
    return count


def gross_main(args: argparse.Namespace, store: Any) -> int:
    """The ``--sets`` run: see the module docstring."""
    import json

    import gross as G
    from rembg_alpha import rembg_available

    keys = [k for k in args.sets.split(",") if k]
    unknown = set(keys) - set(SET_TITLES)
    if unknown:
        raise SystemExit(f"unknown set(s): {', '.join(sorted(unknown))}; known: {', '.join(SET_TITLES)}")
    tiers = [t for t in args.tiers.split(",") if t]
    why = None if args.no_rembg else rembg_available(args.rembg_python)
    if why:
        print(f"rembg rows skipped: {why}")
    rembg_python = None if (args.no_rembg or why) else args.rembg_python
    dump: dict[str, Any] = {"sets": keys, "tiers": tiers, "davis_step": args.davis_step, "models": {}}
    for model in (args.models or "isnet").split(","):
        who = Contestants(model, tiers, store, rembg_python)
        rows: dict[str, dict[str, dict[str, Row]]] = {}
        panel_sets = {}
        lines = [f"## {model}", ""]
        for key in (k for k in keys if k != "dog"):
            items = set_items(key, args)
            if items is None:
                lines += [f"{SET_TITLES[key]}: data absent, skipped", ""]
                continue
            print(f"{model} {SET_TITLES[key]}: {len(items)} images", file=sys.stderr, flush=True)
            rows[key], kept = run_set(items, who, keep=bool(args.panels) and key in ("sod", "sodx"))
            if kept:
                panel_sets[key] = (items, rows[key], kept)
            title = SET_TITLES[key] + (f", every {args.davis_step}th frame" if key == "davis" else "")
            lines += G.set_table(title, rows[key]) + G.worst_lists(title, rows[key])
        best = best_tier(tiers)
        judged = [k for k in ("am", "sod") if k in rows and "fast" in tiers and best]
        if judged:
            lines += ["### best vs fast, per image", ""]
            for key in judged:
                lines += G.failure_lines(SET_TITLES[key], rows[key]["alphacut fast"], rows[key][f"alphacut {best}"])
            lines.append("")
        dog = run_dog(who) if "dog" in keys else None
        if dog is not None:
            lines += dog_lines(dog[0])
        lines += ["### targets (against rembg default on the same weights)", ""]
        lines += G.target_lines(target_checks(rows, best)) or ["- (needs rembg and the sod/am sets)"]
        lines += [""]
        print("\n".join(lines), flush=True)
        if args.panels:
            n = write_panels(args.panels, panel_sets, tiers, args.panel_count, dog, model)
            print(f"{n} panels written to {args.panels}")
        ac = who.alphacut
        print(f"raw cache: {ac.session.hits} hits, {ac.session.misses} misses (main model)"
              + (f"; rembg cache: {who.rembg.hits} hits, {who.rembg.misses} computed" if who.rembg else ""))
        dump["models"][model] = {
            "sets": rows, "summaries": {k: {m: G.summarise(r) for m, r in v.items()} for k, v in rows.items()},
            "best_vs_fast_failures": {k: G.best_vs_fast_failures(rows[k]["alphacut fast"], rows[k][f"alphacut {best}"])
                                      for k in ("am", "sod") if k in rows and "fast" in tiers and best},
            "dog": dog[0] if dog is not None else None,
            "targets": [dict(zip(("what", "measured", "op", "limit"), c)) for c in target_checks(rows, best)],
        }
    if args.json:
        args.json.write_text(json.dumps(G.as_json(dump), indent=1))
        print(f"per-image numbers: {args.json}")
    return 0


def model_store(model_dir: Path | None, models: list[str]) -> Any:
    """alphacut's model store, or with ``model_dir`` a temporary one holding ``<dir>/<name>.onnx``
    for each model and its best-tier helper."""
    from alphacut.models.store import ModelStore

    if not model_dir:
        return ModelStore()
    from alphacut.second_opinion import HELPERS

    store = ModelStore(home=Path(tempfile.mkdtemp(prefix="alphacut-bench-")) / "home")
    for m in dict.fromkeys(models + [HELPERS[m] for m in models if m in HELPERS]):
        store.import_file(model_dir / f"{m}.onnx", name=m)
    return store


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=None, help="default: u2netp,isnet; with --sets: isnet")
    ap.add_argument("--tiers", default="fast,best")
    ap.add_argument("--limit", type=int, default=30, help="DAVIS frames (evenly spaced)")
    ap.add_argument("--model-dir", type=Path, default=None, help="import <dir>/<name>.onnx into a temp store")
    ap.add_argument("--no-rembg", action="store_true")
    ap.add_argument("--rembg-modes", default="default,-dc,-a",
                    help="rembg rows to run (-a, its alpha matting, is slow)")
    ap.add_argument("--timing12", action="store_true")
    g = ap.add_argument_group("gross-failure accounting (instead of the run above)")
    g.add_argument("--sets", default="", help="any of am,sod,sodx,davis,dog")
    g.add_argument("--davis-step", type=int, default=5, help="every n-th frame of each davis2016-video sequence")
    g.add_argument("--limit-sod", type=int, default=None, help="the first n photos of sod and of sodx")
    g.add_argument("--rembg-python", default=os.environ.get("ALPHACUT_REMBG_PYTHON"),
                   help="a Python with rembg installed (default: $ALPHACUT_REMBG_PYTHON)")
    g.add_argument("--panels", type=Path, default=None, help="write comparison panels (PNG) here")
    g.add_argument("--panel-count", type=int, default=8, help="sod photos where fast and best differ most")
    g.add_argument("--json", type=Path, default=None, help="dump every per-image number here")
    args = ap.parse_args(argv)
    if args.sets:
        return gross_main(args, model_store(args.model_dir, (args.models or "isnet").split(",")))

    if not (EVAL / "alphamatting-dev").is_dir() or not (EVAL / "davis345").is_dir():
        print(f"bench/quality.py: evaluation data not found at {EVAL}; skipped.")
        return 0
    import cv2

    cv2.setNumThreads(max(1, os.cpu_count() or 1))
    tmp = Path(tempfile.mkdtemp(prefix="alphacut-bench-"))
    models = [m for m in (args.models or "u2netp,isnet").split(",") if m]
    store = model_store(args.model_dir, models)

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
