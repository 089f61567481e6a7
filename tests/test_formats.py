"""The format registry: every format round-trips, every output verifies, and the tables that
used to be written by hand (CLI choices, server exports, input endings) equal the registry's."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import UnsupportedFormatError, UsageError, VerificationError
from alphacut.imageio import formats
from alphacut.imageio.decode import decode, decode_still
from alphacut.imageio.encode import EncodeSettings, StraightRGBA, encode_pixels
from alphacut.imageio.formats import Check, Format, Part
from alphacut.imageio.verify import read_back_pillow, verify_encoded

from conftest import CORPUS, encode_image, subject_image

#: a real file of every registered format (a format registered without one fails the test below)
SAMPLES = {
    "png": lambda: encode_image(subject_image(40, 30), "PNG"),
    "jpeg": lambda: encode_image(subject_image(40, 30), "JPEG", quality=90),
    "webp": lambda: encode_image(subject_image(40, 30), "WEBP", lossless=True),
    "avif": lambda: (CORPUS / "avif/transparency.avif").read_bytes(),
    "heif": lambda: (CORPUS / "heic/zPug_3.heic").read_bytes(),
    "tiff": lambda: encode_image(subject_image(40, 30), "TIFF"),
    "bmp": lambda: encode_image(subject_image(40, 30), "BMP"),
    "gif": lambda: encode_image(subject_image(40, 30), "GIF"),
}


def test_every_registered_format_has_a_sample() -> None:
    # documents (PDF) explode into stills instead of decoding: their samples are in test_pdf.py;
    # moving-picture formats (kind video) have theirs in tests/test_media_*.py
    assert set(SAMPLES) == {f.name for f in formats.all_formats() if f.kind == "still"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_format_round_trips_through_sniff_and_decode(name: str) -> None:
    data = SAMPLES[name]()
    fmt = formats.sniff(data[: formats.SNIFF_BYTES], name=f"x{formats.by_name(name).extension}")
    assert fmt is formats.by_name(name)
    picture = decode(data, name="sample")
    assert picture.format == name and picture.width > 0 and picture.height > 0
    assert picture.rgb.dtype in (np.uint8, np.uint16) and picture.rgb.shape[2] == 3
    for ending in fmt.extensions:  # each ending names it, in any case
        assert formats.by_extension(ending) is fmt and formats.by_extension(f"a{ending.upper()}") is fmt
    assert formats.by_name(name.upper()) is fmt and all(formats.by_name(a) is fmt for a in fmt.aliases)
    assert fmt.mime.startswith("image/")


def _cutout_pixels(depth: int) -> StraightRGBA:
    rgb = subject_image(64, 48)
    alpha = np.zeros((48, 64), np.float32)
    alpha[8:40, 8:56] = 1.0
    alpha[8:40, 4:8] = np.linspace(0.1, 0.9, 4, dtype=np.float32)  # a soft edge
    return StraightRGBA(rgb, alpha, depth)


OUTPUT_CASES = [(f.name, depth) for f in formats.output_formats("still") for depth in f.bit_depths]


@pytest.mark.parametrize("name,depth", OUTPUT_CASES)
def test_every_output_format_encodes_and_verifies_at_every_depth(name: str, depth: int) -> None:
    pixels = _cutout_pixels(depth)
    settings = EncodeSettings(name, depth)
    data = encode_pixels(pixels, settings)
    assert formats.sniff(data[:64]).name == name
    verify_encoded(data, pixels, settings, name="out")
    other = next(f.name for f in formats.output_formats("still") if f.name != name)
    with pytest.raises(VerificationError, match=f"expected a {other.upper()} signature"):
        verify_encoded(data, pixels, EncodeSettings(other), name="out")


def test_the_shipped_outputs_and_their_depths() -> None:
    """The product's promise (PNG 8/16, WebP, AVIF, TIFF 8/16), as the registry states it."""
    assert {f.name: f.bit_depths for f in formats.output_formats("still")} == {
        "png": (8, 16), "webp": (8,), "avif": (8,), "tiff": (8, 16)}
    assert formats.default_output("still").name == "png" and formats.default_output("document").name == "png"
    assert formats.by_name("tiff").extension == ".tif" and formats.by_name("tif").name == "tiff"
    assert formats.by_extension(".jpg").name == "jpeg" and not formats.by_name("jpeg").alpha
    assert formats.by_extension(".txt") is None and formats.find("eps") is None


def test_settings_are_checked_against_the_registry() -> None:
    with pytest.raises(UsageError, match="unknown output format 'jpeg'; choose one of png, webp, avif, tiff"):
        EncodeSettings("jpeg")
    with pytest.raises(UsageError, match="WEBP output is 8-bit only; use PNG or TIFF for 16-bit"):
        EncodeSettings("webp", 16)
    assert EncodeSettings("tif", 16).format == "tiff"  # an alias names its format


def test_moving_pictures_default_to_webm_and_webp() -> None:
    # the media package registers them (alphacut.media.formats)
    assert formats.default_output("video").name == "webm"
    assert formats.default_output("animation").name == "webp"


def test_unknown_iso_media_is_refused_naming_what_is_read() -> None:
    raw = b"\x00\x00\x00\x14ftypcrx \x00\x00\x00\x01crx "  # Canon raw: ISO media, neither image nor video
    with pytest.raises(UnsupportedFormatError, match="ISO media file \\(brand 'crx '\\).*png, jpeg"):
        formats.sniff(raw, name="shot.cr3")
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
    assert formats.iso_brands(mp4) == (b"mp42", frozenset({b"mp42", b"isom"}))
    assert formats.sniff(mp4).name == "mp4"


def test_registration_refuses_clashes_and_bad_declarations() -> None:
    png = formats.by_name("png")
    with pytest.raises(ValueError, match="already registered"):
        formats.register(png)
    with pytest.raises(ValueError, match=r"\.png already belong\(s\) to png"):
        formats.register(dataclasses.replace(png, name="png2", aliases=()))
    with pytest.raises(ValueError, match="needs a Check"):
        dataclasses.replace(png, check=None)
    with pytest.raises(ValueError, match="only a document"):
        dataclasses.replace(png, explode=lambda source, *, name: iter([Part("p1-1", b"")]))
    with pytest.raises(ValueError, match="kind must be"):
        dataclasses.replace(png, kind="film")


# --- a format registered later is seen everywhere --------------------------------------------


def _encode_ppm(pixels: np.ndarray | StraightRGBA, settings: EncodeSettings) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels)).save(buf, "PPM")
    return buf.getvalue()


PPM = Format("ppm", "still", lambda h: h[:2] in (b"P5", b"P6"), (".ppm", ".pgm"), "image/x-portable-pixmap",
             alpha=False, bit_depths=(8,), decoder=decode_still, encoder=_encode_ppm,
             check=Check(read_back_pillow, lambda s: (1.0, 0.5)))


@pytest.fixture
def ppm():
    """PPM (Pillow reads and writes it) registered for one test, as a plugin would."""
    formats.register(PPM)
    try:
        yield PPM
    finally:
        formats.unregister("ppm")
    assert formats.find("ppm") is None


def test_a_registered_format_is_sniffed_decoded_expanded_encoded_and_offered(ppm, tmp_path: Path) -> None:
    from alphacut.cli import build_parser
    from alphacut.inputs import expand

    rgb = subject_image(40, 30)
    data = encode_image(rgb, "PPM")
    assert formats.sniff(data[:64]) is ppm
    assert np.array_equal(decode(data, name="a.ppm").rgb, rgb)

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.ppm").write_bytes(data)
    (folder / "broken.pgm").write_bytes(b"")  # its ending says image: reported, not skipped
    (folder / "notes.txt").write_bytes(b"a note, not an image")
    (folder / "mislabelled.dat").write_bytes(data)  # no image ending: taken because it sniffs
    assert sorted(i.rel for i in expand([str(folder)])) == ["a.ppm", "broken.pgm", "mislabelled.dat"]

    settings = EncodeSettings("ppm")
    out = encode_pixels(rgb, settings)
    verify_encoded(out, rgb, settings, name="out.ppm")

    remove = next(a for a in build_parser()._subparsers._group_actions[0].choices["remove"]._actions
                  if "--format" in a.option_strings)
    assert "ppm" in remove.choices


class _AnimatedWebP:
    """A frame encoder for the seam's test: frames gathered, one animated WebP written on close
    (Pillow's ``save_all``). The media package's real one streams; this shows the protocol."""

    kinds = ("animation",)

    def open(self, path: Path, settings: EncodeSettings, *, width: int, height: int, rate: Fraction):
        frames: list[Image.Image] = []

        class Writer:
            def write(self, pixels: np.ndarray) -> None:
                assert pixels.shape[:2] == (height, width)
                frames.append(Image.fromarray(pixels))

            def close(self) -> None:
                frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:], lossless=True,
                               duration=int(1000 / rate))

        return Writer()


def test_a_frame_encoder_plugs_into_a_registered_format(tmp_path: Path) -> None:
    webp = formats.by_name("webp")  # the media package's animated WebP
    before = formats.names(formats.output_formats())
    formats.register(dataclasses.replace(webp, frame_encoder=_AnimatedWebP()), replace=True)
    try:
        animated = formats.by_name("webp")
        assert animated.writes("animation") and animated.writes("still") and not animated.writes("video")
        assert formats.default_output("animation") is animated
        assert formats.names(formats.output_formats()) == before  # same place
        writer = animated.frame_encoder.open(tmp_path / "a.webp", EncodeSettings("webp"), width=40, height=30,
                                             rate=Fraction(10))
        for seed in range(3):
            writer.write(subject_image(40, 30, seed=seed))
        writer.close()
        with Image.open(tmp_path / "a.webp") as img:
            assert img.n_frames == 3 and img.size == (40, 30)
    finally:
        formats.register(webp, replace=True)
    assert formats.by_name("webp").frame_encoder is webp.frame_encoder


# --- the tables that derive from the registry ------------------------------------------------


def test_cli_format_choices_are_the_registry_outputs() -> None:
    from alphacut.cli import build_parser

    remove = build_parser()._subparsers._group_actions[0].choices["remove"]
    action = next(a for a in remove._actions if "--format" in a.option_strings)
    # "frames" (PNG frames of a clip in a folder or ZIP) is the media package's, not a file format
    assert list(action.choices) == formats.names(formats.output_formats()) + ["frames"]


def test_server_export_tables_come_from_the_registry() -> None:
    pytest.importorskip("fastapi")
    from alphacut.server.routes_jobs import EXPORT_EXT, EXPORT_MEDIA, EXPORTS

    assert list(EXPORTS) == ["png", "png16", "webp", "avif", "tiff", "mask"]
    for name, export in EXPORTS.items():
        fmt = export.format
        assert formats.by_name(export.options["format"]) is fmt and fmt.writes("still")
        assert EXPORT_EXT[name] == fmt.extension and EXPORT_MEDIA[name] == fmt.mime
        depth = export.options.get("bit_depth")
        assert depth is None or depth in fmt.bit_depths
    assert {e.format.name for e in EXPORTS.values()} == {f.name for f in formats.output_formats("still")}


def test_imageio_does_not_import_matte_or_the_pipeline() -> None:
    code = ("import sys; import alphacut.imageio.decode, alphacut.imageio.encode, alphacut.imageio.verify; "
            "from alphacut.imageio import formats; formats.all_formats(); "
            "print(sorted(m for m in sys.modules if m.startswith('alphacut.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "alphacut.imageio.stills" in loaded
    for room in ("alphacut.matte", "alphacut.pipeline", "alphacut.models", "alphacut.jobs", "alphacut.server"):
        assert room not in loaded, loaded
