"""The web server under load and abuse, over real HTTP on 127.0.0.1 with the real u2netp engine.

Every loop here is bounded in count and time. What each test shows:

- a burst of 200 concurrent uploads to a real ``alphacut serve`` process: every request gets a
  definite answer (201, or 429 + Retry-After when the queue is full), accepted jobs finish, the
  server's memory (server + workers) stays under a stated bound, and it answers promptly after;
- slow clients (idle connections, request heads or bodies trickled byte by byte, a body that
  stalls) are cut off while other clients are answered promptly;
- malformed and oversized bodies get a clear 4xx in the API's error shape and leave nothing;
- hostile file names never reach the file system and come back sanitised in downloads;
- token, Origin and Host are enforced on every route that reads or changes a job;
- one job's bytes are never served for another.
"""

from __future__ import annotations

import io
import json
import re
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from support.load import RssSampler, serve_process, tree_rss_mb, upload_burst, wait_all  # noqa: E402
from support.server import SHARED_HOME, sample_png, start_server  # noqa: E402

pytestmark = pytest.mark.slow

#: stated bound for the server process tree (uvicorn + FastAPI + one u2netp worker) under the burst
RSS_BOUND_MB = 1024
HEADER_TIMEOUT = 1.5
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Short slow-client limits so the cut-offs are quick; a 300 KB upload limit."""
    live, stop = start_server(tmp_path_factory.mktemp("abuse"), max_upload_bytes=300_000,
                              header_timeout_s=HEADER_TIMEOUT, body_timeout_s=BODY_TIMEOUT, body_min_rate=2000)
    try:
        yield live
    finally:
        stop()


def _auth(live) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.token}"}


def _uploads(live) -> set[str]:
    return {p.name for p in live.state.uploads_dir.iterdir()}


def _done_job(live, seed: int, name: str = "x.png") -> dict:
    with live.client() as c:
        r = c.post("/api/jobs", files={"file": (name, sample_png(seed), "image/png")})
        assert r.status_code == 201, r.text
        j = live.wait_done(c, r.json()["id"], timeout=120)
    assert j["stage"] == "done", j
    return j


# --- load ------------------------------------------------------------------------------------


def test_200_concurrent_uploads_back_pressure_and_bounded_memory(tmp_path):
    images = [sample_png(i) for i in range(200)]
    with serve_process(tmp_path / "work", max_queue=8, models_home=SHARED_HOME) as srv:
        with srv.client(timeout=60) as c:  # the worker is up: memory "at rest" includes it
            warm = c.post("/api/jobs", files={"file": ("warm.png", images[0], "image/png")}).json()["id"]
        assert wait_all(srv, [warm], 120)[warm]["stage"] == "done"
        rest = tree_rss_mb(srv.proc.pid)
        with RssSampler(srv.proc.pid) as rss:
            burst = upload_burst(srv, images)
            final = wait_all(srv, burst.accepted, 240)
        assert srv.proc.poll() is None, "the server died"
        with srv.client(timeout=10) as c:
            t = time.monotonic()
            assert c.get("/api/capabilities").status_code == 200
            assert time.monotonic() - t < 2.0
            # the queue drained: back-pressure lets new work in again
            again = c.post("/api/jobs", files={"file": ("again.png", images[1], "image/png")})
            assert again.status_code == 201, again.text
    print(f"\nburst: {dict(burst.statuses)}, RSS at rest {rest:.0f} MB, peak {rss.peak:.0f} MB")
    assert not burst.errors and not burst.bad_bodies, burst.errors + burst.bad_bodies
    assert sum(burst.statuses.values()) == 200
    assert set(burst.statuses) <= {201, 429} and burst.statuses[201] and burst.statuses[429], burst.statuses
    assert set(burst.retry_after) == {"5"}
    assert len(final) == len(burst.accepted) and all(j["stage"] == "done" for j in final.values())
    assert rss.samples > 10 and rss.peak < RSS_BOUND_MB, rss.peak


# --- slow clients ----------------------------------------------------------------------------


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """True when the server ends the connection within ``seconds`` (reading what it sent)."""
    sock.settimeout(0.2)
    got = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def _trickle(sock: socket.socket, data: bytes, stop: threading.Event, every: float = 0.1) -> None:
    for b in data:
        if stop.wait(every):
            return
        try:
            sock.sendall(bytes([b]))
        except OSError:
            return


def test_slow_clients_are_cut_off_and_others_still_answered(server):
    live = server
    port = live.port
    before = _uploads(live)
    head = f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {live.token}\r\n"
    body_head = (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="slow.png"\r\n'
                 b"Content-Type: image/png\r\n\r\n")
    png = sample_png(1)
    post = (head + f"Content-Type: multipart/form-data; boundary=zzz\r\nContent-Length: {len(body_head) + len(png) + 10}"
            "\r\n\r\n").encode()
    stop = threading.Event()
    socks: dict[str, list[socket.socket]] = {"idle": [], "head": [], "stall": [], "trickle": []}
    threads = []
    try:
        for _ in range(40):  # connect and never send a byte (slowloris, bounded)
            socks["idle"].append(socket.create_connection(("127.0.0.1", port)))
        for _ in range(4):  # a request head, one byte every 0.1 s (would take ~20 s)
            s = socket.create_connection(("127.0.0.1", port))
            socks["head"].append(s)
            threads.append(threading.Thread(target=_trickle, args=(s, head.encode() * 2, stop), daemon=True))
        for _ in range(3):  # the head, then half a body, then nothing
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(post + body_head + png[: len(png) // 2])
            socks["stall"].append(s)
        for _ in range(3):  # the head, then the body one byte every 0.1 s (10 B/s)
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(post)
            socks["trickle"].append(s)
            threads.append(threading.Thread(target=_trickle, args=(s, body_head + png, stop), daemon=True))
        for t in threads:
            t.start()
        # meanwhile, an ordinary client is answered promptly, again and again
        with live.client(timeout=10) as c:
            for _ in range(10):
                t = time.monotonic()
                assert c.get("/api/capabilities").status_code == 200
                assert time.monotonic() - t < 1.0
                time.sleep(0.1)
        # and the slow ones are cut off: heads within the header timeout, bodies with a 408
        bound = max(HEADER_TIMEOUT, BODY_TIMEOUT) * 2 + 4
        for kind, group in socks.items():
            for s in group:
                closed, got = _closed_within(s, bound)
                assert closed, f"a {kind} connection was still open after {bound} s"
                if kind in ("stall", "trickle"):
                    assert got.startswith(b"HTTP/1.1 408"), got[:100]
                    body = json.loads(got.split(b"\r\n\r\n", 1)[1])
                    assert body["code"] == "too-slow"
                else:
                    assert got == b"", got[:100]
    finally:
        stop.set()
        for group in socks.values():
            for s in group:
                s.close()
    assert _uploads(live) == before  # nothing was kept of the cut-off uploads
    with live.client(timeout=10) as c:
        assert c.get("/api/jobs").status_code == 200


def test_an_open_event_stream_is_not_cut_off(server):
    """The head and body limits do not touch a long response: SSE stays open past both."""
    s = socket.create_connection(("127.0.0.1", server.port))
    try:
        s.sendall(f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Authorization: Bearer {server.token}\r\n\r\n".encode())
        closed, got = _closed_within(s, max(HEADER_TIMEOUT, BODY_TIMEOUT) * 2 + 1)
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 200") and b"text/event-stream" in got and b"event: hello" in got
    assert not closed


# --- oversized and malformed bodies ------------------------------------------------------------


def _part(data: bytes, *, name: str = "file", filename: bytes = b"a.png", extra: bytes = b"") -> bytes:
    return (b'--zzz\r\nContent-Disposition: form-data; name="' + name.encode() + b'"; filename="' + filename
            + b'"\r\n' + extra + b"Content-Type: image/png\r\n\r\n" + data + b"\r\n")


MP = "multipart/form-data; boundary=zzz"
PNG = sample_png(1)
MALFORMED = {
    "no boundary": ("multipart/form-data", _part(PNG) + b"--zzz--\r\n", 400),
    "wrong boundary": ("multipart/form-data; boundary=yyy", _part(PNG) + b"--zzz--\r\n", 400),
    "overlong boundary": ("multipart/form-data; boundary=" + "b" * 5000, b"--" + b"b" * 5000 + b"\r\n", 400),
    "truncated": (MP, _part(PNG)[:300], 422),
    "no closing boundary": (MP, _part(PNG), 422),
    "empty body": (MP, b"", 422),
    "missing file part": (MP, b'--zzz\r\nContent-Disposition: form-data; name="model"\r\n\r\nu2netp\r\n--zzz--\r\n', 422),
    "file sent as a field": (MP, b'--zzz\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--zzz--\r\n', 422),
    "2000 fields": (MP, b"".join(b'--zzz\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
                                 for i in range(2000)) + _part(PNG) + b"--zzz--\r\n", 400),
    "2000 files": (MP, b"".join(_part(b"x", filename=b"x%d.png" % i) for i in range(2000)) + b"--zzz--\r\n", 400),
    "huge part header": (MP, _part(PNG, extra=b"X-Pad: " + b"h" * 200_000 + b"\r\n") + b"--zzz--\r\n", 400),
    "huge field": (MP, b'--zzz\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + b"m" * 1_500_000
                   + b"\r\n--zzz--\r\n", 413),
    "json": ("application/json", b'{"file": "x"}', 422),
    "urlencoded": ("application/x-www-form-urlencoded", b"file=abc", 422),
    "text": ("text/plain", PNG, 422),
    "no content type": (None, PNG, 422),
    "not an image": (MP, _part(b"%!PS-Adobe-3.0 not an image") + b"--zzz--\r\n", 415),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bodies_get_a_clear_4xx(server, case):
    ctype, body, status = MALFORMED[case]
    before = _uploads(server)
    headers = _auth(server) | ({"content-type": ctype} if ctype else {})
    r = httpx.post(server.base + "/api/jobs", headers=headers, content=body, timeout=30)
    assert r.status_code == status, (r.status_code, r.text[:200])
    err = r.json()
    assert set(err) == {"code", "reason"} and err["code"] and err["reason"], err
    assert _uploads(server) == before


def test_oversized_bodies_declared_and_streamed(server):
    live = server
    before = _uploads(live)
    # declared: refused from the header alone, before a byte of body is read; the connection ends
    s = socket.create_connection(("127.0.0.1", live.port))
    try:
        s.sendall((f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nAuthorization: Bearer {live.token}\r\n"
                   f"Content-Type: {MP}\r\nContent-Length: {50 * 2**30}\r\n\r\n").encode())
        closed, got = _closed_within(s, 5)
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 413") and closed
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["code"] == "too-large"
    # streamed without Content-Length (chunked) with a real file part: cut off at the limit
    sent = 0

    def chunks():
        nonlocal sent
        yield _part(PNG)[:-2]
        for _ in range(200):  # up to 12 MB, far past the 1.3 MB body limit
            sent += 65536
            yield b"\0" * 65536

    r = httpx.post(live.base + "/api/jobs", headers=_auth(live) | {"content-type": MP}, content=chunks(), timeout=30)
    assert r.status_code == 413 and r.json()["code"] == "too-large"
    # a body just over the upload limit inside a well-formed multipart: 413 from the route
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * 400_000
    r = httpx.post(live.base + "/api/jobs", headers=_auth(live), files={"file": ("big.png", big, "image/png")}, timeout=30)
    assert r.status_code == 413 and r.json()["code"] == "too-large"
    assert _uploads(live) == before


def _declared_over_limit(live, length: int) -> bytes:
    return (f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nAuthorization: Bearer {live.token}\r\n"
            f"Content-Type: {MP}\r\nContent-Length: {length}\r\n\r\n").encode()


def test_a_client_that_sends_its_whole_refused_body_still_reads_the_413(server):
    """The server answers a too-large upload at once but lingers: it reads and drops the rest, so
    the client's kernel never gets a reset that would throw our answer away (a browser would show
    a network error instead of the limit)."""
    live = server
    body = b"\0" * (20 * 2**20)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", live.port))
        try:
            s.sendall(_declared_over_limit(live, len(body)) + body)  # a reset would raise here
            closed, got = _closed_within(s, 10)
        finally:
            s.close()
        assert closed and got.startswith(b"HTTP/1.1 413"), got[:200]
        assert json.loads(got.split(b"\r\n\r\n", 1)[1])["code"] == "too-large"


def test_lingering_after_a_refusal_is_bounded(server):
    """A client that never stops sending is cut off LINGER_S after the answer."""
    from alphacut.server.run import LINGER_S

    live = server
    s = socket.create_connection(("127.0.0.1", live.port))
    s.settimeout(10)
    t0 = time.monotonic()
    try:
        s.sendall(_declared_over_limit(live, 50 * 2**30))
        with pytest.raises(OSError):  # reset once the server gives up on the drain
            while time.monotonic() - t0 < LINGER_S + 10:
                s.sendall(b"\0" * 65536)
        held = time.monotonic() - t0
    finally:
        s.close()
    assert LINGER_S - 1 < held < LINGER_S + 5, held


def test_stopping_the_server_ends_a_lingering_drain(tmp_path):
    """A connection still draining a refused upload does not hold the server's shutdown."""
    live, stop = start_server(tmp_path, max_upload_bytes=300_000)
    s = socket.create_connection(("127.0.0.1", live.port))
    try:
        s.sendall(_declared_over_limit(live, 50 * 2**30))
        closed, got = _closed_within(s, 5)  # the answer, then end of stream: the drain is on
        assert closed and got.startswith(b"HTTP/1.1 413"), got[:200]
        stop()
        s.settimeout(5)
        with pytest.raises(ConnectionError):  # reset: the server closed it (not a timeout)
            for _ in range(10_000):
                s.sendall(b"\0" * 65536)
    finally:
        s.close()


# --- file names ------------------------------------------------------------------------------

HOSTILE_NAMES = [
    b"../../escape.png", b"/etc/passwd.png", b"..\\..\\win.png", b"C:\\Windows\\evil.png",
    b"a\x00b/../../nul.png", "日本語の写真.png".encode(), ("文" * 120 + ".png").encode(),
    ("\U00020000" * 70 + ".png").encode(), "\u202egnp.exe.png".encode(), b"qu%22ote;name=x.png", b'back\\"slash.png',
    b"%2e%2e%2fpct.png", b"x" * 600 + b".png", b"...", b"", "emoji \U0001f600.png".encode(),
]


def test_hostile_file_names_stay_inside_and_come_back_sanitised(server, tmp_path):
    live = server
    work = live.state.work_dir
    outside_before = sorted(p.name for p in work.parent.iterdir())
    ids = []
    with live.client() as c:
        for raw in HOSTILE_NAMES:
            body = _part(sample_png(2), filename=raw) + b"--zzz--\r\n"
            r = c.post("/api/jobs", content=body, headers={"content-type": MP})
            assert r.status_code == 201, (raw, r.text)
            name = r.json()["name"]
            assert "/" not in name and "\\" not in name and not re.search(r"[\x00-\x1f\x7f]", name), name
            assert 0 < len(name) <= 200
            ids.append((raw, r.json()["id"]))
        for raw, jid in ids:
            j = live.wait_done(c, jid, timeout=120)
            assert j["stage"] == "done", (raw, j)  # long or odd names never break the job's own files
            r = c.get(f"/api/jobs/{jid}/result")
            assert r.status_code == 200, (raw, r.text[:200])
            disp = r.headers["content-disposition"]
            m = re.fullmatch(r'attachment; filename="([\x20-\x7e]+)"(?:; filename\*=UTF-8\'\'(\S+))?', disp)
            assert m, disp
            fallback, full = m.group(1), unquote(m.group(2)) if m.group(2) else m.group(1)
            for shown in (fallback, full):
                assert shown.endswith("-cutout.png") and not set(shown) & set('/\\"\x00'), shown
            if raw == "日本語の写真.png".encode():
                assert full == "日本語の写真-cutout.png"
    # nothing written outside the server's folder, and inside only its own kinds of files
    assert sorted(p.name for p in work.parent.iterdir()) == outside_before
    for p in work.rglob("*"):
        rel = p.relative_to(work).as_posix()
        assert re.fullmatch(r"uploads(/[0-9a-f]{16}\.upload)?|artifacts(/[0-9a-f]{12}(/[^/]+)?)?|exports"
                            r"|clips(/[0-9a-f]{16}(/[^/]+){0,2})?", rel), rel


# --- token, Origin, Host on every route ------------------------------------------------------

READS = ["/api/jobs", "/api/jobs/{id}", "/api/jobs/{id}/result", "/api/jobs/{id}/result?format=mask",
         "/api/jobs/{id}/matte.png", "/api/jobs/{id}/preview/original.png", "/api/jobs/{id}/preview/foreground.png",
         "/api/jobs/{id}/edits", "/api/export.zip", "/api/events", "/api/capabilities", "/api/models",
         "/api/openapi.json", "/"]
WRITES = [("POST", "/api/jobs/{id}/edits", {"ops": [{"op": "reset"}]}), ("POST", "/api/jobs/{id}/undo", None),
          ("POST", "/api/jobs/{id}/redo", None), ("POST", "/api/jobs/{id}/reset", None),
          ("POST", "/api/jobs/{id}/cancel", None), ("DELETE", "/api/jobs/{id}", None),
          ("POST", "/api/models/u2netp/pull", {}), ("DELETE", "/api/models/u2netp", None)]


def _no_image(r: httpx.Response) -> bool:
    return b"\x89PNG" not in r.content and not r.headers.get("content-type", "").startswith(("image/", "text/event"))


def test_token_origin_and_host_on_every_route(server):
    live = server
    jid = _done_job(live, 11)["id"]
    port = live.port
    cookie = {"cookie": f"alphacut_{port}={live.token}"}
    bad_hosts = ["evil.example", f"evil.example:{port}", f"rebind.127.0.0.1.nip.io:{port}", f"127.0.0.1:{port + 1}"]
    with httpx.Client(base_url=live.base, timeout=30) as c:
        for path in (p.format(id=jid) for p in READS):
            for headers, status in (({}, 401), ({"authorization": "Bearer wrong"}, 401),
                                    ({"cookie": f"alphacut_{port}=wrong"}, 401),
                                    ({"cookie": f"alphacut_{port + 1}={live.token}"}, 401)):
                r = c.get(path, headers=headers)
                assert r.status_code == status, (path, headers, r.status_code)
                assert _no_image(r), path
            for host in bad_hosts:
                r = c.get(path, headers=_auth(live) | {"host": host})
                assert r.status_code == 400 and r.json()["code"] == "bad-host", (path, host)
                assert _no_image(r)
            # the same request with the right token and Host is answered
            with c.stream("GET", path, headers=_auth(live) | {"host": f"localhost:{port}"}) as r:
                assert r.status_code == 200, path
        for method, path, body in ((m, p.format(id=jid), b) for m, p, b in WRITES):
            kw = {"json": body} if body is not None else {}
            for headers, status in (({}, 401), ({"authorization": "Bearer wrong"}, 401),
                                    (cookie | {"origin": "http://evil.example"}, 403),
                                    (cookie | {"origin": f"http://127.0.0.1:{port + 1}"}, 403),
                                    (cookie | {"origin": "null"}, 403), (cookie, 403),
                                    (_auth(live) | {"origin": "http://evil.example"}, 403),
                                    (_auth(live) | {"host": "evil.example"}, 400)):
                r = c.request(method, path, headers=headers, **kw)
                assert r.status_code == status, (method, path, headers, r.status_code, r.text[:100])
        # nothing above changed the job: it is still there, unedited, with its result
        j = c.get(f"/api/jobs/{jid}", headers=_auth(live)).json()
        assert j["stage"] == "done" and j["edits"]["version"] == 0
        assert c.get(f"/api/jobs/{jid}/result", headers=_auth(live)).status_code == 200


# --- isolation -------------------------------------------------------------------------------


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_one_jobs_bytes_are_never_served_for_another(server):
    live = server
    jobs = [_done_job(live, seed, f"iso{seed}.png") for seed in (21, 22, 23)]
    inputs = {j["id"]: np.asarray(Image.open(io.BytesIO(sample_png(seed))).convert("RGB"))
              for j, seed in zip(jobs, (21, 22, 23))}
    ids = [j["id"] for j in jobs]
    for jid in ids:  # ids: 12 random hex digits (48 bits from os.urandom), never a counter
        assert re.fullmatch(r"[0-9a-f]{12}", jid)
    assert len(set(ids)) == 3 and len({int(i, 16) - int(ids[0], 16) for i in ids}) == 3
    results: dict[str, bytes] = {}
    with live.client() as c:
        # fetched concurrently and repeatedly: every answer is the job's own, byte for byte
        seen: dict[str, set[bytes]] = {jid: set() for jid in ids}
        lock = threading.Lock()

        def fetch(jid: str) -> None:
            r = c.get(f"/api/jobs/{jid}/result")
            assert r.status_code == 200
            with lock:
                seen[jid].add(r.content)

        threads = [threading.Thread(target=fetch, args=(jid,)) for jid in ids * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(len(v) == 1 for v in seen.values()), {k: len(v) for k, v in seen.items()}
        results = {jid: next(iter(v)) for jid, v in seen.items()}
        assert len(set(results.values())) == 3  # three distinct images, three distinct files
        for jid in ids:
            out = _pixels(results[jid])
            solid = out[:, :, 3] == 255
            assert solid.sum() > 500
            for other in ids:  # the opaque pixels are this job's own input, not another's
                same = (out[:, :, :3][solid] == inputs[other][solid]).all(axis=1).mean()
                assert (same > 0.9) if other == jid else (same < 0.2), (jid, other, same)
            original = _pixels(c.get(f"/api/jobs/{jid}/preview/original.png").content)
            assert (original == inputs[jid]).all()
        # ids that are not this server's, or another job's id with a different format of request
        for bogus in ("0" * 12, ids[0][::-1], ids[0][:-1], ids[0] + "0", "../" + ids[0], "%2e%2e"):
            r = c.get(f"/api/jobs/{bogus}/result")
            assert r.status_code == 404 and _no_image(r), bogus
        z = c.get("/api/export.zip", params={"ids": ",".join(ids[:2])})
        import zipfile

        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            manifest = json.loads(zf.read("manifest.json"))
            for entry in manifest["files"]:
                assert zf.read(entry["file"]) == results[entry["id"]]
    # another server (another token) knows nothing of these jobs
    other, stop = start_server(Path(live.state.work_dir).parent / "other")
    try:
        with httpx.Client(base_url=other.base, timeout=30) as c2:
            r = c2.get(f"/api/jobs/{ids[0]}/result", headers=_auth(other))
            assert r.status_code == 404 and _no_image(r)
            r = c2.get(f"/api/jobs/{ids[0]}/result", headers=_auth(live))
            assert r.status_code == 401 and _no_image(r)
        r = httpx.get(f"{live.base}/api/jobs/{ids[0]}/result", headers=_auth(other), timeout=30)
        assert r.status_code == 401 and _no_image(r)
    finally:
        stop()
