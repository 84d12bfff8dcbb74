"""The second durable copy of the erasure records (SPEC 2.4, 6.5): DATA_DIR/erased-keys.jsonl.

The lake's `erasures` table is lost with its catalog, and a log re-read into a fresh lake would
then bring an erased customer back. Each erasure therefore also appends one line per erased key,
`{"key_hash": <int64>, "erased_at": "<ISO-8601>"}` (a one-way hash and a time: no identity
value), fsynced, owner-only. Restore and `journey doctor --repair` read the union of both.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import orjson

FILE = "erased-keys.jsonl"


def path_of(data_dir: Path) -> Path:
    """Where the erasure records of a data directory are kept."""
    return data_dir / FILE


def append(data_dir: Path, hashes: Iterable[int], erased_at: datetime) -> None:
    """Record the erasure of these key hashes at erased_at (durable when this returns)."""
    lines = b"".join(orjson.dumps({"key_hash": int(h), "erased_at": erased_at.isoformat()})
                     + b"\n" for h in hashes)
    if not lines:
        return
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path_of(data_dir), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, lines)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(data_dir: Path) -> dict[int, datetime]:
    """Every recorded key hash with its latest erasure time; a damaged line is skipped (a crash
    mid-append cuts at most the last one, whose erasure the lake's table still records)."""
    path = path_of(data_dir)
    out: dict[int, datetime] = {}
    if not path.exists():
        return out
    for line in path.read_bytes().splitlines():
        try:
            item = orjson.loads(line)
            h, at = int(item["key_hash"]), datetime.fromisoformat(item["erased_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        if h not in out or at > out[h]:
            out[h] = at
    return out


def union(*records: Mapping[int, datetime]) -> dict[int, datetime]:
    """Several sets of records as one: the latest erasure time of every key hash."""
    out: dict[int, datetime] = {}
    for found in records:
        for h, at in found.items():
            if h not in out or at > out[h]:
                out[h] = at
    return out
