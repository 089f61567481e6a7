"""Models on every node (``distributed.nodes.ensure_here``, what each Ray node runs before work):
from an object-store prefix or a shared folder, verified by sha256 through the model store;
offline once warm; a clear error naming the node when it cannot have the model."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from conftest import SHARED_HOME
from support.s3 import make_bucket, put, s3_server

from alphacut.distributed.nodes import ensure_here
from alphacut.errors import ModelError
from alphacut.models.store import ModelStore


@pytest.fixture(scope="module")
def u2netp_bytes() -> bytes:
    return ModelStore(SHARED_HOME).ensure("u2netp").read_bytes()


@pytest.fixture
def node_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A node with an empty model cache and no way to reach a registry."""
    monkeypatch.setenv("ALPHACUT_HOME", str(tmp_path / "node"))
    monkeypatch.setenv("ALPHACUT_OFFLINE", "1")
    return tmp_path / "node"


def test_a_node_gets_its_model_from_an_object_store_prefix_then_runs_offline(
        node_home: Path, u2netp_bytes: bytes) -> None:
    with s3_server():
        make_bucket("models")
        put("s3://models/alphacut/u2netp.onnx", u2netp_bytes)
        paths = ensure_here(["u2netp"], "s3://models/alphacut")
    assert Path(paths["u2netp"]).read_bytes() == u2netp_bytes
    assert Path(paths["u2netp"]).is_relative_to(node_home)
    assert ModelStore().info("u2netp").verified == "ok"
    # warm: the store is enough, offline, the source no longer reachable (its server is gone)
    assert ensure_here(["u2netp"], "s3://models/alphacut") == paths
    assert ensure_here(["u2netp"]) == paths


def test_a_shared_folder_as_the_source(node_home: Path, tmp_path: Path, u2netp_bytes: bytes) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "u2netp.onnx").write_bytes(u2netp_bytes)
    assert Path(ensure_here(["u2netp"], str(shared))["u2netp"]).read_bytes() == u2netp_bytes


def test_a_wrong_file_at_the_source_is_refused_with_the_node_named(node_home: Path, tmp_path: Path,
                                                                    u2netp_bytes: bytes) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "u2netp.onnx").write_bytes(u2netp_bytes[:-1] + b"\0")
    with pytest.raises(ModelError) as err:
        ensure_here(["u2netp"], str(shared))
    assert socket.gethostname() in str(err.value) and "sha256" in str(err.value)
    assert not ModelStore().info("u2netp").installed


def test_a_cold_node_offline_says_so(node_home: Path) -> None:
    with pytest.raises(ModelError) as err:
        ensure_here(["u2netp"])
    text = str(err.value)
    assert socket.gethostname() in text and "offline" in text.lower()
