"""A PDF uploaded to the web app: one job per photo it holds, answered as one group.

The upload route (``POST /api/jobs``) sniffs every file; a document goes here instead of
being queued as one image. Its parts come from the same registry seam as the CLI's
(``Format.explode``: the embedded raster images, read one at a time), each is saved as an
upload of its own and queued like any image (``routes_jobs.queue_file``), so every result
can be viewed, edited and downloaded alone or in the ZIP. The PDF itself is removed once
its parts are out. The answer (201) is ``{"document", "jobs", "failed", "notes"}``; a PDF that
cannot be used at all (encrypted, broken, too many pages, no photo) is a 4xx with the reason.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from ..errors import AlphacutError
from ..imageio import pdf
from ..imageio.formats import DocumentOptions, Format, sniff
from .errors import ApiError
from .state import ServerState

#: parts queued from one PDF at most (the queue's own limit applies too)
MAX_PARTS = 200
_STATUS = {"encrypted": 422, "corrupt": 422, "too-large": 413, "empty": 422}


def queue_document(state: ServerState, path: Path, name: str, fmt: Format, *, model: str | None, quality: str,
                   decontaminate: bool) -> dict[str, Any]:
    from .routes_jobs import queue_file

    s = state.settings
    options = DocumentOptions(max_parts=MAX_PARTS, max_pixels=s.max_pixels)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    try:
        try:
            exploded = fmt.explode(path, name=name, options=options)  # type: ignore[misc]
        except AlphacutError as err:
            raise ApiError(_STATUS.get(err.code, 422), err.code, str(err)) from None  # names the PDF
        if not exploded.parts:
            raise ApiError(422, "empty", f"{name}: no photo on any page (no raster image)")
        jobs: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for part in exploded.parts:
            part_name = f"{stem}.{part.key}"
            part_path = state.uploads_dir / f"{secrets.token_hex(8)}.upload"
            try:
                data = part.read()
                part_fmt = sniff(data[:64], name=f"{name}#{part.key}")
                part_path.write_bytes(data)
                del data
            except AlphacutError as err:  # this part only: over the pixel limit, damaged
                part_path.unlink(missing_ok=True)
                failed.append({"name": part_name, "code": err.code, "reason": err.reason})
                continue
            try:  # queue_file removes the part's file when it cannot be queued
                jobs.append(queue_file(state, part_path, part_name + part_fmt.extension, part_path.stat().st_size,
                                       part_fmt.name, model=model, quality=quality, decontaminate=decontaminate))
            except ApiError as err:
                failed.append({"name": part_name, "code": err.code, "reason": err.reason})
    finally:
        pdf.forget(path)
        path.unlink(missing_ok=True)
    return {"document": name, "jobs": jobs, "failed": failed, "notes": exploded.notes}

