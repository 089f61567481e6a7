"""The format registry: what alphacut knows about each file format, declared once.

In the spirit of Pillow's ``register_open``/``register_save`` and its plugins' ``_accept``: a
``Format`` names its signature test, file endings, MIME type, kind, the bit depths it writes,
its decoder, its encoder and how its output is verified, and ``register`` makes it known.
Sniffing, decoding, encoding, verification tolerances, the endings taken as images in folders,
output names, the CLI's ``--format`` choices and the server's export and capability tables
all read this registry instead of keeping lists of their own.

The still formats alphacut ships are declared in ``imageio/stills.py``. Other kinds plug in
through the same ``register`` call:

- **animation / video** (the media package): a ``Format`` whose ``frames`` reads a clip as
  a stream of ``Picture``s and whose ``frame_encoder`` writes one (``FrameEncoder`` /
  ``FrameWriter`` below: a stream of frames in, one container out, unlike ``StillEncoder``'s
  one array in, bytes out). A format that is both (WebP writes stills and animations) is
  registered again with ``register(dataclasses.replace(by_name("webp"), frame_encoder=...),
  replace=True)``. Each frame goes through the same ``steps.Stages`` as a still.
- **document** (PDF): a ``Format`` with ``explode``, which turns one input into many parts
  (``Part``: a key such as ``p3-1`` and a still image's bytes); ``inputs.expand`` is where a
  document becomes one ``Item`` per part (source id ``doc.pdf#p3-1``, rel ``doc.p3-1``), each
  then sniffed and decoded as a still.

A module that ships formats with alphacut adds its name to ``BUILTIN_MODULES``: the registry
imports those on first use, so every caller sees every shipped format without importing it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from ..errors import EmptyFileError, UnsupportedFormatError, UsageError

if TYPE_CHECKING:
    import numpy as np

    from .decode import Picture
    from .encode import StraightRGBA

Kind = Literal["still", "animation", "video", "document"]
KINDS: tuple[Kind, ...] = ("still", "animation", "video", "document")

#: bytes needed to decide; ISO-BMFF needs the whole ftyp box (brands list)
SNIFF_BYTES = 64

#: modules that register the formats alphacut ships, imported on the registry's first use
BUILTIN_MODULES: list[str] = ["alphacut.imageio.stills", "alphacut.imageio.pdf", "alphacut.media.formats"]

#: the preferred output for each kind of input, when the user names none (a document's parts
#: are stills); ``default_output`` falls back to the first format that writes the kind
DEFAULT_OUTPUT: dict[Kind, str] = {"still": "png", "document": "png", "animation": "webp", "video": "webm"}


# --- what an encoder is told -------------------------------------------------------------------


@dataclass(frozen=True)
class EncodeSettings:
    """What the encoders are told: the format, its bit depth, lossless or lossy at a level,
    and the metadata to carry. Checked against the registry when made."""

    format: str = "png"
    bit_depth: int = 8
    #: WebP/AVIF: lossless when True; otherwise ``quality`` (0-100) applies
    lossless: bool = True
    quality: int = 90
    icc_profile: bytes | None = None
    exif: bytes | None = None

    def __post_init__(self) -> None:
        fmt = output_format(self.format, "still")
        object.__setattr__(self, "format", fmt.name)  # an alias ("tif") names its format
        check_depth(fmt, self.bit_depth)


def check_depth(fmt: "Format", bit_depth: int) -> None:
    """A UsageError unless ``fmt`` writes ``bit_depth`` bits per channel."""
    if bit_depth not in (8, 16):
        raise UsageError("bit depth must be 8 or 16")
    if bit_depth not in fmt.bit_depths:
        depths = "/".join(f"{d}-bit" for d in fmt.bit_depths)
        deep = [f.name.upper() for f in output_formats() if bit_depth in f.bit_depths]
        raise UsageError(f"{fmt.name.upper()} output is {depths} only; use {' or '.join(deep)} for {bit_depth}-bit")


# --- the seams each kind plugs into ----------------------------------------------------------


class StillDecoder(Protocol):
    """Bytes of a file of ``fmt`` → one upright ``Picture`` (the first frame of an animation),
    refusing more than ``max_pixels``; errors are ``InputError``s naming ``name``."""

    def __call__(self, data: bytes, fmt: "Format", *, name: str, max_pixels: int) -> "Picture": ...


class StillEncoder(Protocol):
    """One image's exact pixels ((H,W), (H,W,3) or (H,W,4) uint8/uint16, or a strip source)
    → the file's bytes."""

    def __call__(self, pixels: "np.ndarray | StraightRGBA", settings: EncodeSettings) -> bytes: ...


class FrameDecoder(Protocol):
    """Seam for animation and video input (the media package): a clip → its frames, in order,
    each an upright ``Picture``. Not implemented for any shipped format yet."""

    def __call__(self, source: Path, fmt: "Format", *, name: str, max_pixels: int) -> Iterator["Picture"]: ...


class FrameWriter(Protocol):
    """An open output stream of frames: ``write`` one frame's exact pixels at a time (the same
    arrays a still encoder takes), ``close`` to finish the container."""

    def write(self, pixels: "np.ndarray") -> None: ...

    def close(self) -> None: ...


class FrameEncoder(Protocol):
    """Seam for animation and video output (the media package): opens a ``FrameWriter`` onto
    ``path``. ``kinds`` says what it writes ("animation", "video"). Unlike ``StillEncoder`` it
    never holds the whole output in memory; verifying a stream is the media package's part."""

    kinds: tuple[Kind, ...]

    def open(self, path: Path, settings: EncodeSettings, *, width: int, height: int,
             rate: Fraction) -> FrameWriter: ...


@dataclass(frozen=True)
class Part:
    """One image inside a document: ``key`` names it within the document (``p3-1``: page 3,
    image 1); ``read()`` gives a still image's bytes, sniffed and decoded like any file. Read
    when its turn comes, so a 500-page catalogue is never held in memory at once."""

    key: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class DocumentOptions:
    """How a document becomes parts: its embedded raster ``images`` (the photos it holds) or its
    ``pages`` rendered at ``dpi``; limits for the whole document and for each part."""

    mode: Literal["images", "pages"] = "images"
    dpi: int = 300
    max_pages: int = 2000
    max_parts: int = 10000
    #: a part (image or rendered page) over this many pixels fails alone (too-large); the
    #: decoder's own limit (decode.DEFAULT_MAX_PIXELS, which imports this module)
    max_pixels: int = 260_000_000
    #: images smaller than this on either side are decoration (bullets, rules), not photos
    min_side: int = 32

    def __post_init__(self) -> None:
        if self.mode not in ("images", "pages"):
            raise UsageError(f"--pdf must be 'images' or 'pages', not {self.mode!r}")
        if not 18 <= self.dpi <= 2400:
            raise UsageError(f"--pdf-dpi must be between 18 and 2400, not {self.dpi}")
        if self.max_pages < 1:
            raise UsageError("--pdf-max-pages must be at least 1")


@dataclass
class Exploded:
    """A document's parts in order, and notes on what was skipped (a page without a photo)."""

    parts: list[Part]
    notes: list[str]


class Exploder(Protocol):
    """Seam for documents (PDF): one input → its parts (read lazily) and notes. Raises an
    InputError for a document that cannot be used at all (encrypted, broken, too many pages)."""

    def __call__(self, source: Path, *, name: str, options: DocumentOptions) -> Exploded: ...


@dataclass(frozen=True)
class Check:
    """How ``verify`` reads an output of this format back and how close its colour must be.

    ``read_back(data, settings)`` decodes with a standard decoder and returns the pixels and
    whether they are in BGR(A) order; ``tolerance(settings)`` is the (max, mean) colour error
    allowed under visible pixels, in units of the output's bit depth.
    """

    read_back: Callable[[bytes, EncodeSettings], "tuple[np.ndarray, bool]"]
    tolerance: Callable[[EncodeSettings], tuple[float, float]]


# --- the format ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """Everything alphacut knows about one file format."""

    #: lower-case name: the ``--format`` choice, ``Options.format``, ``Picture.format``
    name: str
    #: what a file of this format holds when read
    kind: Kind
    #: the signature test on the first ``SNIFF_BYTES`` bytes; never the file's name
    accept: Callable[[bytes], bool]
    #: lower-case endings with the dot; the first is the one outputs get
    extensions: tuple[str, ...]
    mime: str
    #: other names for it (``by_name("tif")`` is TIFF)
    aliases: tuple[str, ...] = ()
    #: it can carry transparency
    alpha: bool = True
    #: bit depths per channel its encoder writes (empty: not an output)
    bit_depths: tuple[int, ...] = ()
    decoder: StillDecoder | None = None
    encoder: StillEncoder | None = None
    #: required with an encoder: no file is handed over unverified
    check: Check | None = None
    #: the canvas a file declares, read from its header before any decoder allocates it
    #: (WebP: libwebp allocates the whole canvas inside ``Image.open``)
    declared_size: Callable[[bytes], tuple[int, int] | None] | None = None
    frames: FrameDecoder | None = None
    frame_encoder: FrameEncoder | None = None
    explode: Exploder | None = None

    def __post_init__(self) -> None:
        if self.name != self.name.lower() or not self.name:
            raise ValueError(f"format names are lower-case: {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.extensions or any(not e.startswith(".") or e != e.lower() for e in self.extensions):
            raise ValueError(f"{self.name}: extensions are lower-case with a dot, first the output's")
        if (self.encoder or self.frame_encoder) and not self.bit_depths:
            raise ValueError(f"{self.name}: an encoder needs the bit depths it writes")
        if self.encoder and self.check is None:
            raise ValueError(f"{self.name}: an encoder needs a Check (every output is verified)")
        if self.explode and self.kind != "document":
            raise ValueError(f"{self.name}: only a document explodes into parts")

    @property
    def extension(self) -> str:
        """The ending an output of this format gets (``.tif`` for TIFF)."""
        return self.extensions[0]

    @property
    def can_output(self) -> bool:
        return self.encoder is not None or self.frame_encoder is not None

    def writes(self, kind: Kind) -> bool:
        """Whether it can be the output for an input of ``kind`` (a document's parts are stills)."""
        if kind in ("still", "document"):
            return self.encoder is not None
        return self.frame_encoder is not None and kind in self.frame_encoder.kinds


# --- the registry ----------------------------------------------------------------------------

_formats: dict[str, Format] = {}  # in registration order: sniffing asks them in this order
_lock = threading.RLock()
_loaded = False
_loading = False


def _ensure_builtins() -> None:
    """Import the modules that register the shipped formats, once (they call ``register``)."""
    global _loaded, _loading
    if _loaded:
        return
    with _lock:
        if _loaded or _loading:  # _loading: a lookup made while those modules are imported
            return
        _loading = True
        try:
            for module in BUILTIN_MODULES:
                importlib.import_module(module)
            _loaded = True
        finally:
            _loading = False


def register(fmt: Format, *, replace: bool = False) -> Format:
    """Make ``fmt`` known. Its name, aliases and endings must not belong to another format;
    ``replace=True`` swaps out the format of the same name (to add a frame encoder, say)."""
    with _lock:
        if fmt.name in _formats and not replace:
            raise ValueError(f"a format named {fmt.name!r} is already registered")
        for other in _formats.values():
            if other.name == fmt.name:
                continue
            names = {other.name, *other.aliases} & {fmt.name, *fmt.aliases}
            endings = set(other.extensions) & set(fmt.extensions)
            if names or endings:
                raise ValueError(f"{fmt.name}: {', '.join(sorted(names | endings))} already belong(s) to {other.name}")
        _formats[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Forget a format (for tests and plugins that withdraw one)."""
    with _lock:
        _formats.pop(name, None)


def all_formats() -> tuple[Format, ...]:
    """Every registered format, in registration (sniffing) order."""
    _ensure_builtins()
    return tuple(_formats.values())


def find(name: str) -> Format | None:
    """The format called ``name`` or one of its aliases (any case), or None."""
    key = name.lower()
    for fmt in all_formats():
        if key == fmt.name or key in fmt.aliases:
            return fmt
    return None


def by_name(name: str) -> Format:
    """The format called ``name`` or one of its aliases; a UsageError for an unknown name."""
    fmt = find(name)
    if fmt is None:
        raise UsageError(f"unknown format {name!r}; alphacut knows {', '.join(f.name for f in all_formats())}")
    return fmt


def by_extension(ending: str) -> Format | None:
    """The format a file ending belongs to (``.TIF``, ``tif`` or ``a.tif``), or None."""
    ending = ending.lower()
    if "." in ending:
        ending = ending[ending.rindex("."):]
    else:
        ending = "." + ending
    for fmt in all_formats():
        if ending in fmt.extensions:
            return fmt
    return None


def output_formats(kind: Kind | None = None) -> tuple[Format, ...]:
    """Formats alphacut can write: those that write ``kind``, or every output format."""
    return tuple(f for f in all_formats() if (f.can_output if kind is None else f.writes(kind)))


def output_format(name: str, kind: Kind | None = None) -> Format:
    """The output format called ``name`` (one that writes ``kind``, or any output format), or a
    UsageError listing the choices."""
    fmt = find(name)
    if fmt is None or not (fmt.can_output if kind is None else fmt.writes(kind)):
        choices = ", ".join(f.name for f in output_formats(kind))
        raise UsageError(f"unknown output format {name!r}; choose one of {choices}")
    return fmt


def default_output(kind: Kind) -> Format:
    """The output for an input of ``kind`` when the user names none: PNG for stills and a
    document's parts, WebP for animations, WebM for video (where registered)."""
    preferred = find(DEFAULT_OUTPUT[kind])
    if preferred is not None and preferred.writes(kind):
        return preferred
    candidates = output_formats(kind)
    if not candidates:
        raise UsageError(f"no installed format writes {kind} output")
    return candidates[0]


def extensions() -> frozenset[str]:
    """Every registered file ending (with the dot)."""
    return frozenset(e for f in all_formats() for e in f.extensions)


# --- sniffing --------------------------------------------------------------------------------


def sniff(head: bytes, *, name: str | Path | None = None) -> Format:
    """The registered format whose signature ``head`` (the first ``SNIFF_BYTES``) carries.

    Never by the name: a mislabelled file still works, and an unknown or empty one gets a
    specific error before any decoder sees it. (Pillow's ``Image.open`` also sniffs, but it
    tries every plugin it has, EPS included, and cannot tell HEIC from AVIF inside an ISO-BMFF
    container.)
    """
    if not head:
        raise EmptyFileError("the file is empty (0 bytes)", path=name)
    for fmt in all_formats():
        if fmt.accept(head):
            return fmt
    known = ", ".join(f.name for f in all_formats())
    iso = iso_brands(head)
    if iso is not None:
        raise UnsupportedFormatError(
            f"an ISO media file (brand {iso[0].decode('latin-1')!r}) that is not a format alphacut reads "
            f"({known})", path=name)
    raise UnsupportedFormatError(
        f"not a supported image (unknown signature {head[:8].hex(' ')}); alphacut reads {known}", path=name)


def sniff_file(path: str | Path) -> Format:
    """Sniff a file on disk, reading only its first bytes."""
    with open(path, "rb") as fh:
        return sniff(fh.read(SNIFF_BYTES), name=path)


def iso_brands(head: bytes) -> tuple[bytes, frozenset[bytes]] | None:
    """An ISO-BMFF file's major brand and every brand of its ftyp box (major included), or
    None when ``head`` does not start with an ftyp box. AVIF, HEIF, MP4 and MOV all live in
    this container; their brands tell them apart."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    return major, frozenset({major} | compatible)


def names(formats: Iterable[Format]) -> list[str]:
    """The names of ``formats``, in order (for choices and capability lists)."""
    return [f.name for f in formats]
