"""Provider chain and fallback, provoked with real ONNX Runtime errors (no fake session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from alphacut.errors import InferenceError
from alphacut.models import session as session_mod
from alphacut.models.session import ModelSession, physical_cores, provider_chain
from support.models import build_tiny_onnx

X = np.full((1, 3, 4, 4), 2.0, np.float32)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("m") / "tiny.onnx"
    p.write_bytes(build_tiny_onnx())
    return p


def break_creation(entry: str, so: ort.SessionOptions) -> None:
    """ORT really fails to build: it cannot write the optimised model to a missing dir."""
    if "(broken)" in entry:
        so.optimized_model_filepath = "/nonexistent-alphacut-dir/x.onnx"


def break_runs(entry: str) -> ort.RunOptions | None:
    """ORT really fails the run: the terminate flag aborts it."""
    if "(bad-run)" in entry:
        ro = ort.RunOptions()
        ro.terminate = True
        return ro
    return None


def test_chain_orders_fast_providers_first_cpu_last(monkeypatch) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [
        "AzureExecutionProvider", "CPUExecutionProvider", "OpenVINOExecutionProvider",
        "CUDAExecutionProvider", "TensorrtExecutionProvider"])
    import alphacut.models.gpu as gpu

    monkeypatch.setattr(gpu, "tensorrt_loadable", lambda: True)
    assert provider_chain() == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    # onnxruntime-gpu lists TensorRT even where TensorRT is not installed: not tried then
    monkeypatch.setattr(gpu, "tensorrt_loadable", lambda: False)
    assert provider_chain()[0] == "CUDAExecutionProvider"
    assert provider_chain(["CUDAExecutionProvider", "ROCMExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_chain()[-1] == "CPUExecutionProvider"


def test_plain_cpu_session(model: Path) -> None:
    s = ModelSession(model, providers=["CPUExecutionProvider"], threads=1)
    assert s.provider == "CPUExecutionProvider"
    assert s.degraded is False and s.warnings == []
    assert s.input_name == "input" and s.input_shape == [1, 3, "h", "w"]
    np.testing.assert_allclose(s.run(X)[0], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    assert physical_cores() >= 1
    assert ModelSession(model).threads == physical_cores()


def test_creation_failure_falls_back(model: Path) -> None:
    s = ModelSession(model, providers=["CPUExecutionProvider(broken)", "CPUExecutionProvider"],
                     session_options_hook=break_creation)
    assert s.entry == "CPUExecutionProvider" and s.degraded
    assert "CPUExecutionProvider(broken) could not start" in s.warnings[0]
    assert s.run(X)[0].shape == (1, 1, 4, 4)


def test_run_failure_rebuilds_on_next_provider_and_retries(model: Path) -> None:
    s = ModelSession(model, providers=["CPUExecutionProvider(bad-run)", "CPUExecutionProvider"],
                     run_options_hook=break_runs)
    assert s.entry == "CPUExecutionProvider(bad-run)" and not s.degraded
    out = s.run(X)  # the same input succeeds on the next provider
    np.testing.assert_allclose(out[0], 1 / (1 + np.exp(-2.0)), rtol=1e-6)
    assert s.entry == "CPUExecutionProvider" and s.degraded
    assert "failed during a run" in s.warnings[0] and "terminate" in s.warnings[0]
    assert len(s.run(X)) == 1 and len(s.warnings) == 1  # stays on the good one


def test_nothing_left_raises_inference_error(model: Path) -> None:
    with pytest.raises(InferenceError, match="no execution provider"):
        ModelSession(model, providers=["CPUExecutionProvider(broken)"],
                     session_options_hook=break_creation)
    s = ModelSession(model, providers=["CPUExecutionProvider(bad-run)"],
                     run_options_hook=break_runs)
    with pytest.raises(InferenceError, match="every provider"):
        s.run(X)


def test_unavailable_gpu_counts_as_degraded(model: Path) -> None:
    s = ModelSession(model, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is really available here")
    assert s.provider == "CPUExecutionProvider" and s.degraded
    assert any("CUDAExecutionProvider" in w for w in s.warnings)
    assert session_mod.provider_name("CUDAExecutionProvider(x)") == "CUDAExecutionProvider"
