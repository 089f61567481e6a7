"""A disk cache of models' raw outputs, so quality runs on two cores are re-run in minutes.

A model pass is keyed by the model file (its sha256), the exact input tensor fed to it (which
fixes the input picture's bytes and size and the model's input size) and the output index; the
raw output array is stored as ``.npy`` under ``ALPHACUT_BENCH_CACHE`` (default: the user cache
folder's ``alphacut-bench/raw``, outside the repo). Everything after the model pass (fusion,
upsampling, refinement, decontamination) still runs for real on every run, so a change to the
pipeline is measured, and a change to a model file or to the input preparation misses the cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CachedRunner", "cache_dir", "file_digest"]


def cache_dir() -> Path:
    env = os.environ.get("ALPHACUT_BENCH_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("alphacut-bench")) / "raw"


_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) for this process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _digests[key] = h.hexdigest()
    return _digests[key]


class CachedRunner:
    """Wraps a session (anything with ``run(x) -> list[array]``): answers from the cache when
    this model file has seen this exact tensor, else runs the session and stores the outputs."""

    def __init__(self, inner: Any, model_file: str | Path, folder: Path | None = None, keep: int = 1) -> None:
        self.inner = inner
        #: outputs kept (the first ``keep``): the specs here read output 0, and IS-Net's six
        #: side outputs at 1024² would make the cache 24 MB a photo
        self.keep = keep
        self.model_key = file_digest(model_file)[:32]
        self.folder = folder or cache_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def __getattr__(self, name: str) -> Any:  # provider, warnings, ...
        return getattr(self.inner, name)

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        h = hashlib.blake2b(digest_size=20)
        h.update(self.model_key.encode())
        h.update(repr((x.dtype.str, x.shape)).encode())
        h.update(np.ascontiguousarray(x).data)
        path = self.folder / f"{h.hexdigest()}.npz"
        if path.is_file():
            try:
                with np.load(path) as z:
                    out = [z[f"o{i}"] for i in range(len(z.files))]
                self.hits += 1
                return out
            except Exception:  # noqa: BLE001 - a torn file from an interrupted run: redo it
                pass
        out = [np.asarray(o) for o in self.inner.run(x)][: self.keep]
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **{f"o{i}": o.astype(np.float32) for i, o in enumerate(out)})
        os.replace(tmp, path)
        self.misses += 1
        return out
