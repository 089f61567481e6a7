#!/usr/bin/env bash
# Set up (or bring up to date) everything alphacut needs, idempotently:
#   a virtualenv in .venv, the package and its dependencies, one ONNX Runtime build, and the default model.
# Usage: scripts/setup.sh [dev] [--gpu | --cpu] [--dry-run]
#   dev        add the test dependencies
#   --gpu      ONNX Runtime for NVIDIA GPUs (onnxruntime-gpu with NVIDIA's CUDA and cuDNN wheels);
#              the CPU build is removed first, so the two are never installed together
#   --cpu      back to the CPU build (onnxruntime)
#   neither    keep the build chosen last time (CPU on a fresh .venv)
#   --dry-run  print what would be installed or removed, change nothing
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
runtime_flag=""
dry=0
for arg in "$@"; do
  case "$arg" in
    dev) extras=dev ;;
    --gpu) runtime_flag=gpu ;;
    --cpu) runtime_flag=cpu ;;
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (use: [dev] [--gpu|--cpu] [--dry-run])" >&2; exit 2 ;;
  esac
done

run() {  # a command that changes .venv: printed instead under --dry-run
  if [ "$dry" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "alphacut needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  run "$PY" -m venv .venv
fi

# Which ONNX Runtime build, and which installed builds must go first (src/alphacut/models/runtime.py:
# every build installs the same `onnxruntime` package, so two at once overwrite each other).
record=.venv/.alphacut-runtime
planner=(src/alphacut/models/runtime.py plan --recorded "$record")
[ -n "$runtime_flag" ] && planner+=(--want "$runtime_flag")
if [ -x .venv/bin/python ]; then
  plan="$(.venv/bin/python "${planner[@]}")"
else  # --dry-run on a fresh clone: nothing is installed yet
  plan="$(printf 'runtime=%s\nuninstall=\nnote=installing onnxruntime%s\n' "${runtime_flag:-cpu}" \
          "$([ "${runtime_flag:-cpu}" = gpu ] && echo -gpu)")"
fi
runtime="$(printf '%s\n' "$plan" | sed -n 's/^runtime=//p')"
uninstall="$(printf '%s\n' "$plan" | sed -n 's/^uninstall=//p')"
note="$(printf '%s\n' "$plan" | sed -n 's/^note=//p')"
echo "==> ONNX Runtime: $runtime build ($note)"
if [ -n "$uninstall" ]; then
  # shellcheck disable=SC2086  # a list of distribution names
  run .venv/bin/python -m pip uninstall --yes --quiet $uninstall
fi

# Reinstall only when the dependency list, the extras or the runtime changed (or a build was removed).
want="$( (cat pyproject.toml; echo "extras=$extras runtime=$runtime") | sha256sum | cut -d' ' -f1)"
stamp=.venv/.alphacut-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ -n "$uninstall" ]; then
  echo "==> installing alphacut and its dependencies into .venv"
  run .venv/bin/python -m pip install --quiet --upgrade pip
  if [ "$extras" = "dev" ]; then spec=".[dev,$runtime]"; else spec=".[server,$runtime]"; fi
  run .venv/bin/python -m pip install --quiet -e "$spec"
  if [ "$dry" = 0 ]; then
    # exactly one build, the one asked for, or stop here with what is wrong
    .venv/bin/python src/alphacut/models/runtime.py check "$runtime"
    echo "$want" > "$stamp"
    echo "$runtime" > "$record"
  fi
fi
[ "$dry" = 1 ] && exit 0

# The default model, fetched and verified once (it is cached in the user cache directory).
.venv/bin/alphacut models pull isnet >/dev/null
# U²-Netp (4.5 MB): IS-Net's second opinion in --quality best (docs/quality.md)
.venv/bin/alphacut models pull u2netp >/dev/null
if [ "$runtime" = gpu ]; then
  .venv/bin/alphacut doctor || true  # which provider runs, and exactly why not the GPU if it does not
fi
