"""The embedded log: Kafka's semantics in one SQLite file, so `journey up` needs no server.

One database per topic under a directory, WAL mode and synchronous=FULL: an `append` returns
only after its transaction is committed and synced, so an acknowledged record survives a
SIGKILL of the process (or a power cut). Several processes may share it: writers serialise on
SQLite's write lock (waiting up to the busy timeout), readers never block writers.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from journey.log.base import Record, partition_for
from journey.log.errors import LogCorrupt, LogNotWritable, LogUnavailable, UnknownPartition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (partition INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (partition, offset)
);
"""
# Error codes (and their extended forms, e.g. SQLITE_IOERR_FSYNC) that may pass by themselves.
_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_NOT_WRITABLE = ("SQLITE_READONLY", "SQLITE_PERM")
# While poll waits for records it re-checks this often (the heads table is tiny).
_POLL_INTERVAL_S = 0.005


class EmbeddedLog:
    """A durable partitioned log in `directory/<topic>.sqlite3`; a LogProducer and a LogConsumer."""

    def __init__(
        self,
        directory: Path,
        partitions: int = 6,
        topic: str = "journey.events",
        busy_timeout_s: float = 30.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.path = directory / f"{topic}.sqlite3"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # SQLite gives its -wal and -shm files the database file's mode: owner-only.
            if not self.path.exists():
                with contextlib.suppress(FileExistsError):  # another process was first
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise LogNotWritable(f"cannot create the log: {exc}", file=str(self.path)) from exc
        self.topic = topic
        self._lock = threading.Lock()  # one connection, shared by the caller's threads
        try:
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._partitions = self._init_schema(partitions)
        except sqlite3.Error as exc:
            raise self._error(exc, "cannot open the embedded log") from exc
        self._positions = dict.fromkeys(range(self._partitions), 0)
        self._next_first = 0  # partition that poll reads first, rotated for fairness

    def _init_schema(self, partitions: int) -> int:
        """Create the tables once; the partition count of the first creator wins."""
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('partitions', ?)", (partitions,)
            )
            row = self._db.execute("SELECT value FROM meta WHERE name = 'partitions'").fetchone()
            stored = int(row[0])
            self._db.executemany(
                "INSERT OR IGNORE INTO heads (partition, next_offset) VALUES (?, 0)",
                [(p,) for p in range(stored)],
            )
        return stored

    def _transaction(self, read_only: bool = False) -> _Transaction:
        return _Transaction(self._db, read_only)

    def _error(self, exc: sqlite3.Error, message: str, **context: object) -> Exception:
        """Busy, locked, full or I/O trouble may pass; a read-only disk or file is the
        operator's to fix, not damage; anything else means a damaged database."""
        code: str = getattr(exc, "sqlite_errorname", "")
        if code.startswith(_NOT_WRITABLE):
            return LogNotWritable(f"{message}: the log cannot be written (read-only disk or "
                                  f"file?): {exc}", file=str(self.path), code=code, **context)
        if isinstance(exc, sqlite3.OperationalError) and (code.startswith(_TRANSIENT) or not code):
            return LogUnavailable(f"{message}: {exc}", file=str(self.path), **context)
        return LogCorrupt(f"{message}: {exc}", file=str(self.path), **context)

    # -- producer --------------------------------------------------------------------------

    def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Append (key, value) records in one transaction; return once it is committed."""
        if not records:
            return
        rows: list[tuple[int, int, bytes, bytes]] = []
        with self._lock:
            try:
                with self._transaction():
                    heads = dict(self._db.execute("SELECT partition, next_offset FROM heads"))
                    for key, value in records:
                        partition = partition_for(key, self._partitions)
                        rows.append((partition, heads[partition], key, value))
                        heads[partition] += 1
                    self._db.executemany(
                        "INSERT INTO records (partition, offset, key, value) VALUES (?, ?, ?, ?)",
                        rows,
                    )
                    self._db.executemany(
                        "UPDATE heads SET next_offset = ? WHERE partition = ?",
                        [(offset, p) for p, offset in heads.items()],
                    )
            except sqlite3.Error as exc:
                raise self._error(exc, "append failed", records=len(records)) from exc

    # -- consumer --------------------------------------------------------------------------

    def partitions(self) -> list[int]:
        """All partitions of the log."""
        return list(range(self._partitions))

    def seek(self, positions: dict[int, int]) -> None:
        """Read each listed partition from that offset next."""
        for partition, offset in positions.items():
            if partition not in self._positions:
                raise UnknownPartition(
                    "no such partition", topic=self.topic, partition=partition, offset=offset
                )
            if offset < 0:
                raise ValueError(f"offset must be >= 0, got {offset} for partition {partition}")
        self._positions.update(positions)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to max_records records, waiting at most timeout_s for the first one."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self._read(max_records)
            remaining = deadline - time.monotonic()
            if records or remaining <= 0:
                return records
            time.sleep(min(_POLL_INTERVAL_S, remaining))

    def _read(self, max_records: int) -> list[Record]:
        out: list[Record] = []
        with self._lock:
            try:
                with self._transaction(read_only=True):
                    heads = dict(self._db.execute("SELECT partition, next_offset FROM heads"))
                    order = self.partitions()
                    order = order[self._next_first :] + order[: self._next_first]
                    for partition in order:
                        want = max_records - len(out)
                        position = self._positions[partition]
                        if want <= 0:
                            break
                        if position >= heads[partition]:
                            continue
                        rows = self._db.execute(
                            "SELECT offset, key, value FROM records WHERE partition = ?"
                            " AND offset >= ? ORDER BY offset LIMIT ?",
                            (partition, position, want),
                        ).fetchall()
                        out.extend(Record(partition, o, k, v) for o, k, v in rows)
                        if rows:
                            self._positions[partition] = rows[-1][0] + 1
            except sqlite3.Error as exc:
                raise self._error(exc, "poll failed") from exc
            self._next_first = (self._next_first + 1) % self._partitions
        return out

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of each partition."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT partition, next_offset FROM heads").fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, "end_offsets failed") from exc
        return {int(p): int(o) for p, o in rows}

    # -- erasure (SPEC 2.4) ------------------------------------------------------------------

    def erase(self, match: Callable[[bytes], bool]) -> int:
        """Delete every record whose value matches, then VACUUM and truncate the WAL so that no
        freed page or WAL frame keeps a copy. Offsets of other records do not move."""
        with self._lock:
            try:
                with self._transaction():
                    rows = self._db.execute("SELECT partition, offset, value FROM records")
                    doomed = [(p, o) for p, o, value in rows if match(bytes(value))]
                    self._db.executemany(
                        "DELETE FROM records WHERE partition = ? AND offset = ?", doomed)
                self._db.execute("PRAGMA secure_delete = ON")
                self._db.execute("VACUUM")
                for _ in range(100):  # another process may be reading the WAL for a moment
                    row = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if row is None or not row[0]:
                        break
                    time.sleep(0.02)
            except sqlite3.Error as exc:
                raise self._error(exc, "erase failed") from exc
        return len(doomed)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()


class _Transaction:
    """BEGIN IMMEDIATE (take the write lock up front, so two writers never deadlock) ... COMMIT."""

    def __init__(self, db: sqlite3.Connection, read_only: bool = False) -> None:
        self._db = db
        self._begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    def __enter__(self) -> None:
        self._db.execute(self._begin)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
            self._db.execute("ROLLBACK")
