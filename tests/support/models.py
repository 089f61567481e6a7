"""Fixtures for the model-store tests: the shared model cache, a tiny ONNX model, a local
HTTP server that behaves like the Hugging Face file endpoint (Range, 503s, dropped bodies).

Imported by the ``test_models_*`` files (``from support.models import ...``) so that this
branch does not need its own ``conftest.py``.
"""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from alphacut.models import catalog
from alphacut.models.catalog import ModelSpec, Normalization
from alphacut.models.download import RetryPolicy
from alphacut.models.sources import HuggingFaceSource
from alphacut.models.store import ModelStore, default_home

#: read at import, before any test points ALPHACUT_HOME at a temp dir
SHARED_HOME = default_home()

FAST_RETRY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, timeout=5.0)


def build_tiny_onnx(pad: int = 0) -> bytes:
    """1x3xHxW -> 1x1xHxW sigmoid(mean over channels); ``pad`` adds an unused initializer."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, "h", "w"])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], keepdims=1, axes=[1]),
        helper.make_node("Sigmoid", ["m"], ["mask"]),
    ]
    inits = [numpy_helper.from_array(np.arange(pad, dtype=np.uint8), "pad")] if pad else []
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def tiny_onnx() -> bytes:
    return build_tiny_onnx(pad=64 * 1024)  # big enough that a dropped body is mid-file


@pytest.fixture(scope="session")
def shared_store() -> ModelStore:
    """The real cache (ALPHACUT_HOME if set, else the user cache): downloads happen once."""
    return ModelStore(SHARED_HOME, offline=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty ALPHACUT_HOME for tests that corrupt or delete things."""
    h = tmp_path / "home"
    monkeypatch.setenv("ALPHACUT_HOME", str(h))
    monkeypatch.delenv("ALPHACUT_OFFLINE", raising=False)
    return h


# --- the fake Hub -------------------------------------------------------------------------


@dataclasses.dataclass
class HubState:
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    fail_first: int = 0  # answer this many requests with 503
    drop_after: int | None = None  # once: send this many body bytes, then close
    ignore_range: bool = False
    log: list[tuple[str, str | None, str | None]] = dataclasses.field(default_factory=list)
    body_bytes: int = 0

    def gets(self, path: str) -> list[str | None]:
        return [rng for p, rng, _ in self.log if p == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        rng = self.headers.get("Range")
        st.log.append((self.path, rng, self.headers.get("Authorization")))
        if st.fail_first > 0:
            st.fail_first -= 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = st.files.get(self.path)
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if rng and not st.ignore_range and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if st.drop_after is not None:
            cut, st.drop_after = st.drop_after, None
            st.body_bytes += cut  # counted before sending: the client may check right after
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        st.body_bytes += len(body)
        self.wfile.write(body)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, HubState]]:
    """A real HTTP server on 127.0.0.1; ``HF_ENDPOINT`` points at it."""
    state = HubState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    try:
        yield url, state
    finally:
        server.shutdown()
        server.server_close()


HF_PATH = "/acme/tiny-matte/resolve/main/onnx/model.onnx"


def tiny_spec(name: str = "test-tiny", *, commercial: bool = True, sha256: str | None = None,
              size: int | None = None) -> ModelSpec:
    return ModelSpec(
        name=name,
        description="test-only tiny model (sigmoid of the channel mean)",
        filename=f"{name}.onnx",
        size=size,
        sha256=sha256,
        licence="MIT" if commercial else "test-nc (non-commercial)",
        commercial_use=commercial,
        subject="general",
        resize="square",
        input_size=32,
        normalization=Normalization(mean=(0.5,) * 3, std=(1.0,) * 3, divisor=255.0),
        output="probability",
        sources=(HuggingFaceSource("acme/tiny-matte", "onnx/model.onnx"),),
    )


@pytest.fixture
def registered() -> Iterator[list[str]]:
    """Names registered during a test are removed afterwards."""
    names: list[str] = []
    yield names
    for n in names:
        catalog.unregister(n)


def register(names: list[str], spec: ModelSpec) -> ModelSpec:
    catalog.register(spec, replace=True)
    names.append(spec.name)
    return spec
