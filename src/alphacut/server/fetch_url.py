"""Fetching an image a request names (``GET /api/remove?url=``), only when the server allows it.

Off unless ``alphacut serve --rembg-api --rembg-fetch-urls``: a server that fetches any URL it
is handed is a proxy into the network it sits in (SSRF). When on, rembg 2.0.86's own rules
are the floor, and this adds to them:

- only ``http``/``https``; no user:password in the URL;
- the host name is resolved **once**; every address it resolves to must be public (not
  private, loopback, link-local, reserved, multicast, unspecified, shared/CGNAT, nor an IPv6
  transition address wrapping one of those), else the request is refused;
- the connection goes to the address that was checked (DNS pinned: the host name is sent as
  Host and, for https, as the TLS server name, so certificates are still checked against it),
  so a second lookup cannot be rebound to an internal address;
- redirects are followed by hand, at most ``max_redirects``, each target checked the same way;
- the body is counted as it streams and cut off past ``max_bytes``; the whole fetch has a
  deadline; no proxy from the environment is used (it would see the request and resolve the
  name itself).

Hand-rolled on top of httpx because no client library pins a checked address per hop; httpx
does the HTTP and TLS (``sni_hostname`` keeps certificate checks on the real name).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union
from urllib.parse import urljoin, urlsplit

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
#: ``resolve(host, port) -> [address, ...]``; socket.getaddrinfo by default
Resolver = Callable[[str, int], list[str]]

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class FetchRefused(Exception):
    """The URL may not or could not be fetched; ``status`` is the HTTP answer (400, 413, 502, 504)."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


def embedded_ipv4(ip: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 transition address carries (mapped, 6to4, Teredo, NAT64), or None."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """Whether a server may connect to ``ip`` on a user's behalf: globally routable, unicast,
    and, for a transition address, what it wraps too."""

    def ok(a: IPAddress) -> bool:
        if (a.is_private or a.is_loopback or a.is_link_local or a.is_reserved or a.is_multicast
                or a.is_unspecified or not a.is_global):
            return False
        return not (isinstance(a, ipaddress.IPv4Address) and a in _CGNAT)

    inner = embedded_ipv4(ip)
    return ok(ip) and (inner is None or ok(inner))


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchRefused(400, "bad-url", f"cannot resolve {host!r} ({exc})") from None
    return list(dict.fromkeys(str(i[4][0]) for i in infos))


@dataclass
class UrlFetcher:
    """One fetch policy. ``allowed`` decides which addresses may be connected to (``is_public``;
    tests that serve images on loopback pass their own)."""

    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5
    timeout_s: float = 20.0
    resolver: Resolver = system_resolver
    allowed: Callable[[IPAddress], bool] = is_public

    def check(self, url: str) -> tuple[str, int, str]:
        """(host, port, address to connect to) for ``url``, or FetchRefused."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchRefused(400, "bad-url", f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https"):
            raise FetchRefused(400, "bad-url", "only http and https URLs can be fetched")
        if not parts.hostname:
            raise FetchRefused(400, "bad-url", "the URL has no host name")
        if parts.username is not None or parts.password is not None:
            raise FetchRefused(400, "bad-url", "URLs with a user name or password are not fetched")
        host = parts.hostname
        port = port or (443 if parts.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        addresses = [str(literal)] if literal is not None else self.resolver(host, port)
        if not addresses:
            raise FetchRefused(400, "bad-url", f"{host!r} has no address")
        for a in addresses:
            if not self.allowed(ipaddress.ip_address(a.split("%", 1)[0])):
                raise FetchRefused(400, "address-refused",
                                   f"{host!r} points to a private, loopback or otherwise internal address; "
                                   "only public addresses are fetched")
        return host, port, addresses[0]

    def fetch(self, url: str) -> bytes:
        """The body at ``url`` (after at most ``max_redirects`` checked redirects)."""
        import httpx

        deadline = time.monotonic() + self.timeout_s
        current = url
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=self.timeout_s) as client:
            for _ in range(self.max_redirects + 1):
                host, port, address = self.check(current)
                parts = urlsplit(current)
                netloc = f"[{address}]" if ":" in address else address
                pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
                default_port = 443 if parts.scheme == "https" else 80
                host_header = host if port == default_port else f"{host}:{port}"
                if ":" in host and not host.startswith("["):
                    host_header = f"[{host}]" if port == default_port else f"[{host}]:{port}"
                ext = {"sni_hostname": host} if parts.scheme == "https" else {}
                try:
                    with client.stream("GET", pinned, headers={"Host": host_header, "Accept": "image/*"},
                                       extensions=ext) as resp:
                        if resp.status_code in (301, 302, 303, 307, 308):
                            location = resp.headers.get("location")
                            if not location:
                                raise FetchRefused(502, "fetch-failed", "a redirect without a Location")
                            current = urljoin(current, location)
                            continue
                        if resp.status_code != 200:
                            raise FetchRefused(502, "fetch-failed", f"the URL answered HTTP {resp.status_code}")
                        declared = resp.headers.get("content-length")
                        if declared and declared.isdigit() and int(declared) > self.max_bytes:
                            raise FetchRefused(413, "too-large", f"the image at the URL is over {self.max_bytes} bytes")
                        chunks, seen = [], 0
                        for chunk in resp.iter_bytes():
                            seen += len(chunk)
                            if seen > self.max_bytes:
                                raise FetchRefused(413, "too-large", f"the image at the URL is over {self.max_bytes} bytes")
                            if time.monotonic() > deadline:
                                raise FetchRefused(504, "fetch-timeout", f"fetching the URL took over {self.timeout_s:.0f} s")
                            chunks.append(chunk)
                        return b"".join(chunks)
                except httpx.TimeoutException:
                    raise FetchRefused(504, "fetch-timeout", f"fetching the URL took over {self.timeout_s:.0f} s") from None
                except httpx.HTTPError as exc:
                    raise FetchRefused(502, "fetch-failed", f"fetching the URL failed ({type(exc).__name__})") from None
        raise FetchRefused(400, "too-many-redirects", f"more than {self.max_redirects} redirects")
