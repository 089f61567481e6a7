"""Shared fixtures: real models through the project's own store, real image files made here."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.api import Remover
from alphacut.models.store import ModelStore, default_home

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "eval"

#: the real model cache, read before any test points ALPHACUT_HOME elsewhere
SHARED_HOME = default_home()


@pytest.fixture(scope="session")
def store() -> ModelStore:
    return ModelStore(SHARED_HOME, offline=False)


@pytest.fixture(scope="session")
def u2netp(store: ModelStore) -> Remover:
    """The small real model (fast): most pipeline tests use it."""
    remover = Remover("u2netp", store=store)
    remover.session  # load once
    return remover


@pytest.fixture(scope="session")
def isnet(store: ModelStore) -> Remover:
    remover = Remover("isnet", store=store)
    remover.session
    return remover


def subject_image(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A photo-like test image: a textured warm disc on a cool, noisy gradient background."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    bg = np.stack([40 + 60 * x / width, 120 + 40 * y / height, 190 + 0 * x], axis=-1)
    cy, cx, r = height / 2, width / 2, min(width, height) * 0.3
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
    disc = np.clip(r - d + 0.5, 0, 1)[..., None]
    fg = np.stack([220 - 40 * (y / height), 90 + 30 * np.sin(x / 7), 40 + 0 * x], axis=-1)
    img = fg * disc + bg * (1 - disc) + rng.normal(0, 4, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def encode_image(arr: np.ndarray, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **params)
    return buf.getvalue()


@pytest.fixture
def photo() -> np.ndarray:
    return subject_image()


@pytest.fixture
def photo_jpeg(tmp_path: Path, photo: np.ndarray) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode_image(photo, "JPEG", quality=92))
    return path
