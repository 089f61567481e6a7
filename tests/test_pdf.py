"""PDF in (imageio/pdf.py): real PDFs written by PDFium and pypdf, read back by PDFium."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from support.pdfs import catalogue, encrypted, photo  # noqa: E402

from alphacut.errors import CorruptImageError, EncryptedInputError, ImageTooLargeError, UsageError  # noqa: E402
from alphacut.imageio.pdf import PdfOptions, is_pdf, list_parts, parse_key, read_part  # noqa: E402


@pytest.fixture(scope="module")
def cat(tmp_path_factory) -> Path:
    return catalogue(tmp_path_factory.mktemp("pdf") / "catalogue.pdf")


def test_images_mode_lists_photos_and_notes_what_it_skips(cat):
    listing = list_parts(cat, name="catalogue.pdf")
    assert listing.keys == ["p1-1", "p3-1", "p3-2"]
    assert listing.pages == 3
    assert any("page 2 has no raster image; skipped" in n for n in listing.notes)
    assert any("1 image under 32 px" in n for n in listing.notes)  # the 12 px logo


def test_embedded_jpeg_comes_out_unchanged_and_flate_as_png(cat):
    jpeg = read_part(cat, "p1-1")
    assert jpeg[:3] == b"\xff\xd8\xff"  # the JPEG stream as embedded, not re-encoded
    im = Image.open(io.BytesIO(jpeg))
    assert im.size == (240, 180)
    flate = read_part(cat, "p3-2")
    assert flate[:8] == b"\x89PNG\r\n\x1a\n"
    got = np.asarray(Image.open(io.BytesIO(flate)).convert("RGB"))
    assert got.shape == (160, 200, 3)
    assert np.array_equal(got, np.asarray(photo(3, (200, 160))))  # lossless: every pixel


def test_pages_mode_renders_at_the_dpi(cat):
    opts = PdfOptions(mode="pages", dpi=144)
    assert list_parts(cat, opts).keys == ["p1", "p2", "p3"]
    page = Image.open(io.BytesIO(read_part(cat, "p2", opts)))
    assert page.size == (840, 1190)  # 420x595 pt at 144 dpi
    default = Image.open(io.BytesIO(read_part(cat, "p1", PdfOptions(mode="pages"))))
    assert abs(default.size[0] - 1750) <= 1 and abs(default.size[1] - 2479) <= 1  # 300 dpi by default


def test_encrypted(cat, tmp_path):
    locked = encrypted(tmp_path / "locked.pdf", cat)
    with pytest.raises(EncryptedInputError) as e:
        list_parts(locked, name="locked.pdf")
    assert e.value.code == "encrypted" and "locked.pdf" in str(e.value) and "password" in str(e.value)


@pytest.mark.parametrize("data", [b"%PDF-1.7\n this is not a PDF body at all\n%%EOF\n", b"%PDF-", b"%PDF-1.4\n" + b"\0" * 500])
def test_broken(tmp_path, data):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(data)
    with pytest.raises(CorruptImageError) as e:
        list_parts(bad, name="broken.pdf")
    assert "broken.pdf" in str(e.value)


def test_enormous(cat):
    with pytest.raises(ImageTooLargeError) as e:
        list_parts(cat, PdfOptions(max_pages=2), name="catalogue.pdf")
    assert "3 pages, over the limit of 2" in str(e.value)
    with pytest.raises(ImageTooLargeError) as e:
        list_parts(cat, PdfOptions(max_parts=2), name="catalogue.pdf")
    assert "more than 2 images" in str(e.value)
    # one part over the pixel limit fails alone; the others still read
    small = PdfOptions(max_pixels=40_000)
    with pytest.raises(ImageTooLargeError) as e:
        read_part(cat, "p1-1", small, name="catalogue.pdf")
    assert "catalogue.pdf#p1-1" in str(e.value)
    assert read_part(cat, "p3-2", small)[:4] == b"\x89PNG"  # 200x160 = 32,000 pixels
    with pytest.raises(ImageTooLargeError) as e:
        read_part(cat, "p1", PdfOptions(mode="pages", dpi=2400), name="catalogue.pdf")
    assert "lower --pdf-dpi" in str(e.value)


def test_keys_and_signature():
    assert parse_key("p3-1") == (3, 1) and parse_key("p12") == (12, None)
    assert is_pdf(b"%PDF-1.7\n") and is_pdf(b"\xef\xbb\xbf%PDF-1.4") and not is_pdf(b"\x89PNG")
    with pytest.raises(UsageError):
        PdfOptions(dpi=5)


# --- through the one input expander (inputs.py) ---------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import zipfile  # noqa: E402

from alphacut.inputs import beside, distinct_outputs, expand, mirror  # noqa: E402
from alphacut.imageio.formats import DocumentOptions, by_name, sniff  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "alphacut.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_registered_as_a_document(cat):
    fmt = sniff(cat.read_bytes()[:64], name="catalogue.pdf")
    assert fmt is by_name("pdf") and fmt.kind == "document" and fmt.mime == "application/pdf"
    from alphacut.errors import UnsupportedFormatError
    from alphacut.imageio.decode import decode

    with pytest.raises(UnsupportedFormatError, match="holds a document"):  # never decoded as one image
        decode(cat.read_bytes(), name="catalogue.pdf")


def test_one_pdf_many_items_with_their_own_names(cat, tmp_path):
    notes: list[str] = []
    items = expand([str(cat)], notes=notes)
    assert [i.part for i in items] == ["p1-1", "p3-1", "p3-2"]
    assert items[0].source_id == f"{cat.resolve()}#p1-1" and items[0].name == f"{cat}#p1-1"
    assert [i.rel for i in items] == ["catalogue.p1-1", "catalogue.p3-1", "catalogue.p3-2"]
    assert sorted(distinct_outputs(items, mirror(".png"), on_disk=tmp_path).values()) == [
        "catalogue.p1-1.png", "catalogue.p3-1.png", "catalogue.p3-2.png"]
    assert sorted(Path(v).name for v in distinct_outputs(items, beside(".png"), on_disk=Path(".")).values()) == [
        "catalogue.p1-1.cutout.png", "catalogue.p3-1.cutout.png", "catalogue.p3-2.cutout.png"]
    assert any("page 2" in n for n in notes)
    assert items[1].read()[:3] == b"\xff\xd8\xff"
    pages = expand([str(cat)], documents=DocumentOptions(mode="pages", dpi=72))
    assert [i.rel for i in pages] == ["catalogue.p1", "catalogue.p2", "catalogue.p3"]


def test_problem_documents_are_one_failed_item(cat, tmp_path):
    locked = encrypted(tmp_path / "locked.pdf", cat)
    (tmp_path / "text-only.pdf").write_bytes(_text_only_pdf())
    zpath = tmp_path / "docs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.write(cat, "catalogue.pdf")
    items = expand([str(locked), str(tmp_path / "text-only.pdf"), str(zpath)])
    assert [(i.name.rsplit("/", 1)[-1], i.problem[0]) for i in items] == [
        ("locked.pdf", "encrypted"), ("text-only.pdf", "empty"), ("docs.zip!catalogue.pdf", "unsupported-format")]
    assert "password" in str(items[0].error()) and "--pdf pages" in str(items[1].error())


def _text_only_pdf() -> bytes:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()
    pdf.new_page(300, 300).gen_content()
    import io as _io

    buf = _io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


@pytest.mark.slow
def test_cli_remove_a_catalogue(cat, tmp_path):
    """`alphacut remove catalogue.pdf -o out/`: the photos, named by page and index, with a note for
    the page without one."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "catalogue.pdf").write_bytes(cat.read_bytes())
    proc = _cli("remove", "catalogue.pdf", "-o", "out/", "--model", "u2netp", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (work / "out").iterdir()) == ["catalogue.p1-1.png", "catalogue.p3-1.png",
                                                              "catalogue.p3-2.png"]
    im = Image.open(work / "out" / "catalogue.p3-2.png")
    assert im.mode == "RGBA" and im.size == (200, 160)
    a = np.asarray(im)[..., 3]
    assert a[2, 2] == 0 and a[80, 100] == 255
    assert "note: catalogue.pdf: page 2 has no raster image; skipped" in proc.stderr
    beside_run = _cli("remove", "catalogue.pdf", "--model", "u2netp", "--pdf", "pages", "--pdf-dpi", "36", cwd=work)
    assert beside_run.returncode == 0, beside_run.stderr
    assert (work / "catalogue.p2.cutout.png").exists() and Image.open(work / "catalogue.p2.cutout.png").size == (210, 298)


@pytest.mark.slow
def test_several_inputs_beside_them(cat, tmp_path):
    """A PDF among other inputs, no -o: through the engine, each photo's cutout beside the PDF."""
    (tmp_path / "catalogue.pdf").write_bytes(cat.read_bytes())
    photo(6).save(tmp_path / "shot.png")
    proc = _cli("remove", "catalogue.pdf", "shot.png", "--model", "u2netp", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.glob("*.cutout.png")) == [
        "catalogue.p1-1.cutout.png", "catalogue.p3-1.cutout.png", "catalogue.p3-2.cutout.png", "shot.cutout.png"]


@pytest.mark.slow
def test_batch_manifest_rows_and_a_bad_pdf_does_not_stop_it(cat, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "catalogue.pdf").write_bytes(cat.read_bytes())
    encrypted(inp / "locked.pdf", cat)
    photo(4).save(inp / "shot.png")
    proc = _cli("remove", "in", "-o", "out.zip", "--model", "u2netp", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # one input failed, the rest done
    rows = [json.loads(line) for line in (tmp_path / "out.manifest.jsonl").read_text().splitlines()]
    by_input = {Path(r["input"]).name: r for r in rows}
    assert {k: v["status"] for k, v in by_input.items()} == {
        "catalogue.pdf#p1-1": "done", "catalogue.pdf#p3-1": "done", "catalogue.pdf#p3-2": "done",
        "locked.pdf": "failed", "shot.png": "done"}
    assert by_input["locked.pdf"]["code"] == "encrypted"
    assert by_input["catalogue.pdf#p3-1"]["output_rel"] == "catalogue.p3-1.png"
    names = zipfile.ZipFile(tmp_path / "out.zip").namelist()
    assert {"catalogue.p1-1.png", "catalogue.p3-1.png", "catalogue.p3-2.png", "shot.png"} <= set(names)


# --- the web app: one PDF, a group of results --------------------------------------------------

from support.server import start_server  # noqa: E402


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    live, stop = start_server(tmp_path_factory.mktemp("pdfweb"))
    try:
        yield live
    finally:
        stop()


@pytest.mark.slow
def test_upload_a_pdf_to_the_web_app(web, cat, tmp_path):
    with web.client() as c:
        r = c.post("/api/jobs", files={"file": ("catalogue.pdf", cat.read_bytes(), "application/pdf")})
        assert r.status_code == 201, r.text
        group = r.json()
        assert group["document"] == "catalogue.pdf" and group["failed"] == []
        assert [j["name"] for j in group["jobs"]] == ["catalogue.p1-1.jpg", "catalogue.p3-1.jpg", "catalogue.p3-2.png"]
        assert any("page 2" in n for n in group["notes"])
        for j in group["jobs"]:
            done = web.wait_done(c, j["id"])
            assert done["stage"] == "done", done
        res = c.get(f"/api/jobs/{group['jobs'][2]['id']}/result", params={"format": "png"})
        assert res.status_code == 200 and Image.open(io.BytesIO(res.content)).size == (200, 160)
        locked = encrypted(tmp_path / "locked.pdf", cat)
        r = c.post("/api/jobs", files={"file": ("locked.pdf", locked.read_bytes(), "application/pdf")})
        assert r.status_code == 422 and r.json()["code"] == "encrypted" and "locked.pdf" in r.json()["reason"]
    leftovers = [p.name for p in web.state.uploads_dir.iterdir() if p.stat().st_size == len(cat.read_bytes())]
    assert leftovers == []  # the PDF itself is gone once its photos are queued
    assert _held_open(web.state.uploads_dir) == []  # and no open document keeps its disk space


def _held_open(folder: Path) -> list[str]:
    """Files under ``folder`` that this process (the in-process test server) holds open."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_drop_a_pdf_in_the_browser(web, cat):
    sync_api = pytest.importorskip("playwright.sync_api")
    import base64

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = b.new_page()
            page.goto(f"{web.base}/?token={web.token}")
            page.wait_for_selector("body[data-ready='1']")
            page.evaluate(
                """(b64) => {
                    const bin = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                    const dt = new DataTransfer();
                    dt.items.add(new File([bin], 'catalogue.pdf', {type: 'application/pdf'}));
                    const zone = document.querySelector('#dropzone');
                    for (const type of ['dragenter', 'dragover', 'drop']) {
                        zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
                    }
                }""", base64.b64encode(cat.read_bytes()).decode())
            read = """() => [...document.querySelectorAll('#queue .qitem')].filter(li => li.querySelector('.qgroup'))
                .map(li => ({stage: li.dataset.stage, name: li.querySelector('.qname').textContent,
                             group: li.querySelector('.qgroup').textContent,
                             note: li.querySelector('.qnote') ? li.querySelector('.qnote').textContent : null}))"""
            import time

            end = time.monotonic() + 120
            while True:  # polled from here: the page's CSP (no eval) rules out wait_for_function
                rows = page.evaluate(read)
                if sum(r["stage"] == "done" for r in rows) == 3 or time.monotonic() > end:
                    break
                time.sleep(0.25)
            names = [r["name"] for r in rows]
            groups = [r["group"] for r in rows]
            note = [r["note"] for r in rows if r["note"]]
        finally:
            b.close()
    assert names == ["catalogue.p1-1.jpg", "catalogue.p3-1.jpg", "catalogue.p3-2.png"]
    assert groups == ["catalogue.pdf"] * 3
    assert len(note) == 1 and "page 2 has no raster image" in note[0]
