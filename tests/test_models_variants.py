"""Float32 CPU copies of float16 models: the rewrite, the store's cache of it, the session's choice."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from alphacut.models import variants
from alphacut.models.session import ModelSession
from alphacut.models.store import ModelStore
from support.models import home, register, registered, tiny_spec  # noqa: F401 - fixtures


def build_float16_onnx() -> bytes:
    """A graph shaped like IMG.LY's IS-Net export: float32 in and out, a float16 body
    (cast in, float16 conv weights and a float16 constant, cast out)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (1, 3, 3, 3)).astype(np.float16), "w")
    b = numpy_helper.from_array(np.array([0.1], np.float16), "b")
    half = helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float16)))
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w", "b"], ["c16"], pads=[1, 1, 1, 1]),
        half,
        helper.make_node("Mul", ["c16", "half"], ["m16"]),
        helper.make_node("Sigmoid", ["m16"], ["s16"]),
        helper.make_node("Cast", ["s16"], ["mask"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, "fp16-body",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, "h", "w"])],
        initializer=[w, b],
        value_info=[helper.make_tensor_value_info("c16", TensorProto.FLOAT16, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def test_float32_copy_has_no_float16_left_and_computes_the_same(tmp_path: Path) -> None:
    src, dest = tmp_path / "m.onnx", tmp_path / "m.fp32.onnx"
    src.write_bytes(build_float16_onnx())
    assert variants.has_float16_tensors(src)
    variants.float32_copy(src, dest)
    assert not variants.has_float16_tensors(dest)
    x = np.random.default_rng(1).random((1, 3, 24, 32), np.float32)
    a, b = _run(src, x), _run(dest, x)
    assert a.shape == b.shape == (1, 1, 24, 32)
    assert np.abs(a - b).max() < 2e-3  # only float16 rounding of the activations differs


def _store_with_fp16_model(home: Path, names: list[str]) -> tuple[ModelStore, str]:  # noqa: F811
    from dataclasses import replace

    store = ModelStore(home)
    spec = register(names, replace(tiny_spec("test-fp16"), cpu_float32=True))
    src = home / "src.onnx"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(build_float16_onnx())
    store.import_file(src, name=spec.name)
    return store, spec.name


def test_store_builds_the_copy_once_and_rebuilds_when_the_converter_changes(
        home: Path, registered: list[str], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    store, name = _store_with_fp16_model(home, registered)
    copy = store.cpu_file(name)
    assert copy is not None and copy.name == "test-fp16.fp32.onnx" and not variants.has_float16_tensors(copy)
    first = copy.stat().st_mtime_ns
    assert store.cpu_file(name) == copy and copy.stat().st_mtime_ns == first, "cached, not rebuilt"
    assert store.info(name).cpu_copy_size == copy.stat().st_size

    os.utime(copy, ns=(first - 10**9, first - 10**9))  # touched behind the store's back
    store.cpu_file(name)
    assert copy.stat().st_mtime_ns not in (first, first - 10**9), "a copy that changed is rebuilt"

    monkeypatch.setattr(variants, "CONVERTER_VERSION", variants.CONVERTER_VERSION + 1)
    before = copy.stat().st_mtime_ns
    store.cpu_file(name)
    assert copy.stat().st_mtime_ns != before, "a new converter rebuilds the copy"

    store.rm(name)
    assert not copy.exists() and store.cpu_file(name) is None


def test_a_float32_model_gets_no_copy(home: Path, registered: list[str]) -> None:  # noqa: F811
    from support.models import build_tiny_onnx

    store = ModelStore(home)
    spec = register(registered, tiny_spec("test-plain"))
    src = home / "plain.onnx"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(build_tiny_onnx())
    store.import_file(src, name=spec.name)
    assert store.cpu_file(spec.name) is None


def test_a_broken_source_falls_back_to_the_original(home: Path, registered: list[str]) -> None:  # noqa: F811
    store, name = _store_with_fp16_model(home, registered)
    original = store.path(name)
    data = original.read_bytes()
    original.write_bytes(data[: len(data) // 2])  # not a model any more (same name, no stamp)
    assert store.cpu_file(name) is None
    assert not (original.parent / "test-fp16.fp32.onnx").exists()


def test_session_runs_the_copy_on_cpu(home: Path, registered: list[str]) -> None:  # noqa: F811
    store, name = _store_with_fp16_model(home, registered)
    session = ModelSession(store.path(name), cpu_path=store.cpu_file(name), providers=["CPUExecutionProvider"])
    assert session.loaded_path == store.cpu_file(name)
    x = np.random.default_rng(2).random((1, 3, 16, 16), np.float32)
    assert np.abs(session.run(x)[0] - _run(store.path(name), x)).max() < 2e-3


@pytest.mark.slow
def test_isnet_copy_matches_the_float16_file(isnet) -> None:  # noqa: ANN001 - fixture pulls the model
    """The real model: the float32 copy's matte is the float16 file's within 2e-3 (measured 7.3e-4)."""
    from conftest import subject_image
    from alphacut.matte.predict import prepare_input

    session = isnet.session
    assert session.loaded_path.name == "isnet.fp32.onnx"
    x = prepare_input(subject_image(640, 480), isnet.spec)
    fp16 = _run(session.path, x)
    fp32 = session.run(x)[0]
    assert np.abs(fp16 - fp32).max() < 2e-3


def test_open_size_copies_left_by_earlier_versions_go_with_rm(
        home: Path, registered: list[str]) -> None:  # noqa: F811
    """Versions before the decided fusion built ``<stem>.768.onnx`` for the best tier's second
    view; nothing builds them now, but ``rm`` still clears them with their model."""
    store, name = _store_with_fp16_model(home, registered)
    assert store.cpu_file(name) is not None
    leftover = store.dir / "test-fp16.768.onnx"
    leftover.write_bytes(store.cpu_file(name).read_bytes())
    store.rm(name)
    assert not leftover.exists()
