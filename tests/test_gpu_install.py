"""One command for a GPU, tested as far as a machine without one allows.

- the runtime is declared so `onnxruntime` and `onnxruntime-gpu` are never both asked for
  (pyproject.toml), and scripts/setup.sh removes one before installing the other: the real
  script runs with --dry-run against real virtualenvs holding real distribution records, and
  every plan it prints leaves exactly one build;
- the doctor's diagnosis (models/gpu.py) for every reason a GPU sits unused, including the real
  dynamic loader failing on a provider library that needs a missing cuDNN.
No CUDA library is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from alphacut.models import gpu as gpumod
from alphacut.models.gpu import CPU, CUDA, GpuFacts, NvidiaGpu, cuda_provider_error, diagnose, gather, nvidia_gpus
from alphacut.models.runtime import BUILDS, EXTRA_DIST, check, installed_builds, plan

ROOT = Path(__file__).resolve().parents[1]


def _runtime_deps(deps: list[str]) -> list[str]:
    return [d for d in deps if d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() in BUILDS]


def test_pyproject_declares_one_build_per_extra():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _runtime_deps(meta["dependencies"]) == []  # no build as a core dependency
    extras = meta["optional-dependencies"]
    assert [d.split(">")[0] for d in _runtime_deps(extras["cpu"])] == ["onnxruntime"]
    assert [d.split("[")[0] for d in _runtime_deps(extras["gpu"])] == ["onnxruntime-gpu"]
    assert "cuda" in extras["gpu"][0] and "cudnn" in extras["gpu"][0]
    for name, deps in extras.items():  # every other extra may be combined with either build
        if name not in ("cpu", "gpu"):
            assert _runtime_deps(deps) == [], name


# --- the plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("want, installed, recorded, runtime, uninstall", [
    (None, {}, None, "cpu", []),
    ("gpu", {}, None, "gpu", []),
    (None, {"onnxruntime": "1.32.0"}, "cpu", "cpu", []),
    ("gpu", {"onnxruntime": "1.32.0"}, "cpu", "gpu", ["onnxruntime"]),
    (None, {"onnxruntime-gpu": "1.31.1"}, "gpu", "gpu", []),
    (None, {"onnxruntime-gpu": "1.31.1"}, None, "gpu", []),  # an older venv without the record
    ("cpu", {"onnxruntime-gpu": "1.31.1"}, "gpu", "cpu", ["onnxruntime-gpu"]),
    # both: the wanted one goes too, so its shared files are reinstalled whole
    (None, {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}, "gpu", "gpu", ["onnxruntime", "onnxruntime-gpu"]),
    (None, {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}, None, "cpu", ["onnxruntime", "onnxruntime-gpu"]),
    ("gpu", {"onnxruntime-directml": "1.20.0"}, None, "gpu", ["onnxruntime-directml"]),
])
def test_plan_always_ends_with_one_build(want, installed, recorded, runtime, uninstall):
    p = plan(want, installed, recorded)
    assert (p.runtime, p.uninstall) == (runtime, uninstall)
    after = {k: v for k, v in installed.items() if k not in p.uninstall}
    after[EXTRA_DIST[p.runtime]] = "new"
    assert check(p.runtime, after) is None


def test_check_says_what_is_wrong():
    assert check("gpu", {"onnxruntime-gpu": "1"}) is None
    assert "not installed" in check("gpu", {})
    assert "onnxruntime 1.32.0" in check("gpu", {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"})
    with pytest.raises(ValueError):
        plan("tpu", {}, None)


# --- the real setup script, --dry-run, on real virtualenvs ------------------------------------


def _tree(tmp: Path, builds: dict[str, str], recorded: str | None) -> Path:
    """A checkout (the real setup.sh, runtime.py and pyproject.toml) with a real venv that holds
    the given ONNX Runtime distributions' records (metadata only: nothing is downloaded)."""
    root = tmp / "checkout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup.sh", root / "scripts" / "setup.sh")
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "src" / "alphacut" / "models").mkdir(parents=True)
    shutil.copy2(ROOT / "src" / "alphacut" / "models" / "runtime.py", root / "src" / "alphacut" / "models" / "runtime.py")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    site = next((root / ".venv" / "lib").glob("python3*/site-packages"))
    for name, version in builds.items():
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if recorded:
        (root / ".venv" / ".alphacut-runtime").write_text(recorded + "\n")
    return root


def _dry_run(root: Path, *args: str) -> tuple[int, str]:
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(root / "scripts" / "setup.sh"), *args, "--dry-run"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def _apply(builds: dict[str, str], out: str) -> tuple[dict[str, str], str, set[str]]:
    """What the printed pip commands would leave installed, the spec they install, what they remove."""
    after = dict(builds)
    removed: set[str] = set()
    spec = ""
    for line in out.splitlines():
        if line.startswith("would run:") and " pip uninstall " in line:
            for name in line.split("--quiet", 1)[1].split():
                after.pop(name, None)
                removed.add(name)
        if line.startswith("would run:") and " pip install --quiet -e " in line:
            spec = line.rsplit(" ", 1)[1]
    if spec:
        extras = spec.split("[", 1)[1].rstrip("]").split(",")
        for extra in extras:
            if extra in EXTRA_DIST:
                after[EXTRA_DIST[extra]] = "new"
        assert sum(e in EXTRA_DIST for e in extras) == 1, spec  # exactly one build asked for
    return after, spec, removed


@pytest.mark.parametrize("builds, recorded, args, spec, gone", [
    ({"onnxruntime": "1.32.0"}, "cpu", ["--gpu"], ".[server,gpu]", {"onnxruntime"}),
    ({"onnxruntime": "1.32.0"}, None, ["dev", "--gpu"], ".[dev,gpu]", {"onnxruntime"}),
    ({"onnxruntime-gpu": "1.31.1"}, "gpu", [], ".[server,gpu]", set()),  # a plain run keeps the GPU build
    ({"onnxruntime-gpu": "1.31.1"}, "gpu", ["--cpu"], ".[server,cpu]", {"onnxruntime-gpu"}),
    ({"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}, "gpu", ["dev"], ".[dev,gpu]",
     {"onnxruntime", "onnxruntime-gpu"}),
    ({}, None, [], ".[server,cpu]", set()),
])
def test_setup_script_never_leaves_two_builds(tmp_path, builds, recorded, args, spec, gone):
    root = _tree(tmp_path, builds, recorded)
    rc, out = _dry_run(root, *args)
    assert rc == 0, out
    assert installed_builds([str(next((root / ".venv" / "lib").glob("python3*/site-packages")))]) == builds  # dry: unchanged
    after, got, removed = _apply(builds, out)
    assert got == spec, out
    assert removed == gone, out
    assert len(after) == 1, (after, out)


def test_setup_script_fresh_clone_and_bad_arguments(tmp_path):
    root = _tree(tmp_path, {}, None)
    shutil.rmtree(root / ".venv")
    rc, out = _dry_run(root, "--gpu")
    assert rc == 0 and "would run: " in out and ".[server,gpu]" in out, out
    assert not (root / ".venv").exists()
    rc, out = _dry_run(root, "--tpu")
    assert rc == 2 and "unknown argument" in out


def test_runtime_check_script(tmp_path):
    root = _tree(tmp_path, {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}, None)
    py = root / ".venv" / "bin" / "python"
    proc = subprocess.run([str(py), "src/alphacut/models/runtime.py", "check", "gpu"], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "wanted only onnxruntime-gpu" in proc.stderr


# --- the diagnosis ------------------------------------------------------------------------------

H200 = [NvidiaGpu("NVIDIA H200", "550.54.15")]


def _gpu_facts(**kw) -> GpuFacts:
    base = dict(builds={"onnxruntime-gpu": "1.31.1"}, available=["TensorrtExecutionProvider", CUDA, CPU],
                package="onnxruntime-gpu", cuda_version="12.8", gpus=H200, device_nodes=True)
    base.update(kw)
    return GpuFacts(**base)


def test_gpu_in_use():
    d = diagnose(_gpu_facts())
    assert (d.provider, d.device, d.gpu_unused) == (CUDA, "NVIDIA H200", False)
    d = diagnose(_gpu_facts(session_provider=CUDA))
    assert d.provider == CUDA and d.why is None


def test_cpu_build_on_a_gpu_machine():
    d = diagnose(_gpu_facts(builds={"onnxruntime": "1.32.0"}, available=["AzureExecutionProvider", CPU],
                            package="onnxruntime", cuda_version=None))
    assert d.provider == CPU and d.gpu_unused
    assert "CPU build (onnxruntime 1.32.0)" in d.why and d.fix.startswith("scripts/setup.sh --gpu")


def test_two_builds():
    d = diagnose(_gpu_facts(builds={"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}))
    assert "several ONNX Runtime builds" in d.why and "scripts/setup.sh --gpu" in d.fix
    # a session that did run on the GPU: not "unused", but the accident is still said
    d = diagnose(_gpu_facts(builds={"onnxruntime": "1.30.0", "onnxruntime-gpu": "1.31.1"}, session_provider=CUDA))
    assert (d.provider, d.device, d.gpu_unused, d.why) == (CUDA, "NVIDIA H200", False, None)
    assert "several ONNX Runtime builds" in d.notes[0] and "scripts/setup.sh --gpu" in d.notes[0]


def test_container_without_gpu_access():
    d = diagnose(_gpu_facts(device_nodes=False))
    assert d.gpu_unused and "/dev/nvidia" in d.why and "--gpus all" in d.fix


def test_missing_cudnn_with_the_loaders_own_message():
    try:  # the real dynamic loader's words for a library that is not there
        import ctypes

        ctypes.CDLL("libcudnn.so.9")
        pytest.skip("cuDNN 9 is installed here")
    except OSError as exc:
        message = str(exc)
    d = diagnose(_gpu_facts(cuda_provider_error=message))
    assert d.gpu_unused and "libcudnn.so.9" in d.why and "cuDNN" in d.why and "scripts/setup.sh --gpu" in d.fix
    d = diagnose(_gpu_facts(cuda_provider_error="libcuda.so.1: cannot open shared object file: No such file or directory"))
    assert "driver" in d.why and "--gpus all" in d.fix


def test_driver_too_old_for_the_builds_cuda():
    d = diagnose(_gpu_facts(gpus=[NvidiaGpu("Tesla T4", "470.82.01")], cuda_version="12.2"))
    assert d.gpu_unused and "470.82.01" in d.why and "525.60.13" in d.why and "update the NVIDIA driver" in d.fix


def test_session_fell_back():
    w = "CUDAExecutionProvider is unavailable here; running on CPUExecutionProvider"
    d = diagnose(_gpu_facts(session_provider=CPU, session_warnings=[w]))
    assert d.gpu_unused and w in d.why


def test_no_gpu():
    d = diagnose(_gpu_facts(gpus=[], device_nodes=False))
    assert (d.provider, d.gpu_unused, d.why) == (CPU, False, None)
    assert "no NVIDIA GPU was found" in d.notes[0]
    d = diagnose(GpuFacts(builds={"onnxruntime": "1.32.0"}, available=[CPU], package="onnxruntime"))
    assert (d.provider, d.device, d.notes) == (CPU, "the CPU", [])
    d = diagnose(GpuFacts())
    assert d.provider == "none" and "no ONNX Runtime" in d.why


def test_this_machine():
    """The real facts here (the CPU build; a GPU only if this machine has one)."""
    f = gather()
    assert f.builds.get("onnxruntime") or f.builds.get("onnxruntime-gpu")
    assert f.package in ("onnxruntime", "onnxruntime-gpu")
    d = diagnose(f)
    if not f.gpus:
        assert d.provider == CPU and not d.gpu_unused
    else:
        assert d.provider == CUDA or d.why  # a GPU that is not used always comes with a reason


def test_proc_driver_files(tmp_path):
    """The kernel driver's own files, in the layout it writes them."""
    proc = tmp_path / "nvidia"
    (proc / "gpus" / "0000:17:00.0").mkdir(parents=True)
    (proc / "version").write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
                                  "GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    (proc / "gpus" / "0000:17:00.0" / "information").write_text(
        "Model: \t\t NVIDIA H200\nIRQ:   \t\t 140\nGPU UUID: \t GPU-1\nVideo BIOS: \t 96.00.9f.00.04\nBus Type: \t PCIe\n")
    assert [(g.name, g.driver) for g in nvidia_gpus(proc)] == [("NVIDIA H200", "550.54.15")]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the provider library stand-in")
def test_provider_library_needing_a_missing_cudnn(tmp_path, monkeypatch):
    """A provider library whose DT_NEEDED names libcudnn.so.9, loaded by the real dynamic loader: the
    diagnosis names the library and the fix."""
    capi = tmp_path / "onnxruntime" / "capi"
    capi.mkdir(parents=True)
    src = tmp_path / "x.c"
    src.write_text("int alphacut_probe(void) { return 1; }\n")
    stub = tmp_path / "libstub.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(stub), str(src), "-Wl,-soname,libcudnn.so.9"], check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(capi / "libonnxruntime_providers_cuda.so"), str(src),
                    "-Wl,--no-as-needed", str(stub)], check=True)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(capi / "libonnxruntime_providers_shared.so"), str(src)], check=True)
    stub.unlink()
    monkeypatch.setattr(gpumod, "_prepared", True)  # nothing to preload for this stand-in
    err = cuda_provider_error(tmp_path / "onnxruntime")
    assert err and "libcudnn.so.9" in err
    d = diagnose(_gpu_facts(cuda_provider_error=err))
    assert "libcudnn.so.9" in d.why and d.fix.startswith("scripts/setup.sh --gpu")
    # a CPU build has no CUDA provider library at all: nothing to load, nothing to report
    (capi / "libonnxruntime_providers_cuda.so").unlink()
    assert cuda_provider_error(tmp_path / "onnxruntime") is None


def test_doctor_prints_the_provider(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-m", "alphacut.launch", "doctor", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    import json

    report = json.loads(proc.stdout)
    assert report["gpu"]["provider"] in (CPU, CUDA)
    assert set(report["gpu"]) == {"provider", "device", "gpu_unused", "why", "fix", "notes"}
