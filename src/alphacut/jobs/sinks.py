"""Where a batch's outputs go: a folder (each file written in place by the worker, atomically),
a ZIP (staged, then appended; the archive is valid after every file) or an object-store prefix
(``s3://bucket/out``: staged, then put and read back). Every sink offers the same ``Sink``
interface to ``run_batch``; the folder and object-store sinks also ``write`` a finished file
from wherever it was made (a Ray task on another node: ``alphacut.distributed``)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Protocol

from .. import objstore
from ..errors import UsageError
from ..fsutil import atomic_write, output_error, temp_prefix
from ..objstore import is_uri
from .plan import BatchItem
from .state import Job


class Sink(Protocol):
    """What ``run_batch`` needs of an output: where a worker writes a file, whether an earlier
    run's file is really there (``--resume``), and what to do once a job ends."""

    def target(self, item: BatchItem) -> Path:
        """The path the worker writes this item's output to."""

    def has(self, rec: dict[str, Any]) -> bool:
        """Whether an earlier run's finished file (its manifest record) is really there."""

    def finish(self, item: BatchItem, job: Job) -> str:
        """Take a finished job's file in; returns where it now is (for the manifest)."""

    def discard(self, job: Job) -> None:
        """A job that did not finish: drop whatever it left."""

    def sweep(self, items: list[BatchItem]) -> int:
        """Remove temporary files a killed worker left; returns how many."""

    def close(self) -> None: ...


class Writable(Protocol):
    """A sink that takes a finished file's verified bytes from anywhere (a Ray task)."""

    def write(self, output_rel: str, data: bytes) -> str:
        """Write one output (never a partial file under its final name); returns where."""


def open_sink(output: Path | str, *, fresh: bool) -> Sink:
    """An object-store sink for a URI, a ZIP sink for ``*.zip``, else a folder sink."""
    if is_uri(str(output)):
        return ObjectSink(str(output))
    output = Path(output)
    return ZipSink(output, fresh=fresh) if output.suffix.lower() == ".zip" else FolderSink(output)


class FolderSink:
    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(exc, "cannot make the output folder", root) from None

    def sweep(self, items: list[BatchItem]) -> int:
        """Remove the temporary files (``.NAME.xxxxxxxx.part``) that a worker killed in the middle
        of an atomic write left beside this batch's outputs; a final name never holds a partial
        file, and now no temporary one is left either."""
        wanted: dict[Path, list[str]] = {}
        for item in items:
            target = self.target(item)
            wanted.setdefault(target.parent, []).append(temp_prefix(target))
        removed = 0
        for folder, prefixes in wanted.items():
            pattern = re.compile("(?:" + "|".join(re.escape(p) for p in prefixes) + r")[a-z0-9_]{8}\.part")
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            for name in names:
                if name.endswith(".part") and pattern.fullmatch(name):
                    try:
                        os.unlink(folder / name)
                        removed += 1
                    except OSError:
                        pass
        return removed

    def target(self, item: BatchItem) -> Path:
        return self.root / item.output_rel

    def has(self, rec: dict[str, Any]) -> bool:
        p = self.root / rec.get("output_rel", "\0")
        try:
            return hashlib.sha256(p.read_bytes()).hexdigest() == rec.get("sha256")
        except OSError:
            return False

    def finish(self, item: BatchItem, job: Job) -> str:
        return str(self.root / item.output_rel)

    def write(self, output_rel: str, data: bytes) -> str:
        """Temporary name beside the target, then rename (``fsutil.atomic_write``)."""
        return str(atomic_write(self.root / output_rel, data))

    def discard(self, job: Job) -> None:
        pass

    def close(self) -> None:
        pass


class ZipSink:
    """Appends each finished file to the ZIP; the central directory is rewritten every time."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        try:
            self._open(path, fresh)
        except OSError as exc:
            raise output_error(exc, "cannot write the output archive", path) from None

    def _open(self, path: Path, fresh: bool) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not fresh and path.exists():
            try:
                with zipfile.ZipFile(path) as zf:
                    zf.testzip()
            except (zipfile.BadZipFile, OSError):  # a hard stop mid-append: keep it aside, start over
                os.replace(path, path.with_name(f"{path.name}.broken-{int(time.time())}"))
                fresh = True
        if fresh or not path.exists():
            tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
            with zipfile.ZipFile(tmp, "w"):
                pass
            tmp.close()
            os.replace(tmp.name, path)
        with zipfile.ZipFile(path) as zf:
            self.members = {i.filename: i.file_size for i in zf.infolist()}
        self.staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))

    def target(self, item: BatchItem) -> Path:
        return self.staging / item.output_rel

    def has(self, rec: dict[str, Any]) -> bool:
        return self.members.get(rec.get("output_rel", "\0")) == rec.get("bytes")

    def finish(self, item: BatchItem, job: Job) -> str:
        staged = Path(job.output_path or self.target(item))
        data = staged.read_bytes()
        with zipfile.ZipFile(self.path, "a", compression=zipfile.ZIP_STORED) as zf:
            if item.output_rel in self.members:  # a resumed batch redoing a file: never duplicate
                raise UsageError(f"{item.output_rel} is already in {self.path}")
            info = zipfile.ZipInfo(item.output_rel, date_time=time.localtime()[:6])
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)
        self.members[item.output_rel] = len(data)
        staged.unlink(missing_ok=True)
        return f"{self.path}!{item.output_rel}"

    def discard(self, job: Job) -> None:
        if job.output_path:
            Path(job.output_path).unlink(missing_ok=True)

    def sweep(self, items: list[BatchItem]) -> int:
        return 0  # its staging folder goes as a whole on close

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class ObjectSink:
    """Outputs under an object-store prefix. The local engine's workers write each file to a
    local staging folder (as for a ZIP); ``finish`` puts it in the store in one request and
    reads it back (``objstore.put_verified``: write-then-verify), then drops the staged copy.
    Ray tasks call ``write`` directly. An object store shows an object whole or not at all, so
    no partial file ever sits under a final key and there is nothing to sweep."""

    def __init__(self, uri: str) -> None:
        objstore.filesystem(uri)  # a missing library or unknown scheme fails here, before any work
        self.uri = uri.rstrip("/")
        self._staging: Path | None = None

    def __getstate__(self) -> dict[str, Any]:  # sent to Ray tasks: the prefix only
        return {"uri": self.uri, "_staging": None}

    @property
    def staging(self) -> Path:
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="alphacut-upload-"))
        return self._staging

    def target(self, item: BatchItem) -> Path:
        return self.staging / item.output_rel

    def has(self, rec: dict[str, Any]) -> bool:
        rel = rec.get("output_rel")
        return bool(rel) and objstore.sha256_of(objstore.join(self.uri, rel)) == rec.get("sha256")

    def write(self, output_rel: str, data: bytes) -> str:
        where = objstore.join(self.uri, output_rel)
        objstore.put_verified(where, data)
        return where

    def finish(self, item: BatchItem, job: Job) -> str:
        staged = Path(job.output_path or self.target(item))
        where = self.write(item.output_rel, staged.read_bytes())
        staged.unlink(missing_ok=True)
        return where

    def discard(self, job: Job) -> None:
        if job.output_path:
            Path(job.output_path).unlink(missing_ok=True)

    def sweep(self, items: list[BatchItem]) -> int:
        return 0

    def close(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
