#!/usr/bin/env bash
# Set everything up (virtualenv, dependencies, models, Chromium for the UI tests), then run the
# whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev

# Debian's Chromium drives the browser tests (Playwright cannot download its own browser here).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "==> installing Debian chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; browser tests will be skipped" >&2
fi

.venv/bin/alphacut models pull u2netp >/dev/null
exec .venv/bin/python -m pytest "$@"
