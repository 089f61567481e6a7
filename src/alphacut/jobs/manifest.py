"""A batch's manifest: one JSON line per finished file (``manifest.jsonl`` in the output folder,
``NAME.manifest.jsonl`` beside an output ZIP) — status, code and reason, stage timings,
provider, output and sha256. ``--resume`` reads it back and redoes only files without a
verified output."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write, output_error
from .plan import BatchItem
from .state import Job


def manifest_path(output: Path) -> Path:
    return output.with_name(output.stem + ".manifest.jsonl") if output.suffix.lower() == ".zip" else output / "manifest.jsonl"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """source id → the last record for it (a torn last line from a hard stop is ignored)."""
    records: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return records
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
