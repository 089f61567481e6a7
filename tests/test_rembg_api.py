"""rembg's HTTP API (``alphacut serve --rembg-api``) over real HTTP on 127.0.0.1, real models.

The requests replay what rembg's integrations send: a photo-booth style multipart form POST,
napari-rembg's POST (form fields plus ``extras`` in the query string), plain curl, and the
stdlib's urllib. Bad input gets a 4xx with a reason; the token works in all three places and
never reaches a log.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from support.server import sample_png, start_server  # noqa: E402

from alphacut.server.fetch_url import UrlFetcher  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rembg(tmp_path_factory):
    live, stop = start_server(tmp_path_factory.mktemp("rembg"), rembg_api=True, max_upload_bytes=2_000_000)
    try:
        yield live
    finally:
        stop()


def _png(resp: httpx.Response) -> Image.Image:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    assert resp.content[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(resp.content))


def _photo_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(sample_png(2))).save(buf, "JPEG", quality=92)
    return buf.getvalue()


# --- what integrations send ----------------------------------------------------------------


def test_photo_booth_form_post(rembg):
    """Photo-booth software: multipart ``file`` with rembg's form fields, rembg's default model named."""
    form = {"model": "u2netp", "a": "false", "af": "240", "ab": "10", "ae": "10", "om": "false", "ppm": "false"}
    with rembg.client() as c:
        r = c.post("/api/remove", files={"file": ("booth-0001.jpg", _photo_jpeg(), "image/jpeg")}, data=form)
    im = _png(r)
    assert im.mode == "RGBA" and im.size == (160, 120)
    a = np.asarray(im)[..., 3]
    assert a[2, 2] == 0 and a[60, 80] == 255  # background corner gone, subject kept
    assert 0 < ((a > 0) & (a < 255)).sum()  # a soft edge, not a thresholded one
    assert r.headers["x-alphacut-model"] == "u2netp" and r.headers["x-alphacut-quality"] == "fast"
    assert r.headers["x-alphacut-provider"]
    assert "x-alphacut-ignored" not in r.headers  # rembg's defaults were sent: nothing was dropped
    assert "access-control-allow-origin" not in r.headers


def test_napari_style_post_mask_with_extras_in_query(rembg):
    """napari-rembg: model/om/ppm as form fields (requests sends True as "True"), extras JSON in the
    query string, rembg's default ``u2net`` named: mapped to the installed general model."""
    extras = json.dumps({"sam_prompt": [{"type": "rectangle", "data": [0, 0, 120, 160], "label": 2}]})
    with rembg.client() as c:
        r = c.post("/api/remove", files={"file": ("image.png", sample_png(1), "image/png")},
                   data={"model": "u2net", "om": "True", "ppm": "True"}, params={"extras": extras})
    im = _png(r)
    assert im.mode == "L"
    m = np.asarray(im)
    assert set(np.unique(m)) <= {0, 255}  # ppm: a hard mask, as napari's `== 255` expects
    assert m[60, 80] == 255 and m[2, 2] == 0
    assert r.headers["x-alphacut-model"] in ("isnet", "isnet-general-use", "birefnet-general-lite",
                                              "birefnet-general", "isnet-small", "u2netp")
    assert r.headers["x-alphacut-ignored"] == "extras.sam_prompt"


def test_plain_curl(rembg, tmp_path):
    """curl with -F, the token as X-Api-Key, bgc in the query string: an opaque red background."""
    src = tmp_path / "photo.png"
    src.write_bytes(sample_png(4))
    out = tmp_path / "out.png"
    cmd = ["curl", "-sS", "-f", "-o", str(out), "-D", "-", "-H", f"X-Api-Key: {rembg.token}",
           "-F", f"file=@{src}", "-F", "model=u2netp", f"{rembg.base}/api/remove?bgc=255,0,0,255"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "x-alphacut-model: u2netp" in proc.stdout.lower()
    im = Image.open(out)
    assert im.mode == "RGB"
    px = np.asarray(im)
    assert tuple(px[2, 2]) == pytest.approx((255, 0, 0), abs=6)


def test_curl_token_in_query_on_post(rembg, tmp_path):
    """``?token=`` on a POST is accepted as it is: no redirect, no cookie."""
    src = tmp_path / "p.png"
    src.write_bytes(sample_png(5))
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", "-D", str(tmp_path / "h"),
           "-F", f"file=@{src}", "-F", "model=u2netp", f"{rembg.base}/api/remove?token={rembg.token}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.stdout == "200 image/png", proc.stdout + proc.stderr
    assert "set-cookie" not in (tmp_path / "h").read_text().lower()


def test_urllib_get_without_fetch_opt_in_is_refused(rembg):
    """GET ?url= (rembg's URL route) fetches nothing unless the server was started to allow it."""
    q = f"{rembg.base}/api/remove?url=http%3A%2F%2Fexample.com%2Fa.png&token={rembg.token}"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(q, timeout=30)
    assert e.value.code == 403
    body = json.loads(e.value.read())
    assert body["code"] == "url-fetch-off" and "--rembg-fetch-urls" in body["reason"]


# --- the parameters ---------------------------------------------------------------------------


def test_alpha_matting_runs_the_best_tier(rembg):
    with rembg.client() as c:
        r = c.post("/api/remove", files={"file": ("x.png", sample_png(6), "image/png")},
                   data={"model": "u2netp", "a": "true", "af": "200"})
    _png(r)
    assert r.headers["x-alphacut-quality"] == "best"
    assert r.headers["x-alphacut-ignored"] == "af"


def test_translucent_background_colour(rembg):
    """bgc with 0 < A < 255: the background is a half-transparent colour, the subject stays opaque."""
    with rembg.client() as c:
        r = c.post("/api/remove?bgc=0,0,255,128", files={"file": ("x.png", sample_png(7), "image/png")},
                   data={"model": "u2netp"})
        t = c.post("/api/remove?bgc=0,0,255,0", files={"file": ("x.png", sample_png(7), "image/png")},
                   data={"model": "u2netp"})
    px = np.asarray(_png(r))
    assert px.shape[2] == 4
    assert px[2, 2, 3] == 128 and tuple(px[2, 2, :3]) == (0, 0, 255)
    assert px[60, 80, 3] == 255
    assert np.asarray(_png(t))[2, 2, 3] == 0  # A = 0: transparent


def test_query_fields_on_post_are_ignored_as_rembg_ignores_them(rembg):
    """rembg reads om from the form on POST; in the query string it has no effect (same here)."""
    with rembg.client() as c:
        r = c.post("/api/remove?om=true", files={"file": ("x.png", sample_png(8), "image/png")},
                   data={"model": "u2netp"})
    assert _png(r).mode == "RGBA"


def test_get_reads_every_parameter_from_the_query(rembg, tmp_path):
    """GET ?url= with the opt-in: parameters come from the query string; the fetch is pinned to
    the checked address (here a loopback image server the test's policy allows)."""
    srv, port, hits = _image_server(sample_png(9))
    rembg.state.url_fetcher = UrlFetcher(resolver=lambda host, p: ["127.0.0.1"],
                                         allowed=lambda ip: str(ip) == "127.0.0.1")
    rembg.state.settings.rembg_fetch_urls = True
    try:
        with rembg.client() as c:
            r = c.get("/api/remove", params={"url": f"http://images.example:{port}/shot.png", "model": "u2netp",
                                             "om": "true"})
    finally:
        rembg.state.settings.rembg_fetch_urls = False
        rembg.state.url_fetcher = None
        srv.shutdown()
    assert _png(r).mode == "L"
    assert hits == [f"images.example:{port}"]  # the name went as Host; the address was the checked one


# --- bad input: 4xx with a reason --------------------------------------------------------------


@pytest.mark.parametrize("case, files, data, params, status, code", [
    ("corrupt", {"file": ("broken.png", sample_png(1)[:60] + b"\0" * 200, "image/png")}, {"model": "u2netp"}, {}, 422, None),
    ("not an image", {"file": ("notes.png", b"hello, this is text" * 10, "image/png")}, {}, {}, 415, "unsupported-format"),
    ("empty", {"file": ("e.png", b"", "image/png")}, {}, {}, 400, "empty"),
    ("a pdf", {"file": ("doc.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")}, {}, {}, 415, "unsupported-format"),
    ("bgc words", {"file": ("x.png", sample_png(1), "image/png")}, {}, {"bgc": "red"}, 400, "bad-bgc"),
    ("bgc two", {"file": ("x.png", sample_png(1), "image/png")}, {}, {"bgc": "1,2"}, 400, "bad-bgc"),
    ("bgc range", {"file": ("x.png", sample_png(1), "image/png")}, {}, {"bgc": "300,0,0,255"}, 400, "bad-bgc"),
    ("extras json", {"file": ("x.png", sample_png(1), "image/png")}, {}, {"extras": "{nope"}, 400, "bad-extras"),
    ("extras list", {"file": ("x.png", sample_png(1), "image/png")}, {}, {"extras": "[1]"}, 400, "bad-extras"),
    ("extras model_path", {"file": ("x.png", sample_png(1), "image/png")}, {},
     {"extras": json.dumps({"model_path": "/etc/passwd"})}, 400, "bad-extras"),
    ("unknown model", {"file": ("x.png", sample_png(1), "image/png")}, {"model": "u3net"}, {}, 400, "unknown-model"),
    ("non-commercial", {"file": ("x.png", sample_png(1), "image/png")}, {"model": "bria-rmbg"}, {}, 403, "license-required"),
    ("sam", {"file": ("x.png", sample_png(1), "image/png")}, {"model": "sam"}, {}, 400, "model-refused"),
    ("cloud", {"file": ("x.png", sample_png(1), "image/png")}, {"model": "withoutbg"}, {}, 400, "model-refused"),
    ("not installed", {"file": ("x.png", sample_png(1), "image/png")}, {"model": "modnet"}, {}, 409, "model-not-installed"),
    ("af range", {"file": ("x.png", sample_png(1), "image/png")}, {"af": "300"}, {}, 422, "usage"),
    ("a not bool", {"file": ("x.png", sample_png(1), "image/png")}, {"a": "maybe"}, {}, 422, "usage"),
    ("no file", None, {"model": "u2netp"}, {}, 422, "usage"),
])
def test_bad_input_is_a_4xx_with_a_reason(rembg, case, files, data, params, status, code):
    if case == "not installed" and rembg.state.settings.models_home is not None:
        from alphacut.models.store import ModelStore

        if ModelStore(rembg.state.settings.models_home).info("modnet").installed:
            pytest.skip("modnet is installed here")
    with rembg.client() as c:
        r = c.post("/api/remove", files=files, data=data, params=params)
    assert r.status_code == status, (case, r.status_code, r.text)
    body = r.json()
    assert body["reason"], case
    if code:
        assert body["code"] == code, (case, body)
    if case in ("unknown model", "non-commercial", "sam"):
        assert "u2netp" in body["reason"]  # what can run is listed
    if case == "non-commercial":
        assert "--accept-license" in body["reason"]
    if case == "corrupt":
        assert "broken.png" in body["reason"]


# --- security ------------------------------------------------------------------------------------


def test_token_three_ways_and_wrong_ones(rembg):
    files = {"file": ("x.png", sample_png(3), "image/png")}
    url = rembg.base + "/api/remove"
    ok = [
        httpx.post(url, files=files, data={"model": "u2netp"}, headers={"Authorization": f"Bearer {rembg.token}"}, timeout=60),
        httpx.post(url, files=files, data={"model": "u2netp"}, headers={"X-Api-Key": rembg.token}, timeout=60),
        httpx.post(url, files=files, data={"model": "u2netp"}, params={"token": rembg.token}, timeout=60),
    ]
    assert [r.status_code for r in ok] == [200, 200, 200]
    bad = [
        httpx.post(url, files=files, timeout=30),
        httpx.post(url, files=files, headers={"X-Api-Key": "nope"}, timeout=30),
        httpx.post(url, files=files, params={"token": "nope"}, timeout=30),
        # a right header does not excuse a wrong query token
        httpx.post(url, files=files, params={"token": "nope"}, headers={"X-Api-Key": rembg.token}, timeout=30),
    ]
    assert [r.status_code for r in bad] == [401, 401, 401, 401]
    assert all(rembg.token not in r.text for r in bad)


def test_origin_and_cors_kept(rembg):
    files = {"file": ("x.png", sample_png(3), "image/png")}
    r = httpx.post(rembg.base + "/api/remove", files=files, headers={"X-Api-Key": rembg.token,
                                                                       "Origin": "http://evil.example"}, timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "cross-origin"
    pre = httpx.options(rembg.base + "/api/remove", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key"}, timeout=30)
    assert "access-control-allow-origin" not in pre.headers and pre.status_code in (401, 403, 405)
    r = httpx.post(rembg.base + "/api/remove", files=files, headers={"X-Api-Key": rembg.token,
                                                                       "Host": "rembg:7000"}, timeout=30)
    assert r.status_code == 400 and r.json()["code"] == "bad-host"


def test_openapi_shows_the_routes(rembg):
    with rembg.client() as c:
        schema = c.get("/api/openapi.json").json()
    ops = schema["paths"]["/api/remove"]
    assert set(ops) == {"get", "post"}
    body_ref = ops["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = set(schema["components"]["schemas"][body_ref]["properties"])
    assert fields == {"file", "model", "a", "af", "ab", "ae", "om", "ppm", "dc", "vm"}
    assert {p["name"] for p in ops["post"]["parameters"]} == {"bgc", "extras"}
    assert {p["name"] for p in ops["get"]["parameters"]} == {"url", "model", "a", "af", "ab", "ae", "om", "ppm",
                                                             "dc", "vm", "bgc", "extras"}
    assert "image/png" in ops["post"]["responses"]["200"]["content"]


def test_off_by_default(tmp_path):
    live, stop = start_server(tmp_path)
    try:
        r = httpx.post(live.base + "/api/remove", files={"file": ("x.png", sample_png(1), "image/png")},
                       headers={"X-Api-Key": live.token}, timeout=30)
        assert r.status_code in (404, 405)
        schema = httpx.get(live.base + "/api/openapi.json", params={"token": live.token}, timeout=30).json()
        assert "/api/remove" not in schema["paths"]
    finally:
        stop()


def test_tokens_never_reach_the_access_log(rembg):
    """uvicorn's access log prints the request line: ``token=`` is blanked before any handler sees it."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    h = Keep()
    access = logging.getLogger("uvicorn.access")
    old_level, old_disabled = access.level, access.disabled
    access.addHandler(h)
    access.setLevel(logging.INFO)
    access.disabled = False
    try:
        # the server's config turns the access log off; log a request line the way uvicorn does
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "GET",
                    f"/api/remove?url=x&token={rembg.token}", "1.1", 403)
        access.info("%s", f"http://127.0.0.1/?token={rembg.token}")
        logging.getLogger("uvicorn.error").addHandler(h)
        logging.getLogger("uvicorn.error").error("failed for %s", f"Bearer {rembg.token}")
    finally:
        access.removeHandler(h)
        logging.getLogger("uvicorn.error").removeHandler(h)
        access.setLevel(old_level)
        access.disabled = old_disabled
    text = "\n".join(records)
    assert len(records) == 3 and rembg.token not in text
    assert "token=[redacted]" in text


def test_cli_with_stable_token_and_access_log(tmp_path):
    """``ALPHACUT_TOKEN`` set: `alphacut serve --rembg-api` uses it, never prints it, and with uvicorn's
    access log on (--log-level info) the request lines carry ``token=[redacted]``."""
    token = "integration-token-" + "x" * 20
    env = dict(os.environ, ALPHACUT_TOKEN=token, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    env["ALPHACUT_HOME"] = str(_shared_home())
    proc = subprocess.Popen([sys.executable, "-m", "alphacut.launch", "serve", "--no-browser", "--rembg-api",
                             "--model", "u2netp", "--log-level", "info", "--work-dir", str(tmp_path / "w")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        end = time.monotonic() + 60
        base = None
        while time.monotonic() < end and base is None:
            for ln in list(lines):
                if "is running at" in ln:
                    base = ln.split("running at ", 1)[1].split()[0].rstrip("/")
            time.sleep(0.1)
        assert base, "".join(lines)
        r = httpx.post(base + "/api/remove", params={"token": token}, data={"model": "u2netp"},
                       files={"file": ("x.png", sample_png(1), "image/png")}, timeout=120)
        assert r.status_code == 200, r.text
        assert httpx.get(base + "/api/jobs", params={"token": "wrong-" + token}, timeout=30).status_code == 401
    finally:
        proc.terminate()
        proc.wait(30)
    out = "".join(lines)
    assert token not in out
    assert "token=[redacted]" in out  # the access log was on and printed the request line


def test_cli_refuses_a_weak_token(tmp_path):
    f = tmp_path / "token"
    f.write_text("tiny-secret\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    proc = subprocess.run([sys.executable, "-m", "alphacut.launch", "serve", "--no-browser", "--token-file", str(f)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "at least 20 are needed" in proc.stderr and "tiny-secret" not in proc.stderr


def _shared_home() -> Path:
    from alphacut.models.store import default_home

    return default_home()


def _image_server(body: bytes) -> tuple[ThreadingHTTPServer, int, list[str]]:
    hits: list[str] = []

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hits.append(self.headers.get("Host", ""))
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1], hits


def test_sidecar_host_names(tmp_path):
    """A Compose sidecar: --allow-remote with --allowed-host rembg accepts `Host: rembg:PORT` (and
    still needs the token); any other name is refused before the token is looked at."""
    live, stop = start_server(tmp_path, rembg_api=True, allow_remote=True, extra_hosts=("rembg",))
    try:
        files = {"file": ("x.png", sample_png(2), "image/png")}
        url = live.base + "/api/remove"
        r = httpx.post(url, files=files, data={"model": "u2netp"},
                       headers={"Host": f"rembg:{live.port}", "X-Api-Key": live.token}, timeout=120)
        assert r.status_code == 200 and r.headers["x-alphacut-model"] == "u2netp"
        r = httpx.post(url, files=files, headers={"Host": f"rembg:{live.port}"}, timeout=30)
        assert r.status_code == 401
        r = httpx.post(url, files=files, headers={"Host": f"attacker.example:{live.port}", "X-Api-Key": live.token},
                       timeout=30)
        assert r.status_code == 400 and r.json()["code"] == "bad-host"
    finally:
        stop()
