"""Each running processor's member record: who it is, which partitions it owns, how far behind.

Processors sharing a data directory (hot standbys on the embedded log, consumer-group members on
Kafka) each publish one small JSON file, DATA_DIR/processors/<member id>.json, rewritten between
batches at most once a second and removed on a clean stop; `journey status` reads them all. A
killed processor cannot remove its file, so its heartbeat ages: older than STALE_S, it is stale.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("journey.processor")
MEMBERS_DIR = "processors"
# Several refreshes missed: killed, or stuck in one batch that long (a heartbeat is written
# between batches only, so a batch slower than this also shows stale while it lasts).
STALE_S = 10.0
# A killed member's record stays visible to `journey status` this long, then a live member
# deletes it: restarts in a container (same host, new start time) would otherwise pile up.
FORGET_S = 3600.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Identity:
    """A processor process: its member id is unique per start and says where it runs."""

    host: str
    pid: int
    started_at: datetime

    @property
    def id(self) -> str:
        """`host-pid-start`, safe as a file name and as a Prometheus label value."""
        host = _UNSAFE.sub("_", self.host) or "host"
        return f"{host}-{self.pid}-{self.started_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@functools.cache
def this_process() -> Identity:
    """This process's identity, fixed at the first call (the processor calls it at start)."""
    return Identity(socket.gethostname(), os.getpid(), datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class PartitionLag:
    """One owned partition: the warehouse's committed offset, the log's end, the difference."""

    committed: int
    end: int | None
    lag: int | None


@dataclass(frozen=True, slots=True)
class Member:
    """What one processor publishes about itself."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat: datetime
    role: str  # "active"; before it consumes "standby" (embedded log) or "starting" (Kafka)
    group: str | None = None  # the Kafka consumer group, None on the embedded log
    partitions: dict[int, PartitionLag] = field(default_factory=dict)
    last_commit: datetime | None = None  # this member's own last commit since it started
    customers: int = 0
    caught: dict[str, int] = field(default_factory=dict)  # read while catching up, in all

    @property
    def lag(self) -> int | None:
        """Records not yet committed over the owned partitions (None: a log end is unknown)."""
        lags = [p.lag for p in self.partitions.values()]
        return None if None in lags else sum(lag or 0 for lag in lags)

    def stale(self, now: datetime, gone: bool = False) -> bool:
        """No heartbeat for STALE_S, or `gone`: its process is known to have ended."""
        return gone or (now - self.heartbeat).total_seconds() > STALE_S

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid,
            "started_at": _iso(self.started_at), "heartbeat": _iso(self.heartbeat),
            "role": self.role, "group": self.group, "lag": self.lag,
            "partitions": {str(p): {"committed": v.committed, "end": v.end, "lag": v.lag}
                           for p, v in sorted(self.partitions.items())},
            "last_commit": _iso(self.last_commit), "customers": self.customers,
            "caught": dict(self.caught),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Member:
        """The record as published (KeyError, TypeError or ValueError if it is not one)."""
        return cls(
            id=str(raw["id"]), host=str(raw["host"]), pid=int(raw["pid"]),
            started_at=_parse(raw["started_at"]), heartbeat=_parse(raw["heartbeat"]),
            role=str(raw["role"]), group=raw.get("group"),
            partitions={int(p): PartitionLag(int(v["committed"]), v["end"], v["lag"])
                        for p, v in raw.get("partitions", {}).items()},
            last_commit=_parse(raw["last_commit"]) if raw.get("last_commit") else None,
            customers=int(raw.get("customers", 0)),
            caught={str(k): int(v) for k, v in raw.get("caught", {}).items()},
        )


def lags(owned: Iterable[int], committed: Mapping[int, int],
         ends: Mapping[int, int]) -> dict[int, PartitionLag]:
    """Each owned partition's committed offset, log end (None: unknown) and lag."""
    out: dict[int, PartitionLag] = {}
    for p in sorted(owned):
        done, end = committed.get(p, 0), ends.get(p)
        out[p] = PartitionLag(done, end, None if end is None else max(end - done, 0))
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def _parse(text: object) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def members_dir(data_dir: Path) -> Path:
    """Where the member records of a data directory live."""
    return data_dir / MEMBERS_DIR


def publish(data_dir: Path, member: Member) -> None:
    """Write the member's record atomically (a reader never sees half of it)."""
    folder = members_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{member.id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(member.as_dict()))
    os.replace(tmp, path)
    _forget_old(folder, member.heartbeat)


def _forget_old(folder: Path, now: datetime) -> None:
    for path in folder.glob("*.json"):
        try:
            if now.timestamp() - path.stat().st_mtime > FORGET_S:
                path.unlink()
        except FileNotFoundError:  # another member forgot it first
            pass


def remove(data_dir: Path, member_id: str) -> None:
    """Delete a member's record (its clean stop)."""
    (members_dir(data_dir) / f"{member_id}.json").unlink(missing_ok=True)


def read_all(data_dir: Path) -> list[Member]:
    """Every published record, oldest member first; a file that is not a record is skipped."""
    found: list[Member] = []
    for path in sorted(members_dir(data_dir).glob("*.json")):
        try:
            found.append(Member.from_dict(orjson.loads(path.read_bytes())))
        except FileNotFoundError:  # removed while listing: that member stopped
            continue
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("skipping %s, not a member record: %s", path, exc)
    return sorted(found, key=lambda m: (m.started_at, m.id))


def gone(member: Member, host: str | None = None) -> bool:
    """Whether the member's process is known to have ended: only decidable on its own host."""
    if member.host != (host or socket.gethostname()):
        return False
    try:
        os.kill(member.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class Standby:
    """Publishes a record every second until the processor consumes: while it waits for the
    embedded log's writer lock ("standby") or restores its state ("starting"), it runs no
    batch, so nothing else would say it is there."""

    def __init__(self, data_dir: Path, me: Identity, role: str = "standby",
                 every_s: float = 1.0) -> None:
        self._data_dir = data_dir
        self._me = me
        self._role = role
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="member-standby", daemon=True)

    def start(self) -> Standby:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing and wait for the thread (the active record is written after it)."""
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        record = Member(self._me.id, self._me.host, self._me.pid, self._me.started_at,
                        self._me.started_at, self._role)
        while True:
            try:
                publish(self._data_dir, replace(record, heartbeat=datetime.now(UTC)))
            except OSError as exc:  # the record must never stop the processor
                log.warning("cannot write the processor's member record: %s", exc)
            if self._stop.wait(self._every):
                return
