"""Binds DuckDB to the warehouse's current snapshot and swaps to a fresh one when it changes."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import duckdb

from api.advance import FullBuildNeeded, advance, alias_of, let_go, own_tables
from api.errors import NotReadyError
from api.metrics import prepared
from journey.metrics import API_SNAPSHOT_DELAY, API_SNAPSHOT_SECONDS
from warehouse.lake import LAKE, one_row
from warehouse.reader import Snapshot as LakeSnapshot

log = logging.getLogger(__name__)

# The small derived tables are copied into memory: every metric joins them, and a scan of an
# in-memory table beats re-reading Parquet per request. events/event_stages stay views (big).
MATERIALISED: tuple[str, ...] = (
    "identities",
    "customers",
    "sessions",
    "stage_entries",
    "transitions",
    "surveys",
    "models",
    "meta",
    # B2B accounts: the rows, then the views over them (warehouse/accounts.py), in that order.
    "account_events",
    "identity_conflicts",
    "account_members",
    "accounts",
    "account_stage_entries",
)

# ART indexes for the point lookups of /v1/customers/{key} (a key, then one customer's rows),
# and for a delta's (api/advance.py), which looks up the changed customers' rows by a list.
INDEXES: tuple[tuple[str, str], ...] = (
    ("identities", "value"),
    ("identities", "customer_id"),
    ("customers", "customer_id"),
    ("stage_entries", "customer_id"),
    ("sessions", "customer_id"),
    ("transitions", "customer_id"),
    ("surveys", "customer_id"),
)

# A new snapshot still not served after this long is logged as stuck (once per snapshot): under
# a steady stream each one is served within seconds, so minutes mean the API stopped moving.
STUCK_AFTER_S = 120.0

T = TypeVar("T")


class Snapshot(Protocol):
    """What the store needs of a warehouse snapshot."""

    @property
    def version(self) -> int: ...


class Warehouse(Protocol):
    """What the store needs of a warehouse reader (warehouse.reader.WarehouseReader)."""

    def current(self) -> Any: ...

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: Any) -> None: ...


RegisterViews = Callable[[duckdb.DuckDBPyConnection, Any], None]


@dataclass(frozen=True, slots=True)
class Bound:
    """A DuckDB connection whose views show one snapshot version.

    alias: the lake attachment its views read, when the store moves this connection to newer
    snapshots in place (api/advance.py); a request then reads it in a transaction of its own
    and takes the version from there. tables: the connection's own tables (its copies and
    pre-aggregates), known once: listing them costs a read of every attached lake's catalog."""

    version: int
    watermark: datetime | None
    con: duckdb.DuckDBPyConnection
    alias: str | None = None
    tables: frozenset[str] = frozenset()

    @property
    def live(self) -> bool:
        return self.alias is not None


def materialise(con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = MATERIALISED) -> None:
    """Replace each named view by an in-memory table of its rows and index the lookup columns
    (tables, like a test's hand-made ones, are left alone)."""
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
             .fetchall()}
    for name in names:
        if name not in views:
            continue
        con.execute(f'CREATE TABLE "__m_{name}" AS SELECT * FROM "{name}"')
        con.execute(f'DROP VIEW "{name}"')
        con.execute(f'ALTER TABLE "__m_{name}" RENAME TO "{name}"')
    for table, column in INDEXES:
        if table in views:
            con.execute(f'CREATE INDEX "{table}_{column}" ON "{table}" ("{column}")')


class SnapshotStore:
    """Thread-safe access to the current snapshot: a cursor per request, results per version."""

    def __init__(
        self,
        reader: Warehouse,
        clock: Callable[[], datetime],
        *,
        register: RegisterViews | None = None,  # default: reader.register_views
        refresh_interval_s: float = 1.0,
        cache_entries: int = 1024,
        background: bool = False,
        incremental: bool = True,
    ) -> None:
        self._reader = reader
        self.clock = clock
        self._register = register
        self._refresh_s = refresh_interval_s
        self._cache_entries = cache_entries
        self._bound: Bound | None = None
        self._checked_at: datetime | None = None
        self._build_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        # Requests in progress per snapshot version: an advance lets go of the lake attachments
        # of earlier snapshots only when no request reads them (api/advance.py let_go).
        self._readers: Counter[int] = Counter()
        self._readers_lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, Hashable], Any] = OrderedDict()
        self._background = background
        self._warmers: list[Callable[[Bound], None]] = []
        self._incremental = incremental
        self.full_builds = 0  # snapshots served by a build from scratch ...
        self.advances = 0  # ... and by moving the served one (api/advance.py)
        self.last_changed = 0  # customers the last advance replaced
        self.last_lapsed = 0  # ... and unchanged ones whose lapsed status moved with the watermark
        self._served_commit: float | None = None  # committed_at of the newest served commit
        # When the store found a snapshot newer than the served one that it does not serve yet
        # (monotonic), and which: what `pending_s` and the stuck warning report.
        self._pending: tuple[float, int] | None = None
        self._warned: int | None = None

    def on_snapshot(self, warm: Callable[[Bound], None]) -> None:
        """Run warm(bound) on every new snapshot before it is served (e.g. to fill the cache)."""
        self._warmers.append(warm)

    def refresh(self, force: bool = False) -> Bound | None:
        """Swap to the reader's current snapshot if its version changed (at most every interval)."""
        now = self.clock()
        last = self._checked_at
        due = last is None or (now - last).total_seconds() >= self._refresh_s
        if not (force or due):
            return self._bound
        # While one thread builds a new connection the others keep answering from the old one.
        if not self._build_lock.acquire(blocking=self._bound is None):
            return self._bound
        self._checked_at = now
        try:
            snap = self._reader.current()
            if snap is None or (self._bound is not None and snap.version == self._bound.version):
                self._build_lock.release()
                return self._bound
        except BaseException:
            self._build_lock.release()
            raise
        if self._pending is None:
            self._pending = (time.monotonic(), snap.version)
        if self._background and self._bound is not None:
            threading.Thread(target=self._swap, args=(snap,), daemon=True).start()
            return self._bound
        self._swap(snap)
        return self._bound

    def _swap(self, snap: Snapshot) -> None:
        """Build, warm and serve a new snapshot, then forget older cached results (holds lock)."""
        try:
            began = time.perf_counter()
            bound = self._advance(snap)
            if bound is not None:
                self._bound = bound  # requests see it since its commit: serve it before warming
                API_SNAPSHOT_SECONDS.labels("advanced").observe(
                    time.perf_counter() - began)
            else:
                bound = self._build(snap)
                API_SNAPSHOT_SECONDS.labels("built").observe(time.perf_counter() - began)
            self._pending = None
            self._observe_delay(bound)
            for warm in self._warmers:
                warm(bound)
            self._bound = bound
            with self._cache_lock:
                for key in [k for k in self._cache if k[0] != bound.version]:
                    del self._cache[key]
        finally:
            self._build_lock.release()

    def superseded(self, bound: Bound) -> bool:
        """Whether the warehouse has committed a snapshot newer than bound (one catalog read)."""
        snap = self._reader.current()
        return snap is not None and snap.version != bound.version

    def _observe_delay(self, bound: Bound) -> None:
        """Time from the processor's commit of bound (meta.committed_at) to now, once per commit:
        a maintenance snapshot carries its last commit's time, and is not counted again."""
        cur = bound.con.cursor()
        try:
            row = cur.execute("SELECT epoch(max(committed_at)) FROM meta").fetchone()
        except duckdb.Error:  # a hand-made snapshot (tests) without that column
            return
        finally:
            cur.close()
        committed = None if row is None or row[0] is None else float(row[0])
        if committed is None or (self._served_commit is not None
                                 and committed <= self._served_commit):
            return
        if self._served_commit is not None:  # the first one is the API's start, not a delay
            API_SNAPSHOT_DELAY.observe(max(0.0, time.time() - committed))
        self._served_commit = committed

    @property
    def pending_s(self) -> float:
        """Seconds since the store found a snapshot newer than the one it serves and began to
        load it (0 when it serves the newest it found): a few seconds under a steady stream;
        growing without end when the API stopped moving."""
        pending = self._pending
        return 0.0 if pending is None else time.monotonic() - pending[0]

    def _warn_if_stuck(self) -> None:
        """Log once per snapshot that it is still not served after STUCK_AFTER_S."""
        pending, bound = self._pending, self._bound
        if (pending is None or pending[1] == self._warned
                or time.monotonic() - pending[0] < STUCK_AFTER_S):
            return
        self._warned = pending[1]
        log.warning("snapshot %s is still not served %.0f s after it was found; serving %s",
                    pending[1], time.monotonic() - pending[0],
                    None if bound is None else bound.version)

    def follow(self) -> Callable[[], None]:
        """Check the warehouse for a newer snapshot every refresh interval (a catalog read of
        about 0.1 ms) and serve it without waiting for a request to ask: a dashboard polling
        every 5 s would otherwise see a commit only at its second poll after it. Returns a
        function that stops the checks (once it returns, none is made)."""
        stop = threading.Event()

        def loop() -> None:
            while True:
                try:
                    self.refresh()
                except Exception as exc:  # e.g. a catalog being repaired: requests report it
                    log.debug("checking for a new snapshot failed: %s", exc)
                self._warn_if_stuck()
                if stop.wait(max(self._refresh_s, 0.01)):
                    return

        follower = threading.Thread(target=loop, name="snapshot-follower", daemon=True)
        follower.start()

        def stopped() -> None:
            stop.set()
            follower.join(timeout=60)

        return stopped

    @property
    def listing(self) -> threading.Lock:
        """Held while a request lists the catalog (duckdb_tables(), duckdb_views()): such a
        listing reads every attached lake, and DuckDB can fail or hang when one of them is
        detached meanwhile; the store detaches older snapshots' lakes only under this lock."""
        return self._readers_lock

    @property
    def served(self) -> Bound | None:
        """The snapshot served now, without checking for a newer one."""
        return self._bound

    def current(self) -> Bound | None:
        """The bound snapshot, refreshed if due; None before the first snapshot exists."""
        return self.refresh()

    @contextmanager
    def cursor(self) -> Iterator[tuple[Bound, duckdb.DuckDBPyConnection]]:
        """A private cursor on the current snapshot (raises NotReadyError before the first one)."""
        bound = self.current()
        if bound is None:
            raise NotReadyError("no warehouse snapshot yet; the processor has not committed one")
        cur = bound.con.cursor()
        reading: int | None = None
        try:
            if bound.live:
                # One snapshot for the whole request, though the store may move it meanwhile;
                # counted, so that its lake attachment stays until the request ends.
                with self._readers_lock:
                    cur.execute("BEGIN TRANSACTION")
                    version, watermark = _version(cur)
                    self._readers[version] += 1
                    reading = version
                if version != bound.version:
                    bound = Bound(version, watermark, bound.con, bound.alias, bound.tables)
            yield bound, cur
        finally:
            if bound.live:
                with suppress(duckdb.Error):  # a failed statement already ended it
                    cur.execute("ROLLBACK")
            cur.close()
            if reading is not None:
                with self._readers_lock:
                    self._readers[reading] -= 1
                    if not self._readers[reading]:
                        del self._readers[reading]

    def cached(self, version: int, key: Hashable, compute: Callable[[], T]) -> T:
        """compute(), remembered under (version, key) until the snapshot changes."""
        full: tuple[int, Hashable] = (version, key)
        with self._cache_lock:
            if full in self._cache:
                self._cache.move_to_end(full)
                hit: T = self._cache[full]
                return hit
        value = compute()
        self.put(version, key, value)
        return value

    def put(self, version: int, key: Hashable, value: object) -> None:
        """Remember value under (version, key); the least recently used entries go first."""
        if self._cache_entries > 0:
            with self._cache_lock:
                self._cache[(version, key)] = value
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)

    def _advance(self, snap: Snapshot) -> Bound | None:
        """The served connection moved to snap, or None when it must be built whole."""
        old = self._bound
        if (not self._incremental or old is None or old.alias is None
                or not isinstance(snap, LakeSnapshot)):
            return None
        try:
            done = advance(old.con, snap, old.tables, self.listing)
        except FullBuildNeeded as why:
            log.info("snapshot %s built whole: %s", snap.version, why)
            return None
        except duckdb.Error as error:  # the full build reports what is really wrong, if anything
            log.warning("snapshot %s: moving the served one failed (%s); building it whole",
                        snap.version, error)
            return None
        self.advances += 1
        self.last_changed, self.last_lapsed = done.changed, done.lapsed
        with self._readers_lock:
            keep = {done.alias, old.alias, *(alias_of(v) for v in self._readers)}
            let_go(old.con, keep)
        cur = old.con.cursor()
        try:
            version, watermark = _version(cur)
        finally:
            cur.close()
        return Bound(version, watermark, old.con, done.alias, old.tables)

    def _build(self, snap: Snapshot) -> Bound:
        con = duckdb.connect(":memory:")
        # GLOBAL so that every cursor (its own session) buckets days and weeks in UTC.
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        (self._register or self._reader.register_views)(con, snap)
        materialise(con)
        # Pre-aggregates for the metrics: built here once, so no request pays for them.
        prepared.prepare(con)
        row = one_row(con, "SELECT timezone('UTC', max(watermark)) FROM meta")
        watermark = row[0].replace(tzinfo=UTC) if row and row[0] is not None else None
        self.full_builds += 1
        live = self._register is None and isinstance(snap, LakeSnapshot)
        return Bound(version=snap.version, watermark=watermark, con=con,
                     alias=LAKE if live else None, tables=own_tables(con) if live else frozenset())


def _version(cur: duckdb.DuckDBPyConnection) -> tuple[int, datetime | None]:
    """(version, watermark) of the snapshot a live connection shows to cur."""
    row = cur.execute("SELECT max(version), timezone('UTC', max(watermark)) FROM meta").fetchone()
    assert row is not None and row[0] is not None
    return int(row[0]), (row[1].replace(tzinfo=UTC) if row[1] is not None else None)
