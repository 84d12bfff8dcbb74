#!/usr/bin/env bash
# Makes a headless browser available for tests/browser: Debian's chromium plus the
# playwright Python driver. Playwright's own browser download cannot be used here, so the
# tests launch /usr/bin/chromium through executable_path. Safe to run again.
# Usage: scripts/install-browser.sh [VENV]   (default: .venv)
set -euo pipefail

venv="${1:-.venv}"

if ! command -v chromium >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends chromium chromium-driver fonts-liberation
fi

if ! "$venv/bin/python" -c 'import playwright' >/dev/null 2>&1; then
    "$venv/bin/pip" install playwright==1.65.2
fi

chromium --version 2>/dev/null  # the Debian launcher warns about its own memory check
"$venv/bin/python" -c 'import importlib.metadata as m; print("playwright", m.version("playwright"))'
