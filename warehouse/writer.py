"""The single writer of the warehouse: atomic commits of events, derived buckets and offsets.

A commit writes new immutable Parquet files, then replaces the manifest. The consumer offsets
travel in the same manifest as the data they produced, which gives the processor its
exactly-once effect. Files a commit stops referencing are deleted only after a grace period, so
readers holding an older snapshot keep working.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from journey.facts import CustomerFacts
from warehouse.compact import compaction
from warehouse.convert import StoredEvent, events_to_arrow, facts_to_arrow, rows_to_arrow
from warehouse.errors import CommitError, WarehouseIOError, WarehouseLockedError, WriterStateError
from warehouse.manifest import (
    DataFile,
    Manifest,
    RetiredFile,
    atomic_write,
    fsync_dir,
    new_file_name,
    read_manifest,
    write_manifest,
    write_parquet,
)
from warehouse.reader import VIEWS_SQL, Snapshot, read_events, views_sql
from warehouse.settings import WarehouseSettings
from warehouse.tables import DERIVED_ROWS, TABLES, ModelRow, bucket_of

__all__ = ["ModelRow", "WarehouseWriter", "bucket_of"]

log = logging.getLogger("journey.warehouse")
LOCK_FILE = ".writer.lock"
Buckets = Mapping[int, Sequence[CustomerFacts]]


class WarehouseWriter:
    """Owns the warehouse directory while open (an exclusive lock keeps other writers out)."""

    def __init__(self, settings: WarehouseSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.root = settings.warehouse_dir.resolve()
        self._clock = clock
        self._lock_fd: int | None = None
        self._manifest: Manifest | None = None

    def open(self) -> Manifest:
        """Take the writer lock, load the manifest, remove files of an interrupted commit."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self.root / LOCK_FILE, self.settings.lock_timeout_s)
        try:
            self._manifest = read_manifest(self.root) or Manifest(buckets=self.settings.buckets)
            self._remove_orphans(self._manifest)
        except BaseException:
            self.close()
            raise
        return self._manifest

    def close(self) -> None:
        """Release the lock; the writer can be opened again."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
        self._manifest = None

    def __enter__(self) -> WarehouseWriter:
        self.open()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def state(self) -> Manifest:
        """The last committed manifest: offsets, watermark and version."""
        if self._manifest is None:
            raise WriterStateError("the warehouse writer is not open", root=str(self.root))
        return self._manifest

    def commit(
        self,
        events: Sequence[StoredEvent],
        buckets: Buckets,
        offsets: Mapping[int, int],
        watermark: datetime | None,
        models: Sequence[ModelRow] | None = None,
    ) -> Manifest:
        """Append events, rewrite the given buckets whole, store offsets: all visible or none."""
        current = self.state()
        if current.buckets not in (None, self.settings.buckets):
            raise CommitError(
                "the bucket count changed; run `journey rebuild`",
                stored=current.buckets, configured=self.settings.buckets,
            )
        return self._commit(current, events, buckets, offsets, watermark, models, full=False)

    def replace_all(
        self,
        buckets: Buckets,
        models: Sequence[ModelRow] | None = None,
        watermark: datetime | None = None,
        offsets: Mapping[int, int] | None = None,
    ) -> Manifest:
        """Replace every derived table by the given buckets (a rebuild); events stay as they are."""
        return self._commit(self.state(), [], buckets, offsets or {}, watermark, models, full=True)

    def iter_events(
        self, batch_size: int = 50_000, ordered: bool = False
    ) -> Iterator[list[StoredEvent]]:
        """Every stored raw event as (event, partition, offset), in batches; file by file, or
        in event-time order (ties by event_id) when ordered."""
        snap = Snapshot(self.root, self.state())
        return read_events(snap, batch_size, ordered)

    def compact(self) -> Manifest:
        """Merge the small events files now, whatever their count."""
        return self._compact(self.state(), max_files=1)

    def _commit(
        self,
        current: Manifest,
        events: Sequence[StoredEvent],
        buckets: Buckets,
        offsets: Mapping[int, int],
        watermark: datetime | None,
        models: Sequence[ModelRow] | None,
        full: bool,
    ) -> Manifest:
        self._check(current, buckets, offsets)
        version = current.version + 1
        jobs: list[tuple[str, int | None, pa.Table]] = []
        if events:
            jobs.append(("events", None, events_to_arrow(events)))
        for bucket, facts in sorted(buckets.items()):
            jobs += [(name, bucket, t) for name, t in facts_to_arrow(facts).items()]
        if models:
            jobs.append(("models", None, rows_to_arrow("models", models)))
        written = self._write_all(version, jobs)
        tables = dict(current.tables)
        retired: list[str] = []
        for name in DERIVED_ROWS:
            keep = [f for f in current.files(name) if not full and f.bucket not in buckets]
            retired += [f.path for f in current.files(name) if f not in keep]
            tables[name] = tuple(keep)
        if models is not None:
            retired += [f.path for f in current.files("models")]
            tables["models"] = ()
        for new in written:
            name = new.path.split("/", 1)[0]
            tables[name] = (*tables.get(name, ()), new)
        tables = {n: tuple(sorted(f, key=_bucket_order)) if n in DERIVED_ROWS else f
                  for n, f in tables.items() if f}
        merged = {**current.offsets, **offsets}
        marks = [m for m in (current.watermark, watermark) if m is not None]
        manifest = current.evolve(
            version=version, offsets=merged, watermark=max(marks) if marks else None,
            tables=tables, buckets=self.settings.buckets,
        )
        published = self._publish(manifest, retired, written)
        return self._compact(published, self.settings.compact_max_files)

    def _compact(self, current: Manifest, max_files: int) -> Manifest:
        s = self.settings
        plan = compaction(self.root, current, max_files, s.compact_target_rows, s.row_group_rows)
        return current if plan is None else self._publish(*plan)

    def _check(self, current: Manifest, buckets: Buckets, offsets: Mapping[int, int]) -> None:
        for partition, offset in offsets.items():
            if offset < current.offsets.get(partition, 0):
                raise CommitError(
                    "offsets may not go back", partition=partition, offset=offset,
                    committed=current.offsets[partition],
                )
        n = self.settings.buckets
        for bucket, facts in buckets.items():
            for fact in facts:
                if bucket_of(fact.customer.customer_id, n) != bucket:
                    raise CommitError(
                        "customer is not in this bucket", bucket=bucket,
                        customer_id=fact.customer.customer_id,
                    )

    def _write_all(
        self, version: int, jobs: list[tuple[str, int | None, pa.Table]]
    ) -> list[DataFile]:
        """Write new files in parallel: the time goes to fsync, which overlaps well on one disk."""
        names = [new_file_name(table, version, bucket) for table, bucket, _ in jobs]
        rows = self.settings.row_group_rows

        def write(i: int) -> DataFile:
            return write_parquet(self.root, names[i], jobs[i][2], rows, jobs[i][1])

        try:
            with ThreadPoolExecutor(self.settings.write_threads) as pool:
                return list(pool.map(write, range(len(jobs))))
        except BaseException:
            _remove([self.root / name for name in names])
            raise

    def _publish(self, manifest: Manifest, retired: list[str], written: list[DataFile]) -> Manifest:
        now = self._clock()
        # New files and table directories must be durable before the manifest names them.
        for directory in {self.root} | {(self.root / f.path).parent for f in written}:
            fsync_dir(directory)
        pending = (*manifest.retired, *(RetiredFile(p, now) for p in retired))
        expired = [r for r in pending if now - r.retired_at >= self.settings.grace_period_s]
        manifest = manifest.evolve(
            committed_at=datetime.fromtimestamp(now, UTC),
            retired=tuple(r for r in pending if r not in expired),
        )
        try:
            write_manifest(self.root, manifest)
        except WarehouseIOError:
            # The rename may have happened before the failure: the disk decides what is committed.
            on_disk = read_manifest(self.root)
            if on_disk is None or on_disk.version != manifest.version:
                _remove([self.root / f.path for f in written])
                raise
        self._manifest = manifest
        try:
            atomic_write(self.root / VIEWS_SQL, views_sql(Snapshot(self.root, manifest)).encode())
        except WarehouseIOError as exc:
            log.warning("views.sql not updated: %s", exc)
        _remove([self.root / r.path for r in expired])
        return manifest

    def _remove_orphans(self, manifest: Manifest) -> None:
        known = manifest.referenced() | {r.path for r in manifest.retired}
        orphans = [p for p in self.root.glob(".*.tmp")]
        for table in TABLES:
            directory = self.root / table
            if directory.is_dir():
                orphans += [p for p in directory.iterdir() if f"{table}/{p.name}" not in known]
        if orphans:
            log.info("removing %d files of an interrupted commit", len(orphans))
        _remove(orphans)


def _bucket_order(f: DataFile) -> tuple[int, str]:
    return (-1 if f.bucket is None else f.bucket, f.path)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # left for the next open() to remove
            log.warning("cannot remove %s: %s", path, exc)


def _lock(path: Path, timeout_s: float) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise WarehouseLockedError(
                    "another writer holds the warehouse", root=str(path.parent), timeout_s=timeout_s
                ) from None
            time.sleep(0.05)
