"""PDF in (imageio/pdf.py): real PDFs written by PDFium and pypdf, read back by PDFium."""

from __future__ import annotations

import io
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
