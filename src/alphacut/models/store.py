"""The model cache: what is installed, pulling, verifying, importing, exporting, removing.

Layout under ``<home>/models/`` (home = ``ALPHACUT_HOME`` or the user cache dir)::

    <filename>.onnx        installed models, only ever written by os.replace
    verified.json          {name: {size, mtime_ns, sha256}}: the last full check, so loading an
                           installed model costs a stat() and not a hash of 88 MB
    recorded.json          {name: {sha256, size, source}}: hashes of first downloads for models
                           whose upstream publishes none; later downloads must match them
    <stem>.fp32.onnx       float32 copies of float16 models, for CPU providers (models.variants)
    <stem>.<size>.onnx     left by versions before the decided fusion (the best tier's 768² view);
                           nothing builds them now, ``rm`` removes them with the model
    derived.json           {name: {source, converter, size, mtime_ns}}: what each
                           copy was built from, so a changed source or converter rebuilds it
    .staging/              downloads in progress (``*.part`` files are resumed)
    .locks/                one fcntl lock per model, so two processes never pull it together
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..errors import (
    LicenseNotAcceptedError,
    ModelDownloadError,
    ModelError,
    ModelIntegrityError,
    ModelNotInstalledError,
    OfflineError,
    UnknownModelError,
)
from .catalog import CATALOG, ModelSpec, find_by_sha256, get_spec
from .download import Fetcher, ProgressFn, RetryPolicy, hash_file, offline_from_env
from .sources import FileSource

try:  # POSIX; on Windows the lock degrades to a no-op (single-user desktop use)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

Verified = Literal["ok", "unchecked", "mismatch", "absent"]
_log = logging.getLogger("alphacut.models")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    installed: bool
    path: Path
    #: bytes on disk (None when not installed) and bytes expected (None when unknown)
    size: int | None
    expected_size: int | None
    licence: str
    commercial_use: bool
    description: str
    #: ok = full sha256 matched at this size and mtime; unchecked = never hashed since written;
    #: mismatch = the size is wrong (partial or corrupt); absent = not installed
    verified: Verified
    #: where the expected sha256 comes from: the catalog, a first download, or nowhere yet
    hash_origin: Literal["pinned", "recorded", "unknown"]
    #: bytes of the float32 copy CPU providers run (float16 models only), None when absent
    cpu_copy_size: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["path"] = str(self.path)
        return d


def default_home() -> Path:
    """``ALPHACUT_HOME`` if set, else the platform's user cache dir for alphacut."""
    env = os.environ.get("ALPHACUT_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("alphacut"))


class ModelStore:
    """The one place that reads and writes model files. Safe across processes."""

    def __init__(
        self,
        home: Path | None = None,
        *,
        offline: bool | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.dir = self.home / "models"
        self.offline = offline_from_env() if offline is None else offline
        self.retry = retry or RetryPolicy()
        #: the Fetcher of the last pull (tests read its request count)
        self.last_fetcher: Fetcher | None = None

    # --- small helpers ------------------------------------------------------------------

    def _file(self, spec: ModelSpec) -> Path:
        return self.dir / spec.filename

    def _read_state(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.dir / name).read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def _update_state(self, fname: str, key: str, value: dict[str, Any] | None) -> None:
        """Read-modify-write a small JSON state file under a lock, written atomically."""
        with self._lock("_state"):
            state = self._read_state(fname)
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
            _atomic_write_text(self.dir / fname, json.dumps(state, indent=1, sort_keys=True))

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        locks = self.dir / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with (locks / f"{name}.lock").open("a") as f:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def expected(self, spec: ModelSpec) -> tuple[str | None, int | None, str]:
        """(sha256, size, origin) to check the file against: pinned, recorded, or unknown."""
        if spec.sha256 is not None:
            return spec.sha256, spec.size, "pinned"
        rec = self._read_state("recorded.json").get(spec.name)
        if rec:
            return rec["sha256"], rec.get("size", spec.size), "recorded"
        return None, spec.size, "unknown"

    def _stamp(self, spec: ModelSpec, path: Path, sha256: str) -> None:
        st = path.stat()
        self._update_state("verified.json", spec.name, {
            "filename": spec.filename, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256": sha256, "at": time.time(),
        })

    def _fast_ok(self, spec: ModelSpec, path: Path) -> bool:
        """Cheap check: size right and a full verification stamp for this exact (size, mtime)."""
        sha, size, _ = self.expected(spec)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        if size is not None and st.st_size != size:
            return False
        stamp = self._read_state("verified.json").get(spec.name)
        return bool(
            stamp
            and stamp.get("filename") == spec.filename
            and stamp.get("size") == st.st_size
            and stamp.get("mtime_ns") == st.st_mtime_ns
            and (sha is None or stamp.get("sha256") == sha)
        )

    def _check_full(self, spec: ModelSpec, path: Path) -> str | None:
        """Hash the whole file; None when it matches, else the reason. Stamps on success."""
        sha, size, origin = self.expected(spec)
        try:
            actual_size = path.stat().st_size
        except FileNotFoundError:
            return "not installed"
        if size is not None and actual_size != size:
            return f"size is {actual_size} bytes, expected {size} (partial or corrupt file)"
        algos = ["sha256"] + (["md5"] if spec.md5 else [])
        digests = hash_file(path, algos)
        if sha is not None and digests["sha256"] != sha:
            return f"sha256 is {digests['sha256']}, expected {sha} ({origin})"
        if spec.md5 and digests["md5"] != spec.md5:
            return f"md5 is {digests['md5']}, expected {spec.md5} (published upstream)"
        if sha is None:
            self._record(spec, digests["sha256"], actual_size, "verified in place")
        self._stamp(spec, path, digests["sha256"])
        return None

    def _record(self, spec: ModelSpec, sha256: str, size: int, source: str) -> None:
        self._update_state("recorded.json", spec.name, {
            "sha256": sha256, "size": size, "source": source, "at": time.time(),
        })

    # --- queries ------------------------------------------------------------------------

    def list(self) -> list[ModelInfo]:
        """Every catalog model with its install state; never hashes (cheap enough for a UI)."""
        return [self.info(name) for name in CATALOG]

    def info(self, name: str) -> ModelInfo:
        spec = get_spec(name)
        path = self._file(spec)
        sha, size, origin = self.expected(spec)
        try:
            on_disk: int | None = path.stat().st_size
        except FileNotFoundError:
            on_disk = None
        if on_disk is None:
            verified: Verified = "absent"
        elif size is not None and on_disk != size:
            verified = "mismatch"
        else:
            verified = "ok" if self._fast_ok(spec, path) else "unchecked"
        copy = self._cpu_copy(spec)
        return ModelInfo(
            name=spec.name, installed=on_disk is not None, path=path, size=on_disk,
            expected_size=size, licence=spec.licence, commercial_use=spec.commercial_use,
            description=spec.description, verified=verified, hash_origin=origin,  # type: ignore[arg-type]
            cpu_copy_size=copy.stat().st_size if copy.is_file() else None,
        )

    def path(self, name: str) -> Path:
        """The installed file (size-checked, not hashed); ModelNotInstalledError otherwise."""
        spec = get_spec(name)
        p = self._file(spec)
        _, size, _ = self.expected(spec)
        if not p.is_file():
            raise ModelNotInstalledError(
                f"model {name!r} is not installed; run `alphacut models pull {name}`"
                f" or `alphacut models import FILE --name {name}`"
            )
        if size is not None and p.stat().st_size != size:
            raise ModelIntegrityError(
                f"model {name!r} at {p} has the wrong size (partial or corrupt); "
                f"run `alphacut models pull {name} --force`"
            )
        return p

    def _cpu_copy(self, spec: ModelSpec) -> Path:
        return self.dir / (Path(spec.filename).stem + ".fp32.onnx")

    def cpu_file(self, name: str) -> Path | None:
        """The file CPU providers should load instead of the installed model, or None.

        For float16 models (``spec.cpu_float32``) that is a float32 copy, built on first use
        from the installed file and rebuilt when that file or the converter changes. If it
        cannot be built (the file is missing, ``onnx`` is absent), None: the original runs.
        """
        spec = get_spec(name)
        if not spec.cpu_float32:
            return None
        source, dest = self._file(spec), self._cpu_copy(spec)
        sha = self.expected(spec)[0] or self._read_state("verified.json").get(spec.name, {}).get("sha256")
        if not source.is_file() or sha is None:
            return None
        from .variants import CONVERTER_VERSION, float32_copy

        want = {"source_sha256": sha, "converter": CONVERTER_VERSION}
        return self._derived(spec.name, dest, want, lambda: float32_copy(source, dest),
                             f"the float32 CPU copy of {spec.name}; running the float16 file")

    def _derived(self, key: str, dest: Path, want: dict[str, Any], build: Callable[[], None],
                 what: str) -> Path | None:
        """A file derived from an installed model (``cpu_file``): ``dest`` when
        ``derived.json`` says it was built from what ``want`` describes and it is unchanged on
        disk; otherwise built once (under the store's lock) and recorded. None, with a logged
        warning, when it cannot be built — the caller runs without it."""

        def current() -> bool:
            state = self._read_state("derived.json").get(key) or {}
            try:
                st = dest.stat()
            except FileNotFoundError:
                return False
            return (all(state.get(k) == v for k, v in want.items())
                    and state.get("size") == st.st_size and state.get("mtime_ns") == st.st_mtime_ns)

        if current():
            return dest
        with self._lock(key + ".derived"):  # not the model's own lock: pull may hold that
            if current():
                return dest
            try:
                build()
            except Exception as exc:  # noqa: BLE001 - the original still runs, only without this copy
                _log.warning("could not build %s (%s)", what, exc)
                return None
            st = dest.stat()
            self._update_state("derived.json", key, {**want, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        return dest

    # --- getting models -----------------------------------------------------------------

    def ensure(self, name: str, *, accept_license: bool = False,
               progress: ProgressFn | None = None) -> Path:
        """The path of a verified model, pulling or re-pulling it when missing or damaged.

        Fast path: a stat() and a stamp lookup. A file without a current stamp is hashed once.
        """
        spec = get_spec(name)
        p = self._file(spec)
        if self._fast_ok(spec, p):
            return p
        damaged = False
        if p.is_file():
            with self._lock(spec.name):
                if self._fast_ok(spec, p) or self._check_full(spec, p) is None:
                    return p
            damaged = True  # partial or corrupt: never loaded, fetched again
        return self.pull(name, accept_license=accept_license, force=damaged, progress=progress)

    def pull(self, name: str, *, accept_license: bool = False, force: bool = False,
             progress: ProgressFn | None = None) -> Path:
        """Download (or re-download with ``force``) and install a model, verified."""
        spec = get_spec(name)
        p = self._file(spec)
        with self._lock(spec.name):
            if not force and p.is_file() and (
                self._fast_ok(spec, p) or self._check_full(spec, p) is None
            ):
                return p
            if not spec.commercial_use and not accept_license:
                raise LicenseNotAcceptedError(
                    f"model {name!r} is licensed {spec.licence}"
                    + (f" ({spec.licence_url})" if spec.licence_url else "")
                    + "; it may not be used commercially. Read the licence, then pass "
                    "--accept-license (accept_license=True) to download it."
                )
            if not spec.sources:
                raise ModelNotInstalledError(
                    f"model {name!r} has no download source; "
                    f"import it with `alphacut models import FILE --name {name}`"
                )
            fx = Fetcher(model=name, offline=self.offline, retry=self.retry, progress=progress)
            self.last_fetcher = fx
            digests = self._fetch_any(spec, fx)
            self._install(spec, digests, origin=spec.sources[0].describe())
            return p

    def _fetch_any(self, spec: ModelSpec, fx: Fetcher) -> dict[str, str]:
        """Try each source in order into the staging dir; the first good file wins."""
        staging = self.dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        sha, size, _ = self.expected(spec)
        hashes: dict[str, str | None] = {"sha256": sha}
        if spec.md5:
            hashes["md5"] = spec.md5
        failures: list[str] = []
        for source in spec.sources:
            try:
                return source.fetch(fx, staging / spec.filename, staging, size=size, hashes=hashes)
            except OfflineError:
                raise
            except ModelError as err:
                failures.append(f"{source.describe()}: {err}")
        if len(failures) == 1:
            raise ModelDownloadError(f"could not fetch {spec.name!r}: {failures[0]}")
        raise ModelDownloadError(f"could not fetch {spec.name!r}:\n  " + "\n  ".join(failures))

    def _install(self, spec: ModelSpec, digests: dict[str, str], origin: str) -> Path:
        staged = self.dir / ".staging" / spec.filename
        final = self._file(spec)
        if spec.sha256 is None and self.expected(spec)[2] == "unknown":
            self._record(spec, digests["sha256"], staged.stat().st_size, origin)
        os.replace(staged, final)
        self._stamp(spec, final, digests["sha256"])
        return final

    # --- maintenance --------------------------------------------------------------------

    def verify(self, name: str | None = None) -> dict[str, str]:
        """Full sha256 of one model or of every installed one: {name: "ok" | reason}."""
        names = [name] if name is not None else [i.name for i in self.list() if i.installed]
        result: dict[str, str] = {}
        for n in names:
            spec = get_spec(n)
            p = self._file(spec)
            with self._lock(spec.name):
                reason = self._check_full(spec, p)
            if reason is not None and p.is_file():
                self._update_state("verified.json", spec.name, None)
            result[n] = reason or "ok"
        return result

    def rm(self, name: str) -> Path:
        """Delete an installed model (recorded hashes are kept: they describe upstream)."""
        spec = get_spec(name)
        p = self._file(spec)
        with self._lock(spec.name):
            if not p.exists():
                raise ModelNotInstalledError(f"model {name!r} is not installed")
            p.unlink()
            self._update_state("verified.json", spec.name, None)
            self._cpu_copy(spec).unlink(missing_ok=True)
            self._update_state("derived.json", spec.name, None)
            stem = Path(spec.filename).stem
            # open-size copies (``<stem>.768.onnx``) that versions before the decided fusion
            # built for the best tier's second view: nothing builds them now, rm still clears them
            for view in self.dir.glob(f"{stem}.[0-9]*.onnx"):
                view.unlink(missing_ok=True)
                self._update_state("derived.json", f"{spec.name}@{view.name[len(stem) + 1:-5]}", None)
            (self.dir / ".staging" / (spec.filename + ".part")).unlink(missing_ok=True)
        return p

    def import_file(self, path: Path | str, name: str | None = None) -> Path:
        """Install a local file (air-gapped machines), identified by sha256 or by ``name``."""
        src = Path(path)
        if not src.is_file():
            raise ModelError(f"no such file: {src}", path=src)
        digests = hash_file(src, ("sha256", "md5"))
        if name is None:
            spec = find_by_sha256(digests["sha256"]) or self._find_recorded(digests["sha256"])
            if spec is None:
                raise UnknownModelError(
                    f"{src} matches no model in the catalog by sha256 "
                    f"({digests['sha256']}); pass --name NAME to import it as that model",
                )
        else:
            spec = get_spec(name)
        sha, size, origin = self.expected(spec)
        if sha is not None and digests["sha256"] != sha:
            raise ModelIntegrityError(
                f"{src} is not {spec.name!r}: sha256 {digests['sha256']}, expected {sha} ({origin})"
            )
        if spec.md5 and digests["md5"] != spec.md5:
            raise ModelIntegrityError(f"{src} is not {spec.name!r}: md5 {digests['md5']}, "
                                      f"expected {spec.md5}")
        with self._lock(spec.name):
            staging = self.dir / ".staging"
            staging.mkdir(parents=True, exist_ok=True)
            fx = Fetcher(model=spec.name, offline=True)
            got = FileSource(src).fetch(fx, staging / spec.filename, staging, size=size,
                                        hashes={"sha256": digests["sha256"]})
            return self._install(spec, got, origin=f"imported from {src}")

    def _find_recorded(self, sha256: str) -> ModelSpec | None:
        for n, rec in self._read_state("recorded.json").items():
            if rec.get("sha256") == sha256 and n in CATALOG:
                return CATALOG[n]
        return None

    def export(self, name: str, dest: Path | str) -> Path:
        """Copy an installed, verified model to ``dest`` (a file or a directory), atomically."""
        spec = get_spec(name)
        src = self.path(name)
        if not self._fast_ok(spec, src):
            with self._lock(spec.name):
                reason = self._check_full(spec, src)
            if reason is not None:
                raise ModelIntegrityError(f"model {name!r} failed verification: {reason}")
        out = Path(dest)
        if out.is_dir():
            out = out / spec.filename
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return out


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache is meant to be inspectable
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
