"""Flicker: independent per-frame mattes against the temporal stage's, on davis2016-video.

    nice PYTHONPATH=src .venv/bin/python bench/flicker.py                       # both models, 12 sequences
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --models u2netp --seqs motocross-jump,dance-twirl
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --models isnet --only-cached  # sequences already cached
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --precompute --models isnet   # fill the cache only
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --variant radius=2 --variant flow_side=384
                        # other settings of the stage scored in the same run (tables after the main one)
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --cost                # ms a frame at 480p/1080p/4K
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --strips /tmp/strips  # before/after strips (PNG)
    nice PYTHONPATH=src .venv/bin/python bench/flicker.py --bound --models u2netp
                        # the least dtSSD any filter within the stage's trusted samples could reach

The frame loop's bench (bench/video.py) can call ``score_sequence`` / ``report`` / ``cost`` from
here, or run this script.

Data: ``<repo>/../shared/eval/davis2016-video`` (12 DAVIS 2016 sequences, 854x480, every frame
with a binary mask of the annotated object); absent: the bench says so and exits 0.

Per-frame mattes: the real pipeline, fast tier (``steps.Stages`` through bench/quality.py's
``CachedAlphacut``: IS-Net with its U2-Netp second opinion, or U2-Netp alone), no
decontamination (the metrics read alpha only). Model passes are cached by
``raw_cache.CachedRunner`` (keyed by the model file's sha256 and the exact input tensor); the
finished per-frame mattes too, as 16-bit PNGs under ``raw_cache.cache_dir()/flicker``, keyed by
the model file's sha256, the frame's path, size and mtime, and a digest of alphacut's matte
code (a change to the pipeline misses). A rerun costs the temporal stage and the metrics only.

Stabilised mattes: each sequence streamed through ``alphacut.matte.temporal.MatteStabilizer``
(``push``/``flush``), exactly as the frame loop does.

Metrics, per sequence (alpha in 0..1):
- warping error (x1000): the mean over consecutive pairs of the mean squared difference
  between matte t and matte t-1 warped to t, over pixels where that flow is trusted (Lai et
  al., ECCV 2018). The flow here is OpenCV's Farneback (5 levels, 21 px window) at the full
  854x480, trusted where forward and backward agree (|f + b|^2 < 0.01 (|f|^2 + |b|^2) + 0.5,
  Sundaram et al.) and the point stays in the picture — a different method at a different
  resolution from the stage's own (DIS at its reduced working size): measured with the stage's
  flow, smoothing along that flow would score itself.
- dtSSD (x100): the mean over consecutive pairs of sqrt(mean_p ((a_t - a_t-1) - (g_t - g_t-1))^2)
  with g the ground-truth mask (Erofeev et al., 2015): the matte's change that the truth's own
  motion does not explain, lag and flicker alike.
- IoU: mean over frames of IoU(matte >= 0.5, mask), per sequence: a lagging edge shows here.
- floor (x100, per-frame mattes): mean over pairs of sqrt(mean_p (W(e_t-1) - e_t-1)^2), e = matte
  minus truth, W the evaluation's warp: the dtSSD that per-frame mattes would keep with every
  bit of flicker gone, because each frame's spatial error (a kept second object, an edge a few
  pixels off) moves with the subject and the truth's change does not contain it. An estimate
  (the evaluation's flow errs too) of where a stage that only removed flicker would stop;
  below it only more accurate mattes go. ``--decompose`` checks it: e_t - e_t-1 = F + K exactly,
  F = W(e_t-1) - e_t-1 (the floor's term), K = e_t - W(e_t-1); dt^2 = F^2 + K^2 + 2<F, K>, and a
  negative cross term says W's misses inflate F (docs/video-quality.md: the floor is an
  over-estimate; with untrusted pixels granted no change it is lower).
- soft (%): share of pixels with 0.05 < alpha < 0.95: averaging mattes that disagree makes
  soft pixels, and smearing a moving subject would make many.
Targets (issue 13): warping error and dtSSD at least 40% lower than the independent per-frame
mattes of the same model (on the whole set: the mean over sequences), IoU no more than 0.01
lower on any sequence.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DAVIS = REPO.parent / "shared" / "eval" / "davis2016-video"
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

#: alphacut's files whose change changes a per-frame matte (the cache key includes them)
MATTE_CODE = ["pipeline.py", "steps.py", "second_opinion.py", "matte/predict.py", "matte/upsample.py",
              "matte/decide.py", "matte/fuse.py", "matte/tiles.py", "matte/refine.py"]


def sequences() -> list[str]:
    return sorted(p.name for p in DAVIS.iterdir() if (p / "image").is_dir()) if DAVIS.is_dir() else []


def frames(seq: str) -> list[Path]:
    return sorted((DAVIS / seq / "image").glob("*.jpg"))


def read_rgb(path: Path) -> np.ndarray:
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def read_mask(seq: str, frame: Path) -> np.ndarray:
    import cv2

    m = cv2.imread(str(DAVIS / seq / "alpha" / f"{frame.stem}.png"), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise OSError(f"no mask for {frame}")
    return (m > 127).astype(np.float32)


def code_digest() -> str:
    h = hashlib.sha256()
    for rel in MATTE_CODE:
        h.update((REPO / "src" / "alphacut" / rel).read_bytes())
    return h.hexdigest()[:16]


class PerFrame:
    """Independent per-frame mattes of one model (fast tier), cached on disk as 16-bit PNGs."""

    def __init__(self, model: str, store: Any, code_key: str | None = None) -> None:
        from quality import CachedAlphacut
        from raw_cache import cache_dir, file_digest

        self.model = model
        self.ac = CachedAlphacut(model, store)
        self.key = f"{file_digest(self.ac.session.inner.path)[:24]}-{code_key or code_digest()}"
        self.folder = cache_dir() / "flicker" / f"{model}-{self.key}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.computed = self.hits = 0
        #: an earlier run's cache: frames found by sequence and number (a copied data set has new mtimes)
        self.loose = code_key is not None

    def _path(self, frame: Path) -> Path:
        st = frame.stat()
        h = hashlib.blake2b(f"{frame.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=12)
        path = self.folder / f"{frame.parent.parent.name}-{frame.stem}-{h.hexdigest()}.png"
        if self.loose and not path.is_file():
            found = list(self.folder.glob(f"{frame.parent.parent.name}-{frame.stem}-*.png"))
            if len(found) == 1:
                return found[0]
        return path

    def cached(self, frame: Path) -> bool:
        return self._path(frame).is_file()

    def matte(self, frame: Path, rgb: np.ndarray | None = None) -> np.ndarray:
        import cv2

        path = self._path(frame)
        if path.is_file():
            m = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if m is not None:
                self.hits += 1
                return m.astype(np.float32) / 65535.0
        rgb = read_rgb(frame) if rgb is None else rgb
        a = self.ac.cut(rgb, "fast", decontaminate=False).matte
        tmp = path.with_suffix(f".{os.getpid()}.tmp.png")
        cv2.imwrite(str(tmp), np.round(np.clip(a, 0, 1) * 65535).astype(np.uint16))
        os.replace(tmp, path)
        self.computed += 1
        return np.asarray(a, np.float32)

    def clip(self, seq: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(frame RGB, per-frame matte, truth mask) for each frame of ``seq``, in order."""
        for f in frames(seq):
            rgb = read_rgb(f)
            yield rgb, self.matte(f, rgb), read_mask(seq, f)


# --- metrics ---------------------------------------------------------------------------------

#: the evaluation's flow: Farneback at full size (the stage runs DIS at its working size)
FARNEBACK = dict(pyr_scale=0.5, levels=5, winsize=21, iterations=5, poly_n=7, poly_sigma=1.5, flags=0)


class Pair:
    """Frame t-1 carried onto frame t by the evaluation's flow, and where that flow is trusted."""

    def __init__(self, prev_rgb: np.ndarray, rgb: np.ndarray) -> None:
        import cv2

        g0 = cv2.cvtColor(prev_rgb, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        back = cv2.calcOpticalFlowFarneback(g1, g0, None, **FARNEBACK)  # t -> t-1
        fwd = cv2.calcOpticalFlowFarneback(g0, g1, None, **FARNEBACK)  # t-1 -> t
        h, w = g1.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        self.mx, self.my = gx + back[..., 0], gy + back[..., 1]
        fb = cv2.remap(fwd, self.mx, self.my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        err = np.sum((back + fb) ** 2, axis=2)
        tol = 0.01 * (np.sum(back ** 2, axis=2) + np.sum(fb ** 2, axis=2)) + 0.5
        inside = (self.mx >= 0) & (self.mx <= w - 1) & (self.my >= 0) & (self.my <= h - 1)
        self.valid = (err < tol) & inside

    def warp(self, prev: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.remap(prev, self.mx, self.my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def iou(a: np.ndarray, gt: np.ndarray) -> float:
    p, t = a >= 0.5, gt > 0.5
    u = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / u) if u else 1.0


class Scorer:
    """One contestant's metrics over one sequence; takes its mattes in frame order."""

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.we: list[float] = []
        self.dt: list[float] = []
        self.iou: list[float] = []
        self.floor: list[float] = []
        self.soft: list[float] = []
        # the decomposition of each pair's dtSSD (mean squares; see ``decomposition``)
        self.sq_dt: list[float] = []
        self.sq_floor: list[float] = []
        self.sq_flick: list[float] = []
        self.floor_lo: list[float] = []

    def add(self, t: int, matte: np.ndarray, truth: dict[int, np.ndarray], pairs: dict[int, Pair]) -> None:
        self.iou.append(iou(matte, truth[t]))
        if self.prev is not None:
            pair = pairs[t]
            d = (matte - pair.warp(self.prev)) ** 2
            self.we.append(float(d[pair.valid].mean()) if pair.valid.any() else 0.0)
            dd = (matte - self.prev) - (truth[t] - truth[t - 1])
            self.dt.append(float(np.sqrt(np.mean(dd * dd))))
            e_prev = self.prev - truth[t - 1]
            w_prev = pair.warp(e_prev)
            carried = w_prev - e_prev
            self.floor.append(float(np.sqrt(np.mean(carried * carried))))
            # e_t - e_t-1 = (W e_t-1 - e_t-1) + (e_t - W e_t-1): the error moving with the
            # subject, plus what the motion does not explain (flicker, and the flow's own misses)
            flick = (matte - truth[t]) - w_prev
            self.sq_dt.append(float(np.mean(dd * dd)))
            self.sq_floor.append(float(np.mean(carried * carried)))
            self.sq_flick.append(float(np.mean(flick * flick)))
            lo = np.where(pair.valid, carried, 0.0)  # untrusted pixels granted no change at all
            self.floor_lo.append(float(np.sqrt(np.mean(lo * lo))))
        self.soft.append(float(np.mean((matte > 0.05) & (matte < 0.95))))
        self.prev = matte

    def result(self) -> dict[str, float]:
        return {"iou": float(np.mean(self.iou)), "iou_min": float(np.min(self.iou)),
                "we": 1000 * float(np.mean(self.we)), "dtssd": 100 * float(np.mean(self.dt)),
                "floor": 100 * float(np.mean(self.floor)), "soft": 100 * float(np.mean(self.soft)),
                "floor_lo": 100 * float(np.mean(self.floor_lo)),
                "flick": 100 * float(np.mean(np.sqrt(self.sq_flick))),
                "sq_dt": 1e4 * float(np.mean(self.sq_dt)), "sq_floor": 1e4 * float(np.mean(self.sq_floor)),
                "sq_flick": 1e4 * float(np.mean(self.sq_flick))}


def score_sequence(seq: str, makers: dict[str, Any], variants: dict[str, dict[str, Any]]
                   ) -> tuple[dict[str, dict], dict]:
    """Every contestant over ``seq``: for each model in ``makers`` (name -> PerFrame), its
    per-frame mattes and the stage's (one per entry of ``variants``: label -> keywords; the
    label "t" is the stage as configured). Returns {contestant: metrics} and the stage's timing."""
    from alphacut.matte.temporal import MatteStabilizer

    scorers = {}
    stabs = {}
    for m in makers:
        scorers[f"{m}"] = Scorer()
        for label, kw in variants.items():
            scorers[f"{m}+{label}"] = Scorer()
            stabs[m, label] = MatteStabilizer(**kw)
    radius = max(kw.get("radius", 2) for kw in variants.values())
    truth: dict[int, np.ndarray] = {}
    pairs: dict[int, Pair] = {}
    prev_rgb = None
    stage_s = 0.0
    n = 0
    for t, f in enumerate(frames(seq)):
        rgb = read_rgb(f)
        truth[t] = read_mask(seq, f)
        if prev_rgb is not None:
            pairs[t] = Pair(prev_rgb, rgb)
        prev_rgb = rgb
        for m, pf in makers.items():
            a = pf.matte(f, rgb)
            scorers[m].add(t, a, truth, pairs)
            for label in variants:
                t0 = time.perf_counter()
                done = stabs[m, label].push(rgb, a)
                if label == "t":
                    stage_s += time.perf_counter() - t0
                for i, s in done:
                    scorers[f"{m}+{label}"].add(i, s, truth, pairs)
        n += 1
        lo = t - 2 * max(1, radius) - 2
        for d in (truth, pairs):
            for k in [k for k in d if k < lo]:
                del d[k]
    for (m, label), stab in stabs.items():
        t0 = time.perf_counter()
        done = stab.flush()
        if label == "t":
            stage_s += time.perf_counter() - t0
        for i, s in done:
            scorers[f"{m}+{label}"].add(i, s, truth, pairs)
    return {k: v.result() for k, v in scorers.items()}, {"frames": n * len(makers), "stage_s": stage_s}


def report(results: dict[str, dict[str, dict]], models: list[str], label: str = "t") -> bool:
    """Print the table; True when every target holds."""
    ok = True
    keys = ("iou", "we", "dtssd", "floor", "soft")
    for m in models:
        seqs = [s for s in results if m in results[s]]
        if not seqs:
            continue
        print(f"\n{m}, fast tier: per-frame mattes (pf) vs the temporal stage's (t)"
              + (f" [variant {label}]" if label != "t" else ""))
        print(f"{'sequence':19s} {'IoU pf':>6s} {'IoU t':>6s} {'dIoU':>7s} | {'WE pf':>6s} {'WE t':>6s} {'t/pf':>5s} | "
              f"{'dtSSD pf':>8s} {'t':>6s} {'t/pf':>5s} {'floor':>6s} | {'soft pf':>7s} {'t':>5s}")
        rows = []

        def line(name: str, a: dict, b: dict, d_iou: float, r_we: float, r_dt: float) -> None:
            print(f"{name:19s} {a['iou']:6.4f} {b['iou']:6.4f} {d_iou:+7.4f} | {a['we']:6.2f} {b['we']:6.2f} "
                  f"{r_we:5.2f} | {a['dtssd']:8.2f} {b['dtssd']:6.2f} {r_dt:5.2f} {a['floor']:6.2f} | "
                  f"{a['soft']:7.2f} {b['soft']:5.2f}")

        for s in seqs:
            a, b = results[s][m], results[s][f"{m}+{label}"]
            r = (b["iou"] - a["iou"], b["we"] / a["we"], b["dtssd"] / a["dtssd"])
            rows.append((a, b, r))
            line(s, a, b, *r)
        for name, fn in (("mean", np.mean), ("median", np.median)):
            A = {k: float(fn([x[0][k] for x in rows])) for k in keys}
            B = {k: float(fn([x[1][k] for x in rows])) for k in keys}
            line(name, A, B, float(fn([x[2][0] for x in rows])), B["we"] / A["we"], B["dtssd"] / A["dtssd"])
        worst = (min(x[2][0] for x in rows), max(x[2][1] for x in rows), max(x[2][2] for x in rows))
        print(f"{'worst sequence':19s} {'':6s} {'':6s} {worst[0]:+7.4f} | {'':6s} {'':6s} {worst[1]:5.2f} | "
              f"{'':8s} {'':6s} {worst[2]:5.2f}")
        we = np.mean([x[1]["we"] for x in rows]) / np.mean([x[0]["we"] for x in rows])
        dt = np.mean([x[1]["dtssd"] for x in rows]) / np.mean([x[0]["dtssd"] for x in rows])
        fl = np.mean([x[0]["floor"] for x in rows]) / np.mean([x[0]["dtssd"] for x in rows])
        hit = (we <= 0.6, dt <= 0.6, worst[0] >= -0.01)
        ok &= all(hit)
        print(f"targets: warping error x{we:.2f} of per-frame's (<= 0.60) {'ok' if hit[0] else 'MISSED'}; "
              f"dtSSD x{dt:.2f} (<= 0.60) {'ok' if hit[1] else 'MISSED'} (zero-flicker floor x{fl:.2f}); "
              f"IoU on every sequence >= per-frame - 0.01 (worst {worst[0]:+.4f}) {'ok' if hit[2] else 'MISSED'}")
    return ok

def decomposition(results: dict[str, dict[str, dict]], models: list[str], label: str = "t") -> None:
    """Check of the floor argument, per model: dtSSD's pair term is the RMS of e_t - e_t-1 (e =
    matte minus truth), which splits exactly into F = W e_t-1 - e_t-1 (the error carried by
    the motion: the floor) and K = e_t - W e_t-1 (what the motion does not explain). RMS values
    do not add: mean squares do, up to the cross term 2<F, K>, so what a stage can remove by
    removing K is read in squares. ``floor lo`` grants pixels where the evaluation's flow is
    untrusted no change at all: the floor's least value under the same model."""
    for m in models:
        seqs = [s for s in results if m in results[s]]
        if not seqs:
            continue
        print(f"\n{m}: dtSSD = RMS(F + K), F carried error (floor), K the rest; means over sequences (x100; "
              "squares x1e4)")
        print(f"{'':10s} {'dtSSD':>6s} {'floor':>6s} {'floorlo':>7s} {'K':>6s} | {'dt^2':>7s} {'F^2':>7s} {'K^2':>7s} "
              f"{'2<F,K>':>7s}")
        rows = {}
        for who in (m, f"{m}+{label}"):
            r = {k: float(np.mean([results[s][who][k] for s in seqs]))
                 for k in ("dtssd", "floor", "floor_lo", "flick", "sq_dt", "sq_floor", "sq_flick")}
            rows[who] = r
            cross = r["sq_dt"] - r["sq_floor"] - r["sq_flick"]
            name = "per-frame" if who == m else "stage"
            print(f"{name:10s} {r['dtssd']:6.2f} {r['floor']:6.2f} {r['floor_lo']:7.2f} {r['flick']:6.2f} | "
                  f"{r['sq_dt']:7.1f} {r['sq_floor']:7.1f} {r['sq_flick']:7.1f} {cross:7.1f}")
        a, b = rows[m], rows[f"{m}+{label}"]
        print(f"floor / per-frame dtSSD x{a['floor'] / a['dtssd']:.2f} (lo x{a['floor_lo'] / a['dtssd']:.2f}); "
              f"target x0.60 = {0.6 * a['dtssd']:.2f}; stage x{b['dtssd'] / a['dtssd']:.2f}; "
              f"K (per-frame {a['flick']:.2f} -> stage {b['flick']:.2f}) x{b['flick'] / a['flick']:.2f}, "
              f"K^2 x{b['sq_flick'] / a['sq_flick']:.2f}")


#: the families ``bound`` scores: (name, trust threshold or None for the same pixel, causal)
FAMILIES = (("trusted 0.5", 0.5, False), ("trusted 0.5 causal", 0.5, True),
            ("trusted 0.1", 0.1, False), ("same pixel", None, False), ("same pixel causal", None, True))


class RangeOracle:
    """The best dtSSD any filter whose output at each pixel lies within a given range could
    reach, given the truth (an oracle: no stage knows the truth). Two numbers per family:

    - ``greedy``: each frame takes, per pixel, the value in its range closest to the previous
      output plus the truth's change (the pair's error is then the least it can be given the
      previous frame): an output some member of the family could produce, so the family's
      best is at most this;
    - ``relaxed``: each pair's least error with both frames free in their ranges (the distance
      of the truth's change from [lo_t - hi_t-1, hi_t - lo_t-1]): the coupling between pairs
      dropped, so the family's best is at least this. The family's best lies between the two.
    """

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.prev_rng: tuple[np.ndarray, np.ndarray] | None = None
        self.greedy: list[float] = []
        self.relaxed: list[float] = []

    def add(self, lo: np.ndarray, hi: np.ndarray, own: np.ndarray, dg: np.ndarray | None) -> None:
        if dg is None or self.prev is None or self.prev_rng is None:
            self.prev = own
        else:
            plo, phi = self.prev_rng
            d = np.maximum(0.0, np.maximum((lo - phi) - dg, dg - (hi - plo)))
            self.relaxed.append(float(np.sqrt(np.mean(d * d))))
            out = np.clip(self.prev + dg, lo, hi)
            e = (out - self.prev) - dg
            self.greedy.append(float(np.sqrt(np.mean(e * e))))
            self.prev = out
        self.prev_rng = (lo, hi)


def bound(models: list[str], seqs: list[str], params: dict[str, Any], store: Any,
          matte_key: str | None = None) -> None:
    """What filters of the per-frame mattes could reach on dtSSD at best (docs/video-quality.md).

    For each frame, the stage's own carried samples (its window, its flow, its trust) give a
    range per pixel: the least and greatest of this frame's matte and the neighbours' samples
    trusted above a threshold. Every filter that re-weights or selects among those samples
    (weighted means, medians, confidence blends, hysteresis between them) outputs a value in
    that range, so ``RangeOracle`` bounds the whole family. The same-pixel family (the range of
    the raw mattes at the pixel over the window, no motion compensation) is scored too: its
    range spans the subject's arrival at every moving edge, so its bound is loose, and no rule
    without the truth knows which end to take."""
    from collections import deque

    from alphacut.matte.temporal import MatteStabilizer

    class Ranges(MatteStabilizer):
        """The stage, also recording each frame's per-pixel range of trusted samples."""

        def carried(self, centre: Any, power: float = 1.0) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
            # the families read the checks' own trust; the stage's mean gets it to its power
            self.rng = {f: [centre.matte.copy(), centre.matte.copy()] for f in FAMILIES if f[1] is not None}
            for j, warped, trust in super().carried(centre):
                for (name, thr, causal), (lo, hi) in self.rng.items():
                    if causal and j > 0:
                        continue
                    ok = trust > thr
                    np.minimum(lo, np.where(ok, warped, np.float32(1)), out=lo)
                    np.maximum(hi, np.where(ok, warped, np.float32(0)), out=hi)
                yield j, warped, (trust if power == 1.0 else np.power(trust, np.float32(power)))

        def _stabilise(self, centre: Any) -> Any:
            return super()._stabilise(centre), self.rng

    for m in models:
        pf = PerFrame(m, store, matte_key)
        todo = [s for s in seqs if all(pf.cached(f) for f in frames(s))] if matte_key else seqs
        rows = {}
        print(f"\n{m}: dtSSD (x100) of the per-frame mattes, the stage, and the range oracles "
              f"(relaxed <= family's best <= greedy); stage {params or 'defaults'}")
        print(f"{'sequence':19s} {'pf':>6s} {'stage':>6s} | " + " | ".join(f"{n:>17s}" for n, _, _ in FAMILIES))
        for seq in todo:
            stab = Ranges(**params)
            r = stab.radius
            oracles = {f: RangeOracle() for f in FAMILIES}
            raw: deque[np.ndarray] = deque(maxlen=2 * r + 1)
            truth: dict[int, np.ndarray] = {}
            mattes: dict[int, np.ndarray] = {}
            pf_dt, st_dt = [], []
            prev_stage = None

            def take(i: int, out: Any) -> None:
                nonlocal prev_stage
                stage, rng = out
                dg = truth[i] - truth[i - 1] if i > 0 else None
                if dg is not None:
                    d = (stage - prev_stage) - dg
                    st_dt.append(float(np.sqrt(np.mean(d * d))))
                    d = (mattes[i] - mattes[i - 1]) - dg
                    pf_dt.append(float(np.sqrt(np.mean(d * d))))
                prev_stage = stage
                window = [mattes[k] for k in range(i - r, i + r + 1) if k in mattes]
                past = [mattes[k] for k in range(i - r, i + 1) if k in mattes]
                for f in FAMILIES:
                    if f[1] is not None:
                        lo, hi = rng[f]
                    else:
                        w = np.stack(past if f[2] else window)
                        lo, hi = w.min(0), w.max(0)
                    oracles[f].add(lo, hi, mattes[i], dg)
                for d_ in (truth, mattes):
                    for k in [k for k in d_ if k < i - r - 1]:
                        del d_[k]

            for t, f in enumerate(frames(seq)):
                rgb = read_rgb(f)
                truth[t] = read_mask(seq, f)
                mattes[t] = pf.matte(f, rgb)
                for i, out in stab.push(rgb, mattes[t]):
                    take(i, out)
            for i, out in stab.flush():
                take(i, out)
            row = {"pf": 100 * np.mean(pf_dt), "stage": 100 * np.mean(st_dt)}
            for f, o in oracles.items():
                row[f[0]] = (100 * np.mean(o.relaxed), 100 * np.mean(o.greedy))
            rows[seq] = row
            print(f"{seq:19s} {row['pf']:6.2f} {row['stage']:6.2f} | "
                  + " | ".join(f"{row[n][0]:7.2f} - {row[n][1]:7.2f}" for n, _, _ in FAMILIES), flush=True)
        if not rows:
            continue
        base = np.mean([x["pf"] for x in rows.values()])
        print(f"{'mean':19s} {base:6.2f} {np.mean([x['stage'] for x in rows.values()]):6.2f} | "
              + " | ".join(f"{np.mean([x[n][0] for x in rows.values()]):7.2f} - "
                           f"{np.mean([x[n][1] for x in rows.values()]):7.2f}" for n, _, _ in FAMILIES))
        print(f"{'x per-frame':19s} {1:6.3f} {np.mean([x['stage'] for x in rows.values()]) / base:6.3f} | "
              + " | ".join(f"{np.mean([x[n][0] for x in rows.values()]) / base:7.3f} - "
                           f"{np.mean([x[n][1] for x in rows.values()]) / base:7.3f}" for n, _, _ in FAMILIES))


def state_bytes(stab: Any) -> int:
    """Bytes of the arrays the stage holds (its window of frames)."""
    return sum(v.nbytes for f in stab._frames for v in vars(f).values() if isinstance(v, np.ndarray))


def cost(params: dict[str, Any], store: Any, seq: str = "dance-twirl", count: int = 10) -> None:
    """The stage's time a frame and the memory it holds at 854x480, 1080p and 4K (DAVIS frames
    and their U2-Netp mattes resized up; the first ``radius`` pushes are warm-up)."""
    import cv2

    from alphacut.matte.temporal import MatteStabilizer

    pf = PerFrame("u2netp", store)
    clip = [(read_rgb(f), pf.matte(f)) for f in frames(seq)[:count]]
    print(f"\nstage cost {params or 'defaults'} ({seq}, {count} frames; cv2 threads {cv2.getNumThreads()})")
    for w, h in ((854, 480), (1920, 1080), (3840, 2160)):
        stab = MatteStabilizer(**params)
        took, cpu, peak = [], [], 0
        for rgb, a in clip:
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
            a = cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)
            t, c = time.perf_counter(), time.process_time()
            stab.push(rgb, a)
            took.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            peak = max(peak, state_bytes(stab))
        stab.flush()
        steady = slice(stab.radius, None)
        print(f"  {w}x{h}: {1000 * np.median(took[steady]):.0f} ms a frame wall, "
              f"{1000 * np.median(cpu[steady]):.0f} ms CPU (medians of {len(took[steady])}), "
              f"state {peak / 2**20:.0f} MB")


def strips(folder: Path, models: list[str], seqs: list[str], params: dict[str, Any], store: Any,
           start: int | None = None, count: int = 5) -> None:
    """For each sequence and model, a PNG: ``count`` consecutive frames from the middle of the
    sequence (or ``start``), rows: the frame, the per-frame cutout, the stage's cutout, both
    over a saturated colour far from the frames' mean colour; cropped to the subject."""
    import cv2

    from alphacut.matte.temporal import MatteStabilizer

    folder.mkdir(parents=True, exist_ok=True)
    for seq in seqs:
        fs = frames(seq)
        s0 = len(fs) // 2 - count // 2 if start is None else start
        for m in models:
            pf = PerFrame(m, store)
            stab = MatteStabilizer(**params)
            rgbs, raw, out = {}, {}, {}
            for t, f in enumerate(fs[: s0 + count + stab.radius]):
                rgb = read_rgb(f)
                a = pf.matte(f, rgb)
                if s0 <= t < s0 + count:
                    rgbs[t], raw[t] = rgb, a
                out.update({i: x for i, x in stab.push(rgb, a) if s0 <= i < s0 + count})
            out.update({i: x for i, x in stab.flush() if s0 <= i < s0 + count})
            mean = np.mean([x.reshape(-1, 3).mean(0) for x in rgbs.values()], axis=0)
            colour = max(((255, 0, 255), (0, 255, 0), (0, 128, 255), (255, 255, 0)),
                          key=lambda c: float(np.abs(np.array(c) - mean).sum()))
            bg = np.array(colour, np.float32)

            def over(rgb: np.ndarray, a: np.ndarray) -> np.ndarray:
                return (a[..., None] * rgb + (1 - a[..., None]) * bg).astype(np.uint8)

            # crop to the annotated subject over the strip (plus a margin), at most 2400 px wide
            masks = [read_mask(seq, fs[t]) for t in sorted(rgbs)]
            ys, xs = np.nonzero(np.maximum.reduce(masks))
            h, w = masks[0].shape
            y0, y1 = max(0, ys.min() - 40), min(h, ys.max() + 41)
            x0, x1 = max(0, xs.min() - 40), min(w, xs.max() + 41)
            crop = (slice(y0, y1), slice(x0, x1))
            rows = [np.hstack([rgbs[t][crop] for t in sorted(rgbs)]),
                    np.hstack([over(rgbs[t], raw[t])[crop] for t in sorted(rgbs)]),
                    np.hstack([over(rgbs[t], out[t])[crop] for t in sorted(rgbs)])]
            img = np.vstack(rows)
            if img.shape[1] > 2400:
                f = 2400 / img.shape[1]
                img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            path = folder / f"{seq}-{m}-{s0:03d}.png"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            print(f"wrote {path} (frames {s0}..{s0 + count - 1}; rows: frame, per-frame, stage)")


def precompute(models: list[str], seqs: list[str], store: Any) -> None:
    for model in models:
        pf = PerFrame(model, store)
        for seq in seqs:
            t = time.perf_counter()
            n = 0
            for f in frames(seq):
                pf.matte(f)
                n += 1
            print(f"{model} {seq}: {n} frames, {time.perf_counter() - t:.0f} s "
                  f"(computed {pf.computed}, cached {pf.hits})", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="u2netp,isnet")
    ap.add_argument("--seqs", default=None, help="comma-separated sequence names (default: all 12)")
    ap.add_argument("--precompute", action="store_true", help="only fill the per-frame matte cache")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a MatteStabilizer keyword (repeatable), e.g. --param radius=3")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE,...",
                    help="another configuration of the stage scored in the same run (repeatable)")
    ap.add_argument("--strips", type=Path, default=None, help="write before/after strips to DIR")
    ap.add_argument("--strip-start", type=int, default=None, help="first frame of each strip")
    ap.add_argument("--cost", action="store_true", help="only time the stage at 854x480, 1080p and 4K")
    ap.add_argument("--only-cached", action="store_true",
                    help="score a model only on sequences whose every per-frame matte is cached")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--decompose", action="store_true",
                    help="also split dtSSD into the carried error (floor) and the rest, in squares")
    ap.add_argument("--bound", action="store_true",
                    help="only the range oracles: the least dtSSD filters of the per-frame mattes could reach")
    ap.add_argument("--matte-key", default=None, metavar="DIGEST",
                    help="read per-frame mattes cached under this matte-code digest (e.g. those an "
                         "earlier run's figures came from) instead of the current code's")
    args = ap.parse_args(argv)
    if not DAVIS.is_dir():
        print(f"skipped: {DAVIS} is absent")
        return 0
    from alphacut.models.store import ModelStore

    store = ModelStore()
    models = args.models.split(",")
    seqs = args.seqs.split(",") if args.seqs else sequences()
    if args.precompute:
        precompute(models, seqs, store)
        return 0
    def keywords(pairs: list[str]) -> dict[str, Any]:
        return {k: float(v) if "." in v else int(v) for k, v in (p.split("=") for p in pairs if p)}

    params = keywords(args.param)
    variants = {"t": params}
    for i, v in enumerate(args.variant):
        variants[f"v{i + 1}"] = {**params, **keywords(v.split(","))}
    if args.strips:
        strips(args.strips, models, seqs if args.seqs else ["motocross-jump", "dance-twirl", "scooter-black"],
               params, store, args.strip_start)
        return 0
    if args.cost:
        cost(params, store)
        return 0
    if args.bound:
        bound(models, seqs, params, store, args.matte_key)
        return 0
    makers = {m: PerFrame(m, store, args.matte_key) for m in models}
    if args.only_cached:
        skipped = [(m, s) for m in models for s in seqs if not all(makers[m].cached(f) for f in frames(s))]
        for m, s in skipped:
            print(f"{m}: {s} left out (not every frame's matte is cached)")
    else:
        skipped = []
    results = {}
    frames_n = 0
    stage_s = 0.0
    for seq in seqs:
        t = time.perf_counter()
        todo = {m: pf for m, pf in makers.items() if (m, seq) not in skipped}
        if not todo:
            continue
        results[seq], timing = score_sequence(seq, todo, variants)
        frames_n += timing["frames"]
        stage_s += timing["stage_s"]
        print(f"  {seq}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    print(f"temporal stage {params or 'defaults'}: {1000 * stage_s / max(1, frames_n):.0f} ms a frame "
          f"at 854x480 ({frames_n} frames)")
    ok = report(results, models)
    if args.decompose:
        decomposition(results, models)
    for label in list(variants)[1:]:
        print(f"\nvariant {label}: {variants[label]}")
        report(results, models, label)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
