"""Every writer and its read-back check, without a model: soft-edged RGBA frames through each
output plan, then ``verify_clip`` — the per-codec tolerances hold on real encoders, and a
file that is not what was written fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alphacut.errors import UsageError, VerificationError
from alphacut.media.animation_out import AnimationSink
from alphacut.media.clip import ClipInfo
from alphacut.media.outputs import default_output, output_format, plan_output
from alphacut.media.verify import Ledger, verify_clip
from alphacut.media.video_out import VideoSink
from support.clips import moving_disc

W, H, N = 96, 64, 5


def rgba(i: int) -> np.ndarray:
    """A disc with a soft 6-pixel edge over a clear background, moving 4 px a frame."""
    rgb = moving_disc(i, W, H)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    d = np.sqrt((x - 30 - 4 * i) ** 2 + (y - H / 2) ** 2)
    a = np.clip((22 - d) / 6, 0, 1)
    return np.dstack([rgb, np.rint(a * 255).astype(np.uint8)])


def content(pixels: np.ndarray, kind: str) -> np.ndarray:
    if kind == "mask":
        return pixels[:, :, 3].copy()
    if kind == "opaque":
        a = pixels[:, :, 3:4].astype(np.float32) / 255
        return np.rint(pixels[:, :, :3] * a + np.array([0, 255, 0]) * (1 - a)).astype(np.uint8)
    return pixels


INFO = ClipInfo("video", "x", "mp4", "h264", W, H, N, N, N / 10, 10.0)
VIDEO_CASES = [("webm", None, "rgba"), ("mov", None, "rgba"), ("mov", "png", "rgba"), ("mov", "qtrle", "rgba"),
               ("mp4", None, "opaque"), ("webm", None, "mask"), ("mp4", None, "mask"), ("mov", None, "mask"),
               ("mkv", None, "rgba"), ("webm", None, "opaque")]


@pytest.mark.parametrize("fmt,codec,kind", VIDEO_CASES)
def test_video_writers_read_back_within_their_tolerance(tmp_path: Path, fmt: str, codec: str | None,
                                                        kind: str) -> None:
    plan = plan_output(fmt, mask=kind == "mask", background=kind == "opaque", video_codec=codec)
    path = tmp_path / f"out.{fmt}"
    sink = VideoSink(path, plan, INFO)
    ledger = Ledger(plan, N)
    times = [0.0, 0.1, 0.25, 0.26, 0.5]  # variable frame rate
    for i in range(N):
        px = content(rgba(i), kind)
        sink.write(px, times[i])
        ledger.record(px, sink.last_time)
    sink.close()
    assert verify_clip(path, ledger, name=path.name) == N
    other = Ledger(plan, N)  # the same times, other pixels: must fail
    for i in range(N):
        other.record(content(rgba(N - 1 - i), kind) if i != N // 2 else 255 - content(rgba(i), kind), times[i])
    with pytest.raises(VerificationError):
        verify_clip(path, other, name=path.name)


@pytest.mark.parametrize("fmt", ["webp", "apng", "gif"])
def test_animation_writers_keep_durations_and_read_back(tmp_path: Path, fmt: str) -> None:
    plan = plan_output(fmt)
    info = ClipInfo("animation", "x", "gif", "gif", W, H, N, N, 0.5, 10.0, loop=3)
    sink = AnimationSink(plan, info)
    ledger = Ledger(plan, N)
    t = 0.0
    for i in range(N):
        px = sink.prepare(rgba(i if i != 2 else 1))  # frame 3 repeats frame 2: encoders may merge them
        sink.write(px, t, 0.07 * (i + 1))
        ledger.record(px, t)
        t += sink.durations[-1] / 1000
    path = tmp_path / f"a.{fmt}"
    path.write_bytes(sink.encode())
    assert verify_clip(path, ledger, name=path.name) == N
    if fmt == "gif":
        assert set(np.unique(sink.prepare(rgba(0))[:, :, 3])) <= {0, 255} and sink.warnings


def test_output_choice_by_ending_and_format() -> None:
    assert output_format("out.webm", None, "video") == "webm"
    assert output_format("out.png", None, "animation") == "apng"
    assert output_format("out.zip", None, "video") == "frames"
    assert output_format(None, None, "video") == "webm" and output_format(None, None, "animation") == "webp"
    assert output_format("x.webm", "mov", "video") == "mov"
    with pytest.raises(UsageError, match="not an output"):
        output_format("out.jpg", None, "video")
    with pytest.raises(UsageError, match="cannot carry alpha"):
        plan_output("mp4")
    with pytest.raises(UsageError, match="--video-codec applies to .mov"):
        plan_output("webm", video_codec="png")
    assert default_output("/a/clip.mp4", "webm") == Path("/a/clip.cutout.webm")
    assert default_output("/a/clip.mp4", "frames", zipped=True) == Path("/a/clip.cutout.zip")


def test_per_frame_state_is_a_few_bytes(tmp_path: Path) -> None:
    """Memory flat in clip length: what the ledger and the sink keep per written frame stays in
    packed arrays (≤ 32 bytes a frame in memory, the thumbnails in a file), measured with
    tracemalloc over 3,000 frames of a lossless plan (the one that also keeps digests)."""
    import tracemalloc

    plan = plan_output("mov", video_codec="png")
    px = rgba(0)[:16, :16]
    info = ClipInfo("video", "x", "mov", "png", 16, 16, 0, 0, 0.0, 25.0)
    sink = VideoSink(tmp_path / "long.mov", plan, info)
    ledger = Ledger(plan, 0)
    try:
        for i in range(200):  # let the encoder, muxer and arrays settle
            sink.write(px, i / 25)
            ledger.record(px, sink.last_time)
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(200, 3200):
            sink.write(px, i / 25)
            ledger.record(px, sink.last_time)
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
        tracemalloc.stop()
        assert len(ledger) == 3200
        assert grown < 3000 * 48, f"{grown / 3000:.0f} bytes held per frame"
    finally:
        sink.close()
        ledger.close()
