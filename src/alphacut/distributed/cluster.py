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
  or not: Ray would otherwise report usage to its makers;
- and Ray's usage-stats module does **not probe cloud metadata services** (it asks
  169.254.169.254 and metadata.google.internal which cloud it runs on, even with statistics
  off, unless ``~/ray_bootstrap_config.yaml`` exists — the file ``ray up`` leaves on a cluster
  it made). The cluster's processes get a private ``HOME`` holding an empty one of those
  (``quiet_home``); the model store, the AWS configuration files and the auth token keep
  pointing where they did. The no-egress test (tests/test_netguard.py) found these probes.

A cluster alphacut joins gets the driver's store endpoint and region (``store_env``), never its
credentials, so every node reads and writes the store the user named.

``shutdown()`` ends only what this run started: it disconnects from a cluster it joined, and
stops a local cluster it started (``ray.shutdown``). It never runs ``ray stop``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import UsageError

#: Ray reads these when it is imported or initialised
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
USAGE_STATS = "RAY_USAGE_STATS_ENABLED"
INSTALL_HINT = "pip install 'alphacut[ray]'"
#: the object store's endpoint and region — never credentials — go with the batch to a cluster
#: it joins (``store_env``)
STORE_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION")


@contextlib.contextmanager
def quiet_home() -> Iterator[Path]:
    """While a local cluster starts: ``HOME`` is a private folder with an empty
    ``ray_bootstrap_config.yaml`` (so Ray's usage-stats module skips its cloud-metadata
    probes), inherited by every process the cluster starts; the real home's model store and
    AWS files stay named explicitly. Restored once the cluster runs; the folder is removed by
    ``Connection.shutdown``. Tests starting their own ``Cluster`` use it too."""
    from ..models.store import default_home

    real = {k: os.environ.get(k) for k in _HOME_KEYS}
    home = Path(tempfile.mkdtemp(prefix="alphacut-ray-home-"))
    (home / "ray_bootstrap_config.yaml").write_text("{}\n")
    os.environ.setdefault("ALPHACUT_HOME", str(default_home()))
    aws = Path(real["HOME"] or Path.home()) / ".aws"
    os.environ.setdefault("AWS_CONFIG_FILE", str(aws / "config"))
    os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    # where a cluster not started by ray.init would send its "usage stats disabled" note
    os.environ.setdefault("RAY_USAGE_STATS_REPORT_URL", "http://127.0.0.1:9/")
    os.environ["HOME"] = str(home)
    try:
        yield home
    finally:
        for k, v in real.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_HOME_KEYS = ("HOME", "ALPHACUT_HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "RAY_USAGE_STATS_REPORT_URL")


@dataclass
class Connection:
    """A connected driver: where it is connected, whether alphacut started that cluster."""

    address: str
    started_local: bool
    cpus: float
    gpus: float
    #: this process was connected before (a library caller's own ``ray.init``): left connected
    borrowed: bool = False
    #: the private HOME of a local cluster's processes (``quiet_home``)
    home: Path | None = None

    def shutdown(self) -> None:
        """Disconnect; a local cluster this run started stops with it (Ray's own shutdown)."""
        import ray

        if not self.borrowed and ray.is_initialized():
            ray.shutdown()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


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


def store_env() -> dict[str, str]:
    """The driver's store endpoint and region, for the processes of a cluster it joins (Ray's
    ``runtime_env``): the nodes read and write the objects, and a node without the driver's
    ``AWS_ENDPOINT_URL`` would address AWS's own S3 under the same bucket name — outputs in a
    store the user never named. Credentials are not sent (Ray keeps a job's runtime_env in its
    control store); each node has its own (README, "Running on a real cluster")."""
    return {k: os.environ[k] for k in STORE_ENV if os.environ.get(k)}


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
    home: Path | None = None
    try:
        if local:
            with quiet_home() as home:
                # "local", not None: without an address ray.init joins whatever cluster it finds
                # on this machine (RAY_ADDRESS, the last `ray start`, any running GCS) — another
                # user's included — and this run's images would go there
                ray.init(address="local", **kwargs)
        else:
            env = store_env()
            ray.init(address=target, **{k: v for k, v in kwargs.items() if k != "include_dashboard"},
                     **({"runtime_env": {"env_vars": env}} if env else {}))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
        raise UsageError(f"cannot reach the Ray cluster at {target}: {exc}") from None
    res = ray.cluster_resources()
    return Connection(address=target or "local", started_local=local, cpus=float(res.get("CPU", 0)),
                      gpus=float(res.get("GPU", 0)), home=home)
