"""The JSON API against a real server on 127.0.0.1 with the real u2netp model."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from support.server import live_server, sample_png  # noqa: E402,F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def done_job(live_server):
    with live_server.client() as c:
        r = c.post("/api/jobs", files={"file": ("shot.png", sample_png(3), "image/png")}, data={"quality": "fast"})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["stage"] in ("queued", "decoding", "inferring", "refining", "encoding", "verifying", "done")
        assert (job["width"], job["height"]) == (160, 120) and job["format"] == "png"
        done = live_server.wait_done(c, job["id"])
        assert done["stage"] == "done", done
        return done


def test_job_reports_provider_and_timings(done_job):
    assert done_job["provider"]
    assert done_job["progress"] == 1.0
    assert done_job["model"] == "u2netp"


@pytest.mark.parametrize("fmt, mode, fmt_name", [
    ("png", "RGBA", "PNG"), ("png16", "RGBA;16", "PNG"), ("webp", "RGBA", "WEBP"),
    ("avif", "RGBA", "AVIF"), ("tiff", "RGBA", "TIFF"), ("mask", "L", "PNG"),
])
def test_result_in_every_format(live_server, done_job, fmt, mode, fmt_name):
    with live_server.client() as c:
        r = c.get(f"/api/jobs/{done_job['id']}/result", params={"format": fmt})
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    assert r.headers["content-disposition"].endswith('-mask.png"' if fmt == "mask" else '"')
    if fmt == "png16":  # Pillow opens 16-bit RGBA PNGs as 8-bit; check the IHDR bit depth
        assert r.content[24] == 16 and r.content[25] == 6
        return
    im = Image.open(io.BytesIO(r.content))
    assert im.format == fmt_name and im.size == (160, 120)
    assert im.mode == mode


def test_result_with_background_colour_is_opaque(live_server, done_job):
    with live_server.client() as c:
        r = c.get(f"/api/jobs/{done_job['id']}/result", params={"format": "png", "bg": "ff0000"})
        assert r.status_code == 200
        im = Image.open(io.BytesIO(r.content))
        assert im.mode == "RGB"
        assert tuple(np.asarray(im)[2, 2]) == pytest.approx((255, 0, 0), abs=8)  # the corner is background
        bad = c.get(f"/api/jobs/{done_job['id']}/result", params={"format": "png", "bg": "red"})
        assert bad.status_code == 422 and bad.json()["code"] == "usage"
        mask_bg = c.get(f"/api/jobs/{done_job['id']}/result", params={"format": "mask", "bg": "ffffff"})
        assert mask_bg.status_code == 422


def test_matte_png_is_soft_grey(live_server, done_job):
    with live_server.client() as c:
        r = c.get(f"/api/jobs/{done_job['id']}/matte.png")
        r16 = c.get(f"/api/jobs/{done_job['id']}/matte.png", params={"bits": 16})
    m = np.asarray(Image.open(io.BytesIO(r.content)))
    assert m.shape == (120, 160) and m.dtype == np.uint8
    assert m[60, 80] > 200 and m[2, 2] < 30
    assert r16.content[24] == 16  # IHDR bit depth


def test_previews(live_server, done_job):
    with live_server.client() as c:
        for which in ("original", "foreground"):
            r = c.get(f"/api/jobs/{done_job['id']}/preview/{which}.png")
            assert r.status_code == 200
            assert Image.open(io.BytesIO(r.content)).size == (160, 120)


def test_edits_undo_redo_reset(live_server, done_job):
    jid = done_job["id"]
    with live_server.client() as c:
        def matte() -> np.ndarray:
            return np.asarray(Image.open(io.BytesIO(c.get(f"/api/jobs/{jid}/matte.png").content))).astype(int)

        m0 = matte()
        r = c.post(f"/api/jobs/{jid}/edits", json={"ops": [
            {"op": "brush", "mode": "erase", "points": [[60, 60], [100, 60]], "size": 16, "softness": 0.3}]})
        assert r.status_code == 200, r.text
        st = r.json()
        assert st["can_undo"] and not st["can_redo"] and st["box"]
        m1 = matte()
        assert m1[60, 80] == 0 and m0[60, 80] > 200
        assert (m1[0:40] == m0[0:40]).all()  # untouched outside the stroke
        # restore confined by a rectangle selection: only the left part comes back
        c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "brush", "mode": "restore", "points": [[60, 60], [100, 60]],
               "size": 16, "softness": 0, "selection": {"type": "rect", "x0": 50, "y0": 40, "x1": 80, "y1": 80}}]})
        m2 = matte()
        assert m2[60, 70] == 255 and m2[60, 90] == 0
        assert c.post(f"/api/jobs/{jid}/undo").json()["can_redo"]
        assert (matte() == m1).all()
        c.post(f"/api/jobs/{jid}/redo")
        assert (matte() == m2).all()
        # the export goes through the verified encoders with the edited matte
        alpha = np.asarray(Image.open(io.BytesIO(c.get(f"/api/jobs/{jid}/result").content)))[:, :, 3]
        assert alpha[60, 90] == 0 and alpha[60, 70] == 255
        # wand on the background corner, then reset (undoable)
        r = c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "wand", "mode": "restore", "x": 2, "y": 2, "tolerance": 24}]})
        assert r.status_code == 200
        assert matte()[2, 2] == 255
        st = c.post(f"/api/jobs/{jid}/reset").json()
        assert (matte() == m0).all() and st["can_undo"]
        c.post(f"/api/jobs/{jid}/undo")
        assert matte()[2, 2] == 255
        c.post(f"/api/jobs/{jid}/reset")
        bad = c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "paint"}]})
        assert bad.status_code == 422 and "unknown edit" in bad.json()["reason"]
        bad = c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "wand", "x": 9999, "y": 1}]})
        assert bad.status_code == 422 and "outside" in bad.json()["reason"]


def test_failed_image_reason_and_zip_manifest(live_server, done_job):
    with live_server.client() as c:
        # a PNG signature with garbage after it: accepted by type, fails in decoding with a reason
        broken = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
        r = c.post("/api/jobs", files={"file": ("broken.png", broken, "image/png")})
        assert r.status_code == 201
        failed = live_server.wait_done(c, r.json()["id"])
        assert failed["stage"] == "failed" and failed["reason"] and failed["code"]
        res = c.get(f"/api/jobs/{failed['id']}/result")
        assert res.status_code == 409
        z = c.get("/api/export.zip", params={"ids": f"{done_job['id']},{failed['id']}", "format": "png"})
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            assert sorted(zf.namelist()) == ["manifest.json", "shot-cutout.png"]
            manifest = json.loads(zf.read("manifest.json"))
        by_status = {f["status"]: f for f in manifest["files"]}
        assert by_status["done"]["file"] == "shot-cutout.png"
        assert by_status["failed"]["reason"]


def test_unsupported_and_unknown_model(live_server):
    with live_server.client() as c:
        r = c.post("/api/jobs", files={"file": ("notes.png", b"hello, this is text", "image/png")})
        assert r.status_code == 415 and r.json()["code"] == "unsupported-format"
        r = c.post("/api/jobs", files={"file": ("a.png", sample_png(1), "image/png")}, data={"model": "nope"})
        assert r.status_code == 422 and r.json()["code"] == "unknown-model"
        r = c.post("/api/jobs", files={"file": ("a.png", sample_png(1), "image/png")}, data={"quality": "ultra"})
        assert r.status_code == 422


def test_cancel_and_delete(live_server):
    with live_server.client() as c:
        r = c.post("/api/jobs", files={"file": ("c.png", sample_png(5), "image/png")})
        jid = r.json()["id"]
        c.post(f"/api/jobs/{jid}/cancel")
        final = live_server.wait_done(c, jid)
        assert final["stage"] in ("cancelled", "done")  # it may have finished first
        assert c.delete(f"/api/jobs/{jid}").status_code == 204
        assert c.get(f"/api/jobs/{jid}").status_code == 410
        assert jid not in [j["id"] for j in c.get("/api/jobs").json()["jobs"]]
        assert c.get("/api/jobs/nope").status_code == 404


def test_results_expire(live_server):
    with live_server.client() as c:
        jid = c.post("/api/jobs", files={"file": ("e.png", sample_png(6), "image/png")}).json()["id"]
        live_server.wait_done(c, jid)
        assert c.get(f"/api/jobs/{jid}/result").status_code == 200  # downloaded: a shorter life
        state = live_server.state
        assert jid not in state.reap(now=time.time() + 60)
        assert jid in state.reap(now=time.time() + state.settings.downloaded_ttl_s + 1)
        r = c.get(f"/api/jobs/{jid}/result")
        assert r.status_code == 410 and r.json()["code"] == "expired"
        assert not (state.artifacts_dir / jid).exists()
        assert not state.uploads[jid].path.exists()


def test_models_and_capabilities(live_server):
    with live_server.client() as c:
        models = c.get("/api/models").json()
        by = {m["name"]: m for m in models["models"]}
        assert by["u2netp"]["installed"] and "Apache" in by["u2netp"]["licence"]
        assert by["u2netp"]["size"] == 4_574_861
        assert any(not m["commercial_use"] for m in models["models"])
        nc = next(m for m in models["models"] if not m["commercial_use"])
        r = c.post(f"/api/models/{nc['name']}/pull", json={})
        assert r.status_code == 403 and r.json()["code"] == "license-not-accepted"
        assert c.post("/api/models/nope/pull", json={}).status_code == 404
        caps = c.get("/api/capabilities").json()
        assert caps["provider"] and caps["threads"] >= 1 and "degraded" in caps
        assert caps["limits"]["max_pixels"] > 0
        from alphacut.media.limits import DEFAULT_LIMITS

        assert caps["media_limits"]["max_frames"] == DEFAULT_LIMITS.max_frames
        assert caps["media_limits"]["max_animation_frames"] == DEFAULT_LIMITS.max_animation_frames
        assert "png16" in caps["export_formats"]
        from alphacut.imageio import formats
        from alphacut.server.routes_jobs import EXPORTS

        assert caps["input_formats"] == formats.names(formats.all_formats())
        assert caps["output_formats"] == formats.names(formats.output_formats())
        assert formats.names(formats.output_formats("still")) == ["png", "webp", "avif", "tiff"]
        assert caps["export_formats"] == list(EXPORTS)


def test_model_pull_progress_and_delete(live_server, tmp_path, monkeypatch):
    """Pull u2netp into a private cache (from the shared one via a local file source) and delete it."""
    home = tmp_path / "home"
    state = live_server.state
    monkeypatch.setattr(state.settings, "models_home", home)
    from alphacut.models.store import ModelStore

    from support.server import SHARED_HOME

    # offline-safe: import the cached file rather than downloading
    ModelStore(home).import_file(ModelStore(SHARED_HOME).path("u2netp"), name="u2netp")
    with live_server.client() as c:
        by = {m["name"]: m for m in c.get("/api/models").json()["models"]}
        assert by["u2netp"]["installed"] and str(home) in by["u2netp"]["path"]
        r = c.post("/api/models/u2netp/pull", json={})  # already there: verified, done quickly
        assert r.status_code == 202
        for _ in range(100):
            st = {m["name"]: m for m in c.get("/api/models").json()["models"]}["u2netp"]["pull"]
            if st and st["state"] != "pulling":
                break
            time.sleep(0.05)
        assert st["state"] == "done", st
        d = c.delete("/api/models/u2netp")
        assert d.status_code == 200
        assert not {m["name"]: m for m in c.get("/api/models").json()["models"]}["u2netp"]["installed"]
        assert c.delete("/api/models/u2netp").status_code == 409  # not installed


def test_sse_streams_job_progress(live_server):
    events: list[tuple[str, dict]] = []
    stop = threading.Event()

    def listen() -> None:
        with live_server.client() as c, c.stream("GET", "/api/events", timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line[6:])))
                    if kind == "job" and events[-1][1]["stage"] == "done":
                        return
                if stop.is_set():
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(0.3)
    with live_server.client() as c:
        jid = c.post("/api/jobs", files={"file": ("s.png", sample_png(7), "image/png")}).json()["id"]
    t.join(60)
    stop.set()
    assert events[0][0] == "hello"
    stages = [d["stage"] for k, d in events if k == "job" and d["id"] == jid]
    assert "inferring" in stages and stages[-1] == "done"


def test_openapi_describes_the_api(live_server):
    with live_server.client() as c:
        spec = c.get("/api/openapi.json").json()
        paths = spec["paths"]
        for p in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/result", "/api/jobs/{job_id}/matte.png",
                  "/api/jobs/{job_id}/edits", "/api/export.zip", "/api/models", "/api/models/{name}/pull",
                  "/api/capabilities", "/api/events"):
            assert p in paths, p
        assert c.get("/docs").status_code == 404  # no Swagger page: it would load a CDN


def test_cli_serve_parser():
    import argparse

    from alphacut.cli.serve import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--no-browser", "--port", "0", "--model", "u2netp", "--workers", "2"])
    assert args.no_browser and args.model == "u2netp" and args.workers == 2 and args.host == "127.0.0.1"
    assert callable(args.func)


def test_serve_prints_link_and_cleans_up(tmp_path):
    """``serve()`` binds loopback on a free port, prints the link with the token, and removes temp files."""
    from alphacut.server import run

    lines: list[str] = []
    ready = threading.Event()
    settings = _serve_settings(tmp_path)
    servers: list = []
    t = threading.Thread(target=run.serve, kwargs=dict(open_browser=False, settings=settings, print_fn=lines.append,
                                                        ready=ready, server_hook=servers.append), daemon=True)
    t.start()
    assert ready.wait(30), lines
    url = lines[0].split(" at ", 1)[1]
    assert url.startswith("http://127.0.0.1:") and "?token=" in url
    base, token = url.split("/?token=")
    r = httpx.get(f"{base}/api/capabilities", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    work = Path(settings.work_dir)
    assert (work / "uploads").exists()
    servers[0].should_exit = True  # what Ctrl+C does
    t.join(15)
    assert not t.is_alive()
    assert not (work / "uploads").exists() and not (work / "artifacts").exists()


def _serve_settings(tmp_path):
    from alphacut.server.state import ServerSettings

    from support.server import SHARED_HOME, real_engine_available, thread_engines

    kw = {} if real_engine_available() else {"engine_factory": thread_engines()}
    return ServerSettings(model="u2netp", work_dir=tmp_path / "work", models_home=SHARED_HOME, workers=1, **kw)


def test_non_loopback_needs_explicit_flag():
    from alphacut.errors import UsageError
    from alphacut.server.run import check_host

    check_host("127.0.0.1", False)
    check_host("localhost", False)
    with pytest.raises(UsageError, match="--allow-remote"):
        check_host("0.0.0.0", False)
    check_host("0.0.0.0", True)


def test_restored_background_gets_source_colours(live_server):
    """Restoring where the model said background shows the source pixels, not the colour estimate."""
    src = np.asarray(Image.open(io.BytesIO(sample_png(4))).convert("RGB")).astype(int)
    with live_server.client() as c:
        jid = c.post("/api/jobs", files={"file": ("r.png", sample_png(4), "image/png")}).json()["id"]
        live_server.wait_done(c, jid)
        c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "brush", "mode": "restore", "points": [[5, 5], [30, 5]],
                                                        "size": 6, "softness": 0}]})
        out = np.asarray(Image.open(io.BytesIO(c.get(f"/api/jobs/{jid}/result").content))).astype(int)
    assert out[5, 15, 3] == 255
    assert np.abs(out[5, 15, :3] - src[5, 15]).max() <= 2
