"""Memory that must not stay allocated between images (measured in a fresh process)."""

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, numpy as np
from alphacut.models.session import ModelSession
from alphacut.models.store import ModelStore
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6
s = ModelSession(ModelStore().path("isnet"), threads=2)
loaded = rss()
s.run(np.random.rand(1, 3, 1024, 1024).astype(np.float32))
print(json.dumps({"loaded": loaded, "after": rss()}))
"""


def test_inference_activations_are_released_after_a_run(isnet) -> None:  # noqa: ANN001 - fixture pulls the model
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    mb = json.loads(out.stdout.strip().splitlines()[-1])
    # IS-Net's activations at 1024² take ~1.7 GB; an ONNX Runtime memory arena would keep them
    assert mb["after"] - mb["loaded"] < 700, mb


# --- transparent huge pages (memory.restart_with_huge_pages) ------------------------------------

import pytest  # noqa: E402

from alphacut import memory  # noqa: E402

HUGE_OK, HUGE_WHY = memory.huge_pages_status()
needs_huge_pages = pytest.mark.skipif(not HUGE_OK, reason=f"huge-page tunable unusable here: {HUGE_WHY}")

#: a process that maps 64 MB through malloc (not NumPy, which asks for huge pages itself), touches
#: it, and reports how much of its anonymous memory the kernel backed with huge pages
HUGE_PROBE = """
import ctypes, json
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
n = 64 << 20
p = libc.malloc(n)
ctypes.memset(p, 1, n)
kb = [int(l.split()[1]) for l in open("/proc/self/smaps_rollup") if l.startswith("AnonHugePages:")][0]
print(json.dumps({"huge_kb": kb}))
"""


def test_environment_gains_the_tunable_once_and_keeps_the_users_own() -> None:
    base = {"PATH": "/usr/bin"}
    if HUGE_OK:
        assert memory.with_huge_pages(base)["GLIBC_TUNABLES"] == "glibc.malloc.hugetlb=1"
        mine = memory.with_huge_pages({**base, "GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
        assert mine["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
    assert memory.with_huge_pages({**base, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # the user's choice
    assert memory.with_huge_pages({**base, "ALPHACUT_HUGE_PAGES": "0"}) is None
    assert memory.huge_pages_status({"ALPHACUT_HUGE_PAGES": "0"})[0] is False


@needs_huge_pages
def test_the_tunable_really_gives_malloc_huge_pages() -> None:
    """What the restart is for: without the tunable glibc's malloc gets 4 KB pages here."""
    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    got = {}
    for label, env in (("plain", plain), ("tunable", memory.with_huge_pages(plain))):
        out = subprocess.run([sys.executable, "-c", HUGE_PROBE], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        got[label] = json.loads(out.stdout)["huge_kb"]
    assert got["tunable"] >= 16 * 1024, got  # most of the 64 MB in 2 MB pages
    assert got["tunable"] > got["plain"], got


@needs_huge_pages
def test_the_command_restarts_itself_with_the_tunable_and_only_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(SRC)
    out = subprocess.run([sys.executable, "-m", "alphacut.launch", "doctor", "--json"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["huge_pages"].startswith("on"), out.stdout
    off = subprocess.run([sys.executable, "-m", "alphacut.launch", "doctor", "--json"], capture_output=True,
                         text=True, env={**env, "ALPHACUT_HUGE_PAGES": "0"}, timeout=120)
    assert json.loads(off.stdout)["huge_pages"].startswith("off"), off.stdout


@needs_huge_pages
def test_engine_workers_start_with_the_tunable(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import numpy as np
    from PIL import Image

    from alphacut.jobs.engine import JobEngine
    from alphacut.pipeline import Options

    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    buf = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(buf, "PNG")
    with JobEngine("u2netp", workers=1) as eng:  # workers start with the first job
        job = eng.wait(eng.submit(buf.getvalue(), name="grey.png", options=Options(model="u2netp")).id, 120)
        assert job.ok, job.reason
        [pid] = eng.worker_pids()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"GLIBC_TUNABLES=glibc.malloc.hugetlb=1" in environ
