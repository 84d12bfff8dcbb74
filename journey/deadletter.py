"""The dead-letter store: rejected events, append-only JSON Lines under data_dir/deadletter.

Each stage that rejects events writes its own file (`collector.jsonl`, ...); listing reads all.
Entries name the write key by its non-secret name, never by the key itself.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from journey.errors import DeadLetterWriteError

_NEVER = datetime.min.replace(tzinfo=UTC)


class DeadLetter(BaseModel):
    """One rejected event and why; `index` locates it in a request, partition/offset in the log."""

    model_config = ConfigDict(frozen=True)

    received_at: datetime | None
    write_key: str | None = None
    reason: str
    index: int | None = None
    event: Any
    stage: str = "collector"
    partition: int | None = None
    offset: int | None = None


class DeadLetterStore:
    """Appends dead letters durably; safe to share between threads."""

    def __init__(self, directory: Path, stage: str = "collector") -> None:
        self.path = directory / f"{stage}.jsonl"
        self._lock = threading.Lock()

    def append(self, letters: Sequence[DeadLetter]) -> None:
        """Write the letters (one write, then fsync); raise DeadLetterWriteError on failure."""
        if not letters:
            return
        data = b"".join(_encode(letter) + b"\n" for letter in letters)
        try:
            with self._lock:
                self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                append_durably(self.path, data)
        except OSError as exc:
            raise DeadLetterWriteError(f"cannot write dead letters: {exc}",
                                       file=str(self.path)) from exc


def append_durably(path: Path, data: bytes) -> None:
    """Append data to path and fsync it; O_APPEND keeps each write whole across processes."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # An erasure may have replaced the file while this one waited for the lock: append
            # to the file that now has the name, never to the replaced one.
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                continue
            os.write(fd, data)
            os.fsync(fd)
            return
        except FileNotFoundError:
            continue
        finally:
            os.close(fd)


def rewrite_without(directory: Path, match: Callable[[bytes], bool]) -> int:
    """Rewrite every dead-letter file without the lines that match (SPEC 2.4 erasure); the new
    file replaces the old one atomically, under the lock appends take. How many lines went."""
    removed = 0
    if not directory.is_dir():
        return 0
    for path in sorted(directory.glob("*.jsonl")):
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with open(fd, "rb", closefd=False) as old:
                lines = old.read().splitlines(keepends=True)
            kept = [line for line in lines if not match(line)]
            if len(kept) == len(lines):
                continue
            removed += len(lines) - len(kept)
            tmp = path.with_name(f".{path.name}.erase")
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(out, b"".join(kept))
                os.fsync(out)
            finally:
                os.close(out)
            os.replace(tmp, path)
        finally:
            os.close(fd)
    return removed


def _encode(letter: DeadLetter) -> bytes:
    try:
        return orjson.dumps(letter.model_dump(mode="json"))
    except (orjson.JSONEncodeError, ValueError):
        # Nested deeper than any JSON encoder goes: keep the why, not the unstorable what.
        unstorable = letter.model_copy(update={"event": "<nested too deeply to store>"})
        return orjson.dumps(unstorable.model_dump(mode="json"))


def list_dead_letters(directory: Path, limit: int = 100) -> list[DeadLetter]:
    """The newest `limit` dead letters of every stage, newest first."""
    if limit <= 0 or not directory.is_dir():
        return []
    newest: list[DeadLetter] = []
    for path in sorted(directory.glob("*.jsonl")):
        tail: deque[bytes] = deque(maxlen=limit)
        with path.open("rb") as lines:
            tail.extend(line for line in lines if line.strip())
        for line in tail:
            try:
                newest.append(_parse(orjson.loads(line), stage=path.stem))
            except (orjson.JSONDecodeError, ValueError, TypeError):
                continue  # a line cut short by a crash mid-write is not a dead letter
    newest.sort(key=lambda letter: letter.received_at or _NEVER, reverse=True)
    return newest[:limit]


def _parse(line: dict[str, Any], stage: str) -> DeadLetter:
    """A stored line; the processor's lines hold the log record's `value` (a canonical event)."""
    if "value" in line and "event" not in line:
        try:
            event = orjson.loads(line["value"])
        except orjson.JSONDecodeError:
            event = line["value"]
        received = event.get("received_at") if isinstance(event, dict) else None
        line = {**line, "event": event, "received_at": received, "stage": stage}
    return DeadLetter.model_validate(line)
