#!/usr/bin/env bash
# Installs the Node SDKs that tests/sdk drives (pinned in tests/sdk/node/package-lock.json).
# Idempotent: `npm ci` reinstalls exactly the lock file; skipped when node_modules already matches it.
set -euo pipefail
cd "$(dirname "$0")/../tests/sdk/node"
command -v npm >/dev/null || { echo "install-node-sdks: npm is not installed (need Node >= 18)" >&2; exit 1; }
stamp=node_modules/.journey-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    echo "install-node-sdks: up to date"
    exit 0
fi
npm ci --no-audit --no-fund
echo "$want" > "$stamp"
