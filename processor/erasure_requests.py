"""Erasure requests (SPEC 2.4) handed to the single writer of the warehouse through files.

`DELETE /v1/customers/{key}` and `journey erase KEY` write a request file under
DATA_DIR/erasure/ and wait for its result file. The processor that holds the warehouse applies
requests between micro-batches (processor/erasure.py); when no processor holds it, the
requester takes the writer lock and applies them itself. A request file holds the key it names
(an identity value) only until it is applied: it is removed before its result is written, and a
result holds no identity value.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

REQUESTS = "erasure"
Result = dict[str, Any]


def request_dir(data_dir: Path) -> Path:
    """Where requests and results wait."""
    return data_dir / REQUESTS


def submit(data_dir: Path, key: str) -> str:
    """Queue an erasure of the customer holding key; its request id."""
    directory = request_dir(data_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    rid = uuid.uuid4().hex
    _write(directory / f"{rid}.request", orjson.dumps({"key": key}))
    return rid


def pending(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(request id, body) of every queued request, oldest first; a body has the key and, once
    its commit is under way, what `begin` recorded."""
    directory = request_dir(data_dir)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("*.request"):
        try:
            found.append((path.stat().st_mtime, path.stem, orjson.loads(path.read_bytes())))
        except (OSError, orjson.JSONDecodeError):
            continue  # removed meanwhile, or still being written
    return [(rid, body) for _, rid, body in sorted(found, key=lambda f: (f[0], f[1]))]


def begin(data_dir: Path, rid: str, body: dict[str, Any]) -> None:
    """Record in a request, before its commit, what a restart needs to finish it (the customer,
    its keys and the erasure time): after the commit no warehouse row names them any more."""
    _write(request_dir(data_dir) / f"{rid}.request", orjson.dumps(body))


def finish(data_dir: Path, rid: str, result: Result) -> None:
    """Remove a request (its key goes with it) and publish its result."""
    directory = request_dir(data_dir)
    (directory / f"{rid}.request").unlink(missing_ok=True)
    _write(directory / f"{rid}.result", orjson.dumps(result))


def wait(data_dir: Path, rid: str, timeout_s: float,
         apply_here: Callable[[], bool] | None = None) -> Result | None:
    """The result of a request, or None after timeout_s (the request stays queued).

    apply_here() is tried now and then: it applies the queue itself when no processor holds the
    warehouse, and says whether it could.
    """
    path = request_dir(data_dir) / f"{rid}.result"
    deadline = time.monotonic() + timeout_s
    tried = 0.0
    while True:
        if path.exists():
            result: Result = orjson.loads(path.read_bytes())
            path.unlink(missing_ok=True)
            return result
        now = time.monotonic()
        if now >= deadline:
            return None
        if apply_here is not None and now - tried >= 1.0:
            tried = now
            if apply_here():
                continue
        time.sleep(0.02)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
