"""Fixtures for the web-app tests: a real uvicorn server on 127.0.0.1 (in a thread) with the
real u2netp model, and sample images.

The job engine is the real one (``alphacut.jobs.engine.JobEngine``, isolated worker processes).
``ALPHACUT_TEST_ENGINE=threads`` swaps in the TEST-ONLY stand-in from ``support.engine``
(threads, the same ``Engine`` protocol) through ``ServerSettings(engine_factory=...)``, to test
the server apart from the engine.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from alphacut.models.store import ModelStore, default_home
from alphacut.server.state import ServerSettings

SHARED_HOME = default_home()
MODEL = "u2netp"


def real_engine_available() -> bool:
    return os.environ.get("ALPHACUT_TEST_ENGINE") != "threads"


def thread_engines(max_queue: int = 256) -> Any:
    """An ``engine_factory`` for the server: a TEST-ONLY thread engine per model."""
    from support.engine import ThreadEngineForTests

    return lambda model: ThreadEngineForTests(model=model, workers=1, max_queue=max_queue,
                                              store=ModelStore(SHARED_HOME))


def sample_png(seed: int = 0, size: tuple[int, int] = (160, 120)) -> bytes:
    """A light background with a dark-red rounded subject (something a model cuts out)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (225 + seed * 7 % 20, 230, 235)
    cx, cy = w / 2 + (seed % 3 - 1) * 8, h / 2
    inside = ((xx - cx) / (w * 0.28)) ** 2 + ((yy - cy) / (h * 0.36)) ** 2 < 1
    img[inside] = (150, 30 + seed * 20 % 60, 40)
    img = np.clip(img.astype(np.int16) + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def sample_product(seed: int = 0, size: tuple[int, int] = (480, 360)) -> bytes:
    """A studio-style render: a shaded ball and a box on a soft backdrop (for UI screenshots)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    top, bottom = np.array([236, 238, 242], np.float32), np.array([200, 204, 212], np.float32)
    t = (yy / h)[..., None]
    img = top * (1 - t) + bottom * t
    palette = [(200, 60, 50), (40, 110, 200), (230, 160, 40), (60, 150, 110)]
    colour = np.array(palette[seed % len(palette)], np.float32)
    cx, cy, r = w * (0.42 + 0.06 * (seed % 2)), h * 0.52, min(w, h) * 0.3
    # soft contact shadow
    shadow = np.exp(-(((xx - cx) / (r * 1.1)) ** 2 + ((yy - (cy + r * 0.95)) / (r * 0.18)) ** 2))
    img *= (1 - 0.35 * shadow)[..., None]
    # box behind-right
    bx0, bx1, by0, by1 = int(cx + r * 0.6), int(cx + r * 1.5), int(cy - r * 0.2), int(cy + r * 0.98)
    img[by0:by1, bx0:bx1] = np.array([245, 245, 240], np.float32) * (0.8 + 0.2 * (xx[by0:by1, bx0:bx1] - bx0) / max(1, bx1 - bx0))[..., None]
    # ball with Lambert shading and a highlight
    dx, dy = (xx - cx) / r, (yy - cy) / r
    d2 = dx * dx + dy * dy
    inside = d2 < 1
    nz = np.sqrt(np.clip(1 - d2, 0, 1))
    light = np.clip(-0.45 * dx - 0.55 * dy + 0.7 * nz, 0, 1)
    spec = np.clip(-0.45 * dx - 0.55 * dy + 0.7 * nz, 0, 1) ** 40
    ball = colour * (0.25 + 0.75 * light)[..., None] + 255 * 0.6 * spec[..., None]
    edge = np.clip((1 - np.sqrt(d2)) * r, 0, 1)[..., None]  # anti-aliased rim
    img = np.where(inside[..., None], ball * edge + img * (1 - edge), img)
    rng = np.random.default_rng(seed)
    img = np.clip(img + rng.normal(0, 1.2, img.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def bomb_png(side: int = 40000) -> bytes:
    """A tiny file that declares side x side pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass
class LiveServer:
    base: str
    token: str
    app: Any
    port: int
    engine: Any

    def client(self, *, auth: bool = True, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        headers.update(kw.pop("headers", {}))
        kw.setdefault("timeout", 60)
        return httpx.Client(base_url=self.base, headers=headers, **kw)

    @property
    def state(self) -> Any:
        return self.app.state.alphacut

    def wait_done(self, client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            j = client.get(f"/api/jobs/{job_id}").json()
            if j["stage"] in ("done", "failed", "cancelled"):
                return j
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish: {j}")


def start_server(tmp: Path, **overrides: Any) -> tuple[LiveServer, Any]:
    from alphacut.server.app import create_app
    from alphacut.server.run import bind_socket, make_config, make_server

    ModelStore(SHARED_HOME, offline=False).ensure(MODEL)
    if "engine_factory" not in overrides and not real_engine_available():
        overrides["engine_factory"] = thread_engines(overrides.get("max_queue", 256))
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = ServerSettings(port=port, model=MODEL, work_dir=tmp / "work", models_home=SHARED_HOME,
                              workers=1, **overrides)
    app = create_app(settings)
    server = make_server(make_config(app, settings, timeout_graceful_shutdown=1), app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > end or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    live = LiveServer(f"http://127.0.0.1:{port}", app.state.policy.token, app, port, app.state.alphacut.engine)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        sock.close()

    return live, stop


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live, stop = start_server(tmp_path_factory.mktemp("serve"))
    try:
        yield live
    finally:
        stop()
