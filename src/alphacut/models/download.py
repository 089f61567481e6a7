"""One HTTP downloader for every source: stream, resume, retry, hash, rename.

Hand-written on ``urllib`` on purpose: pooch cannot resume a partial file, and
huggingface_hub only speaks to the Hub's own API (it cannot fetch from npm or PyPI, and would
add a heavy dependency for one GET). The stdlib is enough for what we need: ``Range`` resume,
bounded retries with exponential back-off, a progress callback and hashing while streaming.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelDownloadError, ModelIntegrityError, OfflineError

#: ``progress(done_bytes, total_bytes_or_None, label)``; the CLI turns it into a progress bar
ProgressFn = Callable[[int, "int | None", str], None]

USER_AGENT = "alphacut-model-store/0.1 (+https://github.com/alphacut)"
CHUNK = 1 << 20

#: HTTP statuses worth another try: the server or something in between is having a bad moment
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def offline_from_env() -> bool:
    """``ALPHACUT_OFFLINE=1`` (or true/yes/on) switches every network fetch off."""
    return os.environ.get("ALPHACUT_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential back-off (``backoff * 2**n``, capped)."""

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 16.0
    timeout: float = 30.0

    def delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * (2**attempt))


@dataclass
class Fetcher:
    """What a source needs to reach the network for one model: policy, progress, offline flag."""

    model: str
    offline: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: ProgressFn | None = None
    #: for tests and logs: how many HTTP requests were opened
    requests: int = 0
    sleep: Callable[[float], None] = time.sleep

    # --- guards ------------------------------------------------------------------------

    def check_online(self, url: str) -> None:
        """Raise before any socket is opened when offline."""
        if self.offline:
            raise OfflineError(
                f"model {self.model!r} is not installed and offline mode is on "
                f"(ALPHACUT_OFFLINE / --offline), so {url} was not fetched. On a machine with "
                f"internet run `alphacut models pull {self.model}` and `alphacut models export "
                f"{self.model} FILE`, then here `alphacut models import FILE --name {self.model}`."
            )

    def report(self, done: int, total: int | None, label: str) -> None:
        if self.progress is not None:
            self.progress(done, total, label)

    # --- requests ----------------------------------------------------------------------

    def _open(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        self.check_online(url)
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        self.requests += 1
        return urllib.request.urlopen(req, timeout=self.retry.timeout)  # noqa: S310 (https/http only)

    def _with_retry(self, url: str, what: Callable[[int], Any]) -> Any:
        """Run ``what(attempt)``; retry connection errors and retryable statuses with back-off."""
        last: BaseException | None = None
        for attempt in range(self.retry.attempts):
            try:
                return what(attempt)
            except urllib.error.HTTPError as err:
                if err.code not in RETRY_STATUS:
                    raise ModelDownloadError(
                        f"{url}: HTTP {err.code} {err.reason}" + _hint(err.code)
                    ) from None
                last = err
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                if isinstance(err, OfflineError):
                    raise
                last = err
            if attempt + 1 < self.retry.attempts:
                self.sleep(self.retry.delay(attempt))
        raise ModelDownloadError(
            f"{url}: gave up after {self.retry.attempts} attempts: {_describe(last)}"
        )

    def get_json(self, url: str, headers: dict[str, str] | None = None) -> Any:
        """GET a small JSON document (registry metadata), with retries."""

        def once(_: int) -> Any:
            with self._open(url, {"Accept": "application/json", **(headers or {})}) as resp:
                return json.loads(resp.read().decode("utf-8"))

        return self._with_retry(url, once)

    def download(
        self,
        url: str,
        dest: Path,
        *,
        size: int | None = None,
        hashes: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        label: str | None = None,
    ) -> dict[str, str]:
        """Fetch ``url`` to ``dest`` via ``dest.part``; return the hex digests it computed.

        ``hashes`` maps algorithm -> expected hex (or None to only compute it); sha256 is always
        computed. A ``.part`` left by an earlier try is resumed with ``Range``. The final file
        appears only after size and hashes match (``os.replace``); a mismatch deletes the part.
        """
        algos = {"sha256": None, **(hashes or {})}
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        label = label or dest.name

        def once(_: int) -> dict[str, str]:
            return self._stream_once(url, part, algos, size, headers or {}, label)

        digests = self._with_retry(url, once)
        got = part.stat().st_size
        if size is not None and got != size:
            part.unlink(missing_ok=True)
            raise ModelIntegrityError(f"{url}: got {got} bytes, expected {size}")
        for algo, want in algos.items():
            if want is not None and digests[algo] != want.lower():
                part.unlink(missing_ok=True)
                raise ModelIntegrityError(
                    f"{url}: {algo} is {digests[algo]}, expected {want.lower()}"
                )
        os.replace(part, dest)
        return digests

    def _stream_once(
        self,
        url: str,
        part: Path,
        algos: dict[str, str | None],
        size: int | None,
        headers: dict[str, str],
        label: str,
    ) -> dict[str, str]:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have > size:  # longer than the file can be: start over
            part.unlink()
            have = 0
        hashers = {a: hashlib.new(a) for a in algos}
        req_headers = dict(headers)
        if have:
            req_headers["Range"] = f"bytes={have}-"
        try:
            resp = self._open(url, req_headers)
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # range not satisfiable: the part is stale, restart
                part.unlink()
                raise ConnectionError("stale partial file, restarting") from None
            raise
        with resp:
            if have and resp.status == 206 and _range_start(resp) == have:
                with part.open("rb") as f:  # hash the prefix we already have
                    _feed(f, hashers)
                mode = "ab"
            else:  # 200: the server ignores Range (or there was no part): from the start
                have, mode = 0, "wb"
            total = _total_length(resp, have)
            done = have
            self.report(done, total, label)
            with part.open(mode) as out:
                while True:
                    buf = resp.read(CHUNK)
                    if not buf:
                        break
                    out.write(buf)
                    for h in hashers.values():
                        h.update(buf)
                    done += len(buf)
                    self.report(done, total, label)
            if total is not None and done < total:
                raise http.client.IncompleteRead(b"", total - done)
        return {a: h.hexdigest() for a, h in hashers.items()}


def _feed(f: Any, hashers: dict[str, Any]) -> None:
    for buf in iter(lambda: f.read(CHUNK), b""):
        for h in hashers.values():
            h.update(buf)


def hash_file(path: Path, algos: Iterable[str] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a whole file, read in 1 MiB blocks."""
    hashers = {a: hashlib.new(a) for a in algos}
    with path.open("rb") as f:
        _feed(f, hashers)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _range_start(resp: http.client.HTTPResponse) -> int | None:
    cr = resp.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(cr.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total_length(resp: http.client.HTTPResponse, have: int) -> int | None:
    length = resp.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _describe(err: BaseException | None) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    if isinstance(err, socket.timeout):
        return "timed out"
    return f"{type(err).__name__}: {err}" if err else "unknown error"


def _hint(code: int) -> str:
    if code in (401, 403):
        return " (a gated Hugging Face model needs HF_TOKEN and an accepted licence on its page)"
    if code == 404:
        return " (the file is not at that address)"
    return ""
