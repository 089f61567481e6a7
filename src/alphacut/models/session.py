"""ONNX Runtime sessions that pick the fastest provider and fall back instead of failing.

A GPU provider can fail when the session is built (driver, missing library, unsupported op)
or in the middle of a job (out of memory, a kernel error). Either way the job should finish on
the next provider, with a warning the user can see, rather than die. CPU is always last.

Chain entries are provider names, optionally with a tag in parentheses, e.g.
``"CPUExecutionProvider(broken)"``: the tag is passed to the hooks so a test (or a tuning
layer) can give one entry its own SessionOptions/RunOptions; ORT sees only the name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InferenceError

#: the order we prefer when a provider is available; anything else goes before CPU
PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "ROCMExecutionProvider",
    "MIGraphXExecutionProvider",
)
CPU = "CPUExecutionProvider"
#: CUDA without TF32, for float32 models: cuDNN's TF32 convolutions keep 10 mantissa bits, and
#: U²-Netp's matte then differs from the CPU's by up to 0.077 (3.8% of a 12 MP photo's pixels
#: more than 2 levels apart; with TF32 off, 0.0004 and none: bench/gpu_check.py on an H200, the
#: model pass 32 ms either way). A float16 model (IS-Net) runs in half precision on the GPU
#: whatever this says (its matte is the same with TF32 on or off, 2.3e-5 from the CPU's on
#: average), and with the option cuDNN logs a failed plan search for every half-precision
#: convolution: it is not given there.
FLOAT32_PROVIDER_OPTIONS: dict[str, dict[str, str]] = {"CUDAExecutionProvider": {"use_tf32": "0"}}
SKIP = frozenset({"AzureExecutionProvider"})  # a remote-call provider, not a compute device

#: ``hook(entry, options)``: adjust the SessionOptions used to build on ``entry``
SessionOptionsHook = Callable[[str, Any], None]
#: ``hook(entry) -> RunOptions | None``: options for each run on ``entry``
RunOptionsHook = Callable[[str], Any]


def provider_name(entry: str) -> str:
    """``"CUDAExecutionProvider(gpu1)"`` -> ``"CUDAExecutionProvider"``."""
    return entry.split("(", 1)[0].strip()


def provider_chain(preferred: Sequence[str] | None = None) -> list[str]:
    """Available providers, fastest first, CPU last; ``preferred`` (if given) filters and orders.

    Unknown names in ``preferred`` are dropped (they cannot run here); CPU is always appended.
    """
    ort = import_onnxruntime()

    available = [p for p in ort.get_available_providers() if p not in SKIP]
    if preferred is not None:
        chain = [p for p in preferred if provider_name(p) in available and provider_name(p) != CPU]
    else:
        rank = {name: i for i, name in enumerate(PREFERENCE)}
        chain = sorted((p for p in available if p != CPU), key=lambda p: rank.get(p, len(rank)))
        if "TensorrtExecutionProvider" in chain:
            from .gpu import tensorrt_loadable

            if not tensorrt_loadable():  # onnxruntime-gpu lists it even without TensorRT installed
                chain.remove("TensorrtExecutionProvider")
    return chain + [CPU]


def import_onnxruntime() -> Any:
    """``onnxruntime``, or a ModelError that says how to install one build (models/runtime.py)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        from ..errors import ModelError
        from .runtime import INSTALL_HINT

        raise ModelError(f"{INSTALL_HINT} ({exc})") from None
    return ort


def physical_cores() -> int:
    """Physical cores (hyper-threads share a core's units, so ORT runs best at this count)."""
    try:
        cores = set()
        phys = core = None
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not key and phys is not None and core is not None:
                    cores.add((phys, core))
                    phys = core = None
        if phys is not None and core is not None:
            cores.add((phys, core))
        if cores:
            return len(cores)
    except OSError:
        pass
    return max(1, os.cpu_count() or 1)


class ModelSession:
    """An ``ort.InferenceSession`` that walks down a provider chain when a provider fails."""

    def __init__(
        self,
        path: Path | str,
        *,
        cpu_path: Path | str | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        session_options_hook: SessionOptionsHook | None = None,
        run_options_hook: RunOptionsHook | None = None,
    ) -> None:
        from ..memory import release_freed_memory

        release_freed_memory()  # activations freed after a run go back to the OS
        self.path = Path(path)
        #: what CPU runs when it heads the chain: a float32 copy of a float16 model, or the model
        self.cpu_path = Path(cpu_path) if cpu_path is not None else None
        self.threads = threads if threads and threads > 0 else physical_cores()
        self.warnings: list[str] = []
        self._chain: list[str] = list(providers) if providers else provider_chain()
        self._requested = list(self._chain)
        self._so_hook = session_options_hook
        self._ro_hook = run_options_hook
        self._dropped: list[str] = []
        self._session: Any = None
        self._entry = ""
        #: the file the current ORT session was built from
        self.loaded_path = self.path
        self._drop_unavailable()
        if any(provider_name(e) == "CUDAExecutionProvider" for e in self._chain):
            from .gpu import prepare_cuda

            prepare_cuda()  # CUDA/cuDNN from NVIDIA's pip wheels, before ORT looks for them
        self._build()

    def _drop_unavailable(self) -> None:
        """Entries this ORT build cannot run at all are dropped up front, with a warning."""
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        for entry in list(self._chain):
            if provider_name(entry) not in available:
                self._chain.remove(entry)
                self._dropped.append(entry)
                self.warnings.append(f"{entry} is not available in this onnxruntime build")

    # --- building -----------------------------------------------------------------------

    def _options(self, entry: str) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3  # errors only; our warnings carry what matters
        # No CPU memory arena: with it ONNX Runtime keeps IS-Net's peak activations at 1024²
        # (~1.7 GB) allocated between runs. Measured without it (bench/inference.py, "arena
        # off"): the same speed, 0.5 GB resident after a run instead of 2.2 GB — which is what
        # lets a 200 MP cutout, or a pool of workers, fit in bounded memory.
        so.enable_cpu_mem_arena = False
        # No memory pattern either: the pattern is one block sized for every activation of the
        # first run, held for the next. Without it (and with ``memory.release_freed_memory``)
        # IS-Net's peak over three runs is 764 MB instead of 977 MB at the same speed
        # (bench/memory.py).
        so.enable_mem_pattern = False
        # Idle intra-op threads sleep instead of spinning: the same inference time
        # (bench/inference.py "no spinning": 1.01x wall, 0.83x CPU), and the CPU a spinning
        # thread burns is what the decode, matte and encode threads of a pipelined worker need
        # (bench/batch.py, IS-Net, 10 photos of 12 MP: 0.70 -> 0.76 of the inference limit).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self._so_hook is not None:
            self._so_hook(entry, so)
        return so

    def _build(self) -> None:
        """Build on the first entry that works; drop (and warn about) the ones that do not."""
        import onnxruntime as ort

        while self._chain:
            entry = self._chain[0]
            names = list(dict.fromkeys(provider_name(e) for e in self._chain))
            path = self.cpu_path if (self.cpu_path is not None and names[0] == CPU) else self.path
            try:
                # a CPU copy exists only for a float16 model (models.variants): ``path`` is it
                extra = {} if self.cpu_path is not None else FLOAT32_PROVIDER_OPTIONS
                self._session = ort.InferenceSession(
                    str(path), sess_options=self._options(entry),
                    providers=[(n, extra[n]) if n in extra else n for n in names],
                )
                self._entry = entry
                self.loaded_path = path
                actual = self._session.get_providers()[0]
                if actual != provider_name(entry):  # ORT skipped it quietly (library missing)
                    self.warnings.append(f"{entry} is unavailable here; running on {actual}")
                return
            except Exception as err:  # ORT raises several unrelated types
                self._drop(entry, "could not start", err)
        raise InferenceError(
            f"no execution provider could load {self.path.name}: " + "; ".join(self.warnings),
            path=self.path,
        )

    def _drop(self, entry: str, what: str, err: BaseException) -> None:
        self._chain.pop(0)
        self._dropped.append(entry)
        nxt = self._chain[0] if self._chain else "nothing"
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        self.warnings.append(f"{entry} {what} ({msg}); falling back to {nxt}")

    # --- running ------------------------------------------------------------------------

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """Run on the first input; on a provider failure rebuild on the next one and retry."""
        while True:
            run_options = self._ro_hook(self._entry) if self._ro_hook is not None else None
            try:
                return list(self._session.run(None, {self.input_name: x}, run_options))
            except Exception as err:
                self._drop(self._entry, "failed during a run", err)
                if not self._chain:
                    raise InferenceError(
                        f"inference failed on every provider for {self.path.name}: "
                        + "; ".join(self.warnings),
                        path=self.path,
                    ) from None
                self._session = None
                self._build()

    # --- what is running ----------------------------------------------------------------

    @property
    def provider(self) -> str:
        """The provider that actually runs (ORT may have skipped ones it could not load)."""
        return str(self._session.get_providers()[0])

    @property
    def entry(self) -> str:
        """The chain entry (with its tag) the session was built for."""
        return self._entry

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    @property
    def degraded(self) -> bool:
        """True when a faster provider was dropped, or CPU runs while a GPU one was asked for."""
        asked_gpu = any(provider_name(e) != CPU for e in self._requested)
        return bool(self._dropped) or (asked_gpu and self.provider == CPU)

    @property
    def input_name(self) -> str:
        return str(self._session.get_inputs()[0].name)

    @property
    def input_shape(self) -> list[int | str | None]:
        return list(self._session.get_inputs()[0].shape)



def open_session(store: Any, name: str, *, accept_license: bool = False, progress: Any = None,
                 providers: Sequence[str] | None = None, threads: int | None = None) -> ModelSession:
    """A session on a model from ``store``: pulled and verified if needed, and on CPU the
    store's float32 copy of a float16 model (``ModelStore.cpu_file``). The one place that
    pairs the two files, so no caller can forget the copy."""
    path = store.ensure(name, accept_license=accept_license, progress=progress)
    return ModelSession(path, cpu_path=store.cpu_file(name), providers=providers, threads=threads)
