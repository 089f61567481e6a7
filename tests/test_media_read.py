"""Reading moving pictures: signature, rotation, timing, alpha, animations, real samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.media import clip_kind, open_clip
from alphacut.media.animation_in import AnimationSource
from alphacut.media.video_in import VideoSource
from support.clips import moving_disc, write_animation, write_video

DATA = Path(__file__).parent / "data" / "video"


def test_clip_kind_by_signature_and_frame_count(tmp_path: Path) -> None:
    assert clip_kind(write_video(tmp_path / "a.mp4", 3, audio=None)) == "video"
    assert clip_kind(write_video(tmp_path / "a.webm", 3, codec="libvpx-vp9", audio=None)) == "video"
    assert clip_kind(write_animation(tmp_path / "a.gif", 3)) == "animation"
    assert clip_kind(write_animation(tmp_path / "a.webp", 3)) == "animation"
    assert clip_kind(write_animation(tmp_path / "a.png", 3)) == "animation"
    still = tmp_path / "still.gif"
    Image.fromarray(moving_disc(0)).save(still)
    assert clip_kind(still) is None  # a one-frame GIF stays a still
    png = tmp_path / "still.png"
    Image.fromarray(moving_disc(0)).save(png)
    assert clip_kind(png) is None


def test_variable_frame_rate_times_are_kept(tmp_path: Path) -> None:
    times = [0.0, 0.04, 0.3, 0.31, 0.9]
    src = VideoSource(write_video(tmp_path / "vfr.mp4", 5, times=times, audio=None))
    got = [f.time for f in src.frames()]
    assert np.allclose(got, times, atol=1e-4)
    assert src.info.width == 160 and src.info.height == 120


def test_frames_are_rgb_in_the_right_colours(tmp_path: Path) -> None:
    """A BT.709 round trip through H.264: the decoded frame is the one written, within codec noise."""
    src = VideoSource(write_video(tmp_path / "c.mp4", 2, audio=None))
    first = next(iter(src.frames()))
    err = np.abs(first.rgb.astype(int) - moving_disc(0).astype(int)).mean()
    assert err < 4.0, err


def test_display_rotation_is_applied(tmp_path: Path) -> None:
    src = VideoSource(write_video(tmp_path / "rot.mp4", 2, rotation=-90, audio=None))
    assert src.info.rotation == 270
    assert (src.info.width, src.info.height) == (120, 160)
    frame = next(iter(src.frames()))
    assert frame.rgb.shape == (160, 120, 3)
    want = np.rot90(moving_disc(0), 3)  # -90° in the display matrix: a quarter turn clockwise
    assert np.abs(frame.rgb.astype(int) - want.astype(int)).mean() < 4.0


def test_iphone_clip_rotation_and_audio() -> None:
    src = VideoSource(DATA / "me_iphone6_with-gps.mov")
    assert (src.info.width, src.info.height, src.info.rotation) == (320, 568, 270)
    assert src.info.audio is not None and src.info.audio.codec == "aac"
    assert next(iter(src.frames())).rgb.shape == (568, 320, 3)


def test_vp9_alpha_is_read_with_libvpx(tmp_path: Path) -> None:
    import av

    path = tmp_path / "alpha.webm"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libvpx-vp9", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuva420p"
        for i in range(3):
            rgba = np.zeros((48, 64, 4), np.uint8)
            rgba[..., 0] = 200
            rgba[..., 3] = np.linspace(0, 255, 64)[None, :].astype(np.uint8)
            f = av.VideoFrame.from_ndarray(rgba, format="rgba")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    src = VideoSource(path)
    assert src.info.has_alpha
    frame = next(iter(src.frames()))
    assert frame.alpha is not None
    assert abs(float(frame.alpha[:, 0].mean())) < 0.05 and float(frame.alpha[:, -1].mean()) > 0.9


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_animation_durations_loop_and_alpha(tmp_path: Path, suffix: str) -> None:
    path = write_animation(tmp_path / f"a{suffix}", 4, durations=[50, 100, 150, 200], loop=3)
    src = AnimationSource(path)
    assert src.info.kind == "animation" and src.info.declared_frames == 4 and src.info.loop == 3
    frames = list(src.frames())
    assert [round(f.duration * 1000) for f in frames] == [50, 100, 150, 200]
    assert [round(f.time * 1000) for f in frames] == [0, 50, 150, 300]
    assert frames[0].alpha is not None and frames[0].alpha[0, 0] == 0.0 and frames[0].alpha[36, 48] == 1.0


def test_real_samples_read() -> None:
    bunny = VideoSource(DATA / "mb_trim-buck-bunny.webm")
    assert (bunny.info.codec, bunny.info.audio.codec) == ("vp9", "opus")
    assert sum(1 for _ in bunny.frames()) == 120
    bear = VideoSource(DATA / "android_bear-vp9.webm")
    assert bear.info.declared_frames == 0 and bear.info.expected_frames > 0  # WebM: from duration × rate
    gif = open_clip(DATA / "sharp_rotating-squares.gif")
    assert gif.info.kind == "animation" and gif.info.declared_frames == 30
