"""Models: list (installed, size, licence, where), pull with progress (SSE), delete."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..errors import AlphacutError
from ..models.catalog import DEFAULT_MODEL, get_spec
from ..models.store import ModelStore
from .errors import ApiError, from_alphacut
from .state import TERMINAL, ServerState

router = APIRouter(prefix="/api/models", tags=["models"])


def _state(request: Request) -> ServerState:
    return request.app.state.alphacut


def _store(state: ServerState) -> ModelStore:
    return ModelStore(state.settings.models_home)


def model_dict(state: ServerState, info: Any) -> dict[str, Any]:
    d = info.as_dict()
    spec = get_spec(info.name)
    d.update(subject=spec.subject, licence_url=spec.licence_url, default=info.name == state.settings.model,
             builtin_default=info.name == DEFAULT_MODEL, downloadable=bool(spec.sources),
             pull=state.pulls.get(info.name))
    return d


@router.get("", summary="Every model in the catalog with its install state, size and licence")
def list_models(request: Request) -> dict[str, Any]:
    state = _state(request)
    store = _store(state)
    return {"home": str(store.dir), "offline": store.offline, "default": state.settings.model,
            "models": [model_dict(state, i) for i in store.list()]}


class PullRequest(BaseModel):
    accept_license: bool = False


@router.post("/{name}/pull", status_code=202, summary="Download and verify a model; progress arrives as 'model' events")
def pull_model(request: Request, name: str, body: PullRequest | None = None) -> dict[str, Any]:
    state = _state(request)
    try:
        spec = get_spec(name)
    except AlphacutError as err:
        raise from_alphacut(err) from None
    accept = bool(body and body.accept_license)
    if not spec.commercial_use and not accept:
        raise ApiError(403, "license-not-accepted", f"{name} is licensed {spec.licence} and may not be used "
                       "commercially; accept the licence to download it")
    with state.lock:
        current = state.pulls.get(name)
        if current and current.get("state") == "pulling":
            return current
        status: dict[str, Any] = {"name": name, "state": "pulling", "done": 0, "total": spec.size, "reason": None}
        state.pulls[name] = status

    def progress(done: int, total: int | None, label: str) -> None:
        status.update(done=done, total=total or status["total"], label=label)
        state.broker.publish("model", dict(status))

    def work() -> None:
        try:
            _store(state).pull(name, accept_license=accept, progress=progress)
            status.update(state="done", done=status.get("total") or status["done"])
        except AlphacutError as err:
            status.update(state="failed", reason=err.reason, code=err.code)
        except Exception as err:  # a pull must never take the server down
            status.update(state="failed", reason=f"{type(err).__name__}: {err}", code="model-download")
        state.broker.publish("model", dict(status))

    threading.Thread(target=work, name=f"pull-{name}", daemon=True).start()
    state.broker.publish("model", dict(status))
    return dict(status)


@router.delete("/{name}", summary="Delete an installed model from the cache")
def delete_model(request: Request, name: str) -> dict[str, Any]:
    state = _state(request)
    try:
        get_spec(name)
    except AlphacutError as err:
        raise from_alphacut(err) from None
    busy = [j for j in state.uploads if not state.uploads[j].expired and _uses(state, j, name)]
    if busy or not state.engine.drop(name):
        raise ApiError(409, "model-in-use", f"{name} is in use by queued or running images")
    try:
        path = _store(state).rm(name)
    except AlphacutError as err:
        raise from_alphacut(err) from None
    state.pulls.pop(name, None)
    state.broker.publish("model", {"name": name, "state": "deleted"})
    return {"name": name, "deleted": str(path)}


def _uses(state: ServerState, job_id: str, name: str) -> bool:
    try:
        job = state.engine.get(job_id)
    except Exception:
        return False
    return job.stage.value not in TERMINAL and job.options.model == name
