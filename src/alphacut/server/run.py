"""``serve()``: bind loopback on a free port, print the link with the token, open the browser.

Started by ``alphacut serve`` (``cli.serve``), the one entry point, through ``launch.py``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import webbrowser
from typing import Any, Callable

from ..errors import UsageError
from .security import is_loopback
from .state import ServerSettings


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def guarded_h11(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol with a deadline on every request head, and a lingering close.

    uvicorn arms no timer before a connection's first request, nor while its headers trickle in,
    so a client that connects and never finishes a request head (slowloris) would hold its
    connection, and a file descriptor, for ever. Here each connection must complete a request
    head within ``header_timeout_s`` of connecting or of its previous response, or it is closed.
    (Bodies have their own pace limits in ``security.SecurityMiddleware``.)

    A body refused part-way (413 over the limit, 408 too slow) is answered and the connection
    closed while the client is still sending. Closing a socket with unread bytes in it makes the
    kernel send a reset, and a reset makes the client's kernel drop what it had received but not
    yet handed over: a client that reads the answer only once it has sent its body (httpx,
    requests, curl: the rembg API's users) then sees "connection reset" instead of our clear 413.
    (Chromium reads while it uploads, so the web app got the 413 either way.) So such a close
    lingers, as nginx's and Apache's do: the answer goes out, the sending side is shut (the
    client reads the answer, then end of stream), and whatever the client still sends is read
    and dropped until it stops, or for ``LINGER_S`` at most.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _linger_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # every close uvicorn makes (its request cycles hold this same object) goes through here
            self.transport = _LingeringTransport(transport, self)
            self._arm_head_timer()

        def client_still_sending(self) -> bool:
            return self.conn.their_state is h11.SEND_BODY

        def start_lingering(self, transport: Any) -> None:
            self._linger_timer = self.loop.call_later(LINGER_S, transport.close)
            self.flow.resume_reading()

        def data_received(self, data: bytes) -> None:
            if self._linger_timer is None:
                super().data_received(data)
            # lingering: the rest of a refused body is read and dropped

        def eof_received(self) -> bool | None:
            if self._linger_timer is not None:
                return False  # the client has stopped sending: asyncio closes the transport now
            return super().eof_received()

        def shutdown(self) -> None:
            if self._linger_timer is not None:  # the server is stopping: no more waiting on a drain
                self.transport.close_now()
                return
            super().shutdown()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in (self._head_timer, self._linger_timer):
                if timer is not None:
                    timer.cancel()
            self._head_timer = self._linger_timer = None
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = None
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _head_timeout(self) -> None:
            self._head_timer = None
            waiting_for_head = self.conn.their_state is h11.IDLE
            if waiting_for_head and (self.cycle is None or self.cycle.response_complete):
                if not self.transport.is_closing():
                    self.transport.close()

    return GuardedH11Protocol


#: the longest a refused upload is read and dropped after the answer, before the socket is closed
LINGER_S = 5.0


class _LingeringTransport:
    """The connection's transport, whose ``close`` lingers while the client is mid-body.

    A thin wrapper rather than a patched uvicorn: uvicorn closes the transport from several
    places (its request cycle, its timers), and all of them hold this object.
    """

    def __init__(self, transport: Any, protocol: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lingering = False

    def close(self) -> None:
        real = self._transport
        if self._lingering or real.is_closing():
            return
        if self._protocol.client_still_sending() and real.can_write_eof():
            self._lingering = True
            real.write_eof()  # the answer already written goes first, then end of stream
            self._protocol.start_lingering(real)
        else:
            real.close()

    def close_now(self) -> None:
        self._transport.close()

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def make_config(app: Any, settings: ServerSettings, **kw: Any) -> Any:
    """The uvicorn Config every server uses (the CLI's and the tests'): slow clients are cut off."""
    import uvicorn

    kw.setdefault("log_level", "warning")
    kw.setdefault("access_log", False)
    return uvicorn.Config(app, http=guarded_h11(settings.header_timeout_s), timeout_keep_alive=5, **kw)


def make_server(config: Any, app: Any) -> Any:
    """A uvicorn Server that ends open event streams first, so shutdown is quick and quiet."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            app.state.alphacut.broker.close()
            await super().shutdown(sockets)

    return _Server(config)


def check_host(host: str, allow_remote: bool) -> None:
    if not is_loopback(host) and not allow_remote:
        raise UsageError(f"{host} is not a loopback address; the app would be reachable from other machines. "
                         "Pass --allow-remote to do that on purpose (the token is still required).")


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True, *,
          settings: ServerSettings | None = None, allow_remote: bool = False,
          print_fn: Callable[[str], Any] = print, log_level: str = "warning",
          ready: threading.Event | None = None, server_hook: Callable[[Any], None] | None = None) -> int:
    """Run the web app until interrupted. Returns a process exit code."""
    from dataclasses import replace

    from .app import create_app

    settings = replace(settings or ServerSettings(), host=host, port=port, allow_remote=allow_remote)
    check_host(host, allow_remote)
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    settings = replace(settings, port=bound_port)
    app = create_app(settings)
    policy = app.state.policy
    policy.port = bound_port
    url = policy.url()
    config = make_config(app, settings, log_level=log_level, timeout_graceful_shutdown=2,
                         access_log=log_level in ("info", "debug", "trace"))  # tokens redacted: tokens.py
    server = make_server(config, app)
    if server_hook is not None:  # tests (and embedders) get the server to stop it
        server_hook(server)

    def announce() -> None:
        import time

        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            if settings.token:  # a stable token: the user has it; never print it (stdout is a container's log)
                print_fn(f"alphacut is running at {url.split('?token=')[0]} (token: the one you set)")
            else:
                print_fn(f"alphacut is running at {url}")
            if settings.rembg_api:
                print_fn(f"  rembg-compatible API: {url.split('?token=')[0]}api/remove")
            if not is_loopback(host):
                print_fn(f"  listening on {host}:{bound_port} (remote access on: keep this link secret)")
            print_fn("  press Ctrl+C to stop; temporary files are removed on exit")
            if open_browser:
                try:
                    webbrowser.open(url)
                except Exception:
                    pass
            if ready is not None:
                ready.set()

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
