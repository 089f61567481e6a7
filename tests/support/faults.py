"""Faults in real batches: workers SIGKILLed from outside, a full disk, a read-only output folder.

Helpers for ``tests/test_batch_faults.py`` and ``bench/faults.py``, and a driver that runs a
disk scenario inside a private mount namespace (so a tmpfs or a read-only mount is visible to that
scenario only and vanishes with it)::

    unshare -m [-r] python tests/support/faults.py disk-full|read-only IN OUT

prints one JSON report on stdout. The batch is always the real CLI (``alphacut remove IN -o OUT``)
on the real u2netp engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1]  # tests/
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(SRC))

from support.load import tree_pids  # noqa: E402

#: how atomic_write names its temporary files: ``.NAME.`` + 8 random characters + ``.part``
TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.part")


def make_inputs(folder: Path, n: int, size: tuple[int, int] = (128, 96)) -> None:
    from conftest import encode_image, subject_image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"img{i:03d}.png").write_bytes(encode_image(subject_image(*size, seed=i), "PNG"))


def hash_tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", ALPHACUT_OFFLINE="1")


def cli(inputs: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "alphacut.cli", "remove", str(inputs), "-o", str(out), "--model", "u2netp",
            "--workers", "1", "--no-progress", *extra]


def check_png(path: Path, size: tuple[int, int] | None = None) -> str | None:
    """None when ``path`` is a whole RGBA PNG (of ``size``); else what is wrong with it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.format != "PNG" or im.mode != "RGBA":
                return f"{im.format} {im.mode}"
            if size is not None and im.size != size:
                return f"size {im.size}"
    except FileNotFoundError:
        return "missing"
    except Exception as exc:  # noqa: BLE001 - any failure to decode is the finding
        return f"{type(exc).__name__}: {exc}"
    return None


class OutputWatcher:
    """Polls an output folder while a batch runs: every file under a final name must decode whole
    the moment it is seen (temporary names are counted, never decoded)."""

    def __init__(self, folder: Path, size: tuple[int, int], interval: float = 0.02) -> None:
        self.folder, self.size, self.interval = folder, size, interval
        self.checked: dict[str, tuple[int, int]] = {}
        self.bad: list[str] = []
        self.temp_names: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.scan()
            self._stop.wait(self.interval)

    def scan(self) -> None:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            if TEMP_NAME.fullmatch(name):
                self.temp_names.add(name)
                continue
            if not name.endswith(".png"):
                continue
            p = self.folder / name
            try:
                st = p.stat()
            except OSError:
                continue
            key = (st.st_mtime_ns, st.st_size)
            if self.checked.get(name) == key:
                continue
            problem = check_png(p, self.size)
            if problem and problem != "missing":
                self.bad.append(f"{name}: {problem}")
            self.checked[name] = key

    def __enter__(self) -> "OutputWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.scan()


def _is_worker(pid: int) -> bool:
    """A job worker (``spawn_main``), not multiprocessing's resource tracker."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
    except OSError:
        return False
    return b"spawn_main" in cmd and b"resource_tracker" not in cmd


@dataclass
class Killer:
    """SIGKILLs the batch's worker processes from outside at seeded random points.

    A kill comes after a random number of new outputs (so the worker it hits has loaded its model
    and is in the middle of the stream) plus a random delay, so it lands in any stage of the
    jobs in flight: decoding, inference, encoding, the atomic write.
    """

    proc: subprocess.Popen
    out: Path
    seed: int
    max_kills: int = 6
    every: tuple[int, int] = (5, 14)
    delay: tuple[float, float] = (0.0, 0.6)
    kills: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _outputs(self) -> int:
        try:
            return sum(1 for n in os.listdir(self.out) if n.endswith(".png") and not n.startswith("."))
        except OSError:
            return 0

    def _run(self) -> None:
        t0 = time.monotonic()
        while len(self.kills) < self.max_kills and self.proc.poll() is None:
            goal = self._outputs() + self.rng.randint(*self.every)
            while self._outputs() < goal and self.proc.poll() is None:
                time.sleep(0.02)
            time.sleep(self.rng.uniform(*self.delay))
            workers = [p for p in tree_pids(self.proc.pid) if p != self.proc.pid and _is_worker(p)]
            if not workers or self.proc.poll() is not None:
                continue
            victim = self.rng.choice(sorted(workers))
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
            self.kills.append({"t": round(time.monotonic() - t0, 2), "pid": victim, "outputs": self._outputs()})

    def start(self) -> "Killer":
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(10)


def read_records(manifest: Path) -> dict[str, dict[str, Any]]:
    from alphacut.jobs.manifest import read_manifest

    return {Path(r["input"]).name: r for r in read_manifest(manifest).values()}


def verify_done(records: dict[str, dict[str, Any]], size: tuple[int, int]) -> list[str]:
    """Every ``done`` record's output exists, matches its sha256 and decodes whole."""
    bad = []
    for name, r in records.items():
        if r["status"] != "done":
            continue
        p = Path(r["output"])
        try:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError as exc:
            bad.append(f"{name}: {exc}")
            continue
        if digest != r["sha256"]:
            bad.append(f"{name}: sha256 differs from the manifest")
        problem = check_png(p, size)
        if problem:
            bad.append(f"{name}: {problem}")
    return bad


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TEMP_NAME.fullmatch(p.name))


# --- disk scenarios, run inside a private mount namespace --------------------------------------


def mount_namespace_prefix() -> list[str] | None:
    """The command prefix that runs a child in a private mount namespace where it may mount:
    ``unshare -m`` as root, ``unshare -rm`` (a user namespace too) otherwise; None when neither works."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-r", "-m"]) if os.geteuid() == 0 else (["unshare", "-r", "-m"],):
        try:
            ok = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                                 "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if ok.returncode == 0:
            return prefix
    return None


def _sh(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, timeout=30)


def _fill(path: Path, nbytes: int) -> None:
    """Append up to ``nbytes`` zeros to ``path``, stopping quietly when the disk is full."""
    with open(path, "ab", buffering=0) as fh:
        try:
            while nbytes > 0:
                nbytes -= fh.write(b"\0" * min(nbytes, 65536))
        except OSError:
            pass


def _run_cli(inputs: Path, out: Path, *extra: str) -> dict[str, Any]:
    t = time.monotonic()
    p = subprocess.run(cli(inputs, out, *extra), capture_output=True, text=True, env=cli_env(), timeout=300)
    return {"rc": p.returncode, "stderr": p.stderr[-4000:], "seconds": round(time.monotonic() - t, 1)}


def disk_full(inputs: Path, out: Path, size_kb: int = 2048, free_kb: int = 100) -> dict[str, Any]:
    """A 2 MB tmpfs as the output folder, filled with ballast to ``free_kb`` free: the batch runs
    out of space part-way. Then the ballast goes and ``--resume`` finishes the batch."""
    out.mkdir(parents=True, exist_ok=True)
    _sh("mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(out))
    ballast = out / "ballast.bin"
    _fill(ballast, (size_kb - free_kb) * 1024)
    before = hash_tree(inputs)
    report: dict[str, Any] = {"free_kb": shutil.disk_usage(out).free // 1024}
    with OutputWatcher(out, (128, 96)) as watch:
        report["first"] = _run_cli(inputs, out)
    report["first"]["records"] = {n: [r["status"], r["code"], r["reason"]] for n, r in read_records(out / "manifest.jsonl").items()}
    report["first"]["bad_done"] = verify_done(read_records(out / "manifest.jsonl"), (128, 96))
    report["first"]["leftovers"] = leftovers(out)
    report["first"]["files"] = sorted(p.name for p in out.iterdir())
    # a completely full disk: not even the manifest can grow
    _fill(ballast, 1 << 40)
    report["full"] = _run_cli(inputs, out, "--resume")
    report["full"]["leftovers"] = leftovers(out)
    report["full"]["records"] = len(read_records(out / "manifest.jsonl"))
    ballast.unlink()
    with watch.__class__(out, (128, 96)) as watch2:
        report["resume"] = _run_cli(inputs, out, "--resume")
    records = read_records(out / "manifest.jsonl")
    report["resume"]["records"] = {n: r["status"] for n, r in records.items()}
    report["resume"]["bad_done"] = verify_done(records, (128, 96))
    report["resume"]["leftovers"] = leftovers(out)
    report["outputs"] = sorted(p.name for p in out.iterdir() if p.suffix == ".png" and check_png(p, (128, 96)) is None)
    report["watch_bad"] = watch.bad + watch2.bad
    report["inputs_unchanged"] = hash_tree(inputs) == before
    _sh("umount", str(out))
    return report


def read_only(inputs: Path, out: Path) -> dict[str, Any]:
    """The output folder on a read-only mount (root ignores file modes, so chmod 0555 proves
    nothing as root): a fresh batch and a ``--resume`` both stop with one clear error."""
    out.mkdir(parents=True, exist_ok=True)
    _sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(out))
    (out / "manifest.jsonl").write_text("")  # so --resume has a manifest to append to
    _sh("mount", "-o", "remount,ro", str(out))
    before = hash_tree(inputs)
    report = {"fresh": _run_cli(inputs, out), "resume": _run_cli(inputs, out, "--resume"),
              "sub": _run_cli(inputs, out / "new" / "folder")}
    report["files"] = sorted(p.name for p in out.rglob("*"))
    report["inputs_unchanged"] = hash_tree(inputs) == before
    _sh("umount", str(out))
    return report


def main(argv: list[str]) -> int:
    scenario, inputs, out = argv[0], Path(argv[1]), Path(argv[2])
    report = {"disk-full": disk_full, "read-only": read_only}[scenario](inputs, out)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
