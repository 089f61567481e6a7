"""The local server's security model, tested over real HTTP on 127.0.0.1."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.server import bomb_png, real_engine_available, sample_png, start_server  # noqa: E402

from alphacut.server.security import SecurityPolicy, split_host  # noqa: E402


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """Small limits so the limit tests are quick: 300 KB uploads, 4 megapixels, a queue of 2."""
    live, stop = start_server(tmp_path_factory.mktemp("sec"), max_upload_bytes=300_000, max_pixels=4_000_000,
                              max_queue=2, retry_after_s=7)
    try:
        yield live
    finally:
        stop()


def _raw(live, method="GET", path="/api/jobs", **kw):
    return httpx.request(method, live.base + path, timeout=30, **kw)


def test_no_token(strict_server):
    r = _raw(strict_server)
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = _raw(strict_server, path="/", headers={"accept": "text/html"})
    assert r.status_code == 401 and "link printed in the terminal" in r.text
    for path in ("/api/openapi.json", "/api/events", "/static/js/main.js", "/api/capabilities"):
        assert _raw(strict_server, path=path).status_code == 401, path


def test_wrong_token(strict_server):
    r = _raw(strict_server, headers={"Authorization": "Bearer not-the-token"})
    assert r.status_code == 401
    r = _raw(strict_server, path="/?token=wrong")
    assert r.status_code == 401 and "set-cookie" not in r.headers
    r = _raw(strict_server, headers={"cookie": f"alphacut_{strict_server.port}=wrong"})
    assert r.status_code == 401
    # another server's cookie name (another port) does not count
    r = _raw(strict_server, headers={"cookie": f"alphacut_1={strict_server.token}"})
    assert r.status_code == 401


def test_token_link_becomes_an_httponly_strict_cookie(strict_server):
    r = _raw(strict_server, path=f"/?token={strict_server.token}")
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"alphacut_{strict_server.port}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0]
    assert _raw(strict_server, headers={"cookie": value}).status_code == 200
    assert _raw(strict_server, path="/", headers={"cookie": value}).status_code == 200


def test_wrong_host_is_refused_even_with_the_token(strict_server):
    auth = {"Authorization": f"Bearer {strict_server.token}"}
    for host in ("evil.example", f"evil.example:{strict_server.port}", f"127.0.0.1:{strict_server.port + 1}",
                 f"attacker.127.0.0.1.nip.io:{strict_server.port}", ""):
        r = _raw(strict_server, headers={**auth, "host": host})
        assert r.status_code == 400 and r.json()["code"] == "bad-host", host
    for host in (f"127.0.0.1:{strict_server.port}", f"localhost:{strict_server.port}"):
        assert _raw(strict_server, headers={**auth, "host": host}).status_code == 200, host


def test_cross_origin_post_is_refused(strict_server):
    live = strict_server
    cookie = {"cookie": f"alphacut_{live.port}={live.token}"}
    files = {"file": ("a.png", sample_png(1), "image/png")}
    # a page on another site posting with the (cookie) session
    r = _raw(live, "POST", headers={**cookie, "origin": "http://evil.example"}, files=files)
    assert r.status_code == 403 and r.json()["code"] == "cross-origin"
    r = _raw(live, "POST", headers={**cookie, "origin": "null"}, files=files)
    assert r.status_code == 403
    r = _raw(live, "POST", headers={**cookie, "origin": f"http://127.0.0.1:{live.port + 1}"}, files=files)
    assert r.status_code == 403
    # cookie without any Origin: refused (browsers always send one on POST)
    r = _raw(live, "POST", headers=cookie, files=files)
    assert r.status_code == 403
    # a Bearer client sending a foreign Origin is refused too
    r = _raw(live, "POST", headers={"Authorization": f"Bearer {live.token}", "origin": "http://evil.example"}, files=files)
    assert r.status_code == 403
    # DELETE is state-changing too
    r = _raw(live, "DELETE", path="/api/models/u2netp", headers={**cookie, "origin": "http://evil.example"})
    assert r.status_code == 403
    # same origin is fine
    r = _raw(live, "POST", headers={**cookie, "origin": live.base}, files=files)
    assert r.status_code in (201, 429), r.text
    # CORS is never granted
    r = _raw(live, "OPTIONS", headers={"origin": "http://evil.example", "access-control-request-method": "POST"})
    assert "access-control-allow-origin" not in r.headers


def test_strict_csp_and_headers(strict_server):
    auth = {"Authorization": f"Bearer {strict_server.token}"}
    for path in ("/", "/static/app.css", "/api/jobs"):
        r = _raw(strict_server, path=path, headers=auth)
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert _raw(strict_server, path="/api/jobs", headers=auth).headers["cache-control"] == "no-store"
    # also on refusals
    assert "content-security-policy" in _raw(strict_server).headers


def test_ui_loads_nothing_from_elsewhere():
    web = Path(__file__).resolve().parent.parent / "src" / "alphacut" / "web"
    for f in web.rglob("*"):
        if f.suffix in (".html", ".js", ".css"):
            text = f.read_text("utf-8")
            for bad in ("http://", "https://", "//cdn", "fonts.googleapis", "<script>", " onclick=", "style=\""):
                if bad in ("http://", "https://") and "w3.org/2000/svg" in text:
                    text = text.replace("http://www.w3.org/2000/svg", "")
                assert bad not in text, (f.name, bad)


def test_oversized_upload(strict_server):
    auth = {"Authorization": f"Bearer {strict_server.token}"}
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2_000_000
    r = _raw(strict_server, "POST", headers=auth, files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and r.json()["code"] == "too-large"

    def chunks():  # no Content-Length: counted as it streams
        yield (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
               b"Content-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n")
        for _ in range(40):
            yield b"x" * 65536

    r = _raw(strict_server, "POST", headers={**auth, "content-type": "multipart/form-data; boundary=zzz"}, content=chunks())
    assert r.status_code == 413


def test_decompression_bomb_is_refused_before_decoding(strict_server):
    auth = {"Authorization": f"Bearer {strict_server.token}"}
    bomb = bomb_png(40000)
    assert len(bomb) < 10_000
    before = len(strict_server.state.uploads)
    r = _raw(strict_server, "POST", headers=auth, files={"file": ("bomb.png", bomb, "image/png")})
    assert r.status_code == 413 and r.json()["code"] == "too-large"
    assert "megapixels" in r.json()["reason"]
    assert len(strict_server.state.uploads) == before
    assert not any(strict_server.state.uploads_dir.iterdir()) or all(
        p.stem in strict_server.state.uploads or p.name.split(".")[0] for p in strict_server.state.uploads_dir.iterdir())


def test_unsupported_type_is_checked_by_signature(strict_server):
    auth = {"Authorization": f"Bearer {strict_server.token}"}
    r = _raw(strict_server, "POST", headers=auth, files={"file": ("photo.jpg", b"%!PS-Adobe-3.0 not an image", "image/jpeg")})
    assert r.status_code == 415 and r.json()["code"] == "unsupported-format"
    # a PNG named .jpg is fine
    r = _raw(strict_server, "POST", headers=auth, files={"file": ("mislabelled.jpg", sample_png(2), "image/jpeg")})
    assert r.status_code in (201, 429)


def test_queue_full_answers_429_with_retry_after(strict_server):
    live = strict_server
    auth = {"Authorization": f"Bearer {live.token}"}
    engine = live.engine
    gate = getattr(engine, "gate", None)
    if gate is not None:
        # wait for earlier jobs, then hold the (test-only) workers so the queue fills deterministically
        end = time.monotonic() + 60
        while any(j.stage not in ("done", "failed", "cancelled") for j in engine.jobs()) and time.monotonic() < end:
            time.sleep(0.05)
        gate.clear()
    codes = []
    try:
        for i in range(8):
            r = _raw(live, "POST", headers=auth, files={"file": (f"q{i}.png", sample_png(i), "image/png")})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.headers["retry-after"] == "7"
                assert r.json()["code"] == "queue-full"
                break
    finally:
        if gate is not None:
            gate.set()
    assert 429 in codes, codes


def test_shutting_down_answers_503(strict_server, monkeypatch):
    monkeypatch.setattr(strict_server.state, "closing", True)
    r = _raw(strict_server, "POST", headers={"Authorization": f"Bearer {strict_server.token}"},
             files={"file": ("a.png", sample_png(1), "image/png")})
    assert r.status_code == 503 and r.headers["retry-after"] == "7"


def test_temp_files_removed_on_exit(tmp_path):
    live, stop = start_server(tmp_path)
    with live.client() as c:
        jid = c.post("/api/jobs", files={"file": ("t.png", sample_png(1), "image/png")}).json()["id"]
        live.wait_done(c, jid)
    work = live.state.work_dir
    assert any((work / "uploads").iterdir())
    stop()
    assert not (work / "uploads").exists() and not (work / "artifacts").exists()


def test_own_temp_dir_is_removed(tmp_path):
    from alphacut.server.security import SecurityPolicy
    from alphacut.server.state import ServerSettings, ServerState

    state = ServerState(ServerSettings(), SecurityPolicy())
    assert state.work_dir.exists() and "alphacut-serve-" in state.work_dir.name
    state.close()
    assert not state.work_dir.exists()


# --- policy unit checks -------------------------------------------------------------------------


def test_host_policy_units():
    p = SecurityPolicy(port=8123)
    assert p.host_allowed("127.0.0.1:8123") and p.host_allowed("localhost:8123") and p.host_allowed("[::1]:8123")
    assert not p.host_allowed("127.0.0.1:8124") and not p.host_allowed("example.com:8123")
    assert not p.host_allowed(None) and not p.host_allowed("127.0.0.1")
    remote = SecurityPolicy(bind_host="0.0.0.0", port=80, allow_remote=True, extra_hosts=frozenset({"studio.lan"}))
    assert remote.host_allowed("192.168.1.5") and remote.host_allowed("studio.lan")
    assert not remote.host_allowed("evil.example")  # names must be listed: DNS rebinding
    assert split_host("[::1]:80") == ("::1", 80) and split_host("LocalHost") == ("localhost", None)
    assert SecurityPolicy().token != SecurityPolicy().token  # per launch
    assert len(SecurityPolicy().token) >= 40


def test_engine_in_use_is_reported():
    # informative: which engine the server tests ran against
    assert isinstance(real_engine_available(), bool)
