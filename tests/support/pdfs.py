"""Real PDF files for the PDF tests, written here with pypdfium2 (PDFium's own writer) and, for the
encrypted one, pypdf (the standard security handler, RC4-128)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def photo(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A product-shot-like picture: a warm disc on a light, slightly noisy backdrop."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.float32)
    img[:] = (232, 234, 238)
    inside = ((xx - w / 2) / (w * 0.3)) ** 2 + ((yy - h / 2) / (h * 0.36)) ** 2 < 1
    img[inside] = (170 - seed * 10, 40 + seed * 15, 45)
    img += rng.normal(0, 2, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _jpeg(im: Image.Image) -> io.BytesIO:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=92)
    buf.seek(0)
    return buf


def catalogue(path: Path) -> Path:
    """Three A5-ish pages: (1) a JPEG photo and a 12 px logo, (2) no raster image at all,
    (3) a JPEG photo and a Flate-encoded (lossless) photo."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument.new()

    def place(page, im: Image.Image, x: float, y: float, *, jpeg: bool) -> None:
        obj = pdfium.PdfImage.new(pdf)
        if jpeg:
            obj.load_jpeg(_jpeg(im), pages=[page])
        else:
            obj.set_bitmap(pdfium.PdfBitmap.from_pil(im), pages=[page])
        obj.set_matrix(pdfium.PdfMatrix().scale(im.width * 0.75, im.height * 0.75).translate(x, y))
        page.insert_obj(obj)

    p1 = pdf.new_page(420, 595)
    place(p1, photo(1), 40, 300, jpeg=True)
    place(p1, photo(9, (12, 12)), 10, 10, jpeg=False)
    p1.gen_content()
    p2 = pdf.new_page(420, 595)  # text pages in real catalogues: no raster image
    p2.gen_content()
    p3 = pdf.new_page(420, 595)
    place(p3, photo(2), 40, 320, jpeg=True)
    place(p3, photo(3, (200, 160)), 40, 60, jpeg=False)
    p3.gen_content()
    pdf.save(str(path))
    pdf.close()
    return path


def encrypted(path: Path, source: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(source)))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="RC4-128")  # the standard handler without the cryptography package
    with path.open("wb") as fh:
        writer.write(fh)
    return path
