"""The one input expander: what the user named → items; items → distinct output names.

Every entry point (the CLI's single-file path, its many-files path beside the inputs, batches
into a folder or a ZIP) expands its inputs here, so one set of rules holds everywhere:

- **Files** are taken as named; ``-`` is stdin.
- **Folders** are walked recursively in sorted order; hidden files and folders are skipped. A
  file is taken when its name has a registered format's ending (``imageio.formats``; so a
  broken ``.png`` is reported, not skipped) or when its first bytes are one.
- **Quoted globs** (``"shots/*.jpg"``, ``**`` recurses) are expanded here, because Windows shells
  and quoting pass them through literally. A name that exists is never taken as a pattern.
- **ZIP archives** (``.zip``) give their members. A member named outside the archive (``..``,
  absolute) or stored as a link fails as ``unsafe-path``; one over 1 GiB as ``too-large``.
- **Symbolic links** found in a folder or by a glob that lead outside that folder (the glob's
  fixed leading folder) fail as ``unsafe-path`` and are never read; a link named on the
  command line is the user's own choice and is followed.
- **Object-store URIs** (``s3://bucket/prefix``, anything fsspec reaches: ``alphacut.objstore``)
  give every image object at or under them, in sorted key order, named relative to the prefix;
  an item's source id is its URI. Hidden objects (a ``.name`` part) are skipped, as in folders.
- The same source named twice (a file and a glob that matches it) is taken once.

Output naming is a separate step (`distinct_outputs`), so a later expander only has to make
items: an object-store URI is an item with its URI as source id; a PDF is one item per page
(source id ``doc.pdf#3``, relative name ``doc/3``), i.e. one input, many outputs; a clip is one
item, one output. The naming rule, which the README and ``--help`` state:

- each item wants a name: under ``-o FOLDER`` (or in an output ZIP) its relative path with the
  format's ending (``shots/a/b.jpg`` → ``a/b.png``); with no ``-o``, ``NAME.cutout.png`` beside it;
- an item gets the name it wants unless an earlier item (command-line order, then sorted order
  inside a folder) wants the same name, compared case-insensitively, or the name is one of the
  inputs: then it gets the first free ``-2``, ``-3``, … before the ending (``a.jpg a.png`` →
  ``a.cutout.png``, ``a-2.cutout.png``). Two inputs never share an output; no input is written over.
"""

from __future__ import annotations

import glob as globmod
import os
import stat
import zipfile
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path, PurePath, PurePosixPath
from typing import Callable, Iterator, Mapping, Sequence

from .errors import (AlphacutError, CorruptImageError, EmptyFileError, EncryptedInputError, ImageTooLargeError,
                     InputError, InputNotFoundError, UnsafePathError, UnsupportedFormatError)
from .imageio.formats import SNIFF_BYTES, DocumentOptions, Format, by_extension, sniff
from .objstore import is_uri

#: a ZIP member larger than this (uncompressed) is refused unread
MAX_MEMBER_BYTES = 1 << 30
#: the source id (and the argument) that means standard input
STDIN = "-"

_ERRORS: dict[str, type[InputError]] = {
    "not-found": InputNotFoundError,
    "unsafe-path": UnsafePathError,
    "corrupt": CorruptImageError,
    "too-large": ImageTooLargeError,
    "encrypted": EncryptedInputError,
    "empty": EmptyFileError,
    "unsupported-format": UnsupportedFormatError,
}


@dataclass(frozen=True)
class Item:
    """One input, before anyone decides where its output goes."""

    source_id: str  # stable identity (manifests, de-duplication): absolute path, ``zip!member``, ``-``
    name: str  # what the user sees in messages: a path, or ``archive.zip!member``
    rel: str  # its name relative to the folder, glob or archive it was found in (posix)
    path: Path | None = None  # a file on disk
    archive: Path | None = None  # a ZIP member: the archive …
    member: str | None = None  # … and the member's name as stored
    uri: str | None = None  # an object in an object store (``s3://bucket/key``)
    found: bool = False  # found inside a folder, glob or ZIP, rather than named by the user
    problem: tuple[str, str] | None = None  # (code, reason): fails without being read
    document: Path | None = None  # a document's part (a PDF's photo or page): the document …
    part: str | None = None  # … and the part's key (``p3-1``)
    #: a document part's bytes, read when its turn comes (``formats.Part.read``)
    read: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def is_stdin(self) -> bool:
        return self.source_id == STDIN

    def error(self) -> InputError:
        """The item's problem as the error every entry point reports (message names the input)."""
        assert self.problem is not None
        code, reason = self.problem
        return _ERRORS.get(code, InputError)(reason, path=self.name)


# --- expanding -----------------------------------------------------------------------------


def looks_like_glob(arg: str) -> bool:
    """A pattern to expand: it has ``*?[`` and no file of that very name exists."""
    return globmod.has_magic(arg) and not os.path.lexists(arg)


def is_archive(path: Path) -> bool:
    """A ``.zip`` file that really is a ZIP (another ``.zip`` is reported when decoded)."""
    return path.suffix.lower() == ".zip" and path.is_file() and zipfile.is_zipfile(path)


def expand(args: Sequence[str], *, exclude: Path | None = None, documents: DocumentOptions | None = None,
           notes: list[str] | None = None) -> list[Item]:
    """Files, folders (recursive), quoted globs, ZIPs and ``-`` → items, in a stable order; a
    document (PDF) → one item per part, as ``documents`` says (its photos, or its pages).

    ``exclude`` is a folder never walked into (a batch's output folder inside its input).
    ``notes`` collects what a document skipped (a page without a photo) for the user to read.
    Nothing is read except the first bytes of files whose names do not end like an image, and
    a document's table of contents (its parts are read one at a time, later).
    """
    exclude = exclude.resolve() if exclude is not None else None
    documents = documents or DocumentOptions()
    items: list[Item] = []
    seen: set[str] = set()
    for arg in args:
        for found in _expand_one(arg, exclude):
            for item in _parts(found, documents, notes):
                if item.source_id not in seen:
                    seen.add(item.source_id)
                    items.append(item)
    return items


def document_format(item: Item) -> Format | None:
    """The document format (PDF) of a file on disk, by its bytes; None for anything else. A
    file whose ending is an image format's is not read here (it is decoded later, and a PDF
    named ``.png`` is then reported as a document)."""
    if item.path is None or item.problem is not None:
        return None
    named = by_extension(item.path.suffix) if item.path.suffix else None
    if named is not None and named.kind != "document":
        return None
    try:
        with open(item.path, "rb") as fh:
            fmt = sniff(fh.read(SNIFF_BYTES), name=item.name)
    except (AlphacutError, OSError):
        return None
    return fmt if fmt.kind == "document" and fmt.explode is not None else None


def _parts(item: Item, options: DocumentOptions, notes: list[str] | None) -> Iterator[Item]:
    """``item`` itself, or, for a document, one item per part: source id ``doc.pdf#p3-1``,
    name ``doc.pdf#p3-1``, relative name ``doc.p3-1`` (so its output is ``doc.p3-1.png``). A
    document that cannot be used at all is one item with its problem; one without any part too."""
    fmt = document_format(item)
    if fmt is None or fmt.explode is None:
        yield item
        return
    try:
        exploded = fmt.explode(item.path, name=item.name, options=options)  # type: ignore[arg-type]
    except AlphacutError as err:
        yield replace(item, problem=(err.code, err.reason))
        return
    if notes is not None:
        notes.extend(exploded.notes)
    if not exploded.parts:
        yield replace(item, problem=("empty", "no photo on any page (no raster image); "
                                               "--pdf pages renders the pages instead"))
        return
    rel = PurePosixPath(item.rel)
    stem = str(rel.with_suffix("")) if rel.suffix else item.rel
    for part in exploded.parts:
        yield Item(source_id=f"{item.source_id}#{part.key}", name=f"{item.name}#{part.key}", rel=f"{stem}.{part.key}",
                   found=True, document=item.path, part=part.key, read=part.read)


def _expand_one(arg: str, exclude: Path | None) -> Iterator[Item]:
    if arg == STDIN:
        yield Item(source_id=STDIN, name="<stdin>", rel="stdin")
        return
    if is_uri(arg):
        yield from _from_store(arg)
        return
    p = Path(arg)
    if p.is_dir():
        yield from _from_folder(p, exclude)
    elif is_archive(p):
        yield from _from_zip(p)
    elif os.path.lexists(p):
        yield Item(source_id=str(p.resolve()), name=str(p), rel=p.name, path=p)
    elif looks_like_glob(arg):
        yield from _from_glob(arg)
    else:
        yield Item(source_id=str(p.absolute()), name=arg, rel=p.name, path=p,
                   problem=("not-found", "no such file"))


def _registered_ending(name: str | PurePath) -> bool:
    """A file name ending of a registered format (``formats.by_extension``) is taken as an
    input even when its bytes say otherwise, so a corrupt or empty ``.png`` is reported, not
    silently skipped; other files are taken when their bytes sniff."""
    suffix = PurePath(name).suffix
    return bool(suffix) and by_extension(suffix) is not None


def _document_ending(name: PurePath) -> bool:
    fmt = by_extension(name.suffix) if name.suffix else None
    return fmt is not None and fmt.kind == "document"


def _looks_like_image(path: Path) -> bool:
    if _registered_ending(path):
        return True
    try:
        with open(path, "rb") as fh:
            sniff(fh.read(SNIFF_BYTES), name=path)
        return True
    except (AlphacutError, OSError):
        return False


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _found(path: Path, rel: str, real_root: Path) -> Item | None:
    """A file met inside ``real_root`` as an item: refused when it resolves outside the root
    (a link out of the folder: reading it would leak a file the folder's author chose), None
    when it is not an image file at all. A link keeps its own path as its id, so two links to
    one file are two inputs, as they are two names in the folder."""
    source_id = str(path.absolute() if path.is_symlink() else path.resolve())
    item = Item(source_id=source_id, name=str(path), rel=rel, path=path, found=True)
    if not _inside(path.resolve(), real_root):
        return replace(item, problem=("unsafe-path", "a symbolic link that points outside the folder; not read"))
    if not path.is_file() or not _looks_like_image(path):
        return None
    return item


def _from_folder(root: Path, exclude: Path | None) -> Iterator[Item]:
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".")
                             and not (exclude is not None and (d / n).resolve() == exclude))
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            p = d / fn
            if not p.is_symlink() and not p.is_file():
                continue
            item = _found(p, p.relative_to(root).as_posix(), real_root)
            if item is not None:
                yield item


def glob_root(pattern: str) -> Path:
    """The fixed leading folder of a pattern (``shots/**/*.jpg`` → ``shots``): names are
    relative to it, and no match may lead outside it."""
    fixed: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if globmod.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _from_glob(pattern: str) -> Iterator[Item]:
    root = glob_root(pattern)
    real_root = root.resolve()
    for m in sorted(globmod.glob(pattern, recursive=True)):
        p = Path(m)
        try:
            rel = p.relative_to(root).as_posix()
        except ValueError:
            rel = p.name
        item = _found(p, rel, real_root)
        if item is not None:
            yield item


def _from_store(uri: str) -> Iterator[Item]:
    """The image objects at or under an object-store URI, as items (source id: the URI)."""
    from . import objstore

    try:
        listed = list(objstore.list_objects(uri))
    except InputError as exc:
        yield Item(source_id=uri, name=uri, rel=uri.rstrip("/").rsplit("/", 1)[-1], uri=uri,
                   problem=(exc.code, exc.reason))
        return
    single = len(listed) == 1 and listed[0][0].rstrip("/") == uri.rstrip("/")
    for obj, rel, size in listed:
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        item = Item(source_id=obj, name=obj, rel=rel, uri=obj, found=not single)
        if _registered_ending(PurePosixPath(rel)) or single:
            yield item
            continue
        try:  # a name that does not end like an image: taken when its first bytes are one
            sniff(objstore.read(obj, start=0, end=SNIFF_BYTES), name=obj)
        except (AlphacutError, OSError):
            continue
        yield item


def safe_member_name(name: str) -> str | None:
    """A ZIP member name as a safe relative posix path, or None when it tries to escape."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return None
    parts = [p for p in n.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _from_zip(path: Path) -> Iterator[Item]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield Item(source_id=str(path.resolve()), name=str(path), rel=path.name, path=path,
                   problem=("corrupt", f"not a readable ZIP archive ({exc})"))
        return
    with zf:
        for info in zf.infolist():
            item = _member(path, zf, info)
            if item is not None:
                yield item


def _member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Item | None:
    """One ZIP member as an item (with its problem), or None for folders, hidden files and
    members that are not images."""
    if info.is_dir():
        return None
    base = PurePosixPath(info.filename.replace("\\", "/")).name
    if base.startswith(".") or info.filename.startswith("__MACOSX/"):
        return None
    safe = safe_member_name(info.filename)
    problem: tuple[str, str] | None = None
    if safe is None:
        problem = ("unsafe-path", "a member name that points outside the archive; not read")
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = ("unsafe-path", "a symbolic link inside the archive; not read")
    elif info.file_size > MAX_MEMBER_BYTES:
        problem = ("too-large", f"{info.file_size} bytes uncompressed; refused")
    elif _document_ending(PurePosixPath(safe)):
        problem = ("unsupported-format", "a document (PDF) inside a ZIP is not read; extract it first")
    elif not _registered_ending(PurePosixPath(safe)):
        try:
            with zf.open(info) as fh:
                sniff(fh.read(SNIFF_BYTES), name=info.filename)
        except (AlphacutError, OSError, zipfile.BadZipFile, RuntimeError):
            return None
    return Item(source_id=f"{path.resolve()}!{info.filename}", name=f"{path}!{info.filename}",
                rel=safe or base, archive=path, member=info.filename, found=True, problem=problem)


def opener(item: Item) -> str | Path | Callable[[], bytes]:
    """What the stages read an item from (``steps.Readable``): a file's path, or a callable
    that reads a ZIP member's, a document part's or an object's bytes only when decoding
    starts. Stdin is the caller's (only the CLI has it)."""
    if item.problem is not None:
        raise item.error()
    if item.read is not None:  # a document's part
        return item.read
    if item.uri is not None:
        from . import objstore

        return partial(objstore.read, item.uri)
    if item.archive is not None:
        return partial(_read_member, item.archive, item.member)  # type: ignore[arg-type]
    if item.path is None:
        raise InputError("nothing to read", path=item.name)
    return item.path


def _read_member(archive: Path, member: str) -> bytes:
    with zipfile.ZipFile(archive) as zf:
        return zf.read(member)


# --- naming outputs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Wanted:
    """The name an item would like, split so that a number can go before its ending."""

    folder: PurePath  # relative to the output folder or ZIP, or the input's own folder
    stem: str
    ending: str  # ``.png``, or ``.cutout.png`` beside the input

    def name(self, n: int = 1) -> PurePath:
        """``n`` = 1: the plain name; then ``stem-n`` + ending."""
        return self.folder / f"{self.stem if n == 1 else f'{self.stem}-{n}'}{self.ending}"


def mirror(ext: str) -> Callable[[Item], Wanted]:
    """Names under an output folder or ZIP: the relative path with the format's ending (a
    document's part keeps its whole name: ``doc.p3-1`` → ``doc.p3-1.png``)."""

    def wanted(item: Item) -> Wanted:
        rel = PurePosixPath(item.rel)
        base = rel.with_suffix(ext) if rel.suffix and item.part is None else PurePosixPath(item.rel + ext)
        return Wanted(base.parent, base.name[: -len(ext)], ext)

    return wanted


def beside(ext: str) -> Callable[[Item], Wanted]:
    """Names beside each input: ``photo.jpg`` → ``photo.cutout.png`` in the same folder."""

    def wanted(item: Item) -> Wanted:
        if item.document is not None and item.part is not None:  # beside the PDF: doc.p3-1.cutout.png
            return Wanted(item.document.parent, f"{item.document.stem}.{item.part}", ".cutout" + ext)
        if item.path is None:
            raise ValueError(f"{item.name} has no folder to write beside")
        return Wanted(item.path.parent, item.path.stem, ".cutout" + ext)

    return wanted


def _input_keys(items: Sequence[Item]) -> set[str]:
    return {str(p.resolve()).casefold() for i in items for p in (i.path, i.document) if p is not None}


def distinct_outputs(items: Sequence[Item], wanted: Callable[[Item], Wanted], *,
                     on_disk: Path | None = None, keep: Mapping[str, str] | None = None) -> dict[str, str]:
    """source id → an output name no other item has (the rule in the module docstring).

    ``on_disk``: the folder the names are relative to (``Path(".")`` for names beside the
    inputs), so no name is one of the inputs; None for names inside an output ZIP.
    ``keep``: names decided before, by source id (a resumed batch keeps its names).
    Names are compared case-insensitively, so they stay distinct on macOS and Windows too.
    """
    names = {sid: n for sid, n in (keep or {}).items()}
    used = {n.casefold() for n in names.values()}
    inputs = _input_keys(items) if on_disk is not None else set()

    def free(name: PurePath) -> bool:
        on = on_disk is not None and str((on_disk / name).resolve()).casefold() in inputs
        return str(name).casefold() not in used and not on

    def claim(item: Item, name: PurePath) -> None:
        names[item.source_id] = str(name)
        used.add(str(name).casefold())

    later: list[tuple[Item, Wanted]] = []
    for item in items:  # first every item that can have the name it wants, in order …
        if item.source_id in names:
            continue
        w = wanted(item)
        if free(w.name()):
            claim(item, w.name())
        else:
            later.append((item, w))
    for item, w in later:  # … then the rest, numbered
        n = 2
        while not free(w.name(n)):
            n += 1
        claim(item, w.name(n))
    return names
