"""Writing clips through the real model (U²-Netp, tiny clips): every output format is read
back independently here too (not only by the writer's own verifier)."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import CancelledError, UsageError, VerificationError
from alphacut.media.outputs import plan_output
from alphacut.media.verify import Ledger, verify_clip
from support.clips import write_animation, write_video

DATA = Path(__file__).parent / "data" / "video"

pytestmark = pytest.mark.slow


def _read(path: Path, alpha_decoder: bool = False) -> tuple[list, list[float], list[str]]:
    """(frames as arrays, times, stream types) read with PyAV; VP9 alpha through libvpx."""
    import av

    with av.open(str(path)) as c:
        types = [s.type for s in c.streams]
        v = c.streams.video[0]
        ctx = av.CodecContext.create("libvpx-vp9", "r") if alpha_decoder else v.codec_context
        frames, times = [], []
        for packet in c.demux(v):
            for f in ctx.decode(packet):
                frames.append(f)
                times.append(float(f.time))
        return frames, times, types


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mp4", 6)


def test_default_is_vp9_webm_with_alpha_and_audio(u2netp, clip: Path) -> None:
    res = u2netp.remove_video(clip)
    assert res.path == clip.with_name("clip.cutout.webm") and res.frames == 6 and res.audio
    frames, times, types = _read(res.path, alpha_decoder=True)
    assert types == ["video", "audio"] and len(frames) == 6
    assert np.allclose(times, [i / 12 for i in range(6)], atol=0.002)
    rgba = frames[0].to_ndarray(format="rgba")
    assert frames[0].format.name == "yuva420p"
    a = rgba[:, :, 3]
    assert a[60, 56] > 200 and a[5, 5] < 30  # the disc kept, the corner cleared


def test_prores_4444_keeps_alpha(u2netp, clip: Path, tmp_path: Path) -> None:
    res = u2netp.remove_video(clip, tmp_path / "out.mov")
    frames, _, types = _read(res.path)
    assert res.plan.codec == "prores_ks" and frames[0].format.name.startswith("yuva444p")
    assert types == ["video", "audio"]


@pytest.mark.parametrize("codec,pix", [("png", "rgba"), ("qtrle", "argb")])
def test_lossless_mov_is_exact(u2netp, clip: Path, tmp_path: Path, codec: str, pix: str) -> None:
    res = u2netp.remove_video(clip, tmp_path / f"{codec}.mov", video_codec=codec)
    frames, _, _ = _read(res.path)
    assert res.plan.tolerance.exact and frames[0].format.name == pix and len(frames) == 6


def test_mp4_needs_a_background(u2netp, clip: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="MP4 .* cannot carry alpha"):
        u2netp.remove_video(clip, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    res = u2netp.remove_video(clip, tmp_path / "green.mp4", background=(0, 255, 0))
    frames, _, types = _read(res.path)
    assert types == ["video", "audio"] and res.plan.codec == "libx264"
    rgb = frames[0].to_ndarray(format="rgb24")
    assert rgb[5, 5, 1] > 200 and rgb[5, 5, 0] < 60  # background green in the corner


def test_mask_only_video(u2netp, clip: Path, tmp_path: Path) -> None:
    res = u2netp.remove_video(clip, tmp_path / "mask.webm", mask_only=True)
    frames, _, _ = _read(res.path)
    y = frames[0].to_ndarray(format="gray")
    assert y[60, 56] > 200 and y[5, 5] < 40


@pytest.mark.parametrize("name", ["frames.zip", "frames_dir"])
def test_png_frames(u2netp, clip: Path, tmp_path: Path, name: str) -> None:
    res = u2netp.remove_video(clip, tmp_path / name, format="frames")
    if name.endswith(".zip"):
        with zipfile.ZipFile(res.path) as z:
            names = sorted(z.namelist())
            index = json.loads(z.read("frames/frames.json"))
            img = Image.open(z.open(names[0]))
            img.load()
    else:
        names = sorted(p.name for p in res.path.iterdir())
        index = json.loads((res.path / "frames.json").read_text())
        img = Image.open(res.path / "frame_000001.png")
    assert len([n for n in names if n.endswith(".png")]) == 6 and len(index["frames"]) == 6
    assert img.mode == "RGBA" and img.size == (160, 120)
    assert not list(tmp_path.glob(".*part"))


def test_frames_never_replace_a_folder_alphacut_did_not_write(u2netp, clip: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a frames folder"):
        u2netp.remove_video(clip, mine, format="frames")
    assert (mine / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("suffix,fmt", [(".webp", "WEBP"), (".png", "PNG"), (".gif", "GIF")])
def test_animation_out_keeps_durations_and_loop(u2netp, tmp_path: Path, suffix: str, fmt: str) -> None:
    src = write_animation(tmp_path / "in.gif", 4, durations=[60, 120, 60, 200], loop=2)
    res = u2netp.remove_video(src, tmp_path / f"out{suffix}")
    if suffix == ".gif":
        assert any("1-bit" in w for w in res.warnings)
    with Image.open(res.path) as img:
        assert img.format == fmt and img.n_frames == 4 and img.info.get("loop") == 2
        durations = []
        for i in range(4):
            img.seek(i)
            img.load()  # WebP: the duration is read with the frame
            durations.append(img.info["duration"])
        assert durations == [60, 120, 60, 200]
        img.seek(0)
        a = np.asarray(img.convert("RGBA"))[:, :, 3]
        assert a[0, 0] == 0 and a[36, 40] > 200  # the source's clear border stays clear


def test_animation_default_output_is_webp(u2netp, tmp_path: Path) -> None:
    res = u2netp.remove_video(DATA / "sharp_rotating-squares.gif", tmp_path / "sq.webp")
    assert res.frames == 30 and res.plan.format == "webp"
    res2 = u2netp.remove_video(write_animation(tmp_path / "x.gif", 3))
    assert res2.path.name == "x.cutout.webp"


def test_real_clip_with_opus_audio_is_copied(u2netp, tmp_path: Path) -> None:
    res = u2netp.remove_video(DATA / "mb_trim-buck-bunny.webm", tmp_path / "bunny.webm",
                              limits=None)
    _, times, types = _read(res.path, alpha_decoder=True)
    assert res.frames == 120 and types == ["video", "audio"]
    import av

    with av.open(str(res.path)) as c:
        assert c.streams.audio[0].codec_context.name == "opus"


def test_rotated_phone_clip_comes_out_upright(u2netp, tmp_path: Path) -> None:
    res = u2netp.remove_video(DATA / "me_iphone6_with-gps.mov", tmp_path / "p.webm")
    frames, _, types = _read(res.path, alpha_decoder=True)
    assert (frames[0].width, frames[0].height) == (320, 568) and "audio" in types


def test_iterator_streams_frames_and_results(u2netp, clip: Path) -> None:
    seen = [(f.index, r.matte.shape) for f, r in u2netp.video_frames(clip)]
    assert seen == [(i, (120, 160)) for i in range(6)]


def test_the_temporal_stage_is_the_default(clip: Path) -> None:
    from alphacut.matte.temporal import MatteStabilizer
    from alphacut.media.stabilise import default_stabiliser

    assert isinstance(default_stabiliser(), MatteStabilizer)


class _Delayed:
    """A temporal stage that holds two frames back and averages each matte with the last."""

    def __init__(self) -> None:
        self.held: list[np.ndarray] = []
        self.prev: np.ndarray | None = None

    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[np.ndarray]:
        self.held.append(matte)
        return [self._out(self.held.pop(0))] if len(self.held) > 2 else []

    def flush(self) -> list[np.ndarray]:
        out = [self._out(m) for m in self.held]
        self.held = []
        return out

    def _out(self, m: np.ndarray) -> np.ndarray:
        res = m if self.prev is None else (m + self.prev) / 2
        self.prev = m
        return res


class _Indexed(_Delayed):
    """The same stage, giving ``(index, matte)`` pairs back (as matte.temporal does)."""

    def __init__(self) -> None:
        super().__init__()
        self.n_in = self.n_out = 0

    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list:
        return self._index(super().push(frame_rgb, matte))

    def flush(self) -> list:
        return self._index(super().flush())

    def _index(self, mattes: list) -> list:
        out = [(self.n_out + i, m) for i, m in enumerate(mattes)]
        self.n_out += len(mattes)
        return out


def test_a_delaying_temporal_stage_keeps_every_frame_in_order(u2netp, clip: Path, tmp_path: Path) -> None:
    from alphacut.media.stabilise import Independent

    plain = [r.matte.copy() for _, r in u2netp.video_frames(clip, stabiliser=Independent())]
    stab = [(f.index, r.matte) for f, r in u2netp.video_frames(clip, stabiliser=_Delayed())]
    assert [i for i, _ in stab] == list(range(6))
    assert np.allclose(stab[3][1], (plain[3] + plain[2]) / 2, atol=1e-6)
    res = u2netp.remove_video(clip, tmp_path / "s.webm", stabiliser=_Indexed())
    assert res.frames == 6


class _Boom:
    def __init__(self, after: int) -> None:
        self.n, self.after = 0, after

    def push(self, frame_rgb: np.ndarray, matte: np.ndarray) -> list[np.ndarray]:
        self.n += 1
        if self.n > self.after:
            raise RuntimeError("stage failed")
        return [matte]

    def flush(self) -> list[np.ndarray]:
        return []


@pytest.mark.parametrize("name", ["fail.webm", "fail.webp", "fail.zip"])
def test_a_failure_mid_clip_delivers_nothing(u2netp, clip: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(RuntimeError, match="stage failed"):
        u2netp.remove_video(clip, tmp_path / name, stabiliser=_Boom(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cancel_stops_and_delivers_nothing(u2netp, clip: Path, tmp_path: Path) -> None:
    cancel = threading.Event()

    def on_frame(done: int, total: int, seconds: float) -> None:
        if done == 2:
            cancel.set()

    with pytest.raises(CancelledError):
        u2netp.remove_video(clip, tmp_path / "c.webm", on_frame=on_frame, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_every_frame(u2netp, clip: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    u2netp.remove_video(clip, tmp_path / "p.webm", on_frame=lambda d, t, s: seen.append((d, t)))
    assert seen == [(i, 6) for i in range(1, 7)]


def test_verifier_rejects_a_file_that_is_not_what_was_written(tmp_path: Path) -> None:
    """The read-back check itself: a real file against a ledger of other pixels."""
    plan = plan_output("webm")
    from alphacut.media.clip import ClipInfo
    from alphacut.media.video_out import VideoSink

    info = ClipInfo("video", "x", "webm", "vp9", 64, 48, 3, 3, 0.3, 10.0)
    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[:, :32, 3] = 255
    sink = VideoSink(tmp_path / "v.webm", plan, info)
    ledger, wrong = Ledger(plan, 3), Ledger(plan, 3)
    for i in range(3):
        sink.write(rgba, i / 10)
        ledger.record(rgba, sink.last_time)
        wrong.record(255 - rgba, sink.last_time)
    sink.close()
    assert verify_clip(tmp_path / "v.webm", ledger, name="v.webm") == 3
    with pytest.raises(VerificationError, match="reads back different"):
        verify_clip(tmp_path / "v.webm", wrong, name="v.webm")
    short = Ledger(plan, 2)
    short.record(rgba, 0.0)
    with pytest.raises(VerificationError, match="more frames"):
        verify_clip(tmp_path / "v.webm", short, name="v.webm")
