"""``serve()``: bind loopback on a free port, print the link with the token, open the browser."""

from __future__ import annotations

import socket
import sys
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

    import uvicorn

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
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=2, access_log=False)
    server = make_server(config, app)
    if server_hook is not None:  # tests (and embedders) get the server to stop it
        server_hook(server)

    def announce() -> None:
        import time

        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            print_fn(f"alphacut is running at {url}")
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


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience
    import argparse

    from .cli_serve import register

    parser = argparse.ArgumentParser(prog="alphacut")
    sub = parser.add_subparsers()
    register(sub)
    args = parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
