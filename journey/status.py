"""`journey status`: what the processor of a data directory has done, without stopping it.

Read-only: the warehouse's newest committed snapshot (its consumer offsets, watermark and commit
time), the log's end offsets, whether a processor holds the writer lock now, and the record each
running processor publishes (processor/member.py: its partitions, lag and last commit; a killed
one's record goes stale). Lag per partition is the log's end minus the committed offset: what is
acknowledged but not yet in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from journey.doctor.run import writer_running
from journey.errors import JourneyError
from journey.log.factory import open_consumer
from journey.settings import CommonSettings
from processor import member
from processor.member import Member
from warehouse.reader import WarehouseReader


@dataclass(slots=True)
class Status:
    """One processor's view: partitions with their committed offset, log end and lag."""

    running: bool
    version: int | None = None
    committed_at: datetime | None = None
    watermark: datetime | None = None
    partitions: dict[int, dict[str, int | None]] = field(default_factory=dict)
    log_error: str | None = None
    processors: list[tuple[Member, bool]] = field(default_factory=list)  # (record, stale)

    @property
    def lag(self) -> int | None:
        """Records acknowledged but not yet in the warehouse, over every partition."""
        lags = [p["lag"] for p in self.partitions.values()]
        return None if any(v is None for v in lags) else sum(v or 0 for v in lags)

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "version": self.version,
                "committed_at": _iso(self.committed_at), "watermark": _iso(self.watermark),
                "lag": self.lag, "log_error": self.log_error,
                "partitions": {str(p): v for p, v in sorted(self.partitions.items())},
                "processors": [{**m.as_dict(), "stale": stale} for m, stale in self.processors]}

    def lines(self, now: datetime) -> list[str]:
        ago = (f" ({(now - self.committed_at).total_seconds():.0f} s ago)"
               if self.committed_at else "")
        out = [f"processor: {'running' if self.running else 'not running'}",
               f"warehouse: snapshot {self.version}, last commit {self.committed_at}{ago}, "
               f"watermark {self.watermark}"]
        if self.log_error:
            out.append(f"log: cannot read its end offsets: {self.log_error}")
        out.append(f"lag: {self.lag if self.lag is not None else 'unknown'} records")
        for p, v in sorted(self.partitions.items()):
            out.append(f"  partition {p}: committed {v['committed']}, log end {v['end']}, "
                       f"lag {v['lag'] if v['lag'] is not None else '?'}")
        stale = sum(1 for _, s in self.processors if s)
        out.append(f"processors: {len(self.processors) - stale} running"
                   + (f", {stale} stale" if stale else ""))
        out += [_member_line(m, is_stale, now) for m, is_stale in self.processors]
        return out


def _member_line(m: Member, stale: bool, now: datetime) -> str:
    beat = (now - m.heartbeat).total_seconds()
    parts = ",".join(str(p) for p in sorted(m.partitions)) or "none"
    commit = (f"{_iso(m.last_commit)} ({(now - m.last_commit).total_seconds():.0f} s ago)"
              if m.last_commit else "none yet")
    state = f"STALE (no heartbeat for {beat:.0f} s: killed, or stuck)" if stale else m.role
    group = f", group {m.group}" if m.group else ""
    return (f"  {m.id}: {state}{group}, partitions {parts}, "
            f"lag {m.lag if m.lag is not None else '?'}, last commit {commit}, "
            f"{m.customers} customers, heartbeat {beat:.0f} s ago")


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def status(settings: CommonSettings, now: datetime | None = None) -> Status:
    """The status of the data directory's processors, read without taking any lock."""
    now = now or datetime.now(UTC)
    result = Status(running=writer_running(settings.warehouse_dir))
    result.processors = [(m, m.stale(now, member.gone(m)))
                         for m in member.read_all(settings.data_dir)]
    reader = WarehouseReader(settings.warehouse_dir, settings.catalog_url)
    snap = reader.current()
    committed: dict[int, int] = {}
    if snap is not None:
        committed = reader.offsets(snap)
        result.version = snap.version
        result.committed_at, result.watermark = reader.meta(snap)
    ends: dict[int, int] = {}
    try:
        log = open_consumer(settings)
        try:
            ends = log.end_offsets()
        finally:
            log.close()
    except JourneyError as error:
        result.log_error = error.message
    for p in sorted(set(committed) | set(ends)):
        end, done = ends.get(p), committed.get(p, 0)
        result.partitions[p] = {"committed": done, "end": end,
                                "lag": None if end is None else max(end - done, 0)}
    return result
