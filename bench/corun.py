"""What a model pass costs when full-resolution work runs beside it (issue 17).

    PYTHONPATH=src .venv/bin/python bench/corun.py --rounds 3
    PYTHONPATH=src .venv/bin/python bench/corun.py --model u2netp --threads 1,2

The job engine's worker runs one image's finishing (upsampling, decontamination, encoding:
OpenCV and NumPy over 12 MP arrays) while the next image's model pass runs. This times the model
pass (the session alphacut builds: ``ModelSession`` with the store's float32 copy, arena and
pattern off, no spinning) alone and beside one thread that does the same kind of work as the
finishing side — a 9x9 box blur and a multiply-add over a 4032x3024 float32 plane, in a loop —
interleaved round by round: wall seconds of the pass, and the process's CPU seconds minus the
busy thread's own (``thread_time``), i.e. what the model's threads spent. A rise in that CPU is
what running the two sides at once costs (shared caches and memory bandwidth on the same cores);
the engine pays it, a plain loop does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def proc_cpu(tid: int | None = None) -> float:
    """User + system CPU seconds of this process (every thread), or of its thread ``tid``."""
    with open("/proc/self/stat" if tid is None else f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


class Busy:
    """One thread of full-resolution OpenCV/NumPy work, like a pipelined worker's finishing side."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.started = threading.Event()
        self.tid = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import cv2

        self.tid = threading.get_native_id()
        a = np.random.default_rng(1).random((3024, 4032), dtype=np.float32)
        self.started.set()
        while not self.stop.is_set():
            b = cv2.blur(a, (9, 9))
            np.multiply(a, b, out=b)
            b += 1.0

    def __enter__(self) -> "Busy":
        self.thread.start()
        self.started.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def main() -> None:
    from alphacut.memory import restart_with_huge_pages

    restart_with_huge_pages()  # as the alphacut command and its workers run
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--threads", default="2", help="ONNX Runtime intra-op threads to compare, comma-separated")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from alphacut.models.catalog import get_spec
    from alphacut.models.session import open_session
    from alphacut.models.store import ModelStore

    side = get_spec(args.model).input_size
    x = np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32) - 0.5
    counts = [int(t) for t in args.threads.split(",")]
    sessions = {t: open_session(ModelStore(), args.model, threads=t) for t in counts}
    for s in sessions.values():
        s.run(x)  # warm-up
    rows: dict[tuple[int, bool], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for beside in (False, True):
            for t, s in sessions.items():
                busy = Busy() if beside else None
                if busy is not None:
                    busy.__enter__()
                b0 = proc_cpu(busy.tid) if busy is not None else 0.0
                w, c = time.perf_counter(), proc_cpu()
                s.run(x)
                w, c = time.perf_counter() - w, proc_cpu() - c
                if busy is not None:
                    c -= proc_cpu(busy.tid) - b0  # what the busy thread spent meanwhile is not the model's
                    busy.__exit__()
                rows.setdefault((t, beside), []).append((w, c))
    print(f"{args.model} at {side}x{side}, {args.rounds} interleaved rounds, medians; load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| ORT threads | alone: wall s / CPU s | beside a full-resolution thread: wall s / CPU s | CPU beside / alone |")
    print("|---|---|---|---|")
    for t in counts:
        a, b = rows[(t, False)], rows[(t, True)]
        aw, ac = statistics.median(r[0] for r in a), statistics.median(r[1] for r in a)
        bw, bc = statistics.median(r[0] for r in b), statistics.median(r[1] for r in b)
        print(f"| {t} | {aw:.2f} / {ac:.2f} | {bw:.2f} / {bc:.2f} | {bc / ac:.2f}x |")


if __name__ == "__main__":
    main()
