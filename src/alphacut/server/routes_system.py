"""Capabilities (provider, threads, limits, degraded warnings) and live events (SSE)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from typing import Any, AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from .. import __version__
from ..imageio.formats import all_formats, names, output_formats
from .routes_jobs import EXPORTS
from .state import ServerState

router = APIRouter(prefix="/api", tags=["system"])


def _state(request: Request) -> ServerState:
    return request.app.state.alphacut


@router.get("/capabilities", summary="Which provider runs, threads, limits, and warnings for degraded setups")
def capabilities(request: Request) -> dict[str, Any]:
    state = _state(request)
    s = state.settings
    from ..models.session import CPU, PREFERENCE, physical_cores, provider_chain, provider_name

    try:
        import onnxruntime as ort

        available = list(ort.get_available_providers())
        ort_version = ort.__version__
    except Exception:  # pragma: no cover
        available, ort_version = [], None
    chain = [provider_name(e) for e in provider_chain()]
    expected = chain[0] if chain else CPU
    running = state.last_provider or expected
    warnings = list(state.provider_warnings)
    degraded = bool(state.last_provider and state.last_provider != expected) or any(
        "falling back" in w or "unavailable" in w for w in warnings)
    gpu_known = [provider_name(p) for p in PREFERENCE if provider_name(p) != CPU]
    notes = []
    if running == CPU and not any(p in available for p in gpu_known):
        notes.append("No GPU execution provider is installed: images run on the CPU (slower, same quality).")
    engine = state.engine
    return {
        "version": __version__,
        "onnxruntime": ort_version,
        "provider": running,
        "provider_confirmed": state.last_provider is not None,
        "provider_chain": chain,
        "available_providers": available,
        "degraded": degraded,
        "warnings": warnings,
        "notes": notes,
        "threads": physical_cores(),
        "cpu_count": os.cpu_count(),
        "workers": getattr(engine, "workers", s.workers),
        "max_queue": s.max_queue,
        "model": s.model,
        "limits": {"max_upload_bytes": s.max_upload_bytes, "max_pixels": s.max_pixels,
                   "result_ttl_s": s.result_ttl_s, "downloaded_ttl_s": s.downloaded_ttl_s},
        # what a clip or an animation may hold (``media.limits.MediaLimits``): the UI shows these
        # so a user knows before uploading why a long clip would be refused
        "media_limits": dataclasses.asdict(s.media_limits),
        "input_formats": names(all_formats()),
        "output_formats": names(output_formats()),
        "export_formats": list(EXPORTS),
        "qualities": ["fast", "best"],
        "remote": s.allow_remote,
    }


@router.get("/events", summary="Server-Sent Events: 'job' (stage/progress), 'model' (pull progress), 'expired'",
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(request: Request) -> StreamingResponse:
    state = _state(request)
    broker = state.broker
    entry = broker.subscribe()
    _, queue = entry

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 1000\n\n"
            snapshot = []
            for job_id, up in list(state.uploads.items()):
                if not up.expired:
                    try:
                        snapshot.append(state.job_dict(state.engine.get(job_id)))
                    except Exception:
                        pass
            yield _sse("hello", {"jobs": snapshot})
            while not broker.closed and not state.closing:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), timeout=10.0)
                except asyncio.TimeoutError:
                    if await request.is_disconnected():
                        break
                    yield b": keep-alive\n\n"
                    continue
                if kind == "bye":
                    break
                yield _sse(kind, data)
        finally:
            broker.unsubscribe(entry)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, default=str)}\n\n".encode()
