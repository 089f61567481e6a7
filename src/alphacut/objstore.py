"""Object stores (``s3://bucket/prefix``, and whatever else fsspec reaches) as inputs and outputs.

Every entry point meets object-store URIs in the same two places: ``inputs.expand`` lists the
images under a URI as items (an item's source id is its URI), and an object-store sink writes
outputs under an output URI (``jobs.sinks.ObjectSink``). Both go through this module, on top
of fsspec (s3fs for S3), so the local engine and the Ray executor read and write the same way.

Credentials and endpoints are fsspec's (botocore's): the standard ``AWS_*`` environment
variables, ``AWS_ENDPOINT_URL`` included, the AWS config files, an instance role. Nothing is
contacted but the store the URI names.

Writes are *write-then-verify*: an object is put whole in one request (an object store never
shows a half-written object under its key: the new bytes appear at once or not at all), then
read back and compared by sha256, so a file the manifest calls done is really there, intact.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from typing import Any, Iterator

from .errors import InputNotFoundError, OutputError, UsageError

#: ``scheme://…`` — anything fsspec knows except plain files (those stay paths)
_URI = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
_LOCAL = {"file", "local"}

#: the environment that decides which endpoint and credentials a filesystem uses
_ENV_KEYS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION",
             "AWS_DEFAULT_REGION")
_filesystems: dict[tuple[str | None, ...], Any] = {}
_lock = threading.Lock()

INSTALL_HINT = "pip install 'alphacut[s3]' (fsspec and s3fs; 'alphacut[ray]' includes them)"


def is_uri(text: str | None) -> bool:
    """True for an object-store URI (``s3://…``, ``gs://…``); False for paths and ``file://``."""
    if not text:
        return False
    m = _URI.match(str(text))
    return bool(m) and m.group(1).lower() not in _LOCAL


def join(uri: str, rel: str) -> str:
    """``s3://b/out`` + ``a/x.png`` → ``s3://b/out/a/x.png``."""
    return uri.rstrip("/") + "/" + rel.lstrip("/")


def filesystem(uri: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URI; a clear error when the scheme's library
    is not installed.

    One filesystem per scheme and per endpoint/credential environment, made here rather than
    by fsspec's instance cache, which keys on arguments only and would keep talking to an
    endpoint after ``AWS_ENDPOINT_URL`` changed."""
    m = _URI.match(uri)
    if not m:
        raise UsageError(f"{uri}: not an object-store URI")
    proto = m.group(1).lower()
    key = (proto, *(os.environ.get(k) for k in _ENV_KEYS))
    with _lock:
        fs = _filesystems.get(key)
        if fs is None:
            try:
                import fsspec

                fs = fsspec.filesystem(proto, skip_instance_cache=True)
            except ImportError as exc:
                raise UsageError(f"{uri}: cannot open this store ({exc}); {INSTALL_HINT}") from None
            except ValueError as exc:
                raise UsageError(f"{uri}: unknown kind of store ({exc})") from None
            _filesystems[key] = fs
    return fs, fs._strip_protocol(uri)


def _uri(fs: Any, path: str) -> str:
    proto = fs.protocol[0] if isinstance(fs.protocol, (tuple, list)) else fs.protocol
    return f"{proto}://{path}"


def list_objects(uri: str) -> Iterator[tuple[str, str, int]]:
    """(uri, name relative to ``uri``, size) of every object at or under ``uri``, sorted; a URI
    that names one object gives that object (named by its base name). InputNotFoundError when
    there is nothing there."""
    fs, path = filesystem(uri)
    path = path.rstrip("/")
    try:
        fs.invalidate_cache(path)
        info = fs.info(path)
    except FileNotFoundError:
        raise InputNotFoundError("no such object or prefix", path=uri) from None
    except OSError as exc:
        raise InputNotFoundError(f"cannot list it ({exc})", path=uri) from None
    if info.get("type") != "directory":
        yield _uri(fs, path), path.rsplit("/", 1)[-1], int(info.get("size") or 0)
        return
    found = fs.find(path, detail=True)
    for key in sorted(found):
        meta = found[key]
        if meta.get("type") == "directory":
            continue
        rel = key[len(path):].lstrip("/")
        yield _uri(fs, key), rel, int(meta.get("size") or 0)


def read(uri: str, *, start: int | None = None, end: int | None = None) -> bytes:
    """An object's bytes (or the range ``start:end``)."""
    fs, path = filesystem(uri)
    try:
        if start is None and end is None:
            return fs.cat_file(path)
        return fs.cat_file(path, start=start, end=end)
    except FileNotFoundError:
        raise InputNotFoundError("no such object", path=uri) from None
    except OSError as exc:
        raise InputNotFoundError(f"cannot read it ({exc})", path=uri) from None


def sha256_of(uri: str) -> str | None:
    """The sha256 of an object as it is in the store now, or None when it is not there."""
    fs, path = filesystem(uri)
    try:
        fs.invalidate_cache(path)
        return hashlib.sha256(fs.cat_file(path)).hexdigest()
    except (FileNotFoundError, OSError):
        return None


def put_verified(uri: str, data: bytes) -> str:
    """Put ``data`` under ``uri`` in one request, read it back and compare sha256; returns the
    sha256. An object that does not read back identical is deleted and reported, never left
    for the manifest to call done."""
    fs, path = filesystem(uri)
    want = hashlib.sha256(data).hexdigest()
    try:
        fs.pipe_file(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write the object ({exc})", path=uri) from None
    got = sha256_of(uri)
    if got != want:
        try:
            fs.rm_file(path)
        except OSError:
            pass
        raise OutputError(f"the object did not read back as written (sha256 {got}, expected {want}); removed",
                          path=uri)
    return want


def remove(uri: str) -> None:
    """Delete one object (no error when it is already gone)."""
    fs, path = filesystem(uri)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
