"""ONNX Runtime's memory settings in the job engine's worker: CPU per image against resident memory.

    PYTHONPATH=src .venv/bin/python bench/ort_memory.py                     # 4 x the 12 MP dog, 1 round
    PYTHONPATH=src .venv/bin/python bench/ort_memory.py --n 6 --rounds 2 --configs off,arena

Each configuration runs the engine's real pipelined ``Worker`` (its decode | infer | finish
threads, the same ``ModelSession``, IS-Net with its U2-Netp second opinion) in a fresh process
started with the huge-page tunable, as the engine starts its workers, fed N copies of one photo
through an in-process pipe that keeps three jobs in flight (the engine's slots). The only change
between configurations is ONNX Runtime's ``SessionOptions``:

- ``off``: CPU memory arena off, memory pattern off (alphacut's setting, ``models/session.py``);
- ``arena``: the arena on (ORT's default), pattern off;
- ``pattern``: the arena off, pattern on;
- ``both``: ORT's defaults (arena and pattern on).

Per run: CPU seconds per image of the whole worker process (user + system; model load excluded:
counted from the first job on), wall seconds per image, peak RSS and the RSS after the batch.
Configurations alternate round by round. On a shared machine read CPU and memory, not wall.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOG = REPO.parent / "shared" / "eval" / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"
CONFIGS = {"off": (False, False), "arena": (True, False), "pattern": (False, True), "both": (True, True)}

CHILD = r"""
import json, os, resource, sys, threading, time
from alphacut.memory import restart_with_huge_pages
restart_with_huge_pages()
from pathlib import Path
from alphacut.jobs.wire import Finished, Failed, Stop, Task, WorkerConfig
from alphacut.jobs.worker import Worker
from alphacut.models import session as S
from alphacut.models.store import ModelStore
from alphacut.options import Options

image, n, arena, pattern, out = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1", Path(sys.argv[5])
plain = S.ModelSession._options

def options(self, entry):  # alphacut's options, then only the two memory settings changed
    so = plain(self, entry)
    so.enable_cpu_mem_arena = arena
    so.enable_mem_pattern = pattern
    return so

S.ModelSession._options = options
store = ModelStore()
cores = S.physical_cores()
cfg = WorkerConfig(model="isnet", model_path=str(store.ensure("isnet")), cpu_model_path=str(store.cpu_file("isnet")),
                   threads=cores, providers=None, artifacts_dir=None, pipelined=True, cores=cores)
data = Path(image).read_bytes()

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0

class Pipe:  # the engine's side: three jobs in flight, then Stop
    def __init__(self):
        self.sent = self.open = 0
        self.cv = threading.Condition()
        self.start = None
        self.failed = []
    def send(self, msg):
        if isinstance(msg, (Finished, Failed)):
            if isinstance(msg, Failed):
                self.failed.append(msg.reason)
            with self.cv:
                self.open -= 1
                self.cv.notify_all()
    def recv(self):
        with self.cv:
            while self.open >= 3:
                self.cv.wait()
            if self.sent == n:
                while self.open:
                    self.cv.wait()
                return Stop()
            if self.start is None:
                self.start = (time.perf_counter(), cpu())
            self.sent += 1
            self.open += 1
            i = self.sent
        return Task(f"j{i}", f"photo{i}.jpg", data, Options(), str(out / f"photo{i}.png"), None)
    def close(self):
        pass

peak = [0.0]
done = threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        done.wait(0.02)

threading.Thread(target=sample, daemon=True).start()
pipe = Pipe()
Worker(pipe, cfg).run()
wall, used = time.perf_counter() - pipe.start[0], cpu() - pipe.start[1]
done.set()
print(json.dumps({"cpu": used / n, "wall": wall / n, "peak_mb": peak[0], "end_mb": rss_mb(), "failed": pipe.failed}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(DOG))
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--configs", default="off,arena,pattern,both")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import tempfile

    names = [c for c in args.configs.split(",") if c]
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in names}
    loads = [os.getloadavg()[0]]
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    with tempfile.TemporaryDirectory(prefix="alphacut-ortmem-") as tmp:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                arena, pattern = CONFIGS[name]
                out = Path(tmp) / f"{name}-{r}"
                out.mkdir()
                res = subprocess.run([sys.executable, "-c", CHILD, args.image, str(args.n), str(int(arena)),
                                      str(int(pattern)), str(out)], env=env, capture_output=True, text=True)
                if res.returncode != 0:
                    raise SystemExit(f"{name}: exit {res.returncode}\n{res.stderr[-3000:]}")
                row = json.loads(res.stdout.strip().splitlines()[-1])
                if row["failed"] or len(list(out.glob("*.png"))) != args.n:
                    raise SystemExit(f"{name}: jobs failed: {row['failed']}")
                runs[name].append(row)
                loads.append(os.getloadavg()[0])
                print(f"  round {r + 1} {name:8s} cpu/image {row['cpu']:.2f} s  wall/image {row['wall']:.2f} s  "
                      f"peak {row['peak_mb']:.0f} MB  after {row['end_mb']:.0f} MB  (load {loads[-1]:.1f})",
                      file=sys.stderr)
    print(f"\n{args.n} x {Path(args.image).name}, IS-Net (+ U2-Netp), the engine's pipelined worker; "
          f"{args.rounds} round(s), medians; load average {min(loads):.1f}-{max(loads):.1f}\n")
    print("| ORT setting | arena | memory pattern | CPU s / image | wall s / image | peak RSS MB | RSS after MB |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        m = {k: statistics.median(x[k] for x in runs[name]) for k in ("cpu", "wall", "peak_mb", "end_mb")}
        arena, pattern = CONFIGS[name]
        print(f"| {name} | {'on' if arena else 'off'} | {'on' if pattern else 'off'} | {m['cpu']:.2f} | "
              f"{m['wall']:.2f} | {m['peak_mb']:.0f} | {m['end_mb']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "loads": loads}, indent=2))


if __name__ == "__main__":
    main()
