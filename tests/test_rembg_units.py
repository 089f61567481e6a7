"""The rembg API's parts that need no model: address rules and pinned fetches (against real
HTTP servers on loopback), model-name mapping, tokens and their redaction."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from alphacut.errors import UsageError
from alphacut.server.fetch_url import FetchRefused, UrlFetcher, is_public
from alphacut.server.rembg_models import CANDIDATES, NON_COMMERCIAL, REFUSED, ModelChoiceError, available, choose
from alphacut.server.tokens import ENV_VAR, RedactTokens, redact, stable_token

# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("addr", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1",
    "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "2002:c0a8:0101::", "64:ff9b::a00:1", "2001:0:4136:e378:8000:63bf:f5ff:fffe", "198.18.0.1",
])
def test_internal_addresses_are_refused(addr):
    assert not is_public(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(addr):
    assert is_public(ipaddress.ip_address(addr))


@pytest.mark.parametrize("url, code", [
    ("ftp://example.com/a.png", "bad-url"),
    ("file:///etc/passwd", "bad-url"),
    ("http://user:pw@example.com/a.png", "bad-url"),
    ("http:///a.png", "bad-url"),
    ("http://127.0.0.1/a.png", "address-refused"),
    ("http://[::1]:8080/a.png", "address-refused"),
    ("http://169.254.169.254/latest/meta-data/", "address-refused"),
    ("http://localhost/a.png", "address-refused"),
    ("http://0x7f000001/a.png", None),  # an odd spelling: resolved by the system, refused by address
])
def test_default_policy_refuses_before_connecting(url, code):
    with pytest.raises(FetchRefused) as e:
        UrlFetcher().check(url)
    assert e.value.status == 400
    if code:
        assert e.value.code == code


def test_a_name_with_any_internal_address_is_refused():
    """DNS answers with one public and one private address: refused (a rebinding setup)."""
    f = UrlFetcher(resolver=lambda host, port: ["93.184.215.14", "10.0.0.5"])
    with pytest.raises(FetchRefused) as e:
        f.check("http://mixed.example/a.png")
    assert e.value.code == "address-refused"


# --- pinned fetches against real loopback servers ----------------------------------------------


class _Server:
    """A loopback HTTP server whose handler is set per test; records each request's Host."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.hosts: list[str] = []
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hosts.append(self.headers.get("Host", ""))
                status, headers, body = outer.routes.get(self.path, (404, {}, b"no"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", headers.get("Content-Length", str(len(body))))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.srv = ThreadingHTTPServer((address, 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


def _loopback_policy(calls: list[str] | None = None) -> UrlFetcher:
    """Allows exactly 127.0.0.1 (the test server) and resolves every name to it, counting lookups."""

    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return ["127.0.0.2"] if host.startswith("internal") else ["127.0.0.1"]

    return UrlFetcher(resolver=resolve, allowed=lambda ip: str(ip) == "127.0.0.1", max_bytes=10_000)


def test_fetch_is_pinned_to_the_checked_address(server):
    server.routes["/a.png"] = (200, {"Content-Type": "image/png"}, b"PNGDATA")
    calls: list[str] = []
    body = _loopback_policy(calls).fetch(f"http://photos.example:{server.port}/a.png")
    assert body == b"PNGDATA"
    assert calls == ["photos.example"]  # resolved once; the connection used that answer
    assert server.hosts == [f"photos.example:{server.port}"]  # the name still went as Host


def test_redirects_are_checked_hop_by_hop(server):
    server.routes["/r1"] = (302, {"Location": "/r2"}, b"")
    server.routes["/r2"] = (301, {"Location": f"http://other.example:{server.port}/a.png"}, b"")
    server.routes["/a.png"] = (200, {}, b"OK")
    calls: list[str] = []
    assert _loopback_policy(calls).fetch(f"http://photos.example:{server.port}/r1") == b"OK"
    assert calls == ["photos.example", "photos.example", "other.example"]
    server.routes["/evil"] = (302, {"Location": f"http://internal.example:{server.port}/a.png"}, b"")
    with pytest.raises(FetchRefused) as e:
        _loopback_policy().fetch(f"http://photos.example:{server.port}/evil")
    assert e.value.code == "address-refused"


def test_redirect_loop_and_missing_location(server):
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(FetchRefused) as e:
        _loopback_policy().fetch(f"http://photos.example:{server.port}/loop")
    assert e.value.code == "too-many-redirects"
    server.routes["/noloc"] = (302, {}, b"")
    with pytest.raises(FetchRefused) as e:
        _loopback_policy().fetch(f"http://photos.example:{server.port}/noloc")
    assert e.value.status == 502


def test_size_limits_declared_and_streamed(server):
    server.routes["/big"] = (200, {}, b"x" * 20_000)
    with pytest.raises(FetchRefused) as e:
        _loopback_policy().fetch(f"http://photos.example:{server.port}/big")
    assert e.value.status == 413
    # a server that lies about its length (says 100, sends more): the count is what matters
    server.routes["/liar"] = (200, {"Content-Length": "100"}, b"y" * 100)
    assert len(_loopback_policy().fetch(f"http://photos.example:{server.port}/liar")) == 100
    server.routes["/404"] = (404, {}, b"")
    with pytest.raises(FetchRefused) as e:
        _loopback_policy().fetch(f"http://photos.example:{server.port}/404")
    assert e.value.status == 502


def test_no_proxy_from_the_environment(server, monkeypatch):
    """HTTP_PROXY would see the request and resolve the name itself: it is not used."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    server.routes["/a.png"] = (200, {}, b"direct")
    assert _loopback_policy().fetch(f"http://photos.example:{server.port}/a.png") == b"direct"


# --- model names -------------------------------------------------------------------------------


def _installed(*names: str):
    return lambda n: n in names


def test_model_mapping():
    inst = _installed("isnet", "u2netp")
    assert choose("u2netp", "isnet", inst, False).model == "u2netp"
    c = choose("u2net", "isnet", inst, False)
    assert (c.model, c.how) == ("isnet", "mapped")
    assert choose("u2net_human_seg", "isnet", _installed("isnet", "modnet"), False).model == "modnet"
    assert choose("u2net_human_seg", "isnet", inst, False).model == "isnet"  # no MODNet: a general model
    assert choose("birefnet-general-fp16", "isnet", _installed("birefnet-general", "isnet"), False).model == "birefnet-general"
    assert choose(None, "u2netp", inst, False).how == "default"
    assert choose("isnet", "u2netp", inst, False).how == "same"  # alphacut's own names work too


def test_model_refusals_list_what_is_available():
    inst = _installed("isnet", "u2netp")
    with pytest.raises(ModelChoiceError) as e:
        choose("bria-rmbg", "isnet", inst, False)
    assert e.value.status == 403 and "--accept-license" in e.value.reason and "u2netp" in e.value.reason
    with pytest.raises(ModelChoiceError) as e:
        choose("bria-rmbg", "isnet", inst, True)  # accepted, but not installed
    assert e.value.status == 409 and "rmbg-2.0" in e.value.reason
    assert choose("bria-rmbg", "isnet", _installed("rmbg-1.4"), True).model == "rmbg-1.4"
    with pytest.raises(ModelChoiceError) as e:
        choose("nope", "isnet", inst, False)
    assert e.value.status == 400 and "isnet" in e.value.reason
    for name in REFUSED:
        with pytest.raises(ModelChoiceError) as e:
            choose(name, "isnet", inst, True)
        assert e.value.code == "model-refused"
    with pytest.raises(ModelChoiceError) as e:
        choose("u2net", "isnet", _installed(), False)
    assert e.value.status == 409 and "none" in e.value.reason


def test_every_rembg_2_0_86_name_is_handled():
    """rembg 2.0.86's session names (rembg/sessions/__init__.py): each is mapped, licence-gated or refused."""
    rembg_names = {
        "birefnet-general", "birefnet-general-lite", "birefnet-general-fp16", "birefnet-portrait", "birefnet-dis",
        "birefnet-hrsod", "birefnet-cod", "birefnet-massive", "isnet-anime", "dis_custom", "isnet-general-use",
        "sam", "silueta", "u2net_cloth_seg", "u2net_custom", "u2net_human_seg", "u2net", "u2netp", "bria-rmbg",
        "ben_custom", "withoutbg", "atlascloud",
    }
    handled = set(CANDIDATES) | set(NON_COMMERCIAL) | set(REFUSED)
    assert rembg_names == handled
    assert available(_installed("isnet"), False)[:3] == ["birefnet-dis", "birefnet-general", "birefnet-general-fp16"]


# --- tokens ------------------------------------------------------------------------------------


def test_stable_token_sources(tmp_path):
    good = "a" * 12 + "-B_c.d~e+f/g=" + "h" * 8
    f = tmp_path / "tok"
    f.write_text(good + "\n")
    os.chmod(f, 0o600)
    assert stable_token(f, environ={}).token == good
    assert stable_token(f, environ={ENV_VAR: "x" * 30}).source == str(f)  # the file wins
    assert stable_token(None, environ={ENV_VAR: good}).source == ENV_VAR
    assert stable_token(None, environ={}) is None
    for bad, why in [("short", "at least"), ("has space in it and is long enough", "characters"), ("", "empty"),
                     ("tok\"en-with-quote-long-enough", "characters")]:
        with pytest.raises(UsageError) as e:
            stable_token(None, environ={ENV_VAR: bad})
        assert why in str(e.value) and (not bad or bad not in str(e.value))
    with pytest.raises(UsageError):
        stable_token(tmp_path / "missing", environ={})


def test_world_readable_token_file_warns(tmp_path, caplog):
    f = tmp_path / "tok"
    f.write_text("z" * 32)
    os.chmod(f, 0o644)
    with caplog.at_level(logging.WARNING, logger="t"):
        stable_token(f, environ={}, warn=logging.getLogger("t"))
    assert "readable by other users" in caplog.text and "z" * 32 not in caplog.text


def test_redaction():
    t = "s3cr3t-" + "q" * 24
    assert redact(f'"GET /api/remove?url=x&token={t} HTTP/1.1"') == '"GET /api/remove?url=x&token=[redacted] HTTP/1.1"'
    assert redact(f"/?token={t}&a=1") == "/?token=[redacted]&a=1"
    assert redact(f"Bearer {t}", (t,)) == "Bearer [redacted]"
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s "%s"', ("1.2.3.4", f"/x?token={t}"), None)
    RedactTokens((t,)).filter(rec)
    assert t not in rec.getMessage()
