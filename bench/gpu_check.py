"""On a machine with an NVIDIA GPU: does alphacut run there, give the CPU's cutout, and how fast?

    PYTHONPATH=src python bench/gpu_check.py --image dog.jpg --models u2netp,isnet --json gpu.json

For each model and tier, one ``Remover`` on the default provider chain (CUDA first when
``onnxruntime-gpu`` is installed) and one pinned to the CPU run the same photo:

- the provider each session actually runs on (a chain that silently fell back to the CPU is
  the commonest complaint about ONNX background removers: this says so instead of timing it);
- the two mattes against each other: max and mean |difference|, the share of pixels more than
  2/255 apart, and the IoU of their alpha ≥ 0.5 masks (a GPU's float32 kernels, and a float16
  model run natively, differ from the CPU's in the last bits, not in what is kept);
- the time per image once warm (median of ``--reps``), and the model pass alone.

It also prints ``alphacut doctor``'s verdict. Nothing here is a test: a GPU is not on CI's
machine. The numbers go in docs/speed.md with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DOG = REPO.parent / "shared" / "eval" / "formats" / "jpeg_odd" / "libavif" / "dog_exif_extended_xmp_icc.jpg"


def run(model: str, quality: str, image: Path, providers: list[str] | None, reps: int) -> dict[str, Any]:
    from alphacut import Remover

    with Remover(model, providers=providers) as r:
        t0 = time.perf_counter()
        first = r.remove(image, quality=quality)
        first_s = time.perf_counter() - t0
        times, infer = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            res = r.remove(image, quality=quality)
            times.append(time.perf_counter() - t0)
            infer.append(res.timings.get("predict", 0.0) + res.timings.get("crop_pass", 0.0))
        session = r.session
        return {"provider": session.provider, "providers": session.providers, "degraded": session.degraded,
                "warnings": list(getattr(session, "warnings", [])), "first_s": round(first_s, 3),
                "warm_s": round(statistics.median(times), 3), "infer_s": round(statistics.median(infer), 3),
                "timings": {k: round(v, 4) for k, v in res.timings.items()},
                "matte": first.matte.astype(np.float32)}


def compare(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    d = np.abs(a - b)
    ma, mb = a >= 0.5, b >= 0.5
    union = np.logical_or(ma, mb).sum()
    return {"max_abs": round(float(d.max()), 5), "mean_abs": round(float(d.mean()), 6),
            "share_over_2_levels": round(float((d > 2 / 255).mean()), 6),
            "iou": round(float(np.logical_and(ma, mb).sum() / union) if union else 1.0, 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default=str(DOG))
    ap.add_argument("--models", default="u2netp,isnet")
    ap.add_argument("--tiers", default="fast,best")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from alphacut.models.gpu import diagnose, gather

    report: dict[str, Any] = {"image": args.image, "cpu_count": os.cpu_count()}
    verdict = diagnose(gather())
    report["doctor"] = verdict.as_dict()
    print("doctor:", json.dumps(report["doctor"], default=str))
    rows = []
    for model in args.models.split(","):
        for tier in args.tiers.split(","):
            gpu = run(model, tier, Path(args.image), None, args.reps)
            cpu = run(model, tier, Path(args.image), ["CPUExecutionProvider"], args.reps)
            row = {"model": model, "tier": tier, "diff": compare(gpu.pop("matte"), cpu.pop("matte")),
                   "default_chain": gpu, "cpu": cpu,
                   "speedup_warm": round(cpu["warm_s"] / gpu["warm_s"], 2) if gpu["warm_s"] else None}
            rows.append(row)
            print(f"{model:7s} {tier:4s} runs on {gpu['provider']:26s} warm {gpu['warm_s']:.3f} s "
                  f"(model {gpu['infer_s']:.3f}) vs CPU {cpu['warm_s']:.3f} s (model {cpu['infer_s']:.3f}): "
                  f"{row['speedup_warm']}x; matte vs CPU {row['diff']}", flush=True)
    report["rows"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
