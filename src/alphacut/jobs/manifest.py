"""A batch's manifest: one JSON line per finished file (``manifest.jsonl`` in the output folder,
``NAME.manifest.jsonl`` beside an output ZIP; for an object-store output a local working copy,
mirrored whole to ``OUT/manifest.jsonl``) — status, code and reason, stage timings, provider,
output and sha256. ``--resume`` reads it back and redoes only files without a verified output."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .. import objstore
from ..errors import AlphacutError, InputError
from ..fsutil import atomic_write, output_error
from ..objstore import is_uri
from .plan import BatchItem
from .state import Job


def manifest_path(output: Path | str) -> Path:
    """Where the manifest is written as files finish: in the output folder, beside an output
    ZIP, or — for an object-store output, which has no file to append to — a local working
    copy in the user cache (``local_copy``), mirrored to ``OUT/manifest.jsonl``."""
    if is_uri(str(output)):
        return local_copy(str(output))
    output = Path(output)
    return output.with_name(output.stem + ".manifest.jsonl") if output.suffix.lower() == ".zip" else output / "manifest.jsonl"


def local_copy(uri: str) -> Path:
    """The local working copy of an object-store output's manifest, one per output URI."""
    from ..models.store import default_home

    key = hashlib.sha256(uri.rstrip("/").encode()).hexdigest()[:16]
    return default_home() / "batches" / key / "manifest.jsonl"


def store_copy(output: Path | str) -> str | None:
    """The manifest object of an object-store output (``OUT/manifest.jsonl``), else None."""
    return objstore.join(str(output), "manifest.jsonl") if is_uri(str(output)) else None


def read_manifest(path: Path, *, also: str | None = None) -> dict[str, dict[str, Any]]:
    """source id → the last record for it (a torn last line from a hard stop is ignored).
    ``also``: the store's copy of an object-store output's manifest, read first, so the local
    working copy (which may be newer by one upload interval) has the last word."""
    records: dict[str, dict[str, Any]] = {}
    lines: list[str] = []
    if also is not None:
        try:
            lines += objstore.read(also).decode("utf-8").splitlines()
        except (InputError, UnicodeDecodeError):
            pass
    try:
        lines += path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        pass
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "source" in rec:
            records[rec["source"]] = rec
    return records


class Manifest:
    """Appends one line per finished file. A line that cannot be written (a full disk) is cut
    back out, so the file never holds half a record, and the batch goes on: the record is only
    missing, and ``--resume`` redoes a file without a record."""

    def __init__(self, path: Path, *, fresh: bool) -> None:
        self.path = path
        self.error: str | None = None
        self.missing = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if fresh:
                atomic_write(path, b"")
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise output_error(exc, "cannot write the batch manifest", path) from None

    def write(self, rec: dict[str, Any]) -> None:
        line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
        end = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if os.write(self.fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(self.fd)
        except OSError as exc:
            self.missing += 1
            self.error = str(exc.strerror or exc)
            try:
                os.ftruncate(self.fd, end)
            except OSError:
                pass

    def close(self) -> None:
        os.close(self.fd)


class MirroredManifest(Manifest):
    """The manifest of an object-store output: appended locally as files finish (``Manifest``),
    and the whole file put to ``OUT/manifest.jsonl`` at most every ``interval`` seconds and on
    close. An object is replaced whole, so the store's copy always holds complete lines — at
    most one interval behind the local one. Rewriting the whole object costs O(records) per
    upload, hence the interval rather than one upload per file."""

    def __init__(self, path: Path, uri: str, *, fresh: bool, interval: float = 10.0) -> None:
        if not fresh and not path.exists():  # resumed elsewhere: start from the store's copy
            try:
                atomic_write(path, objstore.read(uri))
            except InputError:
                pass
        super().__init__(path, fresh=fresh)
        self.uri = uri
        self.interval = interval
        self._uploaded = 0.0
        self._dirty = fresh
        if fresh:
            self.upload()

    def write(self, rec: dict[str, Any]) -> None:
        super().write(rec)
        self._dirty = True
        if time.monotonic() - self._uploaded >= self.interval:
            self.upload()

    def upload(self) -> None:
        """Put the whole local manifest to the store (a failure is kept in ``error``, like a
        line that could not be written: the local copy still has every record)."""
        try:
            objstore.put_verified(self.uri, self.path.read_bytes())
            self._dirty = False
        except (OSError, AlphacutError) as exc:
            self.error = f"cannot update {self.uri} ({exc}); the local copy {self.path} is complete"
        self._uploaded = time.monotonic()

    def close(self) -> None:
        super().close()
        if self._dirty:
            self.upload()


def open_manifest(output: Path | str, *, fresh: bool, path: Path | None = None) -> Manifest:
    """The manifest of a batch into ``output``; ``path`` overrides where it is written (an
    object-store output's local copy: ``--manifest``)."""
    uri = store_copy(output)
    local = path or manifest_path(output)
    return MirroredManifest(local, uri, fresh=fresh) if uri else Manifest(local, fresh=fresh)


def record(item: BatchItem, status: str, *, job: Job | None = None, code: str | None = None,
            reason: str | None = None, output: str | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "input": item.input.name,
        "source": item.input.source_id,
        "status": status,
        "output": output,
        "output_rel": item.output_rel,
        "code": code,
        "reason": reason,
        "time": time.time(),
    }
    if job is not None:
        rec.update(
            job_id=job.id,
            provider=job.provider,
            warnings=job.warnings,
            timings={k: round(v, 4) for k, v in job.timings.items()},
            sha256=job.output_sha256,
            bytes=job.output_bytes,
            attempts=job.attempts,
            seconds=round((job.finished or time.time()) - (job.started or job.created), 3),
        )
    return rec
