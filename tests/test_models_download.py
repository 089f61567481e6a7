"""Fetching through the Hugging Face path against a real local HTTP server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from alphacut.errors import (
    LicenseNotAcceptedError,
    ModelDownloadError,
    ModelIntegrityError,
    OfflineError,
    UnknownModelError,
)
from alphacut.models.session import ModelSession
from alphacut.models.store import ModelStore
from support.models import (  # noqa: F401
    FAST_RETRY,
    HF_PATH,
    home,
    hub,
    register,
    registered,
    shared_store,
    tiny_onnx,
    tiny_spec,
)


def test_hf_pull_retries_resumes_records_and_runs(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    url, st = hub
    st.files[HF_PATH] = tiny_onnx
    st.fail_first = 2  # two 503s, then a body cut off half-way
    st.drop_after = len(tiny_onnx) // 2
    register(registered, tiny_spec())
    seen: list[tuple[int, int | None]] = []
    store = ModelStore(home, retry=FAST_RETRY)
    path = store.pull("test-tiny", progress=lambda d, t, _: seen.append((d, t)))

    assert path.read_bytes() == tiny_onnx
    ranges = st.gets(HF_PATH)
    assert ranges[:3] == [None, None, None]  # 503, 503, the dropped body
    assert ranges[3] == f"bytes={len(tiny_onnx) // 2}-"  # resumed, not restarted
    assert len(ranges) == 4
    assert st.body_bytes == len(tiny_onnx)  # every byte crossed the wire exactly once
    assert seen[-1] == (len(tiny_onnx), len(tiny_onnx))

    recorded = json.loads((home / "models" / "recorded.json").read_text())
    assert recorded["test-tiny"]["sha256"] == hashlib.sha256(tiny_onnx).hexdigest()
    assert store.info("test-tiny").hash_origin == "recorded"
    assert store.verify("test-tiny") == {"test-tiny": "ok"}

    session = ModelSession(path)
    out = session.run(np.zeros((1, 3, 8, 8), np.float32))
    assert out[0].shape == (1, 1, 8, 8)
    np.testing.assert_allclose(out[0], 0.5)

    # upstream changes the bytes: the recorded hash refuses them
    st.files[HF_PATH] = tiny_onnx[:-1] + b"\x00"
    with pytest.raises(ModelDownloadError, match="sha256"):
        store.pull("test-tiny", force=True)
    assert path.read_bytes() == tiny_onnx  # the good file was left alone


def test_partial_part_file_resumes_with_range(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    _, st = hub
    st.files[HF_PATH] = tiny_onnx
    spec = register(registered, tiny_spec(sha256=hashlib.sha256(tiny_onnx).hexdigest(),
                                          size=len(tiny_onnx)))
    staging = home / "models" / ".staging"
    staging.mkdir(parents=True)
    (staging / (spec.filename + ".part")).write_bytes(tiny_onnx[:1000])  # a killed download
    store = ModelStore(home, retry=FAST_RETRY)
    assert store.ensure("test-tiny").read_bytes() == tiny_onnx
    assert st.gets(HF_PATH) == ["bytes=1000-"]
    assert st.body_bytes == len(tiny_onnx) - 1000
    assert not (staging / (spec.filename + ".part")).exists()


def test_server_that_ignores_range_restarts_cleanly(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    _, st = hub
    st.files[HF_PATH] = tiny_onnx
    st.ignore_range = True
    spec = register(registered, tiny_spec(sha256=hashlib.sha256(tiny_onnx).hexdigest()))
    staging = home / "models" / ".staging"
    staging.mkdir(parents=True)
    (staging / (spec.filename + ".part")).write_bytes(b"garbage" * 100)
    path = ModelStore(home, retry=FAST_RETRY).pull("test-tiny")
    assert path.read_bytes() == tiny_onnx  # 200 instead of 206: the part was overwritten


def test_retries_are_bounded_and_4xx_is_not_retried(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    _, st = hub
    register(registered, tiny_spec())
    st.fail_first = 100
    with pytest.raises(ModelDownloadError, match="gave up after 4 attempts"):
        ModelStore(home, retry=FAST_RETRY).pull("test-tiny")
    assert len(st.log) == 4
    st.fail_first = 0
    st.log.clear()
    with pytest.raises(ModelDownloadError, match="404"):  # the file is absent: one request
        ModelStore(home, retry=FAST_RETRY).pull("test-tiny")
    assert len(st.log) == 1


def test_hf_token_is_sent(hub, home, tiny_onnx, registered, monkeypatch) -> None:  # noqa: F811
    _, st = hub
    st.files[HF_PATH] = tiny_onnx
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    register(registered, tiny_spec())
    ModelStore(home, retry=FAST_RETRY).pull("test-tiny")
    assert st.log[-1][2] == "Bearer hf_test"


def test_non_commercial_needs_accept_license(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    _, st = hub
    st.files[HF_PATH] = tiny_onnx
    register(registered, tiny_spec("test-nc", commercial=False))
    store = ModelStore(home, retry=FAST_RETRY)
    with pytest.raises(LicenseNotAcceptedError) as err:
        store.pull("test-nc")
    assert "test-nc (non-commercial)" in str(err.value)
    assert "--accept-license" in str(err.value)
    with pytest.raises(LicenseNotAcceptedError):
        store.ensure("test-nc")
    assert st.log == []  # refused before any request
    store.pull("test-nc", accept_license=True)
    assert store.ensure("test-nc").is_file()  # installed: no flag needed to use it


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_raises_without_opening_a_socket(how, home, registered, monkeypatch) -> None:  # noqa: F811
    register(registered, tiny_spec())
    opened: list[object] = []
    real_connect = socket.socket.connect

    def spy(self, address):  # type: ignore[no-untyped-def]
        opened.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    if how == "env":
        monkeypatch.setenv("ALPHACUT_OFFLINE", "1")
        store = ModelStore(home)
    else:
        store = ModelStore(home, offline=True)
    for name in ("test-tiny", "u2netp", "isnet"):  # HF, PyPI and npm paths
        with pytest.raises(OfflineError) as err:
            store.ensure(name)
        assert name in str(err.value) and "models import" in str(err.value)
    assert opened == []


def test_import_export_round_trip(shared_store, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    (tmp_path / "out").mkdir()
    exported = shared_store.export("u2netp", tmp_path / "out")
    assert exported == tmp_path / "out" / "u2netp.onnx"
    other = ModelStore(tmp_path / "airgapped", offline=True)
    assert other.import_file(exported) == other.dir / "u2netp.onnx"  # recognised by sha256
    assert other.verify() == {"u2netp": "ok"}
    assert other.info("u2netp").verified == "ok"
    with pytest.raises(ModelIntegrityError):
        other.import_file(exported, "isnet")  # not that model
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(UnknownModelError, match="--name"):
        other.import_file(junk)
    assert other.rm("u2netp") == other.dir / "u2netp.onnx"
    assert other.info("u2netp").installed is False


def test_import_unpinned_model_by_name_records_hash(home, tiny_onnx, tmp_path, registered) -> None:  # noqa: F811
    register(registered, tiny_spec())
    f = tmp_path / "tiny.onnx"
    f.write_bytes(tiny_onnx)
    store = ModelStore(home, offline=True)
    with pytest.raises(UnknownModelError):
        store.import_file(f)  # no pinned hash to recognise it by
    store.import_file(f, "test-tiny")
    assert store.import_file(f) == store.dir / "test-tiny.onnx"  # now known by its recorded hash
    f.write_bytes(tiny_onnx + b"x")
    with pytest.raises(ModelIntegrityError):
        store.import_file(f, "test-tiny")


def test_two_pullers_download_once(hub, home, tiny_onnx, registered) -> None:  # noqa: F811
    _, st = hub
    st.files[HF_PATH] = tiny_onnx
    register(registered, tiny_spec())
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(
        ModelStore(home, retry=FAST_RETRY).ensure("test-tiny"))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3 and len(set(results)) == 1
    assert len(st.gets(HF_PATH)) == 1
