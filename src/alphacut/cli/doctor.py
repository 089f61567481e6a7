"""``alphacut doctor``: what this machine can do, and what is wrong with it, in one screen."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from typing import Any

from .. import __version__


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="versions, providers, model cache and warnings")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--model", default=None, help="load this model to show the provider that really runs")
    p.set_defaults(func=run)


def collect(model: str | None = None) -> dict[str, Any]:
    """The report as plain data (the web app's capability panel shows the same)."""
    import cv2
    import numpy as np
    try:
        import onnxruntime as ort
    except ImportError:  # no build installed: the GPU diagnosis below says how to get one
        ort = None
    from PIL import __version__ as pil_version
    from PIL import features

    from ..memory import huge_pages_in_use
    from ..models.catalog import DEFAULT_MODEL
    from ..models.session import ModelSession, physical_cores, provider_chain
    from ..models.store import ModelStore, default_home

    warnings: list[str] = []
    store = ModelStore()
    models = [m.as_dict() for m in store.list()]
    chain = provider_chain() if ort is not None else []
    report: dict[str, Any] = {
        "alphacut": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "onnxruntime": ort.__version__ if ort is not None else None,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": pil_version,
        "avif": bool(features.check("avif")),
        "heif": _heif_version(),
        "available_providers": ort.get_available_providers() if ort is not None else [],
        "provider_chain": chain,
        "physical_cores": physical_cores(),
        "huge_pages": huge_pages_in_use()[1],
        "model_home": str(default_home()),
        "models": models,
        "warnings": warnings,
    }
    if not report["avif"]:
        warnings.append("this Pillow has no AVIF support: AVIF input and output are unavailable")
    if report["heif"] is None:
        warnings.append("pillow-heif is missing: HEIC/HEIF input is unavailable")
    free = shutil.disk_usage(default_home().parent if not default_home().exists() else default_home()).free
    report["cache_free_bytes"] = free
    if free < 500_000_000:
        warnings.append(f"only {free / 1e6:.0f} MB free where models are cached")
    name = model or DEFAULT_MODEL
    installed = {m["name"]: m for m in models}
    if installed.get(name, {}).get("installed") and ort is not None:
        try:
            session = ModelSession(store.path(name), cpu_path=store.cpu_file(name))
            report["chosen_provider"] = session.provider
            report["degraded"] = session.degraded
            warnings.extend(session.warnings)
        except Exception as exc:  # noqa: BLE001 - doctor reports, it does not crash
            warnings.append(f"could not load {name}: {exc}")
    else:
        warnings.append(f"the default model {name!r} is not installed yet (it is fetched on first use)")
    from ..models.gpu import diagnose, gather  # which provider runs; why not the GPU (models/gpu.py)

    gpu = diagnose(gather(report.get("chosen_provider"), list(warnings)))
    report["gpu"] = gpu.as_dict()
    if gpu.gpu_unused:
        warnings.append(f"an NVIDIA GPU is present but unused: {gpu.why}. To use it: {gpu.fix}")
    warnings.extend(gpu.notes)
    return report


def _heif_version() -> str | None:
    try:
        import pillow_heif

        return str(pillow_heif.__version__)
    except ImportError:
        return None


def run(args: argparse.Namespace) -> int:
    report = collect(args.model)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"alphacut {report['alphacut']} doctor", show_header=False)
    for key in ("python", "platform", "onnxruntime", "numpy", "opencv", "pillow", "heif", "avif",
                "physical_cores", "huge_pages", "model_home"):
        table.add_row(key, str(report[key]))
    table.add_row("providers available", ", ".join(report["available_providers"]))
    table.add_row("provider chain", " → ".join(report["provider_chain"]))
    if "chosen_provider" in report:
        table.add_row("provider in use", report["chosen_provider"])
    table.add_row("inference runs on", f"{report['gpu']['provider']} ({report['gpu']['device']})")
    installed = [m["name"] for m in report["models"] if m["installed"]]
    table.add_row("models installed", ", ".join(installed) or "none")
    console.print(table)
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")
    return 0
