import io

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import EmptyFileError, UnsupportedFormatError
from alphacut.imageio.formats import sniff as sniff_format

from conftest import CORPUS, encode_image, subject_image


def sniff(head: bytes, **kw: object) -> str:
    """The sniffed format's name (the registry returns the ``Format``)."""
    return sniff_format(head, **kw).name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fmt,pil_fmt",
    [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP"), ("avif", "AVIF"), ("tiff", "TIFF"),
     ("bmp", "BMP"), ("gif", "GIF")],
)
def test_sniffs_what_pillow_writes(fmt: str, pil_fmt: str) -> None:
    data = encode_image(subject_image(32, 24), pil_fmt)
    assert sniff(data[:64]) == fmt


def test_sniffs_heif_and_avif_containers() -> None:
    assert sniff((CORPUS / "heic/zPug_3.heic").read_bytes()[:64]) == "heif"
    assert sniff((CORPUS / "avif/transparency.avif").read_bytes()[:64]) == "avif"


def test_empty_file_has_its_own_error() -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        sniff(b"", name="x.png")


def test_unknown_bytes_name_the_file() -> None:
    with pytest.raises(UnsupportedFormatError) as exc:
        sniff(b"%!PS-Adobe-3.0 EPSF-3.0 not an image", name="doc.png")  # (a PDF is a registered document now)
    assert "doc.png" in str(exc.value) and "not a supported image" in str(exc.value)


def test_iso_media_that_is_not_an_image_is_refused() -> None:
    raw = b"\x00\x00\x00\x14ftypcrx \x00\x00\x00\x01crx "  # an MP4 is a video format now (media)
    with pytest.raises(UnsupportedFormatError, match="ISO media"):
        sniff(raw)
