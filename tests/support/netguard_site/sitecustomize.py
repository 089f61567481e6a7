"""Network guard for child processes: every non-loopback network attempt fails loudly and is logged.

Put this folder first on a child's PYTHONPATH (``support.netguard.guarded_env`` does) and set
``ALPHACUT_NETGUARD_LOG``; Python imports ``sitecustomize`` at start-up in that process and every
Python process it starts (job workers, server workers), so the processes doing the work are guarded.

Two layers, because either alone can be sidestepped: the public ``socket`` functions are replaced
(``connect``, ``connect_ex``, ``sendto``, ``getaddrinfo``, ``gethostbyname(_ex)``,
``create_connection``), and an audit hook sees the same events even from code that calls ``_socket``
directly. Loopback (127.0.0.0/8, ::1, localhost) and Unix sockets stay allowed: the local server
and the tests' own fixtures use them. Native code that opens sockets without Python is out of
reach here; the network-namespace test covers that.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import traceback

_LOG = os.environ.get("ALPHACUT_NETGUARD_LOG")


class NetworkBlocked(PermissionError):
    """A non-loopback network attempt under the alphacut network guard."""


def _is_loopback_host(host: object) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): the local wildcard, no lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0]
    if host in ("localhost", "localhost.localdomain", "ip6-localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _allowed_address(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if isinstance(address, tuple) and address:
        return _is_loopback_host(address[0])
    return False


def _record(kind: str, target: object) -> None:
    entry = {"event": "attempt", "pid": os.getpid(), "kind": kind, "target": repr(target),
             "argv": sys.argv[:3], "stack": traceback.format_stack(limit=8)[:-2]}
    try:
        with open(_LOG, "a") as fh:  # type: ignore[arg-type]
            fh.write(json.dumps(entry) + "\n")
    except OSError:
        pass
    print(f"NETGUARD: blocked {kind} to {target!r} in pid {os.getpid()}", file=sys.stderr)


def _block(kind: str, target: object) -> None:
    _record(kind, target)
    raise NetworkBlocked(f"alphacut network guard: {kind} to {target!r} is not allowed")


def _install() -> None:
    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    real_getaddrinfo, real_create_connection = socket.getaddrinfo, socket.create_connection
    real_gethostbyname, real_gethostbyname_ex = socket.gethostbyname, socket.gethostbyname_ex

    def connect(self, address):  # type: ignore[no-untyped-def]
        if not _allowed_address(address):
            _block("connect", address)
        return real_connect(self, address)

    def connect_ex(self, address):  # type: ignore[no-untyped-def]
        if not _allowed_address(address):
            _block("connect_ex", address)
        return real_connect_ex(self, address)

    def sendto(self, data, *args):  # type: ignore[no-untyped-def]
        address = args[-1] if args else None
        if not _allowed_address(address):
            _block("sendto", address)
        return real_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not _is_loopback_host(host):
            _block("getaddrinfo", host)
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not _allowed_address(address):
            _block("create_connection", address)
        return real_create_connection(address, *args, **kwargs)

    def gethostbyname(host):  # type: ignore[no-untyped-def]
        if not _is_loopback_host(host):
            _block("gethostbyname", host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host):  # type: ignore[no-untyped-def]
        if not _is_loopback_host(host):
            _block("gethostbyname_ex", host)
        return real_gethostbyname_ex(host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.create_connection = create_connection
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex

    def audit(event: str, args: tuple) -> None:
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            if not _allowed_address(args[1] if len(args) > 1 else None):
                _block(event, args[1] if len(args) > 1 else None)
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            if not _is_loopback_host(args[0] if args else None):
                _block(event, args[0] if args else None)

    sys.addaudithook(audit)
    with open(_LOG, "a") as fh:  # type: ignore[arg-type]
        fh.write(json.dumps({"event": "installed", "pid": os.getpid(), "argv": sys.argv[:3]}) + "\n")


if _LOG:
    _install()
