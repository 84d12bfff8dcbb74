"""The event log's checks and repairs: does it still hold what the warehouse has not stored?

Embedded log: SQLite integrity_check and a read of every record; a damaged file is moved into
the quarantine and every record that can still be read is copied, at its own offset, into a new
log. Kafka: the topic is reachable, its oldest kept offsets are compared with the warehouse's
committed ones (retention may have removed records the warehouse never stored).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from journey.doctor.report import Finding, Quarantine, not_repaired, ok, problem, repaired
from journey.errors import JourneyError
from journey.log.embedded import EmbeddedLog
from journey.log.kafka import KafkaLog
from journey.log.kafka_health import reachable
from journey.settings import CommonSettings

Row = tuple[int, int, bytes, bytes]
CHUNK = 500  # rowids read at once while salvaging; a failing chunk is read row by row


@dataclass(slots=True)
class LogCheck:
    """What the log check found."""

    findings: list[Finding] = field(default_factory=list)
    damaged: bool = False
    ends: dict[int, int] = field(default_factory=dict)
    starts: dict[int, int] = field(default_factory=dict)  # oldest kept offset (Kafka)
    reachable: bool = True

    def behind(self, committed: dict[int, int]) -> dict[int, int]:
        """Partitions whose log ends before the committed offset (replaced or lost log)."""
        if self.damaged or not self.reachable:
            return {}
        return {p: o for p, o in committed.items() if self.ends.get(p, 0) < o}


def log_path(settings: CommonSettings) -> Path:
    """The embedded log's file."""
    return settings.log_dir / f"{settings.topic}.sqlite3"


def check(settings: CommonSettings, committed: dict[int, int]) -> LogCheck:
    """Check the configured log against the warehouse's committed offsets."""
    out = _check_kafka(settings) if settings.kafka_bootstrap else _check_embedded(settings)
    where = settings.kafka_bootstrap or log_path(settings)
    behind = out.behind(committed)
    if behind:
        out.findings.append(problem("log", where, "the log ends before the warehouse's committed "
                                    f"offsets (partition: log end < committed: "
                                    f"{ {p: (out.ends.get(p, 0), o) for p, o in behind.items()} }"
                                    "); it was replaced or lost"))
    for p, start in sorted(out.starts.items()):
        if start > committed.get(p, 0):
            out.findings.append(problem(
                "log", where, f"partition {p}: offsets {committed.get(p, 0)} to {start - 1} are "
                "no longer in the topic (retention) and not in the warehouse: lost"))
    return out


def _check_embedded(settings: CommonSettings) -> LogCheck:
    out = LogCheck()
    path = log_path(settings)
    if not path.exists():
        out.findings.append(ok("log", path, "no embedded log file (none written yet)"))
        return out
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = con.execute("PRAGMA integrity_check").fetchall()
            if rows != [("ok",)]:
                raise sqlite3.DatabaseError("; ".join(str(r[0]) for r in rows[:3]))
            out.ends = {int(p): int(o) for p, o in con.execute(
                "SELECT partition, next_offset FROM heads").fetchall()}
            count = con.execute("SELECT count(*), sum(length(value)) FROM records").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as error:
        out.damaged = True
        out.findings.append(problem("log", path, f"the embedded log cannot be read: {error}"))
        return out
    out.findings.append(ok("log", path, f"{count[0]} records in {len(out.ends)} partitions read"))
    return out


def _check_kafka(settings: CommonSettings) -> LogCheck:
    out = LogCheck()
    assert settings.kafka_bootstrap is not None
    if not reachable(settings.kafka_bootstrap):
        out.reachable = False
        out.findings.append(problem("log", settings.kafka_bootstrap, "no Kafka broker accepts "
                                    "connections: the topic cannot be checked"))
        return out
    topic = KafkaLog(settings.kafka_bootstrap, settings.topic)
    try:
        out.ends = topic.end_offsets()
        out.starts = topic.beginning_offsets()
    except JourneyError as error:
        out.reachable = False
        out.findings.append(problem("log", settings.kafka_bootstrap,
                                    f"topic {settings.topic} cannot be read: {error}"))
        return out
    finally:
        topic.close()
    out.findings.append(ok("log", settings.kafka_bootstrap, f"topic {settings.topic}: "
                           f"{sum(out.ends.values()) - sum(out.starts.values())} records kept"))
    return out


def salvage(settings: CommonSettings, committed: dict[int, int],
            quarantine: Quarantine) -> list[Finding]:
    """Move the damaged embedded log aside and copy every readable record into a new one, at its
    own offset; say which records that the warehouse has not stored are lost."""
    path = log_path(settings)
    moved = [quarantine.move(p, "log") for p in
             (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
             if p.exists()]
    old = moved[0]
    rows, heads, unreadable = _readable(old)
    # The old log's partition count (its heads), so that keys keep their partitions.
    fresh = EmbeddedLog(settings.log_dir, len(heads) or settings.partitions, settings.topic)
    fresh.close()
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT OR IGNORE INTO records (partition, offset, key, value) "
                        "VALUES (?, ?, ?, ?)", rows)
        ends: dict[int, int] = dict(con.execute("SELECT partition, next_offset FROM heads"))
        for p, o, _, _ in rows:
            ends[p] = max(ends.get(p, 0), o + 1)
        for p, o in [*heads.items(), *committed.items()]:
            ends[p] = max(ends.get(p, 0), o)  # new records never reuse an offset already used
        con.executemany("INSERT OR REPLACE INTO heads (partition, next_offset) VALUES (?, ?)",
                        sorted(ends.items()))
        con.execute("COMMIT")
    finally:
        con.close()
    have = {(p, o) for p, o, _, _ in rows}
    lost = {p: [o for o in range(committed.get(p, 0), end) if (p, o) not in have]
            for p, end in ends.items()}
    lost = {p: offsets for p, offsets in lost.items() if offsets}
    note = (f" ({unreadable} unreadable records were all stored in the warehouse already)"
            if unreadable and not lost else "")
    found = [repaired("log", path, f"moved the damaged log to {old.parent}; copied the "
                      f"{len(rows)} readable records into a new log at their offsets{note}")]
    if lost:
        found.append(not_repaired(
            "log", old, f"{unreadable} records could not be read, and the warehouse had not "
            f"stored these yet: {_ranges(lost)} (partition: offsets; an erasure's deleted "
            "records leave such gaps too)"))
    return found


def _readable(path: Path) -> tuple[list[Row], dict[int, int], int]:
    """Every record of a damaged log that SQLite can still read, its heads, how many failed."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows: list[Row] = []
    heads: dict[int, int] = {}
    failed = 0
    try:
        with contextlib.suppress(sqlite3.DatabaseError):
            heads = {int(p): int(o) for p, o in con.execute(
                "SELECT partition, next_offset FROM heads")}
        try:
            last = int(con.execute("SELECT max(rowid) FROM records").fetchone()[0] or 0)
        except sqlite3.DatabaseError:
            return rows, heads, 0
        for first in range(1, last + 1, CHUNK):
            try:
                rows += _rows(con, first, first + CHUNK - 1)
            except sqlite3.DatabaseError:
                for rowid in range(first, min(first + CHUNK, last + 1)):
                    try:
                        rows += _rows(con, rowid, rowid)
                    except sqlite3.DatabaseError:
                        failed += 1
    finally:
        con.close()
    return rows, heads, failed


def _rows(con: sqlite3.Connection, first: int, last: int) -> list[Row]:
    return [(int(p), int(o), bytes(k), bytes(v)) for p, o, k, v in con.execute(
        "SELECT partition, offset, key, value FROM records WHERE rowid BETWEEN ? AND ?",
        (first, last))]


def _ranges(lost: dict[int, list[int]]) -> str:
    return "; ".join(f"{p}: {', '.join(_spans(offsets))}" for p, offsets in sorted(lost.items()))


def _spans(offsets: list[int]) -> Iterator[str]:
    start = prev = offsets[0]
    for o in [*offsets[1:], None]:
        if o is not None and o == prev + 1:
            prev = o
            continue
        yield str(start) if start == prev else f"{start}-{prev}"
        if o is not None:
            start = prev = o
