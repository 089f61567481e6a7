"""Peak memory of model inference under the session settings we chose, and the ones we did not.

Each configuration runs in a fresh process: load the model, run it ``--runs`` times on one
input, print CPU seconds per run and the process's peak RSS after each run. The configurations
(the first is what alphacut does):

- ``float32 copy, no pattern, mmap pinned, huge pages``: the store's float32 copy of a float16
  model, ORT memory pattern off, glibc's mmap threshold pinned and its huge-page tunable on
  (``alphacut.memory``); the same with 4 KB pages next to it
- ``float32 copy, pattern``: the same with ORT's default memory pattern
- ``float32 copy, glibc default``: no pattern, glibc's dynamic mmap threshold
- ``float16 file, ORT defaults (arena off)``: the downloaded file as rembg runs it, minus the arena

    PYTHONPATH=src .venv/bin/python bench/memory.py --model isnet --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CODE = r"""
import json, resource, sys, time
import numpy as np
import onnxruntime as ort
from alphacut.models.store import ModelStore
from alphacut.models.catalog import get_spec
model, copy, pattern, pinned, runs = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4] == "1", int(sys.argv[5])
if pinned:
    from alphacut.memory import release_freed_memory
    release_freed_memory()
store = ModelStore()
path = (store.cpu_file(model) if copy else None) or store.ensure(model)
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.enable_cpu_mem_arena = False
so.enable_mem_pattern = pattern
s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
spec = get_spec(model)
x = np.random.default_rng(0).random((1, 3, spec.input_size, spec.input_size), np.float32) - 0.5
rows = []
for _ in range(runs):
    c = time.process_time()
    s.run(None, {s.get_inputs()[0].name: x})
    rows.append([time.process_time() - c, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024])
print(json.dumps({"file": path.name, "runs": rows}))
"""

CONFIGS = [
    ("float32 copy, no pattern, mmap pinned, huge pages (alphacut)", True, False, True),
    ("float32 copy, no pattern, mmap pinned, 4 KB pages", True, False, True),
    ("float32 copy, ORT memory pattern", True, True, True),
    ("float32 copy, glibc dynamic mmap threshold", True, False, False),
    ("float16 file, no pattern, mmap pinned", False, False, True),
    ("float16 file, ORT defaults (arena off)", False, True, False),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from alphacut.memory import with_huge_pages

    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    plain["PYTHONPATH"] = str(REPO / "src")
    huge = with_huge_pages(plain) or plain  # what the alphacut command and its workers run with
    print(f"model {args.model}, {args.runs} runs per fresh process, 2 threads, CPU\n")
    print("| configuration | file | CPU s per run | peak RSS MB after each run |\n|---|---|---|---|")
    for label, copy, pattern, pinned in CONFIGS:
        proc = subprocess.run(
            [sys.executable, "-c", CODE, args.model, str(int(copy)), str(int(pattern)), str(int(pinned)), str(args.runs)],
            capture_output=True, text=True, env=huge if "huge pages" in label else plain, timeout=1200)
        if proc.returncode != 0:
            print(f"| {label} | failed: {proc.stderr.strip().splitlines()[-1:]} | | |")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        cpu = " / ".join(f"{c:.2f}" for c, _ in r["runs"])
        rss = " / ".join(f"{m:.0f}" for _, m in r["runs"])
        print(f"| {label} | {r['file']} | {cpu} | {rss} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
