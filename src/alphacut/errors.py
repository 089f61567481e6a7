"""Every error a user can see, each with a plain message and a process exit code.

Errors name the file they are about (when there is one) and the reason, never a traceback.
The CLI maps ``exit_code`` straight to the process exit status; the server maps it to HTTP.
"""

from __future__ import annotations

from pathlib import Path


class AlphacutError(Exception):
    """Base class: a failure with a message a person understands."""

    exit_code: int = 1
    #: a short stable code for machines (manifests, JSON output, HTTP bodies)
    code: str = "error"

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class UsageError(AlphacutError):
    """The command line or the API was called with options that do not fit together."""

    exit_code = 2
    code = "usage"


# --- inputs -----------------------------------------------------------------------------


class InputError(AlphacutError):
    """An input could not be turned into pixels."""

    exit_code = 3
    code = "input"


class InputNotFoundError(InputError):
    code = "not-found"


class EmptyFileError(InputError):
    code = "empty"


class UnsupportedFormatError(InputError):
    code = "unsupported-format"


class CorruptImageError(InputError):
    code = "corrupt"


class TruncatedImageError(CorruptImageError):
    code = "truncated"


class EncryptedInputError(InputError):
    """A password-protected document (PDF): never guessed at, never decrypted here."""

    code = "encrypted"


class ImageTooLargeError(InputError):
    """Refused before decoding: too many pixels (decompression bomb) or too many bytes."""

    code = "too-large"


class UnsafePathError(InputError):
    """A symbolic link out of its folder, or a ZIP member named outside its archive: never read."""

    code = "unsafe-path"


# --- models -----------------------------------------------------------------------------


class ModelError(AlphacutError):
    exit_code = 4
    code = "model"


class UnknownModelError(ModelError):
    code = "unknown-model"


class ModelNotInstalledError(ModelError):
    code = "model-not-installed"


class ModelIntegrityError(ModelError):
    """A file's size or sha256 does not match what the catalog pins."""

    code = "model-integrity"


class ModelDownloadError(ModelError):
    code = "model-download"


class OfflineError(ModelDownloadError):
    code = "offline"


class LicenseNotAcceptedError(ModelError):
    code = "license-not-accepted"


# --- inference / output -----------------------------------------------------------------


class InferenceError(AlphacutError):
    exit_code = 5
    code = "inference"


class OutputError(AlphacutError):
    exit_code = 6
    code = "output"


class DiskFullError(OutputError):
    """The output's file system (or the user's quota) is full: nothing was left half-written."""

    code = "disk-full"


class VerificationError(OutputError):
    """An encoded file did not decode back to what was meant to be written."""

    code = "verification"


class CancelledError(AlphacutError):
    exit_code = 130
    code = "cancelled"


# --- jobs -------------------------------------------------------------------------------


class QueueFullError(AlphacutError):
    """The job engine's bounded queue is full: try again later (the server answers 429/503)."""

    exit_code = 75  # EX_TEMPFAIL
    code = "queue-full"

    def __init__(self, message: str = "the job queue is full; try again shortly", *,
                 retry_after: float = 1.0, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.retry_after = retry_after


class JobFailedError(AlphacutError):
    """A job's worker died, hung or ran out of memory; the job failed alone."""

    exit_code = 5
    code = "worker"


class WorkerCrashedError(JobFailedError):
    code = "worker-crashed"


class JobTimeoutError(JobFailedError):
    code = "timeout"


class MemoryLimitError(JobFailedError):
    code = "memory-limit"


def plain_reason(exc: BaseException) -> tuple[str, str]:
    """(code, reason) for any exception a job can end with: ours as they say themselves, a
    MemoryError plainly, anything else as ``unexpected <Type>: <first line>``. The engine's
    workers and the Ray rows both word failures this way, so a manifest reads the same."""
    if isinstance(exc, AlphacutError):
        return exc.code, exc.reason
    if isinstance(exc, MemoryError):
        return "memory", "ran out of memory"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return "internal", f"unexpected {type(exc).__name__}" + (f": {text}" if text else "")
