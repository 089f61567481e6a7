"""Batch throughput and memory: the job engine against the inference-only limit and rembg.

    PYTHONPATH=src python bench/batch.py --n 50 --model isnet            # the full run
    PYTHONPATH=src python bench/batch.py --n 6 --model u2netp --rss-n 0  # a quick look

Reports images/minute for N generated 12-megapixel JPEGs (photo-like, all different) through
``run_batch`` (the CLI's batch path), the inference-only limit (bare ``session.run`` on the
model's input, N times, all cores), rembg's folder mode (``rembg p`` with the same model file,
from ``--rembg`` — a venv's ``rembg`` executable — when given), and the peak RSS of the whole
process tree (parent + workers) at N and at ``--rss-n`` images (it must stay flat). The bench
restarts itself with glibc's huge-page tunable, as the ``alphacut`` command does, so the limit
and the engine run under the same process settings; rembg runs without it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.load import RssSampler, tree_rss_mb  # noqa: E402 - one process-tree RSS sampler for benches and tests


def make_images(folder: Path, n: int, megapixels: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([40 + 60 * x / w, 120 + 40 * y / h, 190 + 0 * x], -1)
    paths = []
    for i in range(n):
        p = folder / f"photo{i:04d}.jpg"
        if not p.exists():
            cx, cy, r = w * (0.35 + 0.3 * rng.random()), h * (0.35 + 0.3 * rng.random()), min(w, h) * (0.2 + 0.1 * rng.random())
            d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
            a = np.clip(r - d + 0.5, 0, 1)[..., None]
            fg = np.stack([200 + 0 * x, 90 + 30 * np.sin(x / 9 + i), 40 + 20 * np.cos(y / 13)], -1)
            img = fg * a + base * (1 - a) + rng.normal(0, 5, (h, w, 3)).astype(np.float32)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, "JPEG", quality=90)
        paths.append(p)
    return paths


def inference_only(model: str, n: int, threads: int | None, *, cpu_copy: bool = True) -> float:
    """Seconds per image for bare session.run on the model's input (the ceiling).

    ``cpu_copy``: run what the engine runs (the float32 copy of a float16 model); False: the
    downloaded file itself, as any other tool would run it."""
    from alphacut.matte.predict import prepare_input
    from alphacut.models.catalog import get_spec
    from alphacut.models.session import ModelSession
    from alphacut.models.store import ModelStore

    spec = get_spec(model)
    store = ModelStore()
    s = ModelSession(store.ensure(model), cpu_path=store.cpu_file(model) if cpu_copy else None, threads=threads)
    x = prepare_input(np.zeros((3000, 4000, 3), np.uint8) + 100, spec)
    s.run(x)
    t = time.perf_counter()
    for _ in range(n):
        s.run(x)
    return (time.perf_counter() - t) / n


def cpu_seconds() -> float:
    """User + system CPU of this process and of its children that have ended (the workers,
    once the engine has closed): the batch's whole CPU bill."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def engine_run(inputs: Path, out: Path, model: str, workers: int | None, threads: int | None
               ) -> tuple[float, float, float]:
    """(wall s, peak RSS MB of the process tree, CPU s of the whole tree)."""
    from alphacut.cli.progress import Reporter
    from alphacut.jobs.batch import run_batch
    from alphacut.pipeline import Options

    class Quiet(Reporter):
        def finished(self, rec: dict) -> None:
            self.count += 1
            if rec["status"] != "done":
                print("  failed:", rec.get("reason"), file=sys.stderr)

    cpu0 = cpu_seconds()
    with RssSampler(os.getpid(), interval=0.25) as peak:
        t = time.perf_counter()
        summary = run_batch([str(inputs)], out, Options(model=model), reporter=Quiet(0),
                            engine_kwargs={"workers": workers, "threads_per_worker": threads, "job_timeout": 1800})
        wall = time.perf_counter() - t
    assert summary.exit_code == 0, summary.failed
    return wall, peak.peak, cpu_seconds() - cpu0


def rembg_run(rembg: str, inputs: Path, out: Path, model: str) -> tuple[float, float]:
    from alphacut.models.store import ModelStore

    path = ModelStore().ensure(model)
    out.mkdir(parents=True, exist_ok=True)
    # rembg loads model files only from inside its own folder (U2NET_HOME): link ours in there
    home = out.parent / "rembg-home"
    home.mkdir(exist_ok=True)
    link = home / path.name
    if not link.exists():
        link.symlink_to(path)
    name = "u2net_custom" if model.startswith("u2net") else "dis_custom"
    cmd = [rembg, "p", "-m", name, "-x", json.dumps({"model_path": str(link)}), str(inputs), str(out)]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**{k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"},
                                 "U2NET_HOME": str(home)})  # rembg as its users run it
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_rss_mb(proc.pid))
        time.sleep(0.25)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode()[-2000:])
    return wall, peak


def main() -> None:
    # the engine's workers run with glibc's huge-page tunable (alphacut.memory); so does this
    # process, which measures the inference-only limit, for a like-for-like ceiling
    from alphacut.memory import restart_with_huge_pages

    restart_with_huge_pages()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--rss-n", type=int, default=200, help="second run for the flat-memory check (0: skip)")
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rembg", default=None, help="path of a rembg executable (e.g. /tmp/venv-rembg/bin/rembg)")
    ap.add_argument("--inference-runs", type=int, default=None, help="session.run count (default: --n)")
    ap.add_argument("--work", default=None, help="folder for generated images (kept between runs)")
    args = ap.parse_args()

    work = Path(args.work or Path(tempfile.gettempdir()) / "alphacut-bench")
    imgs = work / f"jpeg-{args.megapixels:g}mp"
    make_images(imgs / "all", max(args.n, args.rss_n), args.megapixels)
    sets = {}
    for n in {args.n, args.rss_n} - {0}:
        d = imgs / f"n{n}"
        d.mkdir(exist_ok=True)
        for i in range(n):
            link = d / f"photo{i:04d}.jpg"
            if not link.exists():
                os.link(imgs / "all" / f"photo{i:04d}.jpg", link)
        sets[n] = d
    from alphacut.memory import huge_pages_in_use

    res: dict[str, object] = {"model": args.model, "n": args.n, "megapixels": args.megapixels,
                              "cpu_count": os.cpu_count(), "huge_pages": huge_pages_in_use()[1]}
    # the limit is measured before and after the batch (the machine is shared: load drifts),
    # both for the session the engine runs and for the downloaded file as other tools run it
    runs = args.inference_runs or min(args.n, 10)
    before = [inference_only(args.model, runs, args.threads, cpu_copy=c) for c in (True, False)]
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        wall, peak, cpu = engine_run(sets[args.n], Path(tmp) / "out", args.model, args.workers, args.threads)
    after = [inference_only(args.model, runs, args.threads, cpu_copy=c) for c in (True, False)]
    per, per_file = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    res["inference_only_per_image_s"] = round(per, 3)
    res["inference_only_images_per_min"] = round(60 / per, 2)
    res["inference_only_downloaded_file_images_per_min"] = round(60 / per_file, 2)
    res["engine_wall_s"] = round(wall, 1)
    res["engine_cpu_s_per_image"] = round(cpu / args.n, 2)
    res["engine_cores_busy"] = round(cpu / wall, 2)  # = the core count when the batch is CPU-bound
    res["engine_images_per_min"] = round(args.n * 60 / wall, 2)
    res["engine_fraction_of_inference_limit"] = round((args.n * 60 / wall) / (60 / per), 3)
    res["engine_fraction_of_downloaded_file_limit"] = round((args.n * 60 / wall) / (60 / per_file), 3)
    res[f"engine_peak_tree_rss_mb_at_{args.n}"] = round(peak, 1)
    if args.rss_n:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            wall2, peak2, _ = engine_run(sets[args.rss_n], Path(tmp) / "out", args.model, args.workers, args.threads)
        res[f"engine_peak_tree_rss_mb_at_{args.rss_n}"] = round(peak2, 1)
        res[f"engine_images_per_min_at_{args.rss_n}"] = round(args.rss_n * 60 / wall2, 2)
    if args.rembg:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            wall3, peak3 = rembg_run(args.rembg, sets[args.n], Path(tmp) / "out", args.model)
        res["rembg_wall_s"] = round(wall3, 1)
        res["rembg_images_per_min"] = round(args.n * 60 / wall3, 2)
        res[f"rembg_peak_tree_rss_mb_at_{args.n}"] = round(peak3, 1)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
