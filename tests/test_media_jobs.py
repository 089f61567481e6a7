"""Clips in batches: a clip is one job (one input, one output) in the real engine, with an
event per frame; a clip inside a ZIP is a job like any other; the timeout is per frame."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import pytest

from alphacut.jobs.batch import run_batch
from alphacut.jobs.containment import Policy
from alphacut.jobs.manifest import read_manifest
from alphacut.jobs.state import Job
from alphacut.pipeline import Options
from conftest import encode_image, subject_image
from support.clips import write_animation, write_video

pytestmark = pytest.mark.slow


def test_a_folder_of_clips_and_stills_through_the_engine(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    write_video(src / "clip.mp4", 4)
    write_animation(src / "sticker.gif", 3)
    (src / "photo.png").write_bytes(encode_image(subject_image(96, 72), "PNG"))
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(write_video(tmp_path / "zipped.webm", 3, codec="libvpx-vp9", audio=None), "zipped.webm")
    out = tmp_path / "out"
    summary = run_batch([str(src), str(archive)], out, Options(model="u2netp"),
                        engine_kwargs={"workers": 1, "job_timeout": 120})
    assert summary.exit_code == 0, summary.failed
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.suffix != ".jsonl")
    assert names == ["clip.webm", "photo.png", "sticker.webp", "zipped.webm"]
    records = read_manifest(out / "manifest.jsonl")
    assert all(r["status"] == "done" for r in records.values()) and len(records) == 4


def test_the_timeout_applies_to_each_frame_of_a_clip() -> None:
    policy = Policy(job_timeout=10)
    now = time.monotonic()
    clip = Job(name="clip.mp4", options=None)
    clip.active_since, clip.frames_total, clip.frames_done, clip.frame_at = now - 500, 1000, 99, now - 3
    assert policy.check([clip], 0, now) is None  # 500 s in, but a frame finished 3 s ago
    clip.frame_at = now - 11
    stop = policy.check([clip], 0, now)
    assert stop is not None and stop.kill is not None and "no result after 10 s" in stop.kill.reason
    still = Job(name="photo.png", options=None)
    still.active_since = now - 11
    assert policy.check([still], 0, now) is not None
