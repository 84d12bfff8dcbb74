#!/usr/bin/env bash
# Makes PostgreSQL's server binaries available for the tests' throwaway clusters (tests/pg.py):
# Debian's postgresql package. Nothing is started here; each test session runs its own initdb
# and pg_ctl in a temporary directory. Safe to run again.
# Usage: scripts/postgres.sh   (prints the bin directory, e.g. /usr/lib/postgresql/15/bin)
set -euo pipefail

bindir() {
    # The newest installed major version; Debian keeps each under its own directory.
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/postgres" ]] && echo "$dir"
}

if ! bindir >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo -n)
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends postgresql
fi

dir="$(bindir)" || { echo "scripts/postgres.sh: no initdb/pg_ctl after installing postgresql" >&2; exit 1; }
echo "$dir"
