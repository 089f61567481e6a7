"""What makes a local server safe to run: token, Host and Origin checks, CSP, body limits.

A pure ASGI middleware in front of the whole app, so nothing (static files, API, SSE, the
OpenAPI document) is reachable without passing it. Checks run in this order:

1. **Host** must be a name or address this server bound (or an IP literal when it was
   explicitly opened to the network). A DNS-rebinding page has a *name* of its own in Host,
   so it is refused before it learns anything.
2. **Token**: a random secret per launch (or a stable one for integrations: ``tokens.py``).
   It arrives once in the URL the CLI opens (``/?token=...``); the server answers with a
   redirect that drops it from the address bar and sets it as an HttpOnly, SameSite=Strict
   cookie. API clients (every path under ``/api/``, any method) send it instead as
   ``Authorization: Bearer <token>``, ``X-Api-Key: <token>`` or ``?token=<token>``: accepted
   as it is, no redirect, no cookie (rembg's integrations can add one of the three and nothing
   else). Compared in constant time; a wrong one is 401 whichever way it came.
3. **Origin**: a state-changing request (anything but GET/HEAD) authenticated by the cookie must
   carry an Origin equal to this server's own origin (cross-site requests, CSRF). A request
   that carries the token itself (header or query) cannot be forged by another page (it would
   have to know the secret; custom headers also need a CORS preflight, which this server never
   grants: no CORS headers at all), so Origin is then checked only when sent.
4. **Body size**: a request body over the limit is refused (by Content-Length up front, or
   counted as it streams) with 413.
5. **Body pace**: a body that stalls (no bytes for ``body_idle_timeout_s``) or trickles (slower
   than ``body_min_rate`` bytes/s once ``body_grace_s`` has passed) is cut off with 408, so a
   slow client cannot hold a request open for ever. Both refusals close the connection.
   (A client that never finishes its request *head* is cut off by ``run.guarded_h11``.)

Every response carries a strict Content-Security-Policy (nothing from any other origin, no
inline script), ``nosniff``, no framing and no referrer.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; media-src 'self' blob:; worker-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD"})


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """'[::1]:8000' → ('::1', 8000); 'localhost' → ('localhost', None). Lowercased."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return value, None
        host, rest = value[1:end], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    try:
        return host, int(port) if port else None
    except ValueError:
        return host, -1


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@dataclass
class SecurityPolicy:
    """Who may talk to this server. ``port`` is filled in once the socket is bound."""

    token: str = field(default_factory=new_token)
    bind_host: str = "127.0.0.1"
    port: int | None = None
    #: extra host names accepted in the Host header (only with an explicit --allow-remote)
    extra_hosts: frozenset[str] = frozenset()
    allow_remote: bool = False
    max_body_bytes: int = 256 * 1024 * 1024
    #: a body with no new bytes for this long is cut off (408)
    body_idle_timeout_s: float = 30.0
    #: ... and so is one slower on average than this many bytes/s once the grace time is over
    body_min_rate: float = 8 * 1024
    body_grace_s: float = 30.0
    #: paths that never need the token (the login hint page's stylesheet and icon)
    public_paths: frozenset[str] = frozenset({"/favicon.ico", "/static/locked.css"})

    @property
    def cookie_name(self) -> str:
        # cookies are not port-scoped: two servers on localhost must not clobber each other's
        return f"alphacut_{self.port or 0}"

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host, port = split_host(host_header)
        if self.port is not None and port not in (None, self.port):
            return False
        if port is None and self.port not in (None, 80):
            return False
        if host in LOOPBACK_NAMES and (is_loopback(self.bind_host) or self.allow_remote):
            return True
        if host == self.bind_host.lower().strip("[]"):
            return True
        if self.allow_remote:
            # IP literals cannot be rebound; names must be listed explicitly
            return _is_ip_literal(host) or host in self.extra_hosts
        return False

    def token_ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token.encode())  # type: ignore[union-attr]

    def url(self, host: str | None = None) -> str:
        h = host or ("127.0.0.1" if self.bind_host in ("0.0.0.0", "::", "") else self.bind_host)
        if ":" in h:
            h = f"[{h}]"
        return f"http://{h}:{self.port}/?token={self.token}"


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


class BodyRefused(Exception):
    """The request body broke a limit: answered with ``status`` (413 or 408) instead of the app's reply."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, policy: SecurityPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            return
        p = self.policy
        headers = _headers(scope)
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "/")

        if not p.host_allowed(headers.get("host")):
            await _json(send, 400, "bad-host", "this server only answers to the address it was started on")
            return

        cookie_token = None
        if "cookie" in headers:
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # a malformed cookie header is just "no cookie"
                jar = SimpleCookie()
            if p.cookie_name in jar:
                cookie_token = jar[p.cookie_name].value
        bearer = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            bearer = auth[7:].strip()
        api_key = headers.get("x-api-key")

        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        qtoken = next((v for k, v in query if k == "token"), None)
        is_api = path.startswith("/api/")

        # the token carried by the request itself (not the browser's cookie): every one given must be right
        carried = [t for t in (bearer, api_key, qtoken if is_api else None) if t is not None]
        if carried and not all(p.token_ok(t) for t in carried):
            await _json(send, 401, "unauthorized", "wrong token")
            return
        authed_by_header = bool(carried)

        if qtoken is not None and not is_api and method in SAFE_METHODS:
            if p.token_ok(qtoken):
                # trade the token in the URL for a cookie, and drop it from the address bar
                rest = urlencode([(k, v) for k, v in query if k != "token"])
                location = path + (f"?{rest}" if rest else "")
                cookie = (f"{p.cookie_name}={p.token}; Path=/; HttpOnly; SameSite=Strict")
                await _send(send, 303, b"", [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                                             (b"cache-control", b"no-store")])
                return
            await _json(send, 401, "unauthorized", "the token in this link is not valid for this server "
                        "(each launch has a new one: use the link printed in the terminal)")
            return

        authed_by_cookie = p.token_ok(cookie_token)
        if not (authed_by_cookie or authed_by_header) and path not in p.public_paths:
            if method in SAFE_METHODS and "text/html" in headers.get("accept", "") and not path.startswith("/api/"):
                await _send(send, 401, LOCKED_PAGE, [(b"content-type", b"text/html; charset=utf-8")])
            else:
                await _json(send, 401, "unauthorized", "a token is needed: open the link printed by `alphacut serve`, "
                            "or send Authorization: Bearer <token>, X-Api-Key: <token> or ?token=<token>")
            return

        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if origin is not None or not authed_by_header:
                if not origin or not self._same_origin(origin, headers.get("host", "")):
                    await _json(send, 403, "cross-origin", "cross-site requests are refused")
                    return
            length = headers.get("content-length")
            if length is not None:
                try:
                    too_big = int(length) > p.max_body_bytes
                except ValueError:
                    await _json(send, 400, "bad-request", "invalid Content-Length")
                    return
                if too_big:
                    await _json(send, 413, "too-large", f"the upload is over the limit of {_mb(p.max_body_bytes)}",
                                close=True)
                    return

        started = False
        seen = 0
        refused: BodyRefused | None = None
        body_done = False
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def limited_receive() -> Message:
            nonlocal seen, refused, body_done
            if body_done or refused is not None:
                # after the body: only http.disconnect is left to wait for (streaming responses)
                return await receive()
            # the body must keep coming: not idle too long, not slower than the minimum rate
            deadline = t0 + p.body_grace_s + seen / p.body_min_rate
            wait = min(p.body_idle_timeout_s, deadline - loop.time())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.001))
            except asyncio.TimeoutError:
                refused = BodyRefused(408, "too-slow", "the upload stalled or came in too slowly; cut off")
                raise refused from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > p.max_body_bytes:
                    refused = BodyRefused(413, "too-large", f"the upload is over the limit of {_mb(p.max_body_bytes)}")
                    raise refused
            else:
                body_done = True
            return message

        async def secured_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                # the app turned the aborted body into some error of its own: answer ours instead
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _json(send, refused.status, refused.code, refused.reason, close=True)
                return
            if message["type"] == "http.response.start":
                started = True
                hdrs = [h for h in message.get("headers", []) if h[0].lower() not in {k for k, _ in SECURITY_HEADERS}]
                hdrs.extend(SECURITY_HEADERS)
                if path.startswith("/api/") and not any(h[0].lower() == b"cache-control" for h in hdrs):
                    hdrs.append((b"cache-control", b"no-store"))
                message = {**message, "headers": hdrs}
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except BodyRefused as err:
            if not started:
                await _json(send, err.status, err.code, err.reason, close=True)

    def _same_origin(self, origin: str, host_header: str) -> bool:
        if origin == "null":
            return False
        scheme, _, rest = origin.partition("://")
        if scheme != "http" or not rest:
            return False
        return rest.lower().rstrip("/") == host_header.lower() and self.policy.host_allowed(rest)


def _mb(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.0f} MB" if mb >= 10 else f"{mb:.1f} MB"


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    hdrs = list(headers) + list(SECURITY_HEADERS) + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, code: str, message: str, *, close: bool = False) -> None:
    """``close``: end the connection after the answer (the client may still be sending a body
    we refused; without it the server would keep reading and discarding it)."""
    body = json.dumps({"code": code, "reason": message}).encode()
    hdrs = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    if close:
        hdrs.append((b"connection", b"close"))
    await _send(send, status, body, hdrs)


LOCKED_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>alphacut - locked</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/locked.css"></head>
<body><main><h1>alphacut</h1>
<p>This local app needs the link printed in the terminal by <code>alphacut serve</code>.
Each launch makes a new secret link, so other websites and other users on this computer
cannot use it.</p></main></body></html>
"""
