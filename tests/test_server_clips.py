"""Clips in the web server: a real uvicorn server on loopback, the real job engine (isolated
worker processes) and the real U²-Netp model. An animated GIF or a video upload is ONE clip job
with an event per frame; its result downloads in every clip format, each decoded again here;
bad clips get the CLI's codes; cancelling a running clip leaves no temporary file; manual
refinement refuses clips with the reason; the first frame is a still only when asked.

Clips are short and small (5–8 frames, ≤ 160×120) so the tests stay quick on a loaded CPU.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from support.clips import write_animation, write_video  # noqa: E402
from support.server import live_server, real_engine_available, start_server  # noqa: E402,F401

from alphacut.media.animation_in import AnimationSource  # noqa: E402
from alphacut.media.limits import MediaLimits  # noqa: E402
from alphacut.media.video_in import VideoSource  # noqa: E402

DATA = Path(__file__).parent / "data" / "video"
pytestmark = pytest.mark.skipif(not real_engine_available(), reason="clips run in the real engine's workers")


def real_gif(frames: int = 5) -> bytes:
    """The first ``frames`` distinct frames of the real transparent GIF in tests/data/video
    (sharp's rotating squares; it repeats frames, which GIF writers merge)."""
    with Image.open(DATA / "sharp_rotating-squares.gif") as im:
        images, durations = [], []
        for i in range(im.n_frames):
            im.seek(i)
            rgba = im.convert("RGBA")
            if images and np.array_equal(np.asarray(rgba), np.asarray(images[-1])):
                continue
            images.append(rgba)
            durations.append(100)
            if len(images) == frames:
                break
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, disposal=2)
    return buf.getvalue()


def upload(client, name: str, data: bytes, **form) -> dict:
    r = client.post("/api/jobs", files={"file": (name, data)}, data={k: str(v).lower() for k, v in form.items()})
    assert r.status_code == 201, r.text
    return r.json()


def decode_frames(data: bytes, suffix: str, tmp: Path) -> list:
    path = tmp / f"got{suffix}"
    path.write_bytes(data)
    src = AnimationSource(path) if suffix in (".webp", ".gif", ".png") else VideoSource(path)
    return list(src.frames()), src.info


@pytest.fixture(scope="module")
def gif_job(live_server):
    """A 5-frame GIF through the server, with every job event the page would get recorded."""
    live = live_server
    seen: list[dict] = []
    def record(ev) -> None:  # the event's own progress, and the dict the page is sent with it
        seen.append({**live.state.job_dict(live.engine.get(ev.job_id)), "event": (ev.stage.value, ev.progress)})

    unsubscribe = live.engine.subscribe(record)
    try:
        with live.client() as c:
            job = upload(c, "squares.gif", real_gif(5))
            assert job["clip"]["kind"] == "animation" and job["clip"]["frames"] == 5
            done = live.wait_done(c, job["id"], timeout=300)
    finally:
        unsubscribe()
    assert done["stage"] == "done", done
    return done, [s for s in seen if s["id"] == job["id"]]


def test_gif_is_one_clip_job_with_an_event_per_frame(gif_job):
    done, seen = gif_job
    per_frame = [round(p * 5) for st, p in (s["event"] for s in seen) if st == "inferring" and p > 0]
    assert per_frame == [1, 2, 3, 4, 5], per_frame  # one event per finished frame, in order
    running = [s["clip"] for s in seen if s["stage"] == "inferring" and s["clip"]["frames_done"] >= 2]
    assert running and running[-1]["rate"] > 0 and running[-1]["eta_s"] is not None
    assert done["clip"]["frames_done"] == 5 and done["clip"]["default_format"] == "webp"


@pytest.mark.parametrize("fmt,suffix,mime", [("webp", ".webp", "image/webp"), ("apng", ".png", "image/apng"),
                                             ("gif", ".gif", "image/gif"), ("webm", ".webm", "video/webm")])
def test_gif_downloads_decode_as_transparent_clips(live_server, gif_job, tmp_path, fmt, suffix, mime):
    done, _ = gif_job
    with live_server.client() as c:
        r = c.get(f"/api/jobs/{done['id']}/result", params={"format": fmt})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(mime)
    assert f"squares-cutout{suffix}" in r.headers["content-disposition"]
    frames, info = decode_frames(r.content, suffix, tmp_path)
    assert len(frames) == 5 and (info.width, info.height) == (80, 80)
    alphas = [f.alpha for f in frames]
    assert all(a is not None for a in alphas)
    assert min(float(a.min()) for a in alphas) == 0.0 and max(float(a.max()) for a in alphas) == 1.0


def test_default_download_and_frames_zip(live_server, gif_job, tmp_path):
    done, _ = gif_job
    with live_server.client() as c:
        default = c.get(f"/api/jobs/{done['id']}/result")
        zipped = c.get(f"/api/jobs/{done['id']}/result", params={"format": "frames"})
    assert default.headers["content-type"] == "image/webp" and default.content[8:12] == b"WEBP"
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert len(pngs) == 5 and "squares-frames/frames.json" in zf.namelist(), zf.namelist()
        with Image.open(io.BytesIO(zf.read(pngs[0]))) as im:
            assert im.mode == "RGBA" and im.size == (80, 80)


def test_mp4_only_over_a_background(live_server, gif_job, tmp_path):
    done, _ = gif_job
    with live_server.client() as c:
        bare = c.get(f"/api/jobs/{done['id']}/result", params={"format": "mp4"})
        over = c.get(f"/api/jobs/{done['id']}/result", params={"format": "mp4", "bg": "ffffff"})
        still_fmt = c.get(f"/api/jobs/{done['id']}/result", params={"format": "png16"})
    assert bare.status_code == 422 and "cannot carry alpha" in bare.json()["reason"]
    assert still_fmt.status_code == 422 and "clip" in still_fmt.json()["reason"]
    assert over.status_code == 200 and over.headers["content-type"] == "video/mp4"
    frames, _ = decode_frames(over.content, ".mp4", tmp_path)
    assert len(frames) == 5 and all(f.alpha is None for f in frames)
    # where the cutout is clear, the frame is the background colour
    assert np.percentile(frames[0].rgb, 90) >= 240


def test_clips_refuse_manual_refinement_with_the_reason(live_server, gif_job):
    done, _ = gif_job
    jid = done["id"]
    with live_server.client() as c:
        edit = c.post(f"/api/jobs/{jid}/edits", json={"ops": [{"op": "reset"}]})
        matte = c.get(f"/api/jobs/{jid}/matte.png")
        poster = c.get(f"/api/jobs/{jid}/preview/original.png")
    for r in (edit, matte):
        assert r.status_code == 409 and r.json()["code"] == "clip"
        assert "manual refinement" in r.json()["reason"] and "still images" in r.json()["reason"]
    assert poster.status_code == 200 and poster.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_video_upload_webm_with_audio_and_mov(live_server, tmp_path):
    # 10 frames: the reader calls a WebM "truncated" below 90 % of duration × rate, and the
    # tone runs 0.1 s past the last frame
    clip = write_video(tmp_path / "disc.mp4", frames=10, audio="aac")
    with live_server.client() as c:
        job = upload(c, "disc.mp4", clip.read_bytes())
        assert job["clip"]["kind"] == "video" and job["clip"]["audio"] == "aac"
        done = live_server.wait_done(c, job["id"], timeout=300)
        assert done["stage"] == "done", done
        webm = c.get(f"/api/jobs/{job['id']}/result", params={"download": "false"})
        mov = c.get(f"/api/jobs/{job['id']}/result", params={"format": "mov"})
        mask = c.get(f"/api/jobs/{job['id']}/result", params={"format": "mask"})
    assert webm.headers["content-type"] == "video/webm" and "content-disposition" not in webm.headers
    frames, info = decode_frames(webm.content, ".webm", tmp_path)
    assert len(frames) == 10 and info.audio is not None and info.audio.codec == "opus"
    assert all(f.alpha is not None and f.alpha.min() < 0.05 and f.alpha.max() > 0.95 for f in frames)
    frames_mov, info_mov = decode_frames(mov.content, ".mov", tmp_path)
    assert info_mov.codec == "prores" and len(frames_mov) == 10 and frames_mov[0].alpha is not None
    frames_mask, _ = decode_frames(mask.content, ".webm", tmp_path)
    assert len(frames_mask) == 10 and frames_mask[0].alpha is None
    # the mask's grey is the cutout's alpha (VP9: within a few levels on average)
    diff = np.abs(frames_mask[0].rgb[:, :, 0].astype(np.float32) / 255 - frames[0].alpha)
    assert float(diff.mean()) < 0.03


def test_first_frame_is_a_still_only_when_asked(live_server):
    with live_server.client() as c:
        job = upload(c, "squares.gif", real_gif(3), first_frame=True)
        assert "clip" not in job
        done = live_server.wait_done(c, job["id"], timeout=120)
        assert done["stage"] == "done", done
        r = c.get(f"/api/jobs/{job['id']}/result", params={"format": "png"})
    with Image.open(io.BytesIO(r.content)) as im:
        assert im.format == "PNG" and im.size == (80, 80) and getattr(im, "n_frames", 1) == 1


def test_bad_clips_get_the_cli_codes(live_server, tmp_path):
    clip = write_video(tmp_path / "disc.mp4", frames=8, audio=None).read_bytes()
    with live_server.client() as c:
        cut = c.post("/api/jobs", files={"file": ("cut.mp4", clip[: len(clip) // 3])})
        audio_only = c.post("/api/jobs", files={"file": ("broken.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 60 + b"webm")})
    assert cut.status_code == 422 and cut.json()["code"] in ("truncated", "corrupt"), cut.text
    assert "cut.mp4" in cut.json()["reason"]
    assert audio_only.status_code in (415, 422), audio_only.text
    assert "broken.webm" in audio_only.json()["reason"]


def test_clip_over_the_media_limits_is_refused_before_queueing(tmp_path):
    live, stop = start_server(tmp_path, media_limits=MediaLimits(max_animation_frames=3))
    try:
        with live.client() as c:
            r = c.post("/api/jobs", files={"file": ("long.gif", real_gif(5))})
            assert r.status_code == 413 and r.json()["code"] == "too-large", r.text
            assert "long.gif" in r.json()["reason"] and "limit of 3" in r.json()["reason"]
            assert c.get("/api/jobs").json()["jobs"] == []
    finally:
        stop()


def test_cancelling_a_running_clip_leaves_no_temporary_file(live_server, tmp_path):
    live = live_server
    clip = write_video(tmp_path / "long.mp4", frames=60, audio=None)
    with live.client() as c:
        job = upload(c, "long.mp4", clip.read_bytes())
        end = time.monotonic() + 240
        while time.monotonic() < end:
            j = c.get(f"/api/jobs/{job['id']}").json()
            if j["clip"]["frames_done"] >= 1:
                break
            time.sleep(0.1)
        assert j["stage"] == "inferring" and 1 <= j["clip"]["frames_done"] < 60, j
        folder = live.state.uploads[job["id"]].clip_dir
        assert [p for p in folder.iterdir() if p.name.endswith(".part")], "the master is being written"
        assert c.post(f"/api/jobs/{job['id']}/cancel").json()["stage"] == "cancelled"
    end = time.monotonic() + 30
    while time.monotonic() < end and any(".part" in p.name for p in live.state.work_dir.rglob("*")):
        time.sleep(0.1)
    assert not [p for p in live.state.work_dir.rglob("*") if ".part" in p.name]
    assert not any(folder.iterdir())  # no master either


@contextlib.contextmanager
def clip_in_progress(tmp_path: Path, frames: int) -> Iterator[tuple[Any, Any, Path]]:
    """A real engine (one worker, U²-Netp) writing a clip submitted as bytes, once its first
    frame is done: ``(engine, job, output)``. The worker has copied the source beside the output
    (for FFmpeg) and is writing the ``.part``."""
    from alphacut.jobs.engine import JobEngine
    from alphacut.models.store import ModelStore
    from support.server import SHARED_HOME

    store = ModelStore(SHARED_HOME)
    data = write_video(tmp_path / "long.mp4", frames=frames, audio=None).read_bytes()
    out = tmp_path / "out" / "long.cutout.webm"
    with JobEngine("u2netp", workers=1, model_path=store.path("u2netp"), cpu_model_path=store.cpu_file("u2netp")) as eng:
        done_one = threading.Event()
        eng.subscribe(lambda ev: done_one.set() if eng.get(ev.job_id).frames_done >= 1 else None)
        job = eng.submit(data, name="long.mp4", output=out, clip=True)
        assert done_one.wait(240), eng.get(job.id)
        assert len(list(out.parent.iterdir())) == 2  # the copied source and the .part being written
        yield eng, job, out


def test_engine_cancel_removes_a_copied_clip_source(tmp_path):
    """A clip submitted as bytes is copied beside its output for FFmpeg; a cancel mid-clip (the
    worker is killed) leaves neither that copy nor the half-written output."""
    with clip_in_progress(tmp_path, frames=60) as (eng, job, out):
        eng.cancel(job.id)
        end = time.monotonic() + 30
        while time.monotonic() < end and any(out.parent.iterdir()):
            time.sleep(0.1)
        assert list(out.parent.iterdir()) == []


def test_a_worker_killed_mid_clip_leaves_no_temporary_file(tmp_path):
    """The kernel's OOM killer (SIGKILL from outside) ends the worker while it writes a clip: the
    engine sweeps the half-written output and the copied source (``engine.remove_partial`` on the
    worker's death, not only on cancel). Whether the engine retries the clip in a fresh worker or
    fails it as the crash's victim, the folder ends holding the finished clip alone, or nothing."""
    import os
    import signal

    with clip_in_progress(tmp_path, frames=40) as (eng, job, out):
        victim = eng.get(job.id).worker_pid
        assert victim
        os.kill(victim, signal.SIGKILL)
        end = time.monotonic() + 300
        while time.monotonic() < end and not eng.get(job.id).final:
            time.sleep(0.1)
        final = eng.get(job.id)
        assert final.final, final
        left = sorted(p.name for p in out.parent.iterdir())
        if final.stage.value == "done":
            assert left == [out.name], left
            assert sum(1 for _ in VideoSource(out).frames()) == 40
        else:
            assert left == [] and final.error_code == "worker-crashed" and "SIGKILL" in final.reason, final
        assert not [n for n in left if ".part" in n]
