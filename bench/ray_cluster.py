"""``--ray`` against the local engine, node scaling, and the driver's memory against batch size.

    nice /work/venv-ray/bin/python bench/ray_cluster.py                       # the full run (U²-Netp)
    nice /work/venv-ray/bin/python bench/ray_cluster.py --n 8 --rss 50,200    # a quick look
    nice /work/venv-ray/bin/python bench/ray_cluster.py --parts rss           # driver RSS only

Three measurements, one run, printed side by side:

Comparisons alternate their two sides for ``--rounds`` rounds and keep the best of each (on a
shared machine, load drifts during a run and would otherwise land on one side).

1. **Same cores** (``same``): N generated photos (``--mp`` megapixels) through the local engine
   (``run_batch``, its default layout) and through ``run_ray_batch`` on a local Ray cluster
   with the same number of CPUs. Both times include starting the workers and loading the
   model; the cluster's own start (``ray.init``) is reported apart — it is paid once per run,
   not per file. Ratio = local time / Ray time (target ≥ 0.9).
2. **1 → 2 nodes** (``nodes``): a ``ray.cluster_utils.Cluster`` head of one CPU, then a second
   one-CPU node added; files/s with each; efficiency per CPU = (rate₂ / 2) / (rate₁ / 1).
3. **Driver RSS** (``rss``): peak resident memory of the driver process alone (not the
   cluster's processes) for ``--rss`` small photos each (default 100 and 2,000 of
   ``--rss-mp`` = 0.1 MP, 384×256), on a two-node cluster, printed side by side with their
   ratio (target ≤ 1.10). Also the Ray worker processes started during each run (the
   cluster's processes are this one's children) and the most alive at once: equal numbers
   mean no worker was started twice."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback-only clusters (see distributed/cluster.py)
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))

ROOT = Path(__file__).resolve().parents[1]
# (named ray_cluster.py, not ray.py: with bench/ on the path a ray.py would shadow Ray itself)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "src"))
# the cluster's processes (children of this one) import this checkout's alphacut too, not an installed one
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)


def photos(folder: Path, n: int, mp: float) -> Path:
    """``n`` photo-like, all-different JPEGs of ``mp`` megapixels (4:3): a shaded subject on a
    graded background with sensor noise, so every file decodes, cuts and encodes like a photo."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    w = max(32, int((mp * 1e6 * 4 / 3) ** 0.5))
    h = max(24, w * 3 // 4)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(7)
    for i in range(n):
        p = folder / f"p{i:05d}.jpg"
        if p.exists():
            continue
        bg = np.stack([120 + 60 * xx / w, 140 + 40 * yy / h, 170 - 50 * xx / w], -1) + (i * 37) % 40
        cx, cy, r = w * (0.35 + 0.3 * rng.random()), h * (0.4 + 0.2 * rng.random()), min(w, h) * 0.28
        inside = ((xx - cx) / r) ** 2 + ((yy - cy) / (1.3 * r)) ** 2 < 1
        shade = (1 - 0.4 * (xx - cx) / w)[..., None]
        img = np.where(inside[..., None], np.array([200, 80 + i % 100, 50], np.float32) * shade, bg)
        img += rng.normal(0, 6, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(p, "JPEG", quality=88)
    return folder


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Peak:
    """The highest RSS of one process, sampled every 50 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.05)

    def __enter__(self) -> "Peak":
        self._th.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._th.join()


class Workers:
    """Ray worker processes seen while a run goes on (this process's descendants titled
    ``ray::…``, the node agents left out): how many were started, and the most alive at once."""

    AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.seen: set[int] = set()
        self.most = 0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            alive = 0
            for p in self._me.children(recursive=True):
                try:
                    title = " ".join(p.cmdline())
                except psutil.Error:
                    continue
                if title.startswith("ray::") and not title.startswith(self.AGENTS):
                    alive += 1
                    self.seen.add(p.pid)
            self.most = max(self.most, alive)
            self._stop.wait(0.2)

    def __enter__(self) -> "Workers":
        self.before = self._current()
        self._th.start()
        return self

    def _current(self) -> set[int]:
        import psutil

        out = set()
        for p in self._me.children(recursive=True):
            try:
                if " ".join(p.cmdline()).startswith("ray::"):
                    out.add(p.pid)
            except psutil.Error:
                pass
        return out

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._th.join()

    @property
    def started(self) -> int:
        """Worker processes that did not exist when the run began."""
        return len(self.seen - self.before)


class Clock:
    """When each file finished (a ``BatchProgress``): the steady rate leaves out start-up —
    worker processes, actors loading the model — which a long batch pays once."""

    def __init__(self) -> None:
        from alphacut.jobs.batch import BatchProgress

        class _P(BatchProgress):
            def finished(inner, rec):  # noqa: N805
                super().finished(rec)
                self.times.append(time.perf_counter())

        self.times: list[float] = []
        self.progress = _P()

    def steady(self) -> float:
        """Files per second between the first file done and the last."""
        t = self.times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else float("nan")


def timed(fn, *a, **kw) -> tuple[float, object, Clock]:
    clock = Clock()
    t = time.perf_counter()
    out = fn(*a, reporter=clock.progress, **kw)
    return time.perf_counter() - t, out, clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="photos for the throughput runs")
    ap.add_argument("--mp", type=float, default=0.3, help="their size in megapixels")
    ap.add_argument("--model", default="u2netp")
    ap.add_argument("--rss", default="100,2000", help="batch sizes for the driver-RSS runs")
    ap.add_argument("--rss-mp", type=float, default=0.1, help="megapixels of the driver-RSS runs' photos")
    ap.add_argument("--parts", default="same,nodes,rss", help="which measurements: same, nodes, rss")
    ap.add_argument("--work", type=Path, default=None, help="keep generated inputs here")
    ap.add_argument("--rounds", type=int, default=2, help="alternated rounds of each comparison (best is kept)")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from alphacut.distributed import cluster as rc
    from alphacut.distributed.executor import run_ray_batch
    from alphacut.jobs.batch import run_batch
    from alphacut.models.session import physical_cores
    from alphacut.pipeline import Options

    opts = Options(model=args.model)
    parts = set(args.parts.split(","))
    work = args.work or Path(tempfile.mkdtemp(prefix="alphacut-bench-ray-"))
    cores = physical_cores()
    out = Path(tempfile.mkdtemp(prefix="alphacut-bench-ray-out-"))
    folder = photos(work / f"photos-{args.n}-{args.mp}", args.n, args.mp) if parts & {"same", "nodes"} else None
    print(f"{args.n} photos of {args.mp} MP, {args.model}, {cores} cores (os.cpu_count {os.cpu_count()}), "
          f"load {os.getloadavg()[0]:.1f}", flush=True)

    # 1. same cores: alternated, best of --rounds (the machine is shared; drift hits both)
    if "same" in parts:
        local_runs, ray_runs, t_init = [], [], 0.0
        for r in range(args.rounds):
            t, s_local, c = timed(run_batch, [str(folder)], out / f"local{r}", opts, handle_sigint=False)
            assert s_local.done == args.n, s_local.failed
            local_runs.append((t, c.steady()))
            t0 = time.perf_counter()
            conn = rc.connect("local", num_cpus=cores)
            t_init = time.perf_counter() - t0
            t, s_ray, c = timed(run_ray_batch, [str(folder)], out / f"ray{r}", opts, threads=cores)
            conn.shutdown()
            assert s_ray.done == args.n, s_ray.failed
            ray_runs.append((t, c.steady()))
        t_local, st_local = min(x[0] for x in local_runs), max(x[1] for x in local_runs)
        t_ray, st_ray = min(x[0] for x in ray_runs), max(x[1] for x in ray_runs)
        print(f"same cores   local engine {args.n / t_local:6.2f} files/s ({t_local:.1f} s; steady {st_local:.2f})   "
              f"--ray local {args.n / t_ray:6.2f} files/s ({t_ray:.1f} s; steady {st_ray:.2f}; "
              f"+{t_init:.1f} s cluster start)   ratio {t_local / t_ray:.2f} (steady {st_ray / st_local:.2f})   "
              f"[best of {args.rounds}]", flush=True)

    # 2. one node, then two (alternated: a second node added, then removed); 3. driver RSS on two
    home_ctx = rc.quiet_home()
    home = home_ctx.__enter__()
    try:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    finally:
        home_ctx.__exit__(None, None, None)
    try:
        ray.init(address=c.address, log_to_driver=False)
        if "nodes" in parts:
            one, two = [], []
            for r in range(args.rounds):
                t, s1, c1 = timed(run_ray_batch, [str(folder)], out / f"n1-{r}", opts, threads=1)
                one.append((t, c1.steady()))
                extra = c.add_node(num_cpus=1)
                c.wait_for_nodes()
                t, s2, c2 = timed(run_ray_batch, [str(folder)], out / f"n2-{r}", opts, threads=1)
                two.append((t, c2.steady()))
                assert s1.done == s2.done == args.n
                if r + 1 < args.rounds:
                    c.remove_node(extra)
                    c.wait_for_nodes()
            t1, st1 = min(x[0] for x in one), max(x[1] for x in one)
            t2, st2 = min(x[0] for x in two), max(x[1] for x in two)
            r1, r2 = args.n / t1, args.n / t2
            print(f"nodes        1×1 CPU {r1:6.2f} files/s (steady {st1:.2f})   "
                  f"2×1 CPU {r2:6.2f} files/s (steady {st2:.2f})   "
                  f"efficiency per CPU {r2 / 2 / r1:.2f} (steady {st2 / 2 / st1:.2f})   [best of {args.rounds}]",
                  flush=True)
        else:
            c.add_node(num_cpus=1)
            c.wait_for_nodes()
        if "rss" in parts:
            peaks: dict[int, float] = {}
            for n in (int(x) for x in args.rss.split(",") if x):
                small = photos(work / f"small-{n}-{args.rss_mp}", n, args.rss_mp)
                with Peak(os.getpid()) as peak, Workers() as workers:
                    t, s, _ = timed(run_ray_batch, [str(small)], out / f"rss{n}", opts, threads=1)
                assert s.done == n, s.failed[:3]
                peaks[n] = peak.peak
                print(f"driver RSS   {n:5d} files of {args.rss_mp} MP: peak {peak.peak:7.1f} MB   "
                      f"({n / t:.2f} files/s; Ray worker processes started {workers.started}, "
                      f"most alive at once {workers.most}; load {os.getloadavg()[0]:.1f})", flush=True)
                shutil.rmtree(out / f"rss{n}", ignore_errors=True)
            if len(peaks) > 1:
                (a, pa), (b, pb) = min(peaks.items()), max(peaks.items())
                print(f"driver RSS   {a} files {pa:.1f} MB   {b} files {pb:.1f} MB   ratio {pb / pa:.3f} "
                      f"(target ≤ 1.10)", flush=True)
    finally:
        ray.shutdown()
        c.shutdown()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
