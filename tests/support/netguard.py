"""Run child processes under the network guard (tests/support/netguard_site/sitecustomize.py) and read its log.

Reusable by any test that starts alphacut in a child (CLI, server, batch workers)::

    env = guarded_env(tmp_path / "net.log")
    subprocess.run([...], env=env)
    assert attempts(tmp_path / "net.log") == []
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

GUARD_DIR = Path(__file__).resolve().parent / "netguard_site"
SRC = Path(__file__).resolve().parents[2] / "src"


def guarded_env(log: Path, base: dict[str, str] | None = None, *, offline: bool = False) -> dict[str, str]:
    """An environment whose Python processes all install the guard and log to ``log``.

    ``ALPHACUT_OFFLINE`` is removed unless ``offline``: the point is to prove the code opens
    nothing by itself, not that the offline switch works.
    """
    env = dict(os.environ if base is None else base)
    env.pop("ALPHACUT_OFFLINE", None)
    if offline:
        env["ALPHACUT_OFFLINE"] = "1"
    parts = [str(GUARD_DIR), str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["ALPHACUT_NETGUARD_LOG"] = str(log)
    log.touch()
    return env


def _entries(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def attempts(log: Path) -> list[dict]:
    """Every blocked network attempt, from every guarded process."""
    return [e for e in _entries(log) if e["event"] == "attempt"]


def guarded_pids(log: Path) -> set[int]:
    """The processes that installed the guard (proof it was active where the work ran)."""
    return {e["pid"] for e in _entries(log) if e["event"] == "installed"}


def unshare_net_available() -> bool:
    """True when ``unshare -n`` can make a network namespace here (root or user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
