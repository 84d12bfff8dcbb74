"""Compaction of the events table: many small per-commit files merged into few large ones.

The merged files are sorted by event time (then event_id) so time-range queries skip row groups.
The caller publishes them as an ordinary commit that swaps the file list, so readers see the
events either in the old files or in the new ones, each event exactly once.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from warehouse.errors import WarehouseIOError
from warehouse.manifest import DataFile, Manifest, new_file_name, write_parquet
from warehouse.tables import EVENTS_SCHEMA


def compaction(
    root: Path, current: Manifest, max_files: int, target_rows: int, row_group_rows: int
) -> tuple[Manifest, list[str], list[DataFile]] | None:
    """The next manifest after merging small event files, the files it retires and writes."""
    small = files_to_compact(current, max_files, target_rows)
    if not small:
        return None
    version = current.version + 1
    merged = merge_events(root, small, version, target_rows, row_group_rows)
    kept = [f for f in current.files("events") if f not in small]
    tables = {**current.tables, "events": (*kept, *merged)}
    manifest = current.evolve(version=version, tables=tables)
    return manifest, [f.path for f in small], merged


def files_to_compact(manifest: Manifest, max_files: int, target_rows: int) -> list[DataFile]:
    """The small event files to merge, or none when the table has at most max_files files."""
    files = manifest.files("events")
    if len(files) <= max_files:
        return []
    small = [f for f in files if f.rows < target_rows]
    return small if len(small) >= 2 else []


def merge_events(
    root: Path, files: list[DataFile], version: int, target_rows: int, row_group_rows: int
) -> list[DataFile]:
    """Write the rows of `files` into new files of about target_rows rows, sorted by time."""
    paths = ", ".join("'" + str(root / f.path).replace("'", "''") + "'" for f in files)
    con = duckdb.connect()
    try:
        reader = con.execute(
            f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false)"
            " ORDER BY timestamp, event_id"
        ).to_arrow_reader(min(row_group_rows, target_rows))
        out: list[DataFile] = []
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        for batch in reader:
            pending.append(batch.cast(EVENTS_SCHEMA))
            pending_rows += batch.num_rows
            if pending_rows >= target_rows:
                out.append(_write(root, pending, version, row_group_rows))
                pending, pending_rows = [], 0
        if pending:
            out.append(_write(root, pending, version, row_group_rows))
    except (duckdb.IOException, OSError) as exc:
        raise WarehouseIOError("cannot compact the events table", path=str(root)) from exc
    finally:
        con.close()
    if sum(f.rows for f in out) != sum(f.rows for f in files):
        raise WarehouseIOError("compaction lost or added rows", path=str(root))
    return out


def _write(
    root: Path, batches: list[pa.RecordBatch], version: int, row_group_rows: int
) -> DataFile:
    table = pa.Table.from_batches(batches, schema=EVENTS_SCHEMA)
    return write_parquet(root, new_file_name("events", version), table, row_group_rows)

