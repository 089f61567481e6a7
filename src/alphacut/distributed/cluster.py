"""Reaching a Ray cluster: the one the user names, the one ``ray.init`` finds, or a local one.

``--ray ADDRESS`` connects to that cluster (``host:port`` or ``ray://host:port``); ``--ray
auto`` connects to the cluster ``RAY_ADDRESS`` or ``ray start`` on this machine points at, and
starts a local one when there is none; ``--ray local`` always starts a local one.

A local cluster alphacut starts is private to this run:

- every process of it listens on **loopback only** (127.0.0.1): Ray's own switch for that,
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (the loopback mode Ray uses on desktops), is set
  before Ray is imported; otherwise Ray binds the machine's outward address;
- **token authentication** is on, with a fresh random token for this run only
  (``RAY_AUTH_TOKEN``; nothing is written to ``~/.ray``);
- **no dashboard** (``include_dashboard=False``, and its host is loopback anyway);
- Ray's **usage statistics** are off (``RAY_USAGE_STATS_ENABLED=0``), for every cluster, local
  or not: Ray would otherwise report usage to its makers.

``shutdown()`` ends only what this run started: it disconnects from a cluster it joined, and
stops a local cluster it started (``ray.shutdown``). It never runs ``ray stop``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError

#: Ray reads these when it is imported or initialised
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
INSTALL_HINT = "pip install 'alphacut[ray]'"


@dataclass
class Connection:
    """A connected driver: where it is connected, whether alphacut started that cluster."""

    address: str
    started_local: bool
    cpus: float
    gpus: float
    #: this process was connected before (a library caller's own ``ray.init``): left connected
    borrowed: bool = False

    def shutdown(self) -> None:
        """Disconnect; a local cluster this run started stops with it (Ray's own shutdown)."""
        import ray

        if not self.borrowed and ray.is_initialized():
            ray.shutdown()


def _host(address: str) -> str:
    addr = address.split("://", 1)[-1]
    return addr.rsplit(":", 1)[0].strip("[]") if ":" in addr else addr


def is_loopback(address: str) -> bool:
    host = _host(address)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def found_address(temp_dir: str | None = None) -> str | None:
    """The cluster ``--ray auto`` joins: ``RAY_ADDRESS``, else the one ``ray start`` recorded
    on this machine (``/tmp/ray/ray_current_cluster``), else None (start a local one). Read
    here, before Ray is imported, because a loopback cluster needs Ray's loopback switch set
    before the import."""
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env
    recorded = Path(temp_dir or "/tmp/ray") / "ray_current_cluster"
    try:
        text = recorded.read_text().strip()
    except OSError:
        return None
    return text or None


def _prepare_env(loopback: bool) -> None:
    os.environ[USAGE_STATS] = "0"
    if loopback:
        if "ray" in sys.modules:
            from ray._private import ray_constants

            if ray_constants.ENABLE_RAY_CLUSTER:
                raise UsageError(
                    f"a loopback Ray cluster needs {LOOPBACK_SWITCH}=0 before Ray is imported "
                    "(set it in the environment, or let alphacut import Ray)")
        os.environ[LOOPBACK_SWITCH] = "0"


def connect(address: str = "auto", *, num_cpus: int | None = None,
            object_store_memory: int | None = None) -> Connection:
    """Connect this process to a cluster (see the module docstring); a clear error when Ray
    is not installed or the cluster cannot be reached."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():  # the caller connected this process already: use that cluster
            os.environ[USAGE_STATS] = "0"
            res = ray.cluster_resources()
            return Connection(address="connected", started_local=False, cpus=float(res.get("CPU", 0)),
                              gpus=float(res.get("GPU", 0)), borrowed=True)
    target: str | None
    if address == "local":
        target = None
    elif address == "auto":
        target = found_address()
    else:
        target = address
    local = target is None
    _prepare_env(loopback=local or is_loopback(target or ""))
    if local:
        os.environ["RAY_AUTH_MODE"] = "token"  # a local cluster is ours: auth always on
        if not (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    try:
        import ray
    except ImportError:
        raise UsageError(f"--ray needs Ray; {INSTALL_HINT}") from None
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                                  configure_logging=True)
    if local:
        kwargs.update(num_cpus=num_cpus, object_store_memory=object_store_memory,
                      dashboard_host="127.0.0.1")
    try:
        if local:
            ray.init(**kwargs)
        else:
            ray.init(address=target, **{k: v for k, v in kwargs.items() if k != "include_dashboard"})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"cannot reach the Ray cluster at {target}: {exc}") from None
    res = ray.cluster_resources()
    return Connection(address=target or "local", started_local=local, cpus=float(res.get("CPU", 0)),
                      gpus=float(res.get("GPU", 0)))
