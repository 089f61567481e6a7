"""Atomic file writes: a reader sees the old file or the whole new one, never half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DiskFullError, OutputError

#: the errors that mean "no space": a full file system or a full quota
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


def output_error(exc: OSError, what: str, path: str | Path) -> OutputError:
    """An OSError while writing as the user-facing error: ``disk-full`` when there is no space."""
    if exc.errno in NO_SPACE:
        return DiskFullError(f"{what}: the disk is full ({exc.strerror or exc}); free some space and "
                             "run again (a batch resumes where it stopped)", path=path)
    return OutputError(f"{what} ({exc.strerror or exc})", path=path)


def temp_prefix(path: Path) -> str:
    """``.NAME.`` for the temporary file beside ``path``, short enough that the temporary name
    stays under the 255-byte limit even when ``NAME`` itself is near it."""
    name = path.name.encode("utf-8")[:100].decode("utf-8", "ignore")
    return f".{name}."


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent)
    except OSError as exc:
        raise output_error(exc, "cannot write here", path) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise output_error(exc, "cannot write the output", path) from None
    return path


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (FFmpeg): when
    the block ends normally it is fsynced and renamed onto ``path``; when it raises, the
    temporary file is removed and ``path`` is left as it was. Check the file inside the block
    (a file that fails its check is never delivered)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise output_error(exc, "cannot write here", path) from None
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise output_error(exc, "cannot write the output", path) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when both paths name one existing file (so an output would overwrite an input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
