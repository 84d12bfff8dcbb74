"""The single writer of the warehouse: one DuckLake transaction per commit.

A commit appends raw events, deletes and inserts the changed derived rows and stores the consumer
offsets and the watermark in one DuckLake transaction, visible whole or not at all: the
processor's exactly-once effect. An exclusive flock keeps a second processor out (it stands by
until the lock frees).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import duckdb
import pyarrow as pa

from journey.errors import RetryableError
from journey.facts import Changes
from journey.schema import Event
from warehouse import integrity, lakeread, spill, sqlitecat
from warehouse.commitlock import CommitLock, commit_lock, flock_within
from warehouse.convert import Linked, StoredEvent, events_to_arrow, rows_to_arrow
from warehouse.errors import (
    CommitError,
    WarehouseIOError,
    WarehouseLockedError,
    WarehouseMemoryError,
    WriterStateError,
)
from warehouse.lake import (
    LAKE,
    Committed,
    attach_sql,
    connect,
    ident,
    locate,
    one_row,
    prepare_catalog,
)
from warehouse.maintain import Step, compact, create_tables, maintenance, set_layout
from warehouse.reader import VIEWS_SQL, views_sql
from warehouse.settings import WarehouseSettings
from warehouse.statements import apply_changes, insert, insert_tables, log_deletes, write_meta
from warehouse.tables import DERIVED_ROWS, ModelRow

__all__ = ["Committed", "ModelRow", "WarehouseWriter"]

log = logging.getLogger("journey.warehouse")
WRITER_MEMORY_LIMIT = "256MB"
ALLOCATOR_FLUSH = "16MB"
# Maintenance's sort of `events` takes what the limit allows (under 256 MB at 10M it raised the
# resident set by 378 MiB, the catch-up's peak); with maintain.EVENTS_LAYOUT's row groups it fits
# in 128 MB at 1M and 5M (152 MiB above the resident set, against 268-347 under 256 MB), not when
# merging a 259 MB file at 10M. A refusal is tried again under each larger limit in turn (1 GB
# passed at 10M, peak 1,225 MiB); one thread and a spill directory (warehouse/spill.py) help.
MAINTAIN_MEMORY_LIMITS = ("128MB", WRITER_MEMORY_LIMIT, "1GB")
LOCK_FILE = ".writer.lock"
COMMIT_LOCK_WAIT_S = 10.0  # between two "still waiting" warnings
Work = Callable[[duckdb.DuckDBPyConnection], object]


class WarehouseWriter:
    """Owns the lake for writing while open (an exclusive lock keeps other writers out)."""

    def __init__(self, settings: WarehouseSettings, clock: Callable[[], float] = time.time,
                 shared: bool = False) -> None:
        self.settings = settings
        # Shared: several processors write the lake; each commit takes the commit lock and
        # starts from what is committed then (see exclusive()). Otherwise one writer owns it.
        self.shared = shared
        self._commit_lock: CommitLock | None = None
        self.root = settings.warehouse_dir.resolve()
        self.location = locate(self.root, settings.catalog_url)
        self._clock = clock
        self._lock_fd: int | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._spill: Path | None = None
        self._state: Committed | None = None

    def open(self, verify: bool = True) -> Committed:
        """Take the writer lock, attach the lake (creating its tables on first use).

        verify: refuse (StoreDamagedError) a missing catalog beside data files, an unreadable
        catalog or a referenced file that is missing or cut (warehouse/integrity.py); only
        `journey doctor --repair` opens a damaged lake, to repair it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        # Shared writers hold the writer lock shared: they keep out a tool that needs the lake
        # alone (`journey doctor --repair`, an erasure without a processor), not each other.
        self._lock_fd = _lock(self.root / LOCK_FILE, self.settings.lock_timeout_s,
                              shared=self.shared)
        try:
            if self.shared:
                self._commit_lock = commit_lock(self.location, self.root)
                # Writers starting together on a fresh catalog would each create DuckLake's
                # tables (PostgreSQL refuses the second CREATE): one at a time.
                with self._locked():
                    self._attach(verify)
            else:
                self._attach(verify)
            self._state = self._read_state()
            _write_private(self.root / VIEWS_SQL, views_sql(self.location))
        except BaseException:
            self.close()
            raise
        return self._state

    def _attach(self, verify: bool) -> None:
        if verify:
            integrity.check_catalog(self.location)
        prepare_catalog(self.location)
        self._con = connect(loc=self.location)  # the postgres extension only for PostgreSQL
        # DuckDB would take 80% of RAM for its buffers; the writer inserts, deletes and reads
        # one component's history at a time, and the processor's memory budget is its state.
        self._con.execute(f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")
        # DuckDB's allocator keeps up to 128 MB a thread after a query by default; the writer's
        # queries are small and spaced, so that memory is better returned (restore at 10M: 87 MiB).
        self._con.execute(f"SET allocator_flush_threshold = '{ALLOCATOR_FLUSH}'")
        self._con.execute(f"SET allocator_bulk_deallocation_flush_threshold = '{ALLOCATOR_FLUSH}'")
        # DuckDB keeps the Parquet bytes it read in memory (121 MiB at 9.25M events, read back
        # for re-derivations and deletes); the OS page cache holds them too, outside our budget.
        self._con.execute("SET enable_external_file_cache = false")
        self._spill = spill.make(self.settings.spill_dir)
        self._con.execute("SET temp_directory = ?", [str(self._spill)])
        self._con.execute(f"SET GLOBAL ducklake_default_data_inlining_row_limit = "
                          f"{int(self.settings.inline_row_limit)}")
        self._guard(lambda con: con.execute(attach_sql(self.location, read_only=False)))
        self._transact(create_tables)
        self._guard(set_layout)
        if verify:
            self._guard(integrity.check_files)

    def close(self) -> None:
        """Detach the lake and release the lock; the writer can be opened again."""
        if self._commit_lock is not None:
            self._commit_lock.close()
            self._commit_lock = None
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._spill is not None:
            spill.remove(self._spill)
            self._spill = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
        self._state = None

    def __enter__(self) -> WarehouseWriter:
        self.open()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def state(self) -> Committed:
        """What is committed: offsets, watermark, snapshot id."""
        if self._state is None:
            raise WriterStateError("the warehouse writer is not open", root=str(self.root))
        return self._state

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Committed]:
        """Hold the commit lock (shared writers; a no-op for the one owner) and yield what is
        committed as of taking it: no other writer commits until the block ends."""
        with self._locked():
            if self.shared:
                self._state = self._read_until_done()
            yield self.state()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self._commit_lock
        if lock is None:
            yield
            return
        waited = 0.0
        while True:
            try:
                lock.acquire(COMMIT_LOCK_WAIT_S)
                break
            except WarehouseLockedError:
                # Never give up here: the caller has polled records it has not applied yet.
                waited += COMMIT_LOCK_WAIT_S
                log.warning("waiting %.0fs for the commit lock (another processor has it)", waited)
            except RetryableError as exc:  # e.g. the PostgreSQL catalog is unreachable
                log.warning("cannot take the commit lock, retrying in 1s: %s", exc)
                time.sleep(1.0)
        try:
            yield
        finally:
            lock.release()

    def _read_until_done(self) -> Committed:
        # Under the lock the caller holds polled records: a catalog that went away for a moment
        # is waited for, never an error that would drop them.
        wait = 0.2
        while True:
            try:
                return self._guarded(self._read_state)
            except WarehouseIOError as exc:
                log.warning("reading the committed state failed, retrying in %.1fs: %s",
                            wait, exc)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)

    def committed_offsets(self) -> dict[int, int]:
        """The next offset of each partition as committed now (read afresh: shared writers)."""
        return self._guarded(self._read_state).offsets

    def commit(
        self,
        events: Sequence[StoredEvent],
        changes: Changes,
        offsets: Mapping[int, int],
        watermark: datetime | None,
        models: Sequence[ModelRow] | None = None,
    ) -> Committed:
        """Append events, apply changes (deletes, then inserts), replace models if given, store
        offsets and watermark: one transaction, all visible or none."""
        current = self.state()
        merged = dict(current.offsets)
        for partition, offset in offsets.items():
            if offset < current.offsets.get(partition, 0):
                if not self.shared:
                    raise CommitError(
                        "offsets may not go back", partition=partition, offset=offset,
                        committed=current.offsets[partition],
                    )
                # A partition handed over mid-batch: its new owner committed further already.
                continue
            merged[int(partition)] = int(offset)
        rows = events_to_arrow(events) if events else None
        mark = _later(current.watermark, watermark)
        now = datetime.fromtimestamp(self._clock(), UTC)

        def work(con: duckdb.DuckDBPyConnection) -> None:
            if rows is not None:
                # Sorted by key_hash, so a customer's events sit in few row groups of a file.
                insert(con, "events", rows, order_by="key_hash")
            apply_changes(con, changes, skip_unwritten=True)  # no derived row inserted before
            log_deletes(con, changes)
            if models is not None:
                con.execute(f"DELETE FROM {LAKE}.models")
                insert(con, "models", rows_to_arrow("models", models))
            write_meta(con, merged if offsets else None, mark, now)

        self._transact(work)
        self._state = Committed(merged, mark, self._snapshot_id(), now)
        return self._state

    def replace_derived(
        self,
        changes: Iterable[Changes | Mapping[str, pa.Table]],
        models: Sequence[ModelRow],
        watermark: datetime | None = None,
    ) -> Committed:
        """A rebuild: in one transaction empty every derived table and customer_state, then
        insert the given chunks of rows (streamed; Changes, or Arrow tables by table name) and
        the models; events stay."""
        current = self.state()
        mark = _later(current.watermark, watermark)
        now = datetime.fromtimestamp(self._clock(), UTC)
        chunks = iter(changes)
        consumed = False

        def work(con: duckdb.DuckDBPyConnection) -> None:
            nonlocal consumed
            if consumed:  # a retry cannot replay a consumed stream of chunks
                raise CommitError("the rebuild met a transaction conflict; run it again")
            consumed = True
            for table in (*DERIVED_ROWS, "customer_state", "models"):
                con.execute(f"DELETE FROM {LAKE}.{ident(table)}")
            for chunk in chunks:
                if isinstance(chunk, Changes):
                    apply_changes(con, chunk)
                else:  # rows already in Arrow (a rebuild's worker processes)
                    insert_tables(con, chunk)
            insert(con, "models", rows_to_arrow("models", models))
            write_meta(con, None, mark, now)

        self._transact(work)
        self._state = Committed(current.offsets, mark, self._snapshot_id(), now)
        return self._state

    def iter_events(
        self, batch_size: int = 50_000, ordered: bool = False
    ) -> Iterator[list[StoredEvent]]:
        """Every stored raw event as (event, partition, offset), in batches; in event-time order
        (ties by event_id) when ordered."""
        return lakeread.iter_events(self._connection().cursor(), batch_size, ordered)

    def iter_links(self, batch_size: int = 100_000) -> Iterator[list[Linked]]:
        """Every stored event's keys and alias previousId (convert.Linked), in batches."""
        return lakeread.iter_links(self._connection().cursor(), batch_size)

    def events_by_key_hash(self, hashes: Collection[int]) -> list[Event]:
        """The stored events whose primary key hashes to one of `hashes`, by (timestamp, id)."""
        return lakeread.events_by_key_hash(self._connection().cursor(), hashes)

    def scan(self, sql: str, params: Sequence[object] = ()) -> Iterator[pa.RecordBatch]:
        """Record batches of one read-only SELECT over the lake's tables (committed state)."""
        return lakeread.scan(self._connection().cursor(), sql, params)

    def maintain(self, now: float | None = None) -> None:
        """Flush inlined rows, merge small files, expire snapshots superseded longer than the
        grace period, delete the files no snapshot needs (bounded work): one round at once."""
        self.run_maintenance(self.maintenance_steps(now))

    def maintenance_steps(self, now: float | None = None) -> list[Step]:
        """One round of maintenance as named steps (maintain.maintenance), each its own commit."""
        when = datetime.fromtimestamp(self._clock() if now is None else now, UTC)
        steps: list[Step] = []
        self._guard(lambda con: steps.extend(maintenance(con, when, self.settings)))
        return steps

    def run_maintenance(self, steps: list[Step], budget_s: float = float("inf")) -> None:
        """Take steps off the front of `steps` and run them until budget_s has passed (at least
        one), on a fresh DuckDB instance: the old one's caches and freed memory go back to the
        system first. Each runs under the smallest of MAINTAIN_MEMORY_LIMITS DuckDB accepts."""
        self._reconnect()
        began = time.perf_counter()
        while steps:
            self._maintain_step(*steps.pop(0))
            if time.perf_counter() - began >= budget_s:
                break

    def _maintain_step(self, name: str, step: Work) -> None:
        *smaller, largest = MAINTAIN_MEMORY_LIMITS
        began = time.perf_counter()
        for limit in smaller:
            try:
                self._upkeep(step, limit)
                break
            except WarehouseMemoryError as exc:
                # Expected now and then (many small files to merge): a line, not DuckDB's advice.
                log.info("maintenance step %r needs more than %s; trying it under a larger "
                         "limit (%s)", name, limit, str(exc).splitlines()[0][:200])
        else:
            self._upkeep(step, largest)
        log.debug("maintenance step %r took %.2fs", name, time.perf_counter() - began)

    def _reconnect(self, meanwhile: Callable[[], None] = lambda: None) -> None:
        """Replace the DuckDB instance by a fresh one on the same lake (the lock is kept), and
        run `meanwhile` while none is attached."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._spill is not None:
            spill.remove(self._spill)
            self._spill = None
        try:
            meanwhile()
        finally:
            self._attach(verify=False)

    def vacuum_catalog(self) -> None:
        """VACUUM a SQLite catalog (erasure) with this writer detached, so that no result of
        its own left pending holds a read open that the WAL's truncating checkpoint waits for."""
        path = self.location.sqlite_path
        if path is not None:
            self._reconnect(lambda: sqlitecat.vacuum(path))

    def compact(self) -> list[str]:
        """Rewrite whole the tables with too many files that carry deletes (maintain.compact);
        the tables rewritten. Cheap when there is nothing to do: one catalog query."""
        done: list[str] = []
        # Under the commits' own limit: rewriting the derived tables sorts nothing.
        self._upkeep(lambda con: done.extend(compact(con, self.settings)), WRITER_MEMORY_LIMIT)
        return done

    def _upkeep(self, work: Work, memory_limit: str) -> None:
        def bounded(con: duckdb.DuckDBPyConnection) -> None:
            # One thread: rewriting the derived tables at 6.45M events peaked at 665 MiB on two
            # threads and 321 MiB on one, and this runs inside the processor's memory budget.
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute("SET threads = 1")
            try:
                work(con)
            finally:
                con.execute("RESET threads")
                con.execute(f"SET memory_limit = '{WRITER_MEMORY_LIMIT}'")

        self._guard(bounded)
        self._refresh()

    def transact(self, work: Work) -> Committed:
        """Run work in one DuckLake transaction (conflicts retried); offsets stay as they are."""
        self._transact(work)
        return self._refresh()

    def run(self, work: Work) -> Committed:
        """Run work outside a transaction (DuckLake's maintenance calls make their own)."""
        self._guard(work)
        return self._refresh()

    def _refresh(self) -> Committed:
        old = self.state()
        self._state = Committed(old.offsets, old.watermark, self._snapshot_id(), old.committed_at)
        return self._state

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise WriterStateError("the warehouse writer is not open", root=str(self.root))
        return self._con

    def _transact(self, work: Work) -> None:
        """Run work in one transaction; retry DuckLake conflicts, map failures to our errors."""
        con = self._connection()
        for attempt in range(self.settings.commit_retries + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                work(con)
                con.execute("COMMIT")
                return
            except duckdb.TransactionException as error:
                _rollback(con)
                if self.shared:
                    # Shared writers commit under the commit lock: a conflict means another one
                    # committed meanwhile (the lock's connection was lost), so this commit was
                    # derived from a stale state. Redoing it would store that; a restart re-reads.
                    raise CommitError("another writer committed while this one held the commit "
                                      "lock; stopping so that a restart re-reads the warehouse",
                                      detail=str(error)) from None
                if attempt == self.settings.commit_retries:
                    raise WarehouseIOError("the commit kept meeting transaction conflicts",
                                           path=self.location.catalog, detail=str(error)) from None
                log.info("DuckLake transaction conflict, retrying: %s", error)
                time.sleep(0.05 * 2 ** attempt)
            except duckdb.IOException as error:
                _rollback(con)
                raise WarehouseIOError(f"warehouse I/O failed: {error}",
                                       path=self.location.catalog, detail=str(error)) from None
            except duckdb.Error as error:
                _rollback(con)
                raise CommitError(f"DuckDB refused the commit: {error}",
                                  detail=str(error)) from None
            except BaseException:
                _rollback(con)
                raise

    def _guarded(self, read: Callable[[], Committed]) -> Committed:
        try:
            return read()
        except (duckdb.IOException, duckdb.TransactionException) as error:
            raise WarehouseIOError(f"warehouse I/O failed: {error}", path=self.location.catalog,
                                   detail=str(error)) from None

    def _guard(self, work: Work) -> None:
        """Run work, mapping DuckDB errors: I/O is retryable, anything else a bad request."""
        try:
            work(self._connection())
        except (duckdb.IOException, duckdb.TransactionException) as error:
            if _out_of_memory(error):
                raise WarehouseMemoryError(f"DuckDB's memory limit refused the commit: {error}",
                                           detail=str(error)) from None
            raise WarehouseIOError(f"warehouse I/O failed: {error}", path=self.location.catalog,
                                   detail=str(error)) from None
        except duckdb.OutOfMemoryException as error:
            raise WarehouseMemoryError(f"DuckDB's memory limit refused the work: {error}",
                                       detail=str(error)) from None
        except duckdb.Error as error:
            raise CommitError(f"DuckDB refused the warehouse request: {error}",
                              detail=str(error)) from None

    def _snapshot_id(self) -> int:
        row = one_row(self._connection(), f"SELECT id FROM ducklake_current_snapshot('{LAKE}')")
        return int(row[0]) if row else 0

    def _read_state(self) -> Committed:
        con = self._connection()
        offsets = {int(p): int(o) for p, o in con.execute(
            f'SELECT "partition", next_offset FROM {LAKE}.journey_offsets').fetchall()}
        row = one_row(con, f"SELECT watermark, committed_at FROM {LAKE}.journey_meta")
        watermark, committed_at = (row[0], row[1]) if row else (None, None)
        return Committed(offsets, watermark, self._snapshot_id(), committed_at)


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    marks = [m for m in (a, b) if m is not None]
    return max(marks) if marks else None


def _out_of_memory(error: duckdb.Error) -> bool:
    """A DuckLake commit that failed for want of memory (DuckDB raises it as a failed
    transaction, for example reading file statistics for a rewrite under a small limit)."""
    text = str(error)
    return "failed to pin block" in text or "failed to allocate" in text


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # a failed COMMIT has already ended it
        con.execute("ROLLBACK")


def _write_private(path: Path, text: str) -> None:
    """Replace a small file atomically, readable by its owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _lock(path: os.PathLike[str], timeout_s: float, shared: bool = False) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if not flock_within(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, timeout_s, 0.05):
        os.close(fd)
        raise WarehouseLockedError("another writer holds the warehouse",
                                   root=str(os.path.dirname(path)), timeout_s=timeout_s)
    return fd

