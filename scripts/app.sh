#!/usr/bin/env bash
# Set everything up, then start the local web app (127.0.0.1, opens your browser).
# Extra arguments go to `alphacut serve` (e.g. --no-browser, --port 8765).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/alphacut serve "$@"
