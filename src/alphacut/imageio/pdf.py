"""PDF in: the photos a PDF holds (the default), or its pages rendered (``--pdf pages``).

One PDF is one input and many parts: ``p3-1`` is page 3's first raster image, ``p3`` page 3
rendered. Each part becomes its own item (source id ``catalogue.pdf#p3-1``, output
``catalogue.p3-1.png``) in ``inputs.py``, the one expander, and is read only when its turn
comes (``read_part``), so a 500-page catalogue is never held in memory at once.

Why pypdfium2: it is PDFium (the PDF engine of Chrome) in a self-contained wheel for every
platform (no system library), under Apache-2.0/BSD terms that fit an MIT package. It both
renders pages and lists and extracts embedded images (JPEG streams unchanged, other encodings
decoded by PDFium itself), and it is hardened against malformed files by Chrome's fuzzing. The
alternatives fall short: PyMuPDF is AGPL; pypdf and pdfminer are pure Python, cannot render a
page and decode fewer image filters, slower.

Limits, each a clear error naming the file: encrypted PDFs (``encrypted``), files PDFium
cannot parse (``corrupt``), more pages than ``max_pages`` or more images than ``max_parts``
(``too-large``, for the whole PDF), an image or a rendered page over ``max_pixels``
(``too-large``, for that part only: the other parts still run). Images smaller than
``min_side`` on a side (bullets, rules, logos' pieces) and image masks are not photos: skipped,
and a page without any raster image is skipped too, each with a note.

PDFium is not thread-safe: every call goes through one lock.
"""

from __future__ import annotations

import atexit
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import CorruptImageError, EncryptedInputError, ImageTooLargeError, InputError
from .formats import DocumentOptions, Exploded, Format, Part, register

#: the PDF's own switches are the document options (formats.DocumentOptions)
PdfOptions = DocumentOptions
_LOCK = threading.RLock()
#: PDF signature: "%PDF-" at the start (readers also accept it a little later, after junk)
SIGNATURE = b"%PDF-"


@dataclass
class Listing:
    """A PDF's parts in order, and the notes for what was skipped."""

    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pages: int = 0


def is_pdf(head: bytes) -> bool:
    return SIGNATURE in head[:1024]


def explode(source: Path, *, name: str, options: DocumentOptions) -> Exploded:
    """The registry's document seam: the PDF's parts, each read when its turn comes."""
    listing = list_parts(source, options, name=name)

    def part(key: str) -> Part:
        return Part(key, lambda: read_part(source, key, options, name=name))

    return Exploded([part(k) for k in listing.keys], listing.notes)


register(Format(name="pdf", kind="document", accept=is_pdf, extensions=(".pdf",), mime="application/pdf",
                alpha=False, explode=explode))


def _open(path: Path, name: str) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise EncryptedInputError("the PDF is encrypted (password-protected); decrypt it first "
                                      "(e.g. `qpdf --decrypt in.pdf out.pdf`)", path=name) from None
        raise CorruptImageError(f"not a readable PDF ({msg.rstrip('.')})", path=name) from None
    except OSError as exc:
        raise InputError(f"cannot read the PDF ({exc.strerror or exc})", path=name) from None


class _Cache:
    """The last few opened documents, so reading part after part does not parse the file again.

    An open document holds its file open: whoever removes a PDF closes it first (``forget``:
    the web app, once an upload's photos are out), and all are closed at exit (before PDFium's
    own exit hook, which would warn about each one still open).
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.docs: OrderedDict[tuple[str, int, int], Any] = OrderedDict()
        self._closes_at_exit = False

    def get(self, path: Path, name: str) -> Any:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        doc = self.docs.get(key)
        if doc is None:
            doc = self.docs[key] = _open(path, name)
            if not self._closes_at_exit:  # registered after pypdfium2's hook, so it runs first
                atexit.register(self.close_all)
                self._closes_at_exit = True
            while len(self.docs) > self.size:
                _, old = self.docs.popitem(last=False)
                old.close()
        else:
            self.docs.move_to_end(key)
        return doc

    def close_all(self) -> None:
        with _LOCK:
            while self.docs:
                self.docs.popitem()[1].close()


_CACHE = _Cache()


def forget(path: Path) -> None:
    """Close the PDF at ``path`` if it is open (call before removing the file, so no open handle
    keeps its disk space)."""
    file = str(path.resolve())
    with _LOCK:
        for key in [k for k in _CACHE.docs if k[0] == file]:
            _CACHE.docs.pop(key).close()


def _images(page: Any) -> Iterator[Any]:
    import pypdfium2.raw as raw

    yield from page.get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,), max_depth=8)


def _is_mask(img: Any) -> bool:
    """An image mask (a stencil painted in the fill colour), not a picture."""
    try:
        return bool(img.get_metadata().bits_per_pixel == 1 and img.get_metadata().colorspace == 0)
    except Exception:  # noqa: BLE001 - metadata PDFium cannot read: treat as a picture
        return False


def list_parts(path: Path, options: PdfOptions = PdfOptions(), *, name: str | None = None) -> Listing:
    """The parts of the PDF at ``path`` (keys in page order) and notes on what is skipped.
    Raises for a PDF that cannot be used at all (encrypted, broken, too many pages or images)."""
    name = name or str(path)
    out = Listing()
    with _LOCK:
        doc = _CACHE.get(path, name)
        n = len(doc)
        out.pages = n
        if n == 0:
            raise CorruptImageError("the PDF has no pages", path=name)
        if n > options.max_pages:
            raise ImageTooLargeError(f"the PDF has {n} pages, over the limit of {options.max_pages} "
                                     "(--pdf-max-pages)", path=name)
        if options.mode == "pages":
            out.keys = [f"p{i + 1}" for i in range(n)]
            return out
        empty: list[int] = []
        small = 0
        for i in range(n):
            page = doc[i]
            count = 0
            try:
                for img in _images(page):
                    w, h = img.get_px_size()
                    if min(w, h) < options.min_side or _is_mask(img):
                        small += 1
                        continue
                    count += 1
                    out.keys.append(f"p{i + 1}-{count}")
                    if len(out.keys) > options.max_parts:
                        raise ImageTooLargeError(f"the PDF holds more than {options.max_parts} images "
                                                 "(use --pdf pages, or split it)", path=name)
            finally:
                page.close()
            if count == 0:
                empty.append(i + 1)
    if empty:
        out.notes.append(f"{name}: {_pages(empty)} no raster image; skipped (--pdf pages renders whole pages)")
    if small:
        out.notes.append(f"{name}: {small} image{'s' if small != 1 else ''} under {options.min_side} px or "
                         "image masks skipped (decoration, not photos)")
    return out


def _pages(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"page {numbers[0]} has"
    shown = ", ".join(str(n) for n in numbers[:10]) + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
    return f"pages {shown} have"


def parse_key(key: str) -> tuple[int, int | None]:
    """``p3-1`` → (3, 1); ``p3`` → (3, None)."""
    if not key.startswith("p"):
        raise ValueError(f"not a PDF part key: {key!r}")
    page, _, index = key[1:].partition("-")
    return int(page), (int(index) if index else None)


def read_part(path: Path, key: str, options: PdfOptions = PdfOptions(), *, name: str | None = None) -> bytes:
    """A part's bytes as a still image file (JPEG as embedded, else PNG)."""
    name = name or str(path)
    part_name = f"{name}#{key}"
    page_no, index = parse_key(key)
    with _LOCK:
        doc = _CACHE.get(path, name)
        if not 1 <= page_no <= len(doc):
            raise InputError(f"the PDF has no page {page_no}", path=part_name)
        page = doc[page_no - 1]
        try:
            if index is None:
                return _render(page, options, part_name)
            count = 0
            for img in _images(page):
                w, h = img.get_px_size()
                if min(w, h) < options.min_side or _is_mask(img):
                    continue
                count += 1
                if count == index:
                    if w * h > options.max_pixels:
                        raise ImageTooLargeError(f"{w}x{h} is {w * h / 1e6:.0f} megapixels, over the limit of "
                                                 f"{options.max_pixels / 1e6:.0f}", path=part_name)
                    return _extract(img, part_name)
            raise InputError(f"page {page_no} has no image {index}", path=part_name)
        finally:
            page.close()


def _extract(img: Any, part_name: str) -> bytes:
    """A JPEG stream as it is embedded (no re-encoding); anything else decoded by PDFium, as PNG."""
    try:
        if list(img.get_filters()) == ["DCTDecode"]:
            buf = io.BytesIO()
            img.extract(buf)
            return buf.getvalue()
        pil = img.get_bitmap(render=False).to_pil()
    except Exception as exc:  # noqa: BLE001 - PDFium's and Pillow's errors for a damaged stream
        raise CorruptImageError(f"the embedded image cannot be decoded ({exc})", path=part_name) from None
    if pil.mode not in ("RGB", "RGBA", "L", "LA", "I;16"):
        pil = pil.convert("RGB")
    buf = io.BytesIO()
    pil.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _render(page: Any, options: PdfOptions, part_name: str) -> bytes:
    w_pt, h_pt = page.get_size()
    scale = options.dpi / 72.0
    w, h = round(w_pt * scale), round(h_pt * scale)
    if w * h > options.max_pixels:
        raise ImageTooLargeError(f"page rendered at {options.dpi} dpi would be {w}x{h} ({w * h / 1e6:.0f} megapixels), "
                                 f"over the limit of {options.max_pixels / 1e6:.0f}; lower --pdf-dpi", path=part_name)
    try:
        pil = page.render(scale=scale, may_draw_forms=True).to_pil()
    except Exception as exc:  # noqa: BLE001
        raise CorruptImageError(f"the page cannot be rendered ({exc})", path=part_name) from None
    buf = io.BytesIO()
    pil.convert("RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()
