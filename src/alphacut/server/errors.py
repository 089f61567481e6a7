"""One JSON error shape for the API: ``{"code": ..., "reason": ...}`` with the right status."""

from __future__ import annotations

from ..errors import AlphacutError

#: AlphacutError.code → HTTP status
STATUS = {
    "usage": 422, "input": 422, "not-found": 404, "empty": 422, "unsupported-format": 415, "corrupt": 422,
    "truncated": 422, "too-large": 413, "unknown-model": 404, "model-not-installed": 409,
    "model-integrity": 409, "model-download": 502, "offline": 503, "license-not-accepted": 403,
    "queue-full": 429, "cancelled": 409, "inference": 500, "output": 500, "verification": 500,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, reason: str, *, retry_after: int | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.retry_after = retry_after


def from_alphacut(err: AlphacutError) -> ApiError:
    status = STATUS.get(err.code, 400 if err.exit_code == 2 else 500)
    return ApiError(status, err.code, err.reason, retry_after=5 if status in (429, 503) else None)


def submit_refused(err: AlphacutError, model: str, retry_after: int) -> ApiError:
    """What an upload answers when the engine refuses to queue it (stills and clips alike): a
    model that is not installed says where to get it, a full queue says when to come back."""
    if err.code == "model-not-installed":
        return ApiError(409, err.code, f"the model {model!r} is not installed; download it in "
                        "Models & system (or `alphacut models pull`)")
    if err.code == "queue-full":
        return ApiError(429, "queue-full", "the queue is full; try again in a moment", retry_after=retry_after)
    return from_alphacut(err)
