"""No-network proof for the CLI and library paths.

1. The guard works: in a guarded child, connecting to or resolving a non-loopback host fails
   loudly and is logged, while loopback still works (otherwise "zero attempts" proves nothing).
2. ``alphacut remove`` and ``alphacut.api.remove`` run end to end on real files under the guard,
   with the model already cached and ALPHACUT_OFFLINE *not* set: zero attempts, and the guard was
   installed in the process that did the work.
3. The CLI runs inside a network namespace with no usable interface (``unshare -n``), which also
   covers native code that would bypass Python's socket module.
4. ``--ray local``: the local Ray cluster alphacut starts runs under the guard too, and listens
   on loopback only, with token authentication on and usage statistics off.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import CORPUS, SHARED_HOME
from support.netguard import attempts, guarded_env, guarded_pids, unshare_net_available

INPUTS = ["jpeg_odd/flower.jpg", "heic/zPug_3.heic", "webp/transparent.webp", "png16/RGB_16__128x128.png",
          "avif/transparency.avif"]
CLI = [sys.executable, "-m", "alphacut.cli"]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for rel in INPUTS:
        (folder / Path(rel).name).write_bytes((CORPUS / rel).read_bytes())
    return folder


def _env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    log = tmp_path / "netguard.jsonl"
    env = guarded_env(log)
    env["ALPHACUT_HOME"] = str(SHARED_HOME)  # the cached models: nothing needs fetching
    return env, log


def test_the_guard_blocks_and_records_non_loopback_attempts(tmp_path: Path) -> None:
    env, log = _env(tmp_path)
    code = r"""
import socket, urllib.request
blocked = 0
for attempt in (
    lambda: socket.create_connection(("192.0.2.1", 443), timeout=1),
    lambda: socket.socket().connect(("8.8.8.8", 53)),
    lambda: socket.socket().connect_ex(("1.1.1.1", 80)),
    lambda: socket.getaddrinfo("huggingface.co", 443),
    lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("9.9.9.9", 53)),
    lambda: urllib.request.urlopen("https://example.com/", timeout=1),
):
    try:
        attempt()
    except OSError as exc:
        blocked += "network guard" in str(exc) or "network guard" in str(getattr(exc, "reason", ""))
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(server.getsockname(), timeout=1).close()  # loopback stays allowed
print(blocked)
"""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["6"], proc.stdout + proc.stderr
    kinds = [a["kind"] for a in attempts(log)]
    assert {"create_connection", "connect", "connect_ex", "getaddrinfo", "sendto"} <= set(kinds), kinds
    assert "NETGUARD: blocked" in proc.stderr


def test_cli_remove_end_to_end_opens_no_connection(tmp_path: Path, inputs: Path) -> None:
    env, log = _env(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([*CLI, "remove", str(inputs), "-o", str(out), "--model", "u2netp", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = sorted(out.glob("*.png"))
    assert len(written) == len(INPUTS)
    for path in written:
        with Image.open(path) as img:
            assert "A" in img.getbands(), (path, img.mode)
    assert attempts(log) == [], attempts(log)
    assert guarded_pids(log), "the guard was not installed in the CLI process"


def test_library_remove_opens_no_connection(tmp_path: Path) -> None:
    env, log = _env(tmp_path)
    out = tmp_path / "lib.png"
    code = (f"from alphacut.api import remove; remove({str(CORPUS / INPUTS[0])!r}, model='u2netp')"
            f".save({str(out)!r})")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.exists() and attempts(log) == [] and guarded_pids(log)


@pytest.mark.skipif(not unshare_net_available(), reason="unshare -n is not available here")
def test_cli_runs_in_a_network_namespace_without_interfaces(tmp_path: Path, inputs: Path) -> None:
    env, _ = _env(tmp_path)
    probe = subprocess.run(
        ["unshare", "-n", sys.executable, "-c",
         "import socket\ntry:\n socket.create_connection(('192.0.2.1', 443), timeout=2)\nexcept OSError as e:\n print(e.errno)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.strip() == "101", probe  # ENETUNREACH: the namespace really has no route out
    out = tmp_path / "ns-out"
    env.pop("ALPHACUT_NETGUARD_LOG")  # only the namespace here, no Python-level guard
    proc = subprocess.run(["unshare", "-n", *CLI, "remove", str(inputs), "-o", str(out), "--model", "u2netp"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(out.glob("*.png"))) == len(INPUTS)


def _listening(root: Any) -> set[tuple[str, int]]:
    """Every (address, port) a process or any of its descendants listens on now."""
    import psutil

    found: set[tuple[str, int]] = set()
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.add((c.laddr.ip, c.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def _loopback(host: str) -> bool:
    """127.0.0.0/8 and ::1, and IPv4 loopback written as an IPv6-mapped address (gRPC's way)."""
    ip = ipaddress.ip_address(host)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


@pytest.mark.slow
def test_cli_ray_local_opens_no_connection_and_listens_on_loopback_only(tmp_path: Path, inputs: Path) -> None:
    """``--ray local``: the whole cluster alphacut starts (GCS, raylet, workers, actors) runs
    under the guard and opens nothing beyond loopback; every socket it listens on is on
    127.0.0.1; token authentication is on and usage statistics are off in its processes."""
    pytest.importorskip("ray", reason="alphacut[ray] is not installed")
    psutil = pytest.importorskip("psutil")
    env, log = _env(tmp_path)
    for key in [k for k in env if k.startswith("RAY_")]:
        env.pop(key)  # alphacut's own defaults, not a test's
    out = tmp_path / "ray-out"
    proc = subprocess.Popen([*CLI, "remove", str(inputs), "-o", str(out), "--model", "u2netp", "--json",
                             "--ray", "local"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    listening: set[tuple[str, int]] = set()
    cluster_env: dict[str, str] = {}
    deadline = time.monotonic() + 400
    while proc.poll() is None and time.monotonic() < deadline:
        listening |= _listening(root)
        try:
            for child in root.children(recursive=True):
                if "gcs_server" in " ".join(child.cmdline()) and not cluster_env:
                    cluster_env = _environ(child.pid)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-3000:]
    assert len([line for line in stdout.splitlines() if json.loads(line)["status"] == "done"]) == len(INPUTS)
    assert len(list(out.glob("*.png"))) == len(INPUTS)
    assert attempts(log) == [], attempts(log)
    assert len(guarded_pids(log)) >= 3, "the guard was not installed in the cluster's Python processes"
    assert listening, "no listening socket was seen: the check saw nothing of the cluster"
    assert all(_loopback(host) for host, _ in listening), listening
    assert cluster_env.get("RAY_AUTH_MODE") == "token" and cluster_env.get("RAY_AUTH_TOKEN")
    assert cluster_env.get("RAY_USAGE_STATS_ENABLED") == "0"
