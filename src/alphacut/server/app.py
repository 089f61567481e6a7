"""``create_app(settings)``: the FastAPI app — security in front, the job engine inside.

Routes: ``/`` (the UI), ``/static/*`` (its files), ``/api/*`` (the JSON API, described by
``/api/openapi.json``). There is no Swagger page: it would load scripts from a CDN.
"""

from __future__ import annotations

import atexit
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import AlphacutError
from .errors import ApiError, from_alphacut
from .security import SecurityMiddleware, SecurityPolicy
from .state import ServerSettings, ServerState
from .tokens import install_redaction, remove_redaction

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
HTTP_CODES = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "too-large"}


def create_app(settings: ServerSettings | None = None, policy: SecurityPolicy | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    policy = policy or SecurityPolicy(
        token=settings.token or SecurityPolicy().token,
        bind_host=settings.host,
        port=settings.port or None,
        allow_remote=settings.allow_remote,
        extra_hosts=frozenset(h.lower() for h in settings.extra_hosts),
        max_body_bytes=settings.max_upload_bytes + 1024 * 1024,  # multipart framing on top
        body_idle_timeout_s=settings.body_timeout_s,
        body_grace_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
    )
    state = ServerState(settings, policy)
    atexit.register(state.close)  # temp files go even if the lifespan never ran its end

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn has configured its loggers by now: from here on no token reaches a log line
        redaction = install_redaction((policy.token,))
        state.start()
        try:
            yield
        finally:
            state.close()
            remove_redaction(redaction)

    app = FastAPI(
        title="alphacut local API",
        version=__version__,
        description=(
            "The local web app's API. Every request needs the server's token: the cookie set by the "
            "link `alphacut serve` prints, or, on any /api/ path, `Authorization: Bearer <token>`, "
            "`X-Api-Key: <token>` or `?token=<token>`. State-changing requests from a browser must be "
            "same-origin. Live progress: `GET /api/events` (SSE). With `--rembg-api`, rembg's "
            "`/api/remove` too (docs/rembg-api.md)."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.alphacut = state
    app.state.policy = policy
    app.add_middleware(SecurityMiddleware, policy=policy)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"retry-after": str(exc.retry_after)} if exc.retry_after else None
        return JSONResponse({"code": exc.code, "reason": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(AlphacutError)
    async def _alphacut_error(request: Request, exc: AlphacutError) -> JSONResponse:
        return await _api_error(request, from_alphacut(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own refusals (a malformed multipart body, an unknown path) in the API's one
        # error shape rather than {"detail": ...}
        code = HTTP_CODES.get(exc.status_code, "bad-request" if exc.status_code < 500 else "internal")
        return JSONResponse({"code": code, "reason": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
        return JSONResponse({"code": "usage", "reason": "; ".join(parts) or "invalid request"}, status_code=422)

    from . import routes_jobs, routes_models, routes_system

    app.include_router(routes_jobs.router)
    app.include_router(routes_models.router)
    app.include_router(routes_system.router)
    if settings.rembg_api:
        from . import routes_rembg

        app.include_router(routes_rembg.router)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html",
                            headers={"cache-control": "no-store"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(WEB_DIR / "icon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app
