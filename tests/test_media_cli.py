"""`alphacut remove CLIP` as a user runs it: a real process, a real clip, real exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from support.clips import write_video
from test_cli import alphacut

pytestmark = pytest.mark.slow


def test_a_clip_becomes_a_verified_webm_with_progress(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", 5)
    before = clip.read_bytes()
    proc = alphacut("remove", str(clip), "--model", "u2netp", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    record = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert record["status"] == "done" and record["frames"] == 5 and record["audio"] is True
    assert record["output"] == str(tmp_path / "clip.cutout.webm") and record["codec"] == "libvpx-vp9"
    events = [json.loads(line) for line in proc.stderr.decode().splitlines() if line.startswith("{")]
    assert [e["frame"] for e in events if e.get("event") == "frame"] == [1, 2, 3, 4, 5]
    assert all("fps" in e and "eta" in e for e in events)
    assert clip.read_bytes() == before


def test_mp4_without_a_background_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", 3)
    proc = alphacut("remove", str(clip), "--model", "u2netp", "-o", str(tmp_path / "out.mp4"))
    assert proc.returncode == 2 and "MP4 (H.264) cannot carry alpha" in proc.stderr.decode()
    assert not (tmp_path / "out.mp4").exists()


def test_first_frame_keeps_the_still_behaviour(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "clip.mp4", 3)
    proc = alphacut("remove", str(clip), "--model", "u2netp", "--first-frame")
    assert proc.returncode == 0, proc.stderr.decode()
    with Image.open(tmp_path / "clip.cutout.png") as img:
        assert img.mode == "RGBA" and img.size == (160, 120)


def test_a_video_format_for_a_still_is_refused(tmp_path: Path) -> None:
    still = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(still)
    proc = alphacut("remove", str(still), "--format", "webm")
    assert proc.returncode == 2 and "is not a video or an animation" in proc.stderr.decode()


def test_output_folder_and_frames_zip(tmp_path: Path) -> None:
    import zipfile

    clip = write_video(tmp_path / "clip.mp4", 3, audio=None)
    out = tmp_path / "out"
    out.mkdir()
    proc = alphacut("remove", str(clip), "--model", "u2netp", "-o", str(out))
    assert proc.returncode == 0, proc.stderr.decode()
    assert (out / "clip.webm").is_file()
    proc = alphacut("remove", str(clip), "--model", "u2netp", "--format", "frames", "-o", str(tmp_path / "f.zip"))
    assert proc.returncode == 0, proc.stderr.decode()
    with zipfile.ZipFile(tmp_path / "f.zip") as zf:
        assert sum(n.endswith(".png") for n in zf.namelist()) == 3
