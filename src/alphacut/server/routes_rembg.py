"""rembg's HTTP API on alphacut's server (``alphacut serve --rembg-api``), for its integrations.

``POST /api/remove`` (multipart ``file``) and ``GET /api/remove?url=`` read rembg 2.0.86's
parameters exactly where rembg reads them (``rembg/commands/s_command.py``):

- POST: ``model a af ab ae om ppm dc vm`` are **form fields** (the same names in the query
  string are ignored, as rembg ignores them); ``bgc`` and ``extras`` are **query parameters**;
- GET: all of them are query parameters, with ``url``.

The image goes through the server's one job engine like an upload from the web app (same
workers, limits, queue and back-pressure, same verified encoder), but it is not shown in the
web app's queue and its files are removed as soon as the PNG is sent. What each parameter
does here (honoured, mapped, ignored) is in docs/rembg-api.md; model names in
``rembg_models``. Security is the server's own (token, Host, Origin, body limits: security.py);
URL fetching is off unless the server was started with ``--rembg-fetch-urls`` (fetch_url.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from .. import pipeline
from ..jobs.state import Job
from ..errors import AlphacutError
from ..imageio.formats import SNIFF_BYTES, sniff
from ..pipeline import Options
from .errors import STATUS, ApiError, from_alphacut
from .rembg_models import ModelChoice, ModelChoiceError, choose
from .routes_jobs import _clean_name, _dimensions  # the web app's upload rules: one definition
from .state import ServerState

router = APIRouter(prefix="/api", tags=["rembg-compatible"])

_CHUNK = 1024 * 1024
#: extras keys a request may not set: the server loads no model file a request names
REFUSED_EXTRAS = {
    "model_path": "a request cannot make the server load a model file",
}
#: rembg's defaults for the parameters alphacut accepts and ignores (reported when changed)
IGNORED_DEFAULTS = {"af": 240, "ab": 10, "ae": 10, "dc": False}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "the cutout (or mask) as PNG; headers X-Alphacut-Model "
          "(the model that ran), X-Alphacut-Quality, X-Alphacut-Provider, X-Alphacut-Ignored"},
    400: {"description": "bad bgc, bad extras, unknown or refused model (the reason lists the models available)"},
    401: {"description": "no token or a wrong one"},
    403: {"description": "a non-commercial model without --accept-license; URL fetching not enabled"},
    409: {"description": "the model is not installed"},
    413: {"description": "too many bytes or pixels"},
    415: {"description": "not a supported image"},
    422: {"description": "a parameter out of range, or an image that cannot be decoded"},
    429: {"description": "the queue is full; retry after Retry-After seconds"},
}


@dataclass(frozen=True)
class RembgParams:
    model: str | None
    a: bool
    af: int
    ab: int
    ae: int
    om: bool
    ppm: bool
    dc: bool
    vm: bool
    bgc: str | None
    extras: str | None


_DESC = {
    "model": "rembg model name (mapped to an installed alphacut model; the response's X-Alphacut-Model says "
             "which ran) or an alphacut model name; absent: the server's default model",
    "a": "alpha matting: runs alphacut's best tier (edge refinement)",
    "af": "accepted, ignored (alphacut's best tier builds its own trimap)",
    "ab": "accepted, ignored (alphacut's best tier builds its own trimap)",
    "ae": "accepted, ignored (alphacut's best tier builds its own trimap)",
    "om": "only the mask (8-bit greyscale PNG)",
    "ppm": "post-process the mask: a hard 0/255 matte, specks removed",
    "dc": "accepted, ignored: alphacut always decontaminates edges",
    "vm": "ViTMatte refinement: runs alphacut's best tier",
    "bgc": "background colour R,G,B,A (0-255 each; A 0 = transparent, 255 = opaque)",
    "extras": "JSON object of rembg extras: accepted and ignored, except model_path (refused)",
}


def form_params(
    model: str | None = Form(None, description=_DESC["model"]),
    a: bool = Form(False, description=_DESC["a"]),
    af: int = Form(240, ge=0, le=255, description=_DESC["af"]),
    ab: int = Form(10, ge=0, le=255, description=_DESC["ab"]),
    ae: int = Form(10, ge=0, description=_DESC["ae"]),
    om: bool = Form(False, description=_DESC["om"]),
    ppm: bool = Form(False, description=_DESC["ppm"]),
    dc: bool = Form(False, description=_DESC["dc"]),
    vm: bool = Form(False, description=_DESC["vm"]),
    bgc: str | None = Query(None, description=_DESC["bgc"]),
    extras: str | None = Query(None, description=_DESC["extras"]),
) -> RembgParams:
    return RembgParams(model, a, af, ab, ae, om, ppm, dc, vm, bgc, extras)


def query_params(
    model: str | None = Query(None, description=_DESC["model"]),
    a: bool = Query(False, description=_DESC["a"]),
    af: int = Query(240, ge=0, le=255, description=_DESC["af"]),
    ab: int = Query(10, ge=0, le=255, description=_DESC["ab"]),
    ae: int = Query(10, ge=0, description=_DESC["ae"]),
    om: bool = Query(False, description=_DESC["om"]),
    ppm: bool = Query(False, description=_DESC["ppm"]),
    dc: bool = Query(False, description=_DESC["dc"]),
    vm: bool = Query(False, description=_DESC["vm"]),
    bgc: str | None = Query(None, description=_DESC["bgc"]),
    extras: str | None = Query(None, description=_DESC["extras"]),
) -> RembgParams:
    return RembgParams(model, a, af, ab, ae, om, ppm, dc, vm, bgc, extras)


def parse_bgc(value: str | None) -> tuple[int, int, int, int] | None:
    """rembg's ``bgc`` ("R,G,B,A"); "R,G,B" is taken as opaque. 400 with the reason otherwise
    (rembg itself answers 500 for both a malformed value and three numbers)."""
    if value is None or not value.strip():
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts):
        raise ApiError(400, "bad-bgc", f"bgc must be R,G,B,A with four whole numbers 0-255 (e.g. 255,255,255,255), "
                       f"not {value[:40]!r}")
    nums = [int(p) for p in parts]
    if any(n > 255 for n in nums):
        raise ApiError(400, "bad-bgc", f"bgc values must be 0-255, not {value[:40]!r}")
    if len(nums) == 3:
        nums.append(255)
    return nums[0], nums[1], nums[2], nums[3]


def parse_extras(value: str | None) -> dict[str, Any]:
    """rembg's ``extras`` (a JSON object). rembg silently drops JSON it cannot parse; here that
    is a 400 with the reason, so a caller learns its extras were not read."""
    if value is None or not value.strip():
        return {}
    try:
        extras = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad-extras", f"extras is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(extras, dict):
        raise ApiError(400, "bad-extras", f"extras must be a JSON object, not {type(extras).__name__}")
    for key, why in REFUSED_EXTRAS.items():
        if key in extras:
            raise ApiError(400, "bad-extras", f"extras.{key} is refused: {why}")
    return extras


def ignored(params: RembgParams, extras: dict[str, Any]) -> list[str]:
    """The parameters this request set that alphacut does not use (the X-Alphacut-Ignored header)."""
    out = [k for k, default in IGNORED_DEFAULTS.items() if getattr(params, k) != default]
    return out + [f"extras.{k}" for k in sorted(extras)]


@dataclass(frozen=True)
class Plan:
    """What to run and how to turn its cutout into rembg's answer."""

    choice: ModelChoice
    worker: Options  # what the engine's worker runs (and, when ``final`` is None, writes)
    #: options for a re-render here, when the answer is not what the worker writes (ppm, bgc with 0 < A < 255)
    final: Options | None
    ppm: bool
    bg_rgba: tuple[int, int, int, int] | None


def plan(state: ServerState, params: RembgParams) -> Plan:
    s = state.settings
    bg = parse_bgc(params.bgc)
    extras = parse_extras(params.extras)
    del extras  # read for validation; none of rembg's extras change alphacut's result
    try:
        choice = choose(params.model, s.model, _installed_fn(state), s.accept_license)
    except ModelChoiceError as err:
        raise ApiError(err.status, err.code, err.reason) from None
    quality = "best" if (params.a or params.vm) else "fast"
    base = Options(model=choice.model, quality=quality, format="png", bit_depth=8, max_pixels=s.max_pixels)
    if params.om:
        bg = None  # rembg ignores bgc for a mask
    partial = bg is not None and 0 < bg[3] < 255
    opaque = bg is not None and bg[3] == 255
    if params.om and not params.ppm:
        return Plan(choice, dataclasses.replace(base, mask_only=True), None, False, None)
    if not params.ppm and not partial:
        background = bg[:3] if opaque and bg is not None else None
        return Plan(choice, dataclasses.replace(base, background=background), None, False, bg)
    final = dataclasses.replace(base, mask_only=params.om,
                                background=bg[:3] if opaque and bg is not None else None)
    return Plan(choice, base, final, params.ppm, bg)


def _installed_fn(state: ServerState) -> Any:
    from ..models.store import ModelStore

    store = ModelStore(state.settings.models_home)

    def installed(name: str) -> bool:
        try:
            return bool(store.info(name).installed)
        except AlphacutError:
            return False

    return installed


def hard_matte(matte: np.ndarray) -> np.ndarray:
    """``ppm``: rembg's post-processed mask is a hard 0/255 one with specks removed; here the float
    matte is cut at 0.5 and opened with a 3x3 ellipse (OpenCV)."""
    import cv2

    hard = (matte >= 0.5).astype(np.uint8)
    hard = cv2.morphologyEx(hard, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    return hard.astype(np.float32)


def over_translucent(cutout: pipeline.Cutout, rgba: tuple[int, int, int, int]) -> pipeline.Cutout:
    """The cutout over a partly transparent colour (rembg's ``bgc`` with 0 < A < 255) as a new
    straight-alpha cutout: alpha = a + A(1 - a); colour = (F a + C A (1 - a)) / alpha ("over"
    in float, like pipeline.compose)."""
    from ..matte.upsample import to_unit_float

    a = cutout.matte.astype(np.float32)
    ab = rgba[3] / 255.0
    out_a = a + ab * (1.0 - a)
    colour = np.asarray(rgba[:3], np.float32) / 255.0
    fg = to_unit_float(cutout.foreground)
    rgb = (fg * a[..., None] + colour * (ab * (1.0 - a))[..., None]) / np.maximum(out_a, 1e-6)[..., None]
    top = 65535 if cutout.foreground.dtype == np.uint16 else 255
    fg_out = np.rint(np.clip(rgb, 0.0, 1.0) * top).astype(cutout.foreground.dtype)
    return dataclasses.replace(cutout, matte=out_a.astype(np.float32), foreground=fg_out, timings={})


def _final_bytes(state: ServerState, job: Any, p: Plan) -> bytes:
    cutout = state.engine.load_cutout(job)
    if p.ppm:
        cutout = dataclasses.replace(cutout, matte=hard_matte(cutout.matte), timings={})
    if p.bg_rgba is not None and 0 < p.bg_rgba[3] < 255 and p.final is not None and not p.final.mask_only:
        cutout = over_translucent(cutout, p.bg_rgba)
    return pipeline.render(cutout, p.final, name=job.name)


def _prepare(state: ServerState, path: Path, name: str, params: RembgParams) -> Plan:
    """Sniff, header-size check, parameters: everything refused before a job is queued."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head:
        raise ApiError(400, "empty", f"{name} is empty")
    try:
        fmt = sniff(head, name=name)
    except AlphacutError as err:
        raise ApiError(415 if err.code == "unsupported-format" else 422, err.code, err.reason) from None
    if fmt.kind != "still":  # one image in, one PNG out
        raise ApiError(415, "unsupported-format", f"{name}: a {fmt.name.upper()} holds a {fmt.kind}, not one image; "
                       "rembg's API answers one PNG per image (a PDF's photos: POST /api/jobs or `alphacut remove`)")
    p = plan(state, params)
    _dimensions(path, name, state.settings.max_pixels)
    return p


async def _run(request: Request, state: ServerState, path: Path, name: str, params: RembgParams) -> Response:
    s = state.settings
    out = state.work_dir / "rembg" / f"{path.stem}.png"
    job = None
    try:
        p = await run_in_threadpool(_prepare, state, path, name, params)
        try:
            job = await run_in_threadpool(state.engine.submit, path, name=name, options=p.worker, output=out)
        except AlphacutError as err:
            if err.code == "queue-full":
                raise ApiError(429, "queue-full", "the queue is full; try again in a moment",
                               retry_after=s.retry_after_s) from None
            raise from_alphacut(err) from None
        job = await _wait(request, state, job.id)
        stage = job.stage.value
        if stage != "done":  # failed (the worker's reason, e.g. a corrupt file: 422) or cancelled (409)
            code = job.error_code or stage
            raise ApiError(STATUS.get(code, 500) if stage == "failed" else 409, code,
                           job.reason or f"the job was {stage}")
        if p.final is None:
            data = await run_in_threadpool(Path(job.output_path).read_bytes)
        else:
            try:
                data = await run_in_threadpool(_final_bytes, state, job, p)
            except AlphacutError as err:
                raise from_alphacut(err) from None
        headers = {"x-alphacut-model": p.choice.model, "x-alphacut-quality": p.worker.quality,
                   "x-alphacut-provider": job.provider or ""}
        skipped = ignored(params, parse_extras(params.extras))
        if skipped:
            headers["x-alphacut-ignored"] = ",".join(skipped)
        return Response(content=data, media_type="image/png", headers=headers)
    finally:
        path.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
        if job is not None:
            _forget(state, job.id)


async def _wait(request: Request, state: ServerState, job_id: str) -> Job:
    """The job once it is final; cancelled if the client goes away first."""
    loop = asyncio.get_running_loop()
    next_check = loop.time() + 0.5
    while True:
        job = state.engine.get(job_id)
        if job.final:
            return job
        if loop.time() >= next_check:
            next_check = loop.time() + 0.5
            if await request.is_disconnected():
                state.engine.cancel(job_id)
        await asyncio.sleep(0.02)


def _forget(state: ServerState, job_id: str) -> None:
    shutil.rmtree(state.artifacts_dir / job_id, ignore_errors=True)
    try:
        state.engine.forget(job_id)
    except Exception:  # noqa: BLE001 - a job the engine already dropped
        pass


def _upload_path(state: ServerState) -> Path:
    (state.work_dir / "rembg").mkdir(parents=True, exist_ok=True)
    return state.uploads_dir / f"rembg-{secrets.token_hex(8)}.upload"


@router.post("/remove", summary="Remove the background (rembg-compatible, multipart file)",
             response_class=Response, responses=_RESPONSES)
async def remove_post(request: Request,
                      file: UploadFile = File(..., description="the image (PNG, JPEG, WebP, AVIF, HEIC, TIFF, BMP, GIF)"),
                      params: RembgParams = Depends(form_params)) -> Response:
    state: ServerState = request.app.state.alphacut
    if state.closing:
        raise ApiError(503, "shutting-down", "the server is shutting down", retry_after=state.settings.retry_after_s)
    name = _clean_name(file.filename)
    path = _upload_path(state)
    size = 0
    limit = state.settings.max_upload_bytes
    try:
        with path.open("wb") as fh:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too-large", f"{name} is over the upload limit of {limit / 1048576:.0f} MB")
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return await _run(request, state, path, name, params)


@router.get("/remove", summary="Remove the background of the image at a URL (rembg-compatible; off by default)",
            response_class=Response, responses=_RESPONSES)
async def remove_get(request: Request,
                     url: str = Query(..., description="http(s) URL of a public image; fetched only when the server "
                                      "was started with --rembg-fetch-urls"),
                     params: RembgParams = Depends(query_params)) -> Response:
    from .fetch_url import FetchRefused, UrlFetcher

    state: ServerState = request.app.state.alphacut
    s = state.settings
    if not s.rembg_fetch_urls:
        raise ApiError(403, "url-fetch-off", "this server does not fetch URLs; send the image with POST /api/remove "
                       "(or start the server with --rembg-fetch-urls to allow public http(s) URLs)")
    parse_bgc(params.bgc)
    parse_extras(params.extras)
    fetcher = state.url_fetcher or UrlFetcher(max_bytes=min(50 * 1024 * 1024, s.max_upload_bytes))
    try:
        data = await run_in_threadpool(fetcher.fetch, url)
    except FetchRefused as err:
        raise ApiError(err.status, err.code, err.reason) from None
    path = _upload_path(state)
    await run_in_threadpool(path.write_bytes, data)
    name = _clean_name(url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "image")
    return await _run(request, state, path, name, params)
