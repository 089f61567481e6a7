#!/usr/bin/env bash
# Set up (or bring up to date) everything alphacut needs, idempotently:
#   a virtualenv in .venv, the package and its dependencies, and the default model.
# Usage: scripts/setup.sh [dev]     ("dev" adds the test dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "alphacut needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi

# Reinstall only when the dependency list (or the extras asked for) changed.
want="$( (cat pyproject.toml; echo "extras=$extras") | sha256sum | cut -d' ' -f1)"
stamp=.venv/.alphacut-installed
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing alphacut and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  spec="."
  if [ "$extras" = "dev" ]; then spec=".[dev]"; else spec=".[server]"; fi
  .venv/bin/python -m pip install --quiet -e "$spec"
  echo "$want" > "$stamp"
fi

# The default model, fetched and verified once (it is cached in the user cache directory).
.venv/bin/alphacut models pull isnet >/dev/null
# U²-Netp (4.5 MB): IS-Net's second opinion in --quality best (docs/quality.md)
.venv/bin/alphacut models pull u2netp >/dev/null
