"""Jobs: upload (create), status, cancel, results in every format, the matte, edits, ZIP export."""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time
import zipfile
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import cv2
import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from .. import pipeline
from ..errors import AlphacutError, UsageError
from ..imageio.encode import convert_depth
from ..imageio.formats import SNIFF_BYTES, Format, output_formats, sniff
from ..pipeline import Options
from .clips import CLIP_EXPORTS, clip_file
from .clips import download_name as clip_download_name
from .errors import ApiError, from_alphacut, submit_refused
from .state import TERMINAL, ServerState, Upload

router = APIRouter(prefix="/api", tags=["jobs"])

#: formats also offered at 16 bits as a choice of their own (``png16``); their plain choice is 8-bit
SIXTEEN_BIT_TWINS = ("png",)


@dataclasses.dataclass(frozen=True)
class Export:
    """One export choice: the registered format it writes and the Options it sets."""

    format: Format
    options: dict[str, Any]


def _exports() -> dict[str, Export]:
    """The export choices, from the format registry: every still output format by its name
    (lossless; the source's depth where the format carries it, 8-bit where it has a twin),
    the 16-bit twins, and ``mask`` (the matte as a grey PNG)."""
    out: dict[str, Export] = {}
    for fmt in output_formats("still"):
        twin = fmt.name in SIXTEEN_BIT_TWINS
        out[fmt.name] = Export(fmt, {"format": fmt.name, "lossless": True, "bit_depth": 8 if twin else None})
        if twin:
            out[f"{fmt.name}16"] = Export(fmt, {"format": fmt.name, "lossless": True, "bit_depth": 16})
    out["mask"] = Export(out["png"].format, {"format": "png", "mask_only": True, "bit_depth": 8})
    return out


EXPORTS = _exports()
ExportFormat = Literal[tuple(EXPORTS)]  # type: ignore[valid-type]
EXPORT_EXT = {name: e.format.extension for name, e in EXPORTS.items()}
EXPORT_MEDIA = {name: e.format.mime for name, e in EXPORTS.items()}
#: what ``/result`` takes: a still's export choices and a clip's (server/clips.py)
AnyFormat = Literal[tuple(dict.fromkeys([*EXPORTS, *CLIP_EXPORTS]))]  # type: ignore[valid-type]
_CHUNK = 1024 * 1024


def _state(request: Request) -> ServerState:
    return request.app.state.alphacut


def _clean_name(name: str | None) -> str:
    base = (name or "image").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip() or "image"
    return base[:200]


def _stem(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return re.sub(r"[^\w\-. ]+", "_", stem).strip() or "image"


def _job(state: ServerState, job_id: str) -> Any:
    up = state.uploads.get(job_id)
    if up is None:
        raise ApiError(404, "not-found", "no such job")
    if up.expired:
        raise ApiError(410, "expired", "this result has expired and was removed; process the image again")
    try:
        return state.engine.get(job_id)
    except (KeyError, LookupError):
        raise ApiError(404, "not-found", "no such job") from None


def _done_job(state: ServerState, job_id: str) -> Any:
    job = _job(state, job_id)
    stage = job.stage.value
    if stage != "done":
        if stage == "failed":
            raise ApiError(409, job.error_code or "failed", f"this image failed: {job.reason}")
        raise ApiError(409, "not-ready", f"the result is not ready yet (the job is {stage})")
    return job


def _still_job(state: ServerState, job_id: str) -> Any:
    """A finished still: what the editor, the matte and the previews work on. A clip is refused
    with the reason (manual refinement is for stills; a clip downloads in its own formats)."""
    job = _done_job(state, job_id)
    up = state.uploads.get(job_id)
    if up is not None and up.clip is not None:
        raise ApiError(409, "clip", f"{up.name} is a {up.clip['kind']}: manual refinement (brush, wand, "
                       "selections) and the matte view are for still images; download the clip in any of "
                       f"its formats ({', '.join(CLIP_EXPORTS)})")
    return job


class JobList(BaseModel):
    jobs: list[dict[str, Any]]


@router.get("/jobs", response_model=JobList, summary="Every job this server knows, oldest first")
def list_jobs(request: Request) -> dict[str, Any]:
    state = _state(request)
    out = []
    for job_id, up in list(state.uploads.items()):
        if up.expired:
            continue
        try:
            out.append(state.job_dict(state.engine.get(job_id)))
        except Exception:
            continue
    return {"jobs": out}


@router.post("/jobs", status_code=201, summary="Upload one image and queue it",
             responses={413: {"description": "too many bytes or pixels"}, 415: {"description": "not a supported image"},
                        429: {"description": "the queue is full; retry after Retry-After seconds"},
                        503: {"description": "the server is shutting down"}})
def create_job(
    request: Request,
    file: UploadFile = File(..., description="the image (PNG, JPEG, WebP, AVIF, HEIC, TIFF, BMP, GIF)"),
    model: str | None = Form(None, description="model name (default: the server's model)"),
    quality: Literal["fast", "best"] = Form("fast", description="fast: one pass; best: edge refinement"),
    decontaminate: bool = Form(True, description="remove the old background's colour from soft edges"),
    first_frame: bool = Form(False, description="a video or animation: cut out its first frame only, as a "
                             "still (default: every frame, one clip job)"),
) -> dict[str, Any]:
    state = _state(request)
    s = state.settings
    if state.closing:
        raise ApiError(503, "shutting-down", "the server is shutting down", retry_after=s.retry_after_s)
    name = _clean_name(file.filename)
    path = state.uploads_dir / f"{secrets.token_hex(8)}.upload"
    try:
        size = 0
        with path.open("wb") as out:
            while chunk := file.file.read(_CHUNK):
                size += len(chunk)
                if size > s.max_upload_bytes:
                    raise ApiError(413, "too-large", f"{name} is over the upload limit of "
                                   f"{s.max_upload_bytes / 1048576:.0f} MB")
                out.write(chunk)
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
        try:
            fmt = sniff(head, name=name)
        except AlphacutError as err:
            raise ApiError(415 if err.code == "unsupported-format" else 422, err.code, err.reason) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if fmt.kind == "document":  # a PDF: one job per photo (server/documents.py)
        from .documents import queue_document

        return queue_document(state, path, name, fmt, model=model, quality=quality, decontaminate=decontaminate)
    from ..media.sniff import clip_kind

    kind = clip_kind(path) if fmt.kind in ("video", "still", "animation") else None
    if kind is not None and not first_frame:  # a video or an animation: one clip job (server/clips.py)
        from .clips import queue_clip

        return queue_clip(state, path, name, size, fmt.name, kind, model=model, quality=quality,
                          decontaminate=decontaminate)
    if kind == "video":  # its first frame, as a still the stages can read
        path = _first_frame_png(path, name, s.max_pixels)
        size = path.stat().st_size
    return queue_file(state, path, name, size, fmt.name, model=model, quality=quality, decontaminate=decontaminate)


def queue_file(state: ServerState, path: Path, name: str, size: int, fmt: str, *, model: str | None,
               quality: str, decontaminate: bool) -> dict[str, Any]:
    """An upload saved at ``path`` (its format sniffed) → a queued job (the file is removed if not)."""
    s = state.settings
    try:
        width, height = _dimensions(path, name, s.max_pixels)
        try:
            opts = Options(model=model or s.model, quality=quality, decontaminate=decontaminate,  # type: ignore[arg-type]
                           max_pixels=s.max_pixels)
            from ..models.catalog import get_spec

            get_spec(opts.model)
        except AlphacutError as err:
            raise ApiError(422, err.code, err.reason) from None
        try:
            job = state.engine.submit(path, name=name, options=opts)
        except AlphacutError as err:
            raise submit_refused(err, opts.model, s.retry_after_s) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    state.uploads[job.id] = Upload(job.id, name, path, size, fmt, width, height)
    return state.job_dict(job)


def _first_frame_png(path: Path, name: str, max_pixels: int) -> Path:
    """A video's first frame as a lossless PNG upload in place of the video (``first_frame``):
    the still stages read images, not containers."""
    import dataclasses as dc

    from PIL import Image

    from ..media.limits import DEFAULT_LIMITS
    from ..media.loop import first_frame

    out = path.with_suffix(".png.upload")
    try:
        limits = dc.replace(DEFAULT_LIMITS, max_frame_pixels=min(DEFAULT_LIMITS.max_frame_pixels, max_pixels))
        try:
            picture = first_frame(path, name=name, limits=limits)
        except AlphacutError as err:
            raise ApiError(413 if err.code == "too-large" else 422, err.code, str(err)) from None
        pixels = picture.rgb
        if picture.alpha is not None:
            pixels = np.dstack([pixels, np.rint(picture.alpha * 255).astype(np.uint8)])
        Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    finally:
        path.unlink(missing_ok=True)
    return out


def _dimensions(path: Path, name: str, max_pixels: int) -> tuple[int, int]:
    """Width and height from the header only: a decompression bomb is refused before decoding."""
    from PIL import Image

    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except ImportError:  # pragma: no cover
        pass
    try:
        with Image.open(path) as img:
            w, h = img.size
    except Exception:
        return 0, 0  # the decoder will give the precise reason as the job's failure
    if w * h > max_pixels:
        raise ApiError(413, "too-large", f"{name}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over this server's limit of "
                       f"{max_pixels / 1e6:.0f} (refused before decoding: a possible decompression bomb)")
    return w, h


@router.get("/jobs/{job_id}", summary="One job's stage, progress, provider and warnings")
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    state = _state(request)
    return state.job_dict(_job(state, job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    state = _state(request)
    job = _job(state, job_id)
    state.engine.cancel(job.id)
    return state.job_dict(state.engine.get(job.id))


@router.delete("/jobs/{job_id}", status_code=204, summary="Cancel if needed and remove the job and its files")
def delete_job(request: Request, job_id: str) -> Response:
    state = _state(request)
    job = _job(state, job_id)
    if job.stage.value not in TERMINAL:
        state.engine.cancel(job.id)
    state.forget(job.id)
    state.broker.publish("expired", {"id": job.id})
    return Response(status_code=204)


# --- results ---------------------------------------------------------------------------------


def export_options(base: Options, fmt: str, bg: str | None, crop: bool) -> Options:
    background = parse_colour(bg) if bg else None
    export = EXPORTS.get(fmt)
    if export is None:
        raise UsageError(f"unknown format {fmt!r}; choose {', '.join(list(EXPORTS)[:-1])} or {list(EXPORTS)[-1]}")
    if export.options.get("mask_only") and background is not None:
        raise UsageError("a mask has no background colour")
    kw: dict[str, Any] = {"background": background, "crop": crop, "mask_only": False, **export.options}
    return dataclasses.replace(base, **kw)


def parse_colour(value: str) -> tuple[int, int, int]:
    v = value.strip().lstrip("#")
    if not re.fullmatch(r"[0-9a-fA-F]{6}", v):
        raise UsageError(f"background colour must be RRGGBB hex, not {value!r}")
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


def _render(state: ServerState, job: Any, fmt: str, bg: str | None, crop: bool) -> bytes:
    es = state.edit_session(job)
    try:
        with es.lock:
            cutout = es.edited_cutout()
        opts = export_options(cutout.options, fmt, bg, crop)
        return pipeline.render(cutout, opts, name=job.name)
    except AlphacutError as err:
        raise from_alphacut(err) from None


def download_name(name: str, fmt: str) -> str:
    suffix = "-mask" if fmt == "mask" else "-cutout"
    return f"{_stem(name)}{suffix}{EXPORT_EXT[fmt]}"


def attachment(filename: str) -> str:
    """A Content-Disposition value for any name: header values are Latin-1, so a name with other
    characters (``日本.png``) goes in ``filename*`` (RFC 6266/5987) beside an ASCII fallback."""
    fallback = re.sub(r'[^\x20-\x7e]|["\\%]', "_", filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/jobs/{job_id}/result", summary="The cutout, encoded and verified, as a download",
            responses={200: {"content": {mime: {} for mime in dict.fromkeys(
                [*EXPORT_MEDIA.values(), *(c.mime for c in CLIP_EXPORTS.values())])}}})
def get_result(
    request: Request,
    job_id: str,
    format: AnyFormat | None = Query(None, description=(
        f"a still: {', '.join(EXPORTS)} (default png: 8-bit; mask: the matte); a clip: "
        f"{', '.join(CLIP_EXPORTS)} (default webm for a video, webp for an animation; mp4 needs bg)")),
    bg: str | None = Query(None, description="RRGGBB: composite onto this colour (opaque output)"),
    crop: bool = Query(False, description="crop to the subject (stills)"),
    download: bool = Query(True, description="send as an attachment"),
) -> Response:
    state = _state(request)
    job = _done_job(state, job_id)
    up = state.uploads.get(job.id)
    headers = {}
    if up is not None and up.clip is not None:  # a video or an animation (server/clips.py)
        try:
            colour = parse_colour(bg) if bg else None
        except UsageError as err:
            raise from_alphacut(err) from None
        if crop:
            raise ApiError(422, "usage", "crop does not apply to clips (every frame keeps the clip's size)")
        path, export = clip_file(state, job, up, format, colour)
        state.touch(job.id, downloaded=download)
        if download:
            headers["content-disposition"] = attachment(clip_download_name(job.name, format or "", export))
        return FileResponse(path, media_type=export.mime, headers=headers)
    format = format or "png"
    if format not in EXPORTS:
        raise ApiError(422, "usage", f"{format} is a clip format; {job.name} is a still image: choose "
                       f"{', '.join(EXPORTS)}")
    data = _render(state, job, format, bg, crop)
    state.touch(job.id, downloaded=download)
    if download:
        headers["content-disposition"] = attachment(download_name(job.name, format))
    return Response(data, media_type=EXPORT_MEDIA[format], headers=headers)


@router.get("/jobs/{job_id}/matte.png", summary="The current (edited) float matte as a verified grey PNG",
            responses={200: {"content": {"image/png": {}}}})
def get_matte(request: Request, job_id: str, bits: int = Query(8, description="8 or 16")) -> Response:
    state = _state(request)
    if bits not in (8, 16):
        raise ApiError(422, "usage", "bits must be 8 or 16")
    job = _still_job(state, job_id)
    es = state.edit_session(job)
    with es.lock:
        cutout = es.edited_cutout()
    opts = dataclasses.replace(cutout.options, format="png", mask_only=True, background=None, crop=False,
                               bit_depth=bits)
    state.touch(job.id)
    return Response(pipeline.render(cutout, opts, name=job.name), media_type="image/png")


@router.get("/jobs/{job_id}/preview/{which}.png", summary="The original or the decontaminated colours, 8-bit, for display",
            responses={200: {"content": {"image/png": {}}}})
def get_preview(request: Request, job_id: str, which: Literal["original", "foreground"]) -> Response:
    state = _state(request)
    up = state.uploads.get(job_id)
    if up is not None and up.clip is not None and which == "original":  # a clip's first frame (thumbnails)
        job = _done_job(state, job_id)
        state.touch(job.id)
        return Response(_clip_poster(up), media_type="image/png", headers={"cache-control": "private, max-age=3600"})
    job = _still_job(state, job_id)
    es = state.edit_session(job)
    with es.lock:
        data = es.previews.get(which)
        if data is None:
            rgb = es.original_rgb if which == "original" else es.cutout.foreground
            rgb = convert_depth(rgb, 8)
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            if not ok:
                raise ApiError(500, "encode", "could not encode the preview")
            data = es.previews[which] = buf.tobytes()
    state.touch(job.id)
    return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=3600"})


def _clip_poster(up: Upload) -> bytes:
    """The clip's first frame as an 8-bit PNG (kept beside its master)."""
    assert up.clip_dir is not None
    path = up.clip_dir / "poster.png"
    if not path.exists():
        from ..media.loop import first_frame

        picture = first_frame(up.path, name=up.name)
        rgb = convert_depth(picture.rgb, 8)
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ApiError(500, "encode", "could not encode the preview")
        path.write_bytes(buf.tobytes())
    return path.read_bytes()


# --- edits -----------------------------------------------------------------------------------


class EditRequest(BaseModel):
    ops: list[dict[str, Any]] = Field(..., max_length=200, description=(
        "operations applied in order: brush {mode: restore|erase, points, size, softness, strength, target}, "
        "wand {mode, x, y, tolerance, contiguous}, reset; each may carry a selection "
        "{type: rect, x0, y0, x1, y1} or {type: lasso, points}"))


class EditState(BaseModel):
    version: int
    can_undo: bool
    can_redo: bool
    steps: int
    box: list[int] | None = None


@router.post("/jobs/{job_id}/edits", response_model=EditState, tags=["edits"],
             summary="Apply matte edits (brush, wand, reset) as operations")
def post_edits(request: Request, job_id: str, body: EditRequest) -> dict[str, Any]:
    state = _state(request)
    job = _still_job(state, job_id)
    es = state.edit_session(job)
    boxes = []
    with es.lock:
        try:
            for op in body.ops:
                b = es.history.apply(op)
                if b is not None:
                    boxes.append(b)
        except AlphacutError as err:
            raise from_alphacut(err) from None
        out = dict(es.history.state())
    out["box"] = _union(boxes)
    state.touch(job.id)
    state.broker.publish("job", state.job_dict(job))
    return out


def _history_call(request: Request, job_id: str, what: str) -> dict[str, Any]:
    state = _state(request)
    job = _still_job(state, job_id)
    es = state.edit_session(job)
    with es.lock:
        box = getattr(es.history, what)()
        out = dict(es.history.state())
    out["box"] = list(box) if box else None
    state.touch(job.id)
    state.broker.publish("job", state.job_dict(job))
    return out


@router.post("/jobs/{job_id}/undo", response_model=EditState, tags=["edits"], summary="Undo the last edit")
def undo(request: Request, job_id: str) -> dict[str, Any]:
    return _history_call(request, job_id, "undo")


@router.post("/jobs/{job_id}/redo", response_model=EditState, tags=["edits"], summary="Redo the last undone edit")
def redo(request: Request, job_id: str) -> dict[str, Any]:
    return _history_call(request, job_id, "redo")


@router.post("/jobs/{job_id}/reset", response_model=EditState, tags=["edits"],
             summary="Back to the model's matte (undoable)")
def reset(request: Request, job_id: str) -> dict[str, Any]:
    return post_edits(request, job_id, EditRequest(ops=[{"op": "reset"}]))


@router.get("/jobs/{job_id}/edits", response_model=EditState, tags=["edits"], summary="Undo/redo state")
def edit_state(request: Request, job_id: str) -> dict[str, Any]:
    state = _state(request)
    job = _still_job(state, job_id)
    es = state.edits.get(job.id)
    return dict(es.history.state()) if es else {"version": 0, "can_undo": False, "can_redo": False, "steps": 0}


def _union(boxes: list[tuple[int, int, int, int]]) -> list[int] | None:
    if not boxes:
        return None
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


# --- batch export ----------------------------------------------------------------------------


@router.get("/export.zip", summary="Every finished result (or the listed ones) in one ZIP, with a manifest",
            responses={200: {"content": {"application/zip": {}}}})
def export_zip(
    request: Request,
    ids: str | None = Query(None, description="comma-separated job ids (default: every finished job)"),
    format: ExportFormat = Query("png"),
    bg: str | None = Query(None),
    crop: bool = Query(False),
) -> FileResponse:
    state = _state(request)
    wanted = [i for i in (ids or "").split(",") if i] or [j for j, u in state.uploads.items() if not u.expired]
    if bg:
        try:
            parse_colour(bg)
        except UsageError as err:
            raise from_alphacut(err) from None
    path = state.exports_dir / f"alphacut-{secrets.token_hex(6)}.zip"
    manifest: list[dict[str, Any]] = []
    used: set[str] = set()
    count = 0
    try:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
            for job_id in wanted:
                up = state.uploads.get(job_id)
                if up is None or up.expired:
                    manifest.append({"id": job_id, "status": "missing", "reason": "no such job (or expired)"})
                    continue
                job = state.engine.get(job_id)
                entry: dict[str, Any] = {"id": job_id, "source": up.name, "status": job.stage.value}
                if job.stage.value != "done":
                    entry["reason"] = job.reason or f"not finished ({job.stage.value})"
                    manifest.append(entry)
                    continue
                try:
                    if up.clip is not None:  # a clip: its own default format (webm/webp), over bg if given
                        cpath, cexport = clip_file(state, job, up, None, parse_colour(bg) if bg else None)
                        data = None
                        fname = clip_download_name(up.name, "", cexport)
                    else:
                        data = _render(state, job, format, bg, crop)
                        fname = download_name(up.name, format)
                except ApiError as err:
                    entry.update(status="failed", reason=err.reason)
                    manifest.append(entry)
                    continue
                base, ext = fname.rsplit(".", 1)
                n = 2
                while fname in used:
                    fname = f"{base}-{n}.{ext}"
                    n += 1
                used.add(fname)
                if data is None:  # a clip's verified file, streamed in from disk
                    zf.write(cpath, fname)
                    size = cpath.stat().st_size
                else:
                    zf.writestr(fname, data)
                    size = len(data)
                state.touch(job_id, downloaded=True)
                entry.update(file=fname, bytes=size, edited=bool(state.edits.get(job_id)
                                                                          and state.edits[job_id].history.edited))
                manifest.append(entry)
                count += 1
            zf.writestr(zipfile.ZipInfo("manifest.json", time.localtime()[:6]),
                        json.dumps({"format": format, "background": bg, "files": manifest}, indent=2),
                        compress_type=zipfile.ZIP_DEFLATED)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if count == 0:
        path.unlink(missing_ok=True)
        raise ApiError(409, "nothing-to-export", "no finished results to export yet")
    return FileResponse(path, media_type="application/zip", filename=f"alphacut-{format}.zip",
                        background=BackgroundTask(path.unlink, missing_ok=True))

