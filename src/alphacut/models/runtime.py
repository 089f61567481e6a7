"""Which ONNX Runtime build is installed, and how to change builds without ever holding two.

``onnxruntime`` (CPU), ``onnxruntime-gpu`` (CUDA), ``onnxruntime-directml``,
``onnxruntime-openvino``, … are different distributions that install the **same** Python
package, ``onnxruntime/``. Two at once overwrite each other's files (the last one installed
wins, file by file), and uninstalling one deletes files the other needs. pip does not know they
conflict. So alphacut declares no build as a core dependency: the extra ``cpu`` pulls
``onnxruntime`` and the extra ``gpu`` pulls ``onnxruntime-gpu`` with NVIDIA's CUDA and cuDNN
wheels, and ``scripts/setup.sh`` asks :func:`plan` which builds to remove before it installs
the one wanted (all of them, the wanted one included when any other is present: the reinstall
then puts its files back whole).

This file runs as a plain script before alphacut is installed (``python
src/alphacut/models/runtime.py plan --want gpu``), so it uses the standard library only.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from importlib import metadata

#: distribution → the build it is (every one of them installs the ``onnxruntime`` package)
BUILDS = {
    "onnxruntime": "cpu",
    "onnxruntime-gpu": "gpu",
    "onnxruntime-directml": "directml",
    "onnxruntime-openvino": "openvino",
    "onnxruntime-silicon": "silicon",
    "onnxruntime-qnn": "qnn",
    "onnxruntime-rocm": "rocm",
    "onnxruntime-training": "training",
}
#: the builds setup.sh installs: alphacut's extra of that name → the distribution it pulls
EXTRA_DIST = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu"}
INSTALL_HINT = ("no ONNX Runtime is installed: run scripts/setup.sh (add --gpu for an NVIDIA GPU), or "
                "pip install 'alphacut[cpu]' (or 'alphacut[gpu]')")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_builds(path: list[str] | None = None) -> dict[str, str]:
    """ONNX Runtime distributions installed where ``path`` (default: sys.path) looks: name → version."""
    found: dict[str, str] = {}
    dists = metadata.distributions(path=path) if path is not None else metadata.distributions()
    for d in dists:
        name = _norm(d.metadata.get("Name") or "")
        if name in BUILDS and name not in found:
            found[name] = d.version
    return found


@dataclass(frozen=True)
class Plan:
    #: "cpu" or "gpu": the extra to install
    runtime: str
    #: distributions to uninstall first (empty: nothing to remove)
    uninstall: list[str] = field(default_factory=list)
    #: one line saying why, for the setup script to print
    note: str = ""


def plan(want: str | None, installed: dict[str, str], recorded: str | None = None) -> Plan:
    """What setup.sh must do to end with exactly one build, the one wanted.

    ``want``: ``--gpu``/``--cpu`` on the command line (None: keep the previous choice, ``recorded``,
    so a plain ``scripts/setup.sh`` never switches a GPU setup back to CPU; on a fresh venv, cpu).
    """
    if want is not None and want not in EXTRA_DIST:
        raise ValueError(f"unknown runtime {want!r}; choose one of {', '.join(EXTRA_DIST)}")
    runtime = want or (recorded if recorded in EXTRA_DIST else None)
    if runtime is None:
        only = set(installed)
        runtime = "gpu" if only == {"onnxruntime-gpu"} else "cpu"
    target = EXTRA_DIST[runtime]
    others = sorted(d for d in installed if d != target)
    if not others:
        note = f"{target} {installed[target]} installed" if target in installed else f"installing {target}"
        return Plan(runtime, [], note)
    # removing another build deletes files the wanted one shares: remove it too, reinstall whole
    uninstall = sorted(set(others) | ({target} & set(installed)))
    return Plan(runtime, uninstall, f"removing {', '.join(uninstall)} so that only {target} is installed")


def check(runtime: str, installed: dict[str, str]) -> str | None:
    """None when exactly the wanted build is installed; else what is wrong."""
    target = EXTRA_DIST[runtime]
    if set(installed) == {target}:
        return None
    if not installed:
        return f"{target} is not installed"
    return ("ONNX Runtime builds installed: " + ", ".join(f"{k} {v}" for k, v in sorted(installed.items()))
            + f"; wanted only {target}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="runtime.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan", help="print runtime=… and uninstall=… for setup.sh")
    p.add_argument("--want", choices=sorted(EXTRA_DIST), default=None)
    p.add_argument("--recorded", default=None, help="the file holding the previous choice")
    c = sub.add_parser("check", help="exit 1 unless exactly the wanted build is installed")
    c.add_argument("runtime", choices=sorted(EXTRA_DIST))
    args = ap.parse_args(argv)
    installed = installed_builds()
    if args.cmd == "plan":
        recorded = None
        if args.recorded:
            try:
                with open(args.recorded, encoding="ascii") as fh:
                    recorded = fh.read().strip() or None
            except OSError:
                recorded = None
        pl = plan(args.want, installed, recorded)
        print(f"runtime={pl.runtime}")
        print(f"uninstall={' '.join(pl.uninstall)}")
        print(f"note={pl.note}")
        return 0
    problem = check(args.runtime, installed)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
