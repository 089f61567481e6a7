"""Bad moving pictures: each refused with a clear error naming the file, or (damaged frames in
the middle) skipped and reported; limits from the header before any frame is decoded."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import CorruptImageError, ImageTooLargeError, InputError, UnsupportedFormatError
from alphacut.media import MediaLimits, open_clip
from alphacut.media.video_in import VideoSource
from support.clips import write_animation, write_video

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "video-formats"


def _frames(src) -> int:
    return sum(1 for _ in src.frames())


def test_missing_moov_is_refused(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", 12, audio=None)  # written without faststart: moov at the end
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: data.index(b"moov") - 4])
    with pytest.raises(CorruptImageError, match="cut.mp4: FFmpeg cannot read this file"):
        open_clip(cut, name=str(cut))


def test_truncated_clip_is_refused(tmp_path: Path) -> None:
    src = write_video(tmp_path / "c.mkv", 24, codec="libx264", audio=None)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(InputError) as err:
        _frames(VideoSource(cut, name="cut.mkv"))
    assert "cut.mkv" in str(err.value) and "truncated" in str(err.value)


def test_short_clip_with_longer_audio_is_not_truncated(tmp_path: Path) -> None:
    """A WebM's header gives no frame count; the container's duration counts the audio, which
    here runs 0.1 s past the last of 6 frames: the frames implied by it (8) are not a promise."""
    src = write_video(tmp_path / "short.webm", 6, codec="libvpx-vp9", fps=24, audio="libopus")
    source = VideoSource(src, name="short.webm")
    assert not source.info.declared_frames and source.info.expected_frames > 6  # the premise
    assert _frames(source) == 6


def test_audio_only_is_refused(tmp_path: Path) -> None:
    import av

    path = tmp_path / "sound.mp4"
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for p in a.encode(frame):
            out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    with pytest.raises(UnsupportedFormatError, match="audio-only"):
        VideoSource(path, name="sound.mp4")


def test_zero_frames_is_refused(tmp_path: Path) -> None:
    import av

    path = tmp_path / "empty.webm"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libvpx-vp9", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    with pytest.raises(InputError) as err:
        VideoSource(path, name="empty.webm")
    assert "empty.webm" in str(err.value)


def test_frame_size_and_count_limits(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.mp4", 12, audio=None)
    with pytest.raises(ImageTooLargeError, match="per frame"):
        VideoSource(clip, limits=MediaLimits(max_frame_pixels=100 * 100))
    with pytest.raises(ImageTooLargeError, match="declares 12 frames, over the limit of 5"):
        VideoSource(clip, limits=MediaLimits(max_frames=5))
    with pytest.raises(ImageTooLargeError, match="gigapixels"):
        VideoSource(clip, limits=MediaLimits(max_total_pixels=160 * 120 * 10))


def test_a_header_that_says_nothing_is_limited_while_streaming(tmp_path: Path) -> None:
    """WebM declares no frame count: the count is enforced as frames arrive."""
    clip = write_video(tmp_path / "c.webm", 12, codec="libvpx-vp9", audio=None)
    src = VideoSource(clip, limits=MediaLimits(max_frames=10_000))
    assert src.info.declared_frames == 0
    src.limits = MediaLimits(max_frames=5)
    with pytest.raises(ImageTooLargeError, match="has 6 frames"):
        _frames(src)


def test_gif_with_a_huge_logical_screen(tmp_path: Path) -> None:
    path = write_animation(tmp_path / "a.gif", 2, alpha=False)
    data = bytearray(path.read_bytes())
    data[6:10] = (65535).to_bytes(2, "little") * 2  # logical screen 65535 x 65535
    path.write_bytes(bytes(data))
    with pytest.raises(ImageTooLargeError, match="65535x65535"):
        open_clip(path, name="a.gif")


def test_gif_with_thousands_of_frames(tmp_path: Path) -> None:
    frames = [Image.new("L", (2, 2), (i * 37) % 256) for i in range(5001)]  # consecutive frames differ
    path = tmp_path / "many.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=20)
    with pytest.raises(ImageTooLargeError, match="5,001 frames, over the limit of 5,000"):
        open_clip(path, name="many.gif")


def _corrupt(src: Path, dst: Path, bad: set[int]) -> Path:
    """Remux ``src``'s VP9 packets into ``dst`` with the payload of packets in ``bad`` replaced
    by noise (the container stays valid; the decoder rejects those frames)."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="matroska") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        for i, packet in enumerate(p for p in inp.demux(vin) if p.size):
            if i in bad:
                noisy = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
                noisy.pts, noisy.dts, noisy.time_base = packet.pts, packet.dts, packet.time_base
                packet = noisy
            packet.stream = vout
            out.mux(packet)
    return dst


def test_damaged_frames_in_the_middle_are_skipped_and_reported(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.webm", 24, codec="libvpx-vp9", audio=None)
    src = VideoSource(_corrupt(clip, tmp_path / "one.mkv", {12}), name="one.mkv")
    n = _frames(src)
    assert n < 24 and src.skipped and "damaged frame(s) skipped" in src.warnings[0]


def test_many_damaged_frames_are_refused(tmp_path: Path) -> None:
    clip = write_video(tmp_path / "c.webm", 24, codec="libvpx-vp9", audio=None)
    src = VideoSource(_corrupt(clip, tmp_path / "many.mkv", set(range(5, 20))), name="many.mkv")
    with pytest.raises(CorruptImageError, match="many.mkv: .* damaged"):
        _frames(src)


# --- the shared evaluation set (skipped when ../shared is absent) --------------------------

needs_eval = pytest.mark.skipif(not (EVAL / "MANIFEST.tsv").exists(), reason="no ../shared/eval/video-formats")


@needs_eval
@pytest.mark.parametrize("name,error,words", [
    ("video/android_sample_malformed_free_box.mp4", CorruptImageError, "container is damaged"),
    ("video/android_invalid-bitstream.webm", CorruptImageError, "bitstream is damaged"),
])
def test_damaged_eval_files_get_specific_refusals(name: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        open_clip(EVAL / name, name=name)


@needs_eval
def test_apng_with_a_malformed_size_is_a_still_refused_by_the_still_path() -> None:
    """Pillow reads no animation control from it: it is a 524288x2048 still, over the pixel limit."""
    from alphacut.imageio.decode import decode
    from alphacut.media import clip_kind

    path = EVAL / "animated/apngkit_malformed-size.apng"
    assert clip_kind(path) is None
    with pytest.raises(ImageTooLargeError, match="524288x2048"):
        decode(path.read_bytes(), name=path.name)


@needs_eval
def test_every_other_eval_file_opens() -> None:
    refused = {"video/android_sample_malformed_free_box.mp4", "video/android_invalid-bitstream.webm",
               "animated/apngkit_malformed-size.apng"}
    rows = list(csv.DictReader(open(EVAL / "MANIFEST.tsv"), delimiter="\t"))
    for row in rows:
        if row["file"] not in refused:
            info = open_clip(EVAL / row["file"]).info
            assert info.width > 0 and info.expected_frames > 0, row["file"]
