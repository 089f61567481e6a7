"""Where a batch's CPU goes: inside the engine's worker, across its pipe, and in the parent.

    PYTHONPATH=src .venv/bin/python bench/engine_profile.py            # 8 x the 12 MP dog
    PYTHONPATH=src .venv/bin/python bench/engine_profile.py --n 4 --modes pipelined
    PYTHONPATH=src .venv/bin/python bench/engine_profile.py --modes loop,timeline   # idle core-time by phase

Runs ``run_batch`` (the CLI's folder path, without the terminal) in this process on N copies of
one photo, once per worker mode, in fresh processes, and prints for each:

- **worker start**: CPU seconds of the worker process until it reports ``Ready`` (spawn,
  imports, the model session) and the wall time to it;
- **per stage, per image** (medians after the first image): CPU seconds of each stage. In the
  ``sequential`` mode (one job at a time, ``pipelined=False``) the stages run one after another,
  so the process's CPU between two stage changes is that stage's, pools and ONNX Runtime's
  threads included. In the ``pipelined`` mode three jobs overlap, so the figure per stage is
  the CPU of the stage's own thread only, and "helper threads" is the rest of the process
  (ONNX Runtime's intra-op threads, the tile and PNG pools);
- **the pipe**: messages and pickled bytes each way per image (a Task carries the path, not the
  pixels; nothing else crosses);
- **the parent**: CPU seconds of this process during the batch (the queue, the supervisor
  thread, the manifest), and the CPU of importing what the CLI's parent imports.

The plain loop's per-stage CPU (``Stages.run`` in this process, one image after another) is
printed beside them for comparison. The machine is shared: read CPU seconds, not wall time.

``timeline`` runs the pipelined batch once more with the worker's CPU sampled every 20 ms and each
of its threads' steps timed (wall clocks are comparable across processes: ``perf_counter`` is
the system's monotonic clock), and prints, phase by phase from the command's start to its end
(the parent's start, the worker's start, the first decode, the first model pass, the steady
state, the tail), wall seconds, cores busy and idle core-seconds (cores x wall - CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOG = REPO.parent / "shared" / "eval" / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"

from alphacut.jobs.wire import Finished, Ready  # noqa: E402
from alphacut.jobs.worker import Worker, worker_main  # noqa: E402

STAGES = ("decoding", "inferring", "refining", "encoding", "verifying")


def _proc_cpu(pid: int | str = "self", *, system: bool = False) -> float:
    """User + system CPU seconds of a process (all its threads); ``system``: the kernel's part only."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[12]) + (0 if system else int(f[11]))) / os.sysconf("SC_CLK_TCK")


class ProfilingWorker(Worker):
    """The product's worker, recording CPU at every stage change and what it sends."""

    def __init__(self, conn: Any, cfg: Any) -> None:
        super().__init__(conn, cfg)
        self.marks: dict[str, list[tuple[str, float, float]]] = {}
        self.sent = [0, 0]  # messages, pickled bytes
        self.step_cpu: dict[str, dict[str, float]] = {}
        self.started_cpu = _proc_cpu()

    def reporter(self, job_id: str) -> Any:
        inner = super().reporter(job_id)

        def on_stage(stage: str, fraction: float) -> None:
            if fraction == 0.0:
                self.marks.setdefault(job_id, []).append((stage, time.process_time(), time.thread_time()))
            inner(stage, fraction)

        return on_stage

    def _step(self, item: Any, step: Any, stage: str) -> Any:
        """One of the three threads' steps, with that thread's CPU time for it."""
        t, w = time.thread_time(), time.perf_counter()
        try:
            return step(item)
        finally:
            self.step_cpu.setdefault(item.task.id, {})[stage] = time.thread_time() - t
            self.events.append((stage, item.task.id, w, time.perf_counter(), time.thread_time() - t))

    def decode(self, item: Any) -> Any:
        return self._step(item, super().decode, "decoding")

    def infer(self, item: Any) -> Any:
        return self._step(item, super().infer, "inferring")

    def encode(self, item: Any) -> Any:
        return self._step(item, super().encode, "finishing")

    def run(self) -> None:
        """The product's ``run``, with the process's CPU sampled every 20 ms for the timeline."""
        self.events: list[tuple[str, str, float, float, float]] = []
        self.samples: list[tuple[float, float]] = [(time.perf_counter(), _proc_cpu())]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                self.samples.append((time.perf_counter(), _proc_cpu()))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            super().run()
        finally:
            done.set()
            sampler.join()
            self.samples.append((time.perf_counter(), _proc_cpu()))
            path = os.environ.get("ALPHACUT_PROFILE_TIMELINE")
            if path:
                Path(path).write_text(json.dumps({"events": self.events, "samples": self.samples,
                                                  "ready": getattr(self, "ready_at", None)}))

    def send(self, msg: Any) -> None:
        if isinstance(msg, Ready):
            self.ready_at = time.perf_counter()
            msg = replace(msg, warnings=msg.warnings + (f"cpu-at-ready={_proc_cpu()}",))
        if isinstance(msg, Finished):
            end = (time.process_time(), time.thread_time())
            cpu = {}
            marks = self.marks.pop(msg.job_id, []) + [("end", *end)]
            for (stage, p0, t0), (_, p1, t1) in zip(marks, marks[1:]):
                cpu[f"cpu.{stage}"] = cpu.get(f"cpu.{stage}", 0.0) + p1 - p0
                if stage in ("refining", "encoding", "verifying"):  # on the finishing thread, as is "end"
                    cpu[f"thread.{stage}"] = cpu.get(f"thread.{stage}", 0.0) + t1 - t0
            for stage, v in self.step_cpu.pop(msg.job_id, {}).items():
                cpu[f"thread.{stage}"] = v
            cpu["proc_cpu"] = _proc_cpu()
            cpu["proc_sys"] = _proc_cpu(system=True)
            cpu["sent_msgs"], cpu["sent_bytes"] = self.sent[0], self.sent[1]
            msg = replace(msg, timings={**msg.timings, **cpu})
        self.sent[0] += 1
        self.sent[1] += len(pickle.dumps(msg))
        super().send(msg)


def profiling_worker_main(conn: Any, cfg: Any) -> None:
    worker_main(conn, cfg, ProfilingWorker)


def run_mode(mode: str, src: Path, out: Path, model: str) -> dict[str, Any]:
    from alphacut.jobs.batch import BatchProgress, run_batch
    from alphacut.jobs.engine import JobEngine
    from alphacut.pipeline import Options

    records: list[dict[str, Any]] = []

    class Keep(BatchProgress):
        def finished(self, rec: dict[str, Any]) -> None:
            super().finished(rec)
            records.append(rec)

    opts = Options(model=model)
    engine = JobEngine(model, pipelined=(mode == "pipelined"), worker_main=profiling_worker_main, job_timeout=3600)
    tasks_bytes = len(pickle.dumps(("task", str(src / "x.jpg"), opts, str(out / "x.png"))))
    cpu0, t0 = _proc_cpu(), time.perf_counter()
    summary = run_batch([str(src)], out, opts, engine=engine, reporter=Keep(), handle_sigint=False)
    wall = time.perf_counter() - t0
    parent_cpu = _proc_cpu() - cpu0
    stats = engine.stats()
    procs = stats["processes"]
    ready = procs[0]
    engine.close()
    assert summary.exit_code == 0, summary.failed
    jobs = sorted(records, key=lambda r: r.get("timings", {}).get("proc_cpu", 0))
    at_ready = float(next(w.split("=")[1] for w in ready["warnings"] if w.startswith("cpu-at-ready=")))
    per_image = []
    prev, prev_sys = at_ready, 0.0
    for r in jobs:
        t = r["timings"]
        per_image.append({**{k: v for k, v in t.items() if k.startswith(("cpu.", "thread."))},
                          "process": t["proc_cpu"] - prev, "system": t["proc_sys"] - prev_sys})
        prev, prev_sys = t["proc_cpu"], t["proc_sys"]
    return {"mode": mode, "wall": wall, "parent_cpu": parent_cpu, "worker_cpu_at_ready": at_ready,
            "per_image": per_image, "sent_msgs": jobs[-1]["timings"]["sent_msgs"],
            "sent_bytes": jobs[-1]["timings"]["sent_bytes"], "task_bytes": tasks_bytes, "n": len(jobs)}


def run_loop(src: Path, out: Path, model: str) -> dict[str, Any]:
    from alphacut.api import Remover
    from alphacut.fsutil import atomic_write
    from alphacut.pipeline import Options

    r = Remover(model)
    c0 = time.process_time()
    r.session, r.stages.helper(model)
    load = time.process_time() - c0
    per_image = []
    t0 = time.perf_counter()
    for p in sorted(src.iterdir()):
        marks: list[tuple[str, float]] = []
        c, sys0 = time.process_time(), _proc_cpu(system=True)
        cut, data = r.stages.run(str(p), options=Options(model=model),
                                 on_stage=lambda s, f: marks.append((s, time.process_time())) if f == 0.0 else None)
        atomic_write(out / (p.stem + ".png"), data)
        marks.append(("end", time.process_time()))
        row = {"process": marks[-1][1] - c, "system": _proc_cpu(system=True) - sys0}
        for (s, a), (_, b) in zip(marks, marks[1:]):
            row[f"cpu.{s}"] = row.get(f"cpu.{s}", 0.0) + b - a
        per_image.append(row)
    return {"mode": "loop", "wall": time.perf_counter() - t0, "load_cpu": load, "per_image": per_image, "n": len(per_image)}


def import_cost() -> float:
    """CPU seconds for a fresh Python to import what the CLI's parent imports for a batch."""
    code = ("import time; c = time.process_time(); import alphacut.cli, alphacut.cli.remove, alphacut.cli.progress, "
            "alphacut.jobs.batch, alphacut.jobs.engine; print(time.process_time() - c)")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def child(mode: str, n: int, image: str, model: str, launched: float) -> None:
    from alphacut.memory import restart_with_huge_pages

    restart_with_huge_pages()  # as the alphacut command does; the workers inherit it
    with tempfile.TemporaryDirectory(prefix="alphacut-prof-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        for i in range(n):
            shutil.copyfile(image, src / f"img-{i:03d}.jpg")
        if mode == "timeline":
            os.environ["ALPHACUT_PROFILE_TIMELINE"] = str(Path(tmp) / "timeline.json")
            t0 = time.perf_counter()
            res = run_mode("pipelined", src, out, model)
            t1 = time.perf_counter()
            res.update(json.loads((Path(tmp) / "timeline.json").read_text()))
            res.update({"mode": "timeline", "launched": launched, "batch_start": t0, "batch_end": t1,
                        "parent_total_cpu": time.process_time()})
        else:
            res = run_loop(src, out, model) if mode == "loop" else run_mode(mode, src, out, model)
    print("RESULT " + json.dumps(res))


def timeline_report(r: dict[str, Any], cores: int) -> None:
    """Where the batch's idle core-time goes: the phases from the command's start to its end.

    Idle core-time of a phase = cores x wall - CPU of the worker (sampled every 20 ms) - the
    parent's CPU (spread over the batch: it is small)."""
    samples = r["samples"]
    ev = r["events"]

    def cpu_at(t: float) -> float:  # the worker's CPU at time t (linear between samples)
        if t <= samples[0][0]:
            return samples[0][1] if t >= samples[0][0] - 1e-9 else 0.0
        for (ta, ca), (tb, cb) in zip(samples, samples[1:]):
            if ta <= t <= tb:
                return ca + (cb - ca) * (t - ta) / max(tb - ta, 1e-9)
        return samples[-1][1]

    infers = sorted((e for e in ev if e[0] == "inferring"), key=lambda e: e[2])
    fins = sorted((e for e in ev if e[0] == "finishing"), key=lambda e: e[3])
    decs = sorted((e for e in ev if e[0] == "decoding"), key=lambda e: e[2])
    worker_start = samples[0][0]
    marks = [("command start -> worker's first instruction (parent: imports, expand, spawn)", r["launched"], worker_start),
             ("worker start -> Ready (imports, IS-Net session)", worker_start, r["ready"]),
             ("Ready -> first model pass starts (first decode)", r["ready"], infers[0][2]),
             ("first model pass (no overlap: nothing to finish yet)", infers[0][2], infers[0][3]),
             ("steady state: 2nd model pass start -> last model pass end", infers[1][2] if len(infers) > 1 else infers[0][3], infers[-1][3]),
             ("last model pass end -> last output written", infers[-1][3], fins[-1][3]),
             ("last output -> command exit (worker stop, parent's end)", fins[-1][3], r["batch_end"])]
    parent_rate = r["parent_total_cpu"] / max(r["batch_end"] - r["launched"], 1e-9)
    print(f"\ntimeline of one pipelined batch ({r['n']} images), {cores} cores; parent CPU "
          f"{r['parent_total_cpu']:.2f} s in all (spread evenly below)\n")
    print("| phase | wall s | worker CPU s | cores busy | idle core-s |")
    print("|---|---|---|---|---|")
    tot_idle = 0.0
    for name, a, b in marks:
        wall = max(b - a, 0.0)
        wcpu = max(cpu_at(b) - cpu_at(a), 0.0)
        busy = wcpu + parent_rate * wall
        idle = cores * wall - busy
        tot_idle += idle
        print(f"| {name} | {wall:.2f} | {wcpu:.2f} | {busy / max(wall, 1e-9):.2f} | {idle:.2f} |")
    total = r["batch_end"] - r["launched"]
    print(f"| **whole command** | {total:.2f} | {cpu_at(r['batch_end']):.2f} | | **{tot_idle:.2f}** |")
    n_steady = max(len(infers) - 1, 1)
    print(f"\nper image: model pass wall {statistics.median(e[3] - e[2] for e in infers):.2f} s "
          f"(its thread {statistics.median(e[4] for e in infers):.2f} CPU s), finishing wall "
          f"{statistics.median(e[3] - e[2] for e in fins):.2f} s (its thread {statistics.median(e[4] for e in fins):.2f}), "
          f"decode {statistics.median(e[3] - e[2] for e in decs):.2f} s; model thread idle between passes "
          f"{sum(b[2] - a[3] for a, b in zip(infers, infers[1:])):.2f} s over {n_steady} gaps")


def med(rows: list[dict[str, float]], key: str) -> float:
    vals = [r.get(key, 0.0) for r in rows[1:] or rows]  # after the first image (model warm-up)
    return statistics.median(vals) if vals else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--image", default=str(DOG))
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--modes", default="loop,sequential,pipelined")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--launched", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.n, args.image, args.model, args.launched)
        return
    results = {}
    for mode in args.modes.split(","):
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--n", str(args.n), "--image", args.image,
                               "--model", args.model, "--launched", repr(time.perf_counter())],
                              env=env, capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            raise SystemExit(f"{mode} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        results[mode] = json.loads(line[7:])
        print(f"  {mode}: done ({results[mode]['wall']:.0f} s, load {os.getloadavg()[0]:.1f})", file=sys.stderr)

    for mode in [m for m in results if m == "timeline"]:
        timeline_report(results.pop(mode), os.cpu_count() or 1)
    if not results:
        return
    print(f"\n{args.n} x {Path(args.image).name}, {args.model}; medians per image after the first; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| CPU s per image | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for stage in STAGES:
        cells = []
        for mode, r in results.items():
            key = f"thread.{stage}" if mode == "pipelined" else f"cpu.{stage}"
            cells.append(f"{med(r['per_image'], key):.2f}" + (" (its thread)" if mode == "pipelined" else ""))
        print(f"| {stage} | " + " | ".join(cells) + " |")
    if "pipelined" in results:
        rows = results["pipelined"]["per_image"]
        helpers = [r["process"] - sum(r.get(f"thread.{s}", 0.0) for s in STAGES) for r in rows]
        cells = ["" if m != "pipelined" else f"{statistics.median(helpers[1:] or helpers):.2f}" for m in results]
        print("| helper threads (ORT pool, tile and PNG pools) | " + " | ".join(cells) + " |")
    print("| **whole image** | " + " | ".join(f"**{med(r['per_image'], 'process'):.2f}**" for r in results.values()) + " |")
    print("| of which the kernel's (page faults, mmap) | " + " | ".join(f"{med(r['per_image'], 'system'):.2f}" for r in results.values()) + " |")
    print()
    for mode, r in results.items():
        if mode == "loop":
            print(f"loop: model sessions loaded in {r['load_cpu']:.2f} CPU s; batch wall {r['wall']:.1f} s")
            continue
        print(f"{mode}: worker start to Ready {r['worker_cpu_at_ready']:.2f} CPU s; parent {r['parent_cpu']:.2f} CPU s "
              f"for the batch ({r['parent_cpu'] / r['n']:.3f} per image); pipe: {r['sent_msgs'] / r['n']:.1f} messages "
              f"and {r['sent_bytes'] / r['n'] / 1024:.1f} KB per image from the worker, one Task of ~{r['task_bytes']} "
              f"bytes to it; batch wall {r['wall']:.1f} s")
    print(f"parent's imports for a batch (fresh Python): {import_cost():.2f} CPU s")


if __name__ == "__main__":
    main()
