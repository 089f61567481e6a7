"""Which execution provider will run, and when an NVIDIA GPU sits unused, exactly why.

"GPU silently not used" is the commonest complaint about ONNX-based background removers. The
causes are few and each leaves a trace this module reads without a GPU library of its own:

- the CPU build of ONNX Runtime is installed (``build_and_package_info.package_name``), or two
  builds at once (``runtime.installed_builds``);
- the driver is on the host but no ``/dev/nvidia*`` device is visible (a container started
  without ``--gpus``);
- the CUDA provider library cannot be loaded: loading ``libonnxruntime_providers_cuda.so``
  with ctypes fails with the name of the first missing library (``libcudnn.so.9``,
  ``libcublasLt.so.12``, ``libcuda.so.1``…), after ``onnxruntime.preload_dlls()`` has loaded
  NVIDIA's pip wheels as a session would;
- the driver is older than the CUDA major the build needs.

``gather()`` collects those facts; ``diagnose(facts)`` is a pure function of them (so every
case is tested on a machine without a GPU); ``alphacut doctor`` only prints the result.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .runtime import EXTRA_DIST, installed_builds

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
#: the oldest Linux driver each CUDA major runs on (NVIDIA's CUDA toolkit release notes, table 3)
MIN_DRIVER = {11: (450, 80, 2), 12: (525, 60, 13), 13: (580, 65, 6)}
SETUP_GPU = "scripts/setup.sh --gpu"
PIP_GPU = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'alphacut[gpu]'"


@dataclass
class NvidiaGpu:
    name: str
    driver: str | None


@dataclass
class GpuFacts:
    """Everything the diagnosis needs, read from this machine by :func:`gather`."""

    #: installed ONNX Runtime distributions: name → version
    builds: dict[str, str] = field(default_factory=dict)
    #: ``onnxruntime.get_available_providers()`` (empty when it cannot be imported)
    available: list[str] = field(default_factory=list)
    #: the build's own record: package name and the CUDA it was built for ("12.2"), if any
    package: str | None = None
    cuda_version: str | None = None
    #: NVIDIA GPUs the kernel driver reports (``/proc/driver/nvidia``, ``nvidia-smi``)
    gpus: list[NvidiaGpu] = field(default_factory=list)
    #: a ``/dev/nvidia0``-style device node is visible to this process
    device_nodes: bool = False
    #: loading the CUDA provider library failed with this message (None: loaded, or no such library)
    cuda_provider_error: str | None = None
    #: the provider a real session ran on, and its warnings (``doctor --model``), when known
    session_provider: str | None = None
    session_warnings: list[str] = field(default_factory=list)


@dataclass
class Diagnosis:
    #: the provider that will run inference, e.g. "CUDAExecutionProvider" or "CPUExecutionProvider"
    provider: str
    #: what it runs on, in words ("NVIDIA H200", "the CPU")
    device: str
    #: an NVIDIA GPU is present and the CPU runs instead
    gpu_unused: bool = False
    #: why (one sentence), and what to do (a command where there is one)
    why: str | None = None
    fix: str | None = None
    #: things worth knowing that do not keep the GPU idle
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- reading the machine -------------------------------------------------------------------------


def nvidia_gpus(proc: Path = Path("/proc/driver/nvidia")) -> list[NvidiaGpu]:
    """NVIDIA GPUs the kernel driver knows, from /proc (no library needed), else ``nvidia-smi``."""
    driver = None
    try:
        m = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", (proc / "version").read_text())
        driver = m.group(1) if m else None
    except OSError:
        pass
    gpus = []
    for info in sorted(glob.glob(str(proc / "gpus" / "*" / "information"))):
        try:
            m = re.search(r"^Model:\s*(.+)$", Path(info).read_text(), re.M)
        except OSError:
            continue
        gpus.append(NvidiaGpu(m.group(1).strip() if m else "NVIDIA GPU", driver))
    if gpus:
        return gpus
    smi = shutil.which("nvidia-smi") or ("/usr/lib/wsl/lib/nvidia-smi" if os.path.exists("/usr/lib/wsl/lib/nvidia-smi") else None)
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            for line in out.stdout.splitlines():
                name, _, drv = line.partition(",")
                if name.strip():
                    gpus.append(NvidiaGpu(name.strip(), drv.strip() or driver))
        except (OSError, subprocess.SubprocessError):
            pass
    return gpus


def _ort_dir() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def build_info(ort_dir: Path | None) -> tuple[str | None, str | None]:
    """(package name, CUDA version) from ``onnxruntime/capi/build_and_package_info.py``, read as text
    (importing onnxruntime is not needed for it)."""
    if ort_dir is None:
        return None, None
    try:
        text = (ort_dir / "capi" / "build_and_package_info.py").read_text()
    except OSError:
        return None, None
    pkg = re.search(r"package_name\s*=\s*['\"]([^'\"]+)", text)
    cuda = re.search(r"cuda_version\s*=\s*['\"]([^'\"]*)", text)
    return (pkg.group(1) if pkg else None), (cuda.group(1) if cuda and cuda.group(1) else None)


def cuda_provider_error(ort_dir: Path | None) -> str | None:
    """Load the CUDA provider library the way a session would (after ``preload_dlls``); the loader's
    message when it fails (it names the first missing library), else None."""
    if ort_dir is None:
        return None
    lib = ort_dir / "capi" / "libonnxruntime_providers_cuda.so"
    if not lib.exists():
        return None
    prepare_cuda()
    try:
        ctypes.CDLL(str(ort_dir / "capi" / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(lib))
    except OSError as exc:
        return str(exc)
    return None


_prepared = False


def prepare_cuda() -> None:
    """Load CUDA/cuDNN from NVIDIA's pip wheels (``onnxruntime-gpu[cuda,cudnn]``) before a CUDA
    session is built: they are not on the loader's path. Once per process; a no-op for a CPU build
    or an ONNX Runtime older than 1.21."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    try:
        import onnxruntime as ort

        if CUDA in ort.get_available_providers() and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()
    except Exception:  # noqa: BLE001 - the session's own fallback reports what fails
        pass


def tensorrt_loadable() -> bool:
    """Whether TensorRT's library can be found: onnxruntime-gpu lists its provider even without
    it, and a chain headed by it would log a failure and a warning on every session."""
    import ctypes.util

    return ctypes.util.find_library("nvinfer") is not None


def gather(session_provider: str | None = None, session_warnings: list[str] | None = None) -> GpuFacts:
    facts = GpuFacts(builds=installed_builds(), session_provider=session_provider,
                     session_warnings=list(session_warnings or []))
    ort_dir = _ort_dir()
    facts.package, facts.cuda_version = build_info(ort_dir)
    try:
        import onnxruntime as ort

        facts.available = list(ort.get_available_providers())
    except Exception:  # noqa: BLE001 - not installed, or broken by a second build
        facts.available = []
    facts.gpus = nvidia_gpus()
    facts.device_nodes = bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/dxg")
    if facts.gpus and CUDA in facts.available:
        facts.cuda_provider_error = cuda_provider_error(ort_dir)
    return facts


# --- the diagnosis -------------------------------------------------------------------------------


def _version(v: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or ""))


def _missing_library(message: str) -> str | None:
    m = re.search(r"(lib[\w.+-]+\.so(?:\.\d+)*)\s*:\s*cannot open shared object", message)
    return m.group(1) if m else None


def _fix_for_library(lib: str) -> tuple[str, str]:
    """(why, fix) for a library the CUDA provider could not find."""
    if lib.startswith("libcuda.so"):
        return (f"the NVIDIA driver's CUDA library ({lib}) cannot be loaded",
                "install the NVIDIA driver; in a container, start it with the NVIDIA Container Toolkit "
                "(`docker run --gpus all`)")
    if lib.startswith("libcudnn"):
        what = "cuDNN"
    elif lib.startswith("libnvinfer"):
        what = "TensorRT"
    else:
        what = "the CUDA runtime"
    return (f"the CUDA provider cannot load {lib} ({what} is not installed where ONNX Runtime looks)",
            f"{SETUP_GPU} (installs onnxruntime-gpu with NVIDIA's CUDA and cuDNN wheels), or install {what} "
            "for the CUDA version `alphacut doctor` shows and put it on LD_LIBRARY_PATH")


def _gpu_names(facts: GpuFacts) -> str:
    names = [g.name for g in facts.gpus]
    return names[0] if len(names) == 1 else f"{len(names)} GPUs ({', '.join(dict.fromkeys(names))})"


def diagnose(facts: GpuFacts) -> Diagnosis:
    """Which provider will run, and when an NVIDIA GPU is present but unused, why and what to do."""
    builds = facts.builds
    if not builds and not facts.available:
        return Diagnosis("none", "nothing", bool(facts.gpus),
                         "no ONNX Runtime is installed", SETUP_GPU if facts.gpus else "scripts/setup.sh")
    if len(builds) > 1:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(builds.items()))
        why = (f"several ONNX Runtime builds are installed ({listed}); they install the same `onnxruntime` "
               "package and overwrite each other's files, so which one runs is an accident")
        fix = (SETUP_GPU if facts.gpus else "scripts/setup.sh --cpu") + f" (or: {PIP_GPU if facts.gpus else 'pip uninstall -y ' + ' '.join(sorted(builds)) + ' && pip install alphacut[cpu]'})"
        if facts.gpus and facts.session_provider in (CUDA, TENSORRT):
            # the accident went the right way this time (seen on an H200 with onnxruntime-gpu
            # ahead of the CPU build on the path): the GPU runs, so it is not "unused" — but the
            # next install may flip it, which the note says
            d = Diagnosis(facts.session_provider, _gpu_names(facts))
            d.notes.append(f"{why}: the GPU runs now, but the next install can change that. To fix: {fix}")
            return d
        return Diagnosis(facts.session_provider or CPU, "unknown", bool(facts.gpus), why, fix)

    gpu_chain = [p for p in facts.available if p not in (CPU, "AzureExecutionProvider")]
    blocker = _cuda_blocker(facts) if facts.gpus and CUDA in gpu_chain else None
    if facts.session_provider is not None:
        provider = facts.session_provider
    elif CUDA in gpu_chain and facts.gpus and blocker is None:
        provider = CUDA
    elif gpu_chain and not (set(gpu_chain) <= {CUDA, TENSORRT}):
        provider = next(p for p in gpu_chain if p not in (CUDA, TENSORRT))  # CoreML, DirectML, OpenVINO…
    else:
        provider = CPU
    device = _gpu_names(facts) if provider in (CUDA, TENSORRT) else ("the CPU" if provider == CPU else provider)
    d = Diagnosis(provider, device)

    gpu_build = "onnxruntime-gpu" in builds or (facts.package or "").endswith("-gpu") or CUDA in facts.available
    if not facts.gpus:
        if gpu_build:
            d.notes.append("onnxruntime-gpu is installed but no NVIDIA GPU was found: the CPU runs "
                           "(`scripts/setup.sh --cpu` installs the smaller CPU build)")
        return d
    if provider != CPU:
        return d

    # an NVIDIA GPU is there and the CPU runs: say why
    d.gpu_unused = True
    if not gpu_build:
        ver = builds.get("onnxruntime")
        d.why = f"the installed ONNX Runtime is the CPU build (onnxruntime{' ' + ver if ver else ''}); it has no CUDA provider"
        d.fix = f"{SETUP_GPU} (or: {PIP_GPU})"
        return d
    if blocker is not None:
        d.why, d.fix = blocker
        return d
    failed = [w for w in facts.session_warnings if CUDA in w or TENSORRT in w]
    if failed:
        d.why = f"the CUDA provider failed when the model was loaded: {failed[-1]}"
        d.fix = ("check `nvidia-smi` (GPU memory, another process holding the GPU), then run "
                 "`alphacut doctor --model isnet` again")
        return d
    d.why = "the CUDA provider is installed but a session chose the CPU without saying why"
    d.fix = "run `alphacut doctor --model isnet` to load a model and see its warnings"
    return d


def _cuda_blocker(facts: GpuFacts) -> tuple[str, str] | None:
    """(why, fix) when this machine's CUDA provider cannot run, from the facts alone; else None."""
    if not facts.device_nodes:
        return ("the NVIDIA driver is loaded but no /dev/nvidia* device is visible to this process "
                "(a container started without GPU access?)",
                "start the container with `--gpus all` (NVIDIA Container Toolkit), or check the permissions on /dev/nvidia*")
    cuda_major = _version(facts.cuda_version)[:1]
    driver = next((g.driver for g in facts.gpus if g.driver), None)
    if cuda_major and driver and cuda_major[0] in MIN_DRIVER and _version(driver) < MIN_DRIVER[cuda_major[0]]:
        need = ".".join(str(x) for x in MIN_DRIVER[cuda_major[0]])
        return (f"the NVIDIA driver {driver} is older than CUDA {cuda_major[0]} needs (≥ {need}); this "
                f"onnxruntime-gpu {facts.builds.get('onnxruntime-gpu', '')} was built for CUDA {facts.cuda_version}",
                f"update the NVIDIA driver to {need} or newer, or install an onnxruntime-gpu built for the CUDA "
                "your driver supports (`nvidia-smi` shows it)")
    if facts.cuda_provider_error:
        lib = _missing_library(facts.cuda_provider_error)
        if lib:
            return _fix_for_library(lib)
        return (f"the CUDA provider library does not load: {facts.cuda_provider_error.strip().splitlines()[0]}",
                f"{SETUP_GPU} to reinstall onnxruntime-gpu with its CUDA libraries")
    return None


__all__ = ["Diagnosis", "GpuFacts", "NvidiaGpu", "diagnose", "gather", "prepare_cuda", "tensorrt_loadable",
           "EXTRA_DIST"]
