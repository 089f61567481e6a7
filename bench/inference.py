"""Bare inference, one model at its input size, under different ONNX Runtime settings.

Every variant runs on the same input tensor, interleaved round by round (the machine is shared
and noisy), and is compared with the default both in time (median ratio) and in output (max
absolute difference of the matte), so a faster setting is adopted only if the matte stays
within tolerance.

    .venv/bin/python bench/inference.py --model isnet --rounds 5
    /path/to/openvino-venv/bin/python bench/inference.py --openvino   # onnxruntime-openvino

Variants: the default session (graph optimisation ALL, intra-op threads = physical cores),
1 thread, spinning off, optimisation BASIC, memory arena off, IO binding with a preallocated
output, sequential execution; with ``--openvino`` the OpenVINO execution provider (CPU, and
CPU with FP16 inference precision).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def build_variants(path: str, threads: int, openvino: bool, cpu_copy: str | None = None
                   ) -> dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]]:
    import onnxruntime as ort

    def session(providers=("CPUExecutionProvider",), provider_options=None, **opts):
        so = ort.SessionOptions()
        model = opts.pop("model", path)
        so.enable_mem_pattern = opts.pop("pattern", True)
        so.intra_op_num_threads = opts.pop("threads", threads)
        so.graph_optimization_level = opts.pop("level", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
        so.enable_cpu_mem_arena = opts.pop("arena", True)
        if opts.pop("no_spin", False):
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if opts.pop("sequential", False):
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(model, so, providers=list(providers), provider_options=provider_options)

    def plain(**kw):
        def make():
            s = session(**kw)
            name = s.get_inputs()[0].name
            return lambda x: s.run(None, {name: x})[0]
        return make

    def io_binding():
        s = session()
        name = s.get_inputs()[0].name
        out_name = s.get_outputs()[0].name
        binding = s.io_binding()

        def run(x: np.ndarray) -> np.ndarray:
            binding.bind_cpu_input(name, x)
            binding.bind_output(out_name, "cpu")
            s.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]
        return run

    variants = {
        "default": plain(),
        "1 thread": plain(threads=1),
        "no spinning": plain(no_spin=True),
        "optimisation BASIC": plain(level=ort.GraphOptimizationLevel.ORT_ENABLE_BASIC),
        "arena off": plain(arena=False),
        "IO binding": lambda: io_binding(),
    }
    if cpu_copy is not None:  # the store's float32 copy of a float16 model (models.variants)
        variants["float32 copy"] = plain(model=cpu_copy)
        variants["float32 copy, arena and pattern off (alphacut)"] = plain(model=cpu_copy, arena=False, pattern=False)
    if openvino:
        variants["OpenVINO CPU"] = plain(providers=("OpenVINOExecutionProvider",),
                                         provider_options=[{"device_type": "CPU"}])
        variants["OpenVINO CPU fp16"] = plain(providers=("OpenVINOExecutionProvider",),
                                              provider_options=[{"device_type": "CPU", "precision": "FP16"}])
    return variants


def main() -> int:
    from alphacut.memory import huge_pages_in_use, restart_with_huge_pages

    restart_with_huge_pages()  # every row runs as the alphacut command does (bench/memory.py compares)
    print("huge pages:", huge_pages_in_use()[1])
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="isnet")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--openvino", action="store_true")
    args = ap.parse_args()

    from alphacut.matte.predict import prepare_input
    from alphacut.models.catalog import get_spec
    from alphacut.models.session import physical_cores
    from alphacut.models.store import ModelStore

    spec = get_spec(args.model)
    store = ModelStore()
    path = str(store.path(args.model))
    copy = store.cpu_file(args.model)
    rng = np.random.default_rng(0)
    x = prepare_input(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8), spec)
    runners = {}
    for name, make in build_variants(path, physical_cores(), args.openvino, str(copy) if copy else None).items():
        try:
            runners[name] = make()
            runners[name](x)  # warm-up
        except Exception as exc:  # noqa: BLE001 - a variant that cannot run is reported, not fatal
            print(f"{name}: unavailable ({str(exc).splitlines()[0][:120]})")
            runners.pop(name, None)
    times: dict[str, list[float]] = {n: [] for n in runners}
    cpu: dict[str, list[float]] = {n: [] for n in runners}
    outputs = {}
    for _ in range(args.rounds):
        for name, run in runners.items():
            t, c = time.perf_counter(), time.process_time()
            outputs[name] = run(x)
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    base = statistics.median(times["default"])
    base_cpu = statistics.median(cpu["default"])
    print(f"\nmodel {args.model}, input {tuple(x.shape)}, {args.rounds} rounds, interleaved")
    print("(CPU seconds are less disturbed by other load on a shared machine than wall time)\n")
    print("| variant | median s | × default | median CPU s | × default CPU | max |Δ matte| |")
    print("|---|---|---|---|---|---|")
    for name in runners:
        med, mc = statistics.median(times[name]), statistics.median(cpu[name])
        diff = float(np.abs(outputs[name].astype(np.float32) - outputs["default"].astype(np.float32)).max())
        print(f"| {name} | {med:.3f} | {med / base:.2f} | {mc:.2f} | {mc / base_cpu:.2f} | {diff:.2e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
