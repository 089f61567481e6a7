"""Browser tests: Playwright driving Debian Chromium against the real server and the real model.

Screenshots go to ``ALPHACUT_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.server import live_server, sample_product  # noqa: E402,F401

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed at /usr/bin/chromium"),
]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = Path(os.environ.get("ALPHACUT_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _drop(page, files: list[tuple[str, bytes]]) -> None:
    """A real drop event carrying files, on the drop zone."""
    payload = [{"name": n, "b64": base64.b64encode(b).decode()} for n, b in files]
    page.evaluate(
        """(files) => {
            const dt = new DataTransfer();
            for (const f of files) {
                const bin = Uint8Array.from(atob(f.b64), c => c.charCodeAt(0));
                dt.items.add(new File([bin], f.name, {type: 'image/png'}));
            }
            const zone = document.querySelector('#dropzone');
            for (const type of ['dragenter', 'dragover', 'drop']) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
            }
        }""",
        payload,
    )


def _open(browser, live, width=1280, height=800):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live.base}/?token={live.token}")
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_selector("body[data-sse='open']", timeout=10000)
    return context, page, requests


def test_drop_progress_edit_wand_export_zip(browser, live_server, shots):
    live = live_server
    context, page, requests = _open(browser, live)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    # the URL token became a cookie and left the address bar
    assert "token=" not in page.url
    cookies = context.cookies()
    assert any(c["name"].startswith("alphacut_") and c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)
    page.screenshot(path=str(shots / "ui-empty.png"))

    files = [(f"product-{i}.png", sample_product(i)) for i in range(3)]
    _drop(page, files)
    page.wait_for_selector(".qitem >> nth=2")
    # progress is visible while the queue works, then every file is done
    page.wait_for_selector(".qitem >> nth=2")
    page.screenshot(path=str(shots / "ui-queue-progress.png"))
    page.wait_for_selector("body[data-done='3']", timeout=120000)
    stages = page.eval_on_selector_all(".qitem", "els => els.map(e => e.dataset.stage)")
    assert stages == ["done", "done", "done"]
    seen = set(page.evaluate("() => Array.from(window.alphacut.stagesSeen)"))
    assert {"queued", "done"} <= seen and seen & {"decoding", "inferring", "refining", "encoding", "verifying"}, seen
    page.wait_for_selector("body[data-shown]")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "ui-queue.png"))

    # before/after is the default view; switch to the brush and paint across the subject
    job_id = page.evaluate("document.body.dataset.shown")
    box = page.locator("#canvas").bounding_box()
    page.keyboard.press("e")  # erase brush
    assert page.get_attribute("[data-tool='erase']", "aria-checked") == "true"
    before = _server_matte_mean(live, job_id)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 60, cy)
    page.mouse.down()
    for i in range(13):
        page.mouse.move(cx - 60 + i * 10, cy + (i % 2) * 4)
    page.mouse.up()
    page.wait_for_selector("body[data-edits='1']", timeout=20000)
    after = _server_matte_mean(live, job_id)
    assert after < before - 0.01, (before, after)
    assert page.is_enabled("#undo")
    page.mouse.move(cx + 70, cy - 40)
    page.wait_for_timeout(150)
    page.screenshot(path=str(shots / "ui-editor.png"))

    # undo restores it, redo brings the edit back
    page.keyboard.press("Control+z")
    page.wait_for_selector("body[data-edits='2']")
    assert abs(_server_matte_mean(live, job_id) - before) < 1e-6
    page.keyboard.press("Control+Shift+z")
    page.wait_for_selector("body[data-edits='3']")
    assert abs(_server_matte_mean(live, job_id) - after) < 1e-6

    # magic wand: restore the background region (clicked near a corner) with a rectangle selection
    page.keyboard.press("m")
    page.mouse.move(box["x"] + 30, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(cx, cy, steps=5)
    page.mouse.up()
    assert page.is_visible("#clear-selection")
    page.keyboard.press("w")
    page.click("[data-wand='restore']")
    wand_before = _server_matte_mean(live, job_id)
    img_box = _image_box_on_screen(page)
    page.mouse.click(img_box[0] + 6, img_box[1] + 6)
    page.wait_for_selector("body[data-edits='4']", timeout=20000)
    wand_after = _server_matte_mean(live, job_id)
    assert wand_after > wand_before + 0.01, (wand_before, wand_after)
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.mouse.move(cx + 40, cy - 30)
    page.wait_for_timeout(200)
    page.screenshot(path=str(shots / "ui-editor-wand.png"))

    # export everything as a ZIP (WebP, over white) and check its contents
    page.select_option("#export-format", "webp")
    page.check("#export-bg-on")
    with page.expect_download() as dl:
        page.click("#download-zip")
    data = Path(dl.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = sorted(zf.namelist())
        assert names == ["manifest.json", "product-0-cutout.webp", "product-1-cutout.webp", "product-2-cutout.webp"]
        import json

        manifest = json.loads(zf.read("manifest.json"))
        assert [f["status"] for f in manifest["files"]] == ["done"] * 3
        assert sum(1 for f in manifest["files"] if f["edited"]) == 1
        from PIL import Image

        for n in names[1:]:
            im = Image.open(io.BytesIO(zf.read(n)))
            assert im.format == "WEBP" and im.size == (480, 360)

    # single download of the shown image: a 16-bit PNG
    page.select_option("#export-format", "png16")
    page.uncheck("#export-bg-on")
    with page.expect_download() as dl:
        page.click("#download-one")
    from PIL import Image

    one = Image.open(dl.value.path())
    assert one.format == "PNG" and one.mode in ("RGBA;16", "I;16", "RGBA") and one.size == (480, 360)

    # the settings drawer: models with licence, the capability panel
    page.click("#open-settings")
    page.wait_for_selector("#models .model[data-model='u2netp']")
    page.wait_for_selector("#capabilities dl")
    assert "Apache" in page.inner_text("#models .model[data-model='u2netp']")
    assert "animations ≤ 5,000 frames" in page.inner_text("#capabilities"), page.inner_text("#capabilities")
    page.screenshot(path=str(shots / "ui-models.png"))
    page.keyboard.press("Escape")

    # nothing outside this server's origin was requested
    outside = [u for u in requests if not (u.startswith(live.base + "/") or u.startswith("blob:") or u.startswith("data:"))]
    assert outside == []
    assert not [e for e in console_errors if "favicon" not in e], console_errors
    context.close()


def test_narrow_window_is_usable(browser, live_server, shots):
    context, page, _ = _open(browser, live_server, width=420, height=860)
    page.wait_for_selector("body[data-done]")
    assert page.is_visible("#dropzone")
    assert page.is_visible("#download-one")
    # nothing wider than the window
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    page.screenshot(path=str(shots / "ui-narrow.png"), full_page=True)
    context.close()


def test_page_without_token_is_locked(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    resp = page.goto(live_server.base + "/")
    assert resp.status == 401
    assert "link printed in the terminal" in page.inner_text("body")
    context.close()


def _server_matte_mean(live, job_id: str) -> float:
    es = live.state.edits[job_id]
    with es.lock:
        return float(es.history.matte.mean())


def _image_box_on_screen(page) -> tuple[float, float]:
    canvas = page.locator("#canvas").bounding_box()
    pan = page.evaluate("() => { const v = window.alphacut.viewer; return [v.panX, v.panY]; }")
    return canvas["x"] + pan[0], canvas["y"] + pan[1]


def teardown_module(module) -> None:
    target = os.environ.get("ALPHACUT_DOCS_IMG")
    src = os.environ.get("ALPHACUT_SCREENSHOTS")
    if target and src:
        for name in ("ui-queue.png", "ui-editor.png"):
            if (Path(src) / name).exists():
                shutil.copy(Path(src) / name, Path(target) / name)
