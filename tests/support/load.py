"""A real ``alphacut serve`` process under a burst of concurrent uploads, measured from outside.

Shared by ``tests/test_server_abuse.py`` and ``bench/load.py``. The server runs as its own
process (``python -m alphacut.cli serve``), so the resident memory measured is the server's and
its workers', not the test's: the sum of RSS over the process tree, read from /proc.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"


def _children(pid: int) -> list[int]:
    """Children of every thread of ``pid`` (the job engine starts workers from its own thread)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                out += [int(x) for x in fh.read().split()]
        except (OSError, ValueError):
            continue
    return out


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every process below it (the server, its job workers, their helpers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def tree_rss_mb(pid: int) -> float:
    return sum(rss_mb(p) for p in tree_pids(pid))


class RssSampler:
    """Samples the tree's RSS every ``interval`` seconds in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mb(self.pid))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class ServeProcess:
    proc: subprocess.Popen
    base: str
    token: str
    work_dir: Path

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, **kw)


@contextmanager
def serve_process(work_dir: Path, *, model: str = "u2netp", workers: int = 1, max_queue: int = 64,
                  models_home: Path | None = None, start_timeout: float = 60) -> Iterator[ServeProcess]:
    """``alphacut serve`` in a child process; yields once it printed its link; stopped with SIGINT."""
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               PYTHONUNBUFFERED="1", ALPHACUT_OFFLINE="1")
    if models_home is not None:
        env["ALPHACUT_HOME"] = str(models_home)
    cmd = [sys.executable, "-m", "alphacut.cli", "serve", "--no-browser", "--port", "0", "--model", model,
           "--workers", str(workers), "--max-queue", str(max_queue), "--work-dir", str(work_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    lines: list[str] = []
    url = None
    end = time.monotonic() + start_timeout
    try:
        assert proc.stdout is not None
        while url is None and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            m = re.search(r"running at (http://\S+)/\?token=(\S+)", line)
            if m:
                url = m.group(1), m.group(2)
        if url is None:
            raise RuntimeError("alphacut serve did not start:\n" + "".join(lines))
        threading.Thread(target=lambda: [lines.append(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        yield ServeProcess(proc, url[0], url[1], work_dir)
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@dataclass
class BurstResult:
    statuses: Counter = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    retry_after: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bad_bodies: list[str] = field(default_factory=list)
    seconds: float = 0.0


def upload_burst(server: ServeProcess, images: list[bytes], *, timeout: float = 60) -> BurstResult:
    """Every image POSTed at once, one thread each, released together by a barrier."""
    res = BurstResult()
    lock = threading.Lock()
    barrier = threading.Barrier(len(images))
    limits = httpx.Limits(max_connections=len(images) + 8, max_keepalive_connections=len(images) + 8)
    with server.client(timeout=timeout, limits=limits) as client:
        def one(i: int, data: bytes) -> None:
            barrier.wait(30)
            t = time.monotonic()
            try:
                r = client.post("/api/jobs", files={"file": (f"burst{i:03d}.png", data, "image/png")})
            except httpx.HTTPError as exc:
                with lock:
                    res.errors.append(f"{i}: {type(exc).__name__}: {exc}")
                return
            dt = time.monotonic() - t
            with lock:
                res.latencies.append(dt)
                res.statuses[r.status_code] += 1
                try:
                    body = r.json()
                except ValueError:
                    res.bad_bodies.append(f"{i}: {r.status_code} {r.text[:80]!r}")
                    return
                if r.status_code == 201:
                    res.accepted.append(body["id"])
                elif r.status_code == 429:
                    res.retry_after.append(r.headers.get("retry-after", ""))
                    if body.get("code") != "queue-full":
                        res.bad_bodies.append(f"{i}: 429 {body}")

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i, d), daemon=True) for i, d in enumerate(images)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout + 35)
        res.seconds = time.monotonic() - t0
    return res


def wait_all(server: ServeProcess, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll until every job is final (or the time is up); id → the job's last JSON."""
    end = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    with server.client(timeout=30) as c:
        while len(final) < len(ids) and time.monotonic() < end:
            jobs = {j["id"]: j for j in c.get("/api/jobs").json()["jobs"]}
            for jid in ids:
                j = jobs.get(jid)
                if j and j["stage"] in ("done", "failed", "cancelled"):
                    final[jid] = j
            time.sleep(0.2)
    return final


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]
