"""`journey status`: what the processor of a data directory has done, without stopping it.

Read-only: the warehouse's newest committed snapshot (its consumer offsets, watermark and commit
time), the log's end offsets, and whether a processor holds the writer lock now. Lag per
partition is the log's end minus the committed offset: what is acknowledged but not yet in the
warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from journey.doctor.run import writer_running
from journey.errors import JourneyError
from journey.log.factory import open_consumer
from journey.settings import CommonSettings
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

    @property
    def lag(self) -> int | None:
        """Records acknowledged but not yet in the warehouse, over every partition."""
        lags = [p["lag"] for p in self.partitions.values()]
        return None if any(v is None for v in lags) else sum(v or 0 for v in lags)

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "version": self.version,
                "committed_at": _iso(self.committed_at), "watermark": _iso(self.watermark),
                "lag": self.lag, "log_error": self.log_error,
                "partitions": {str(p): v for p, v in sorted(self.partitions.items())}}

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
        return out


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def status(settings: CommonSettings) -> Status:
    """The status of the data directory's processor, read without taking any lock."""
    result = Status(running=writer_running(settings.warehouse_dir))
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
