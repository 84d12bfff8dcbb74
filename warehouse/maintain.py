"""DuckLake upkeep run by the writer: the tables on first use, and maintenance that keeps the file
count and the catalog bounded under a steady trickle of small commits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

import duckdb

from warehouse.lake import LAKE, ident, table_ddl
from warehouse.settings import WarehouseSettings

# A rewritten row gets the rewrite's snapshot_id and shows in DuckLake's change feed as updated,
# so a table whose rows readers follow by either is never rewritten whole: processors sharing the
# warehouse re-read every customer_state row newer than the snapshot they last saw
# (processor/catchup.py). The API, which reads the change feed of `customers` around
# maintenance's snapshots (api/advance.py), would not mind that table being compacted; it is
# left as before, since whether compacting it pays has not been measured.
NOT_COMPACTED = frozenset({"customer_state", "customers"})
# Expiring thousands of snapshots in one call would make one maintenance call unbounded.
MAX_EXPIRED_PER_CALL = 5000
# How `events` files are laid out (DuckLake options of the table). Maintenance's merge sorts them
# by key_hash, buffering a row group of these wide rows while the sort spills: with row groups of
# 20,000 rows (DuckDB writes 122,880) it fitted under 128 MB at 1M and 5M events, where it needed
# 256 MB, and a history read skips finer row groups. A file reaching the target size is no longer
# merged: under the default 512 MB every maintenance sorted the whole table again (10M events,
# 0.5 GB) until it reached it. With 64 MB the merge still needed 256 MB at 10M (a copy of the
# lake 100 commits after maintenance: refused under 128 MB whatever max_compacted_files, then
# 304 MiB of resident memory under 256 MB); with 32 MB it passed under 128 MB, 216 MiB.
# Each option: the value set, as the catalog then shows it.
EVENTS_LAYOUT = {"parquet_row_group_size": ("20000", "20000"),
                 "target_file_size": ("32MB", "32000000")}
# The tables kept sorted (DuckLake sorts what it writes: inserts, merges and flushes), with their
# layout. `events` by key_hash: a re-derived customer's history is read back by it. `event_stages`
# sorted by customer_id was tried (2026-12-02) for the API's read of a few customers' rows, which
# it made 3x cheaper at 10M (1.2-2.0 s -> 0.4-0.6 s), but compaction then sorts the whole table:
# the catch-up's peak rose to 1,233 MiB at 7M events (resident 898 MiB) where the 1.5 GB budget
# at 10M had about 50 MiB to spare. Not kept.
SORTED = {"events": ("key_hash", EVENTS_LAYOUT)}


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables that do not exist yet, the SORTED ones with their sort order (in the
    creating transaction: readers take the first snapshot after it for the first commit)."""
    existing = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]).fetchall()}
    for name, columns in table_ddl().items():
        if name not in existing:
            con.execute(f"CREATE TABLE {LAKE}.{ident(name)} ({columns})")
            if name in SORTED:
                con.execute(f"ALTER TABLE {LAKE}.{ident(name)} SET SORTED BY "
                            f"({ident(SORTED[name][0])})")


def set_layout(con: duckdb.DuckDBPyConnection) -> None:
    """Give the SORTED tables their layout, and their sort order in a lake made before it. The
    options are catalog options (no snapshot); a sort order set later is a table change (a
    snapshot of its own, made once). Files written before keep their layout until maintenance
    rewrites them."""
    meta = ident(f"__ducklake_metadata_{LAKE}")
    unsorted = {str(r[0]) for r in con.execute(
        f"SELECT t.table_name FROM {meta}.ducklake_table t WHERE t.end_snapshot IS NULL AND "
        f"NOT EXISTS (SELECT 1 FROM {meta}.ducklake_sort_info s WHERE s.table_id = t.table_id "
        "AND s.end_snapshot IS NULL)").fetchall()}
    for table, (key, layout) in SORTED.items():
        if table in unsorted:
            con.execute(f"ALTER TABLE {LAKE}.{ident(table)} SET SORTED BY ({ident(key)})")
        held = dict(con.execute(
            "SELECT option_name, value FROM ducklake_options(?) "
            "WHERE scope = 'TABLE' AND scope_entry = ?", [LAKE, f"main.{table}"]).fetchall())
        for option, (value, shown) in layout.items():
            if held.get(option) != shown:
                con.execute(f"CALL {LAKE}.set_option(?, ?, table_name => ?)",
                            [option, value, table])


def files_with_deletes(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Per table, how many of its live data files carry a delete file (read from the catalog's
    own tables: about 20 ms at 6M events, where `ducklake_list_files` takes 70 ms a table)."""
    meta = ident(f"__ducklake_metadata_{LAKE}")
    return {str(name): int(n) for name, n in con.execute(
        f"SELECT t.table_name, count(*) FROM {meta}.ducklake_data_file d "
        f"JOIN {meta}.ducklake_table t ON t.table_id = d.table_id AND t.end_snapshot IS NULL "
        f"JOIN {meta}.ducklake_delete_file x ON x.data_file_id = d.data_file_id "
        "AND x.end_snapshot IS NULL WHERE d.end_snapshot IS NULL GROUP BY t.table_name"
    ).fetchall()}


def compact(con: duckdb.DuckDBPyConnection, settings: WarehouseSettings) -> list[str]:
    """Rewrite whole every table (but those NOT_COMPACTED) with at least `compact_files` data
    files that carry deletes, then merge its files; the tables compacted.

    Each commit deletes the changed customers' old rows from files all over a derived table, so
    almost every file carries a delete file, which every later DELETE and read opens (about 2 ms
    a file at 6M events) and which keeps DuckLake from merging the file. Rewriting a table costs
    in proportion to its size, so the bound on such files trades that cost against the per-file
    cost of every commit in between.
    """
    done = []
    for table, n in sorted(files_with_deletes(con).items()):
        if n >= settings.compact_files and table not in NOT_COMPACTED:
            con.execute(f"CALL ducklake_rewrite_data_files('{LAKE}', ?, delete_threshold => 0)",
                        [table])
            con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}', ?, "
                        "max_compacted_files => ?)", [table, settings.maintain_max_files])
            done.append(table)
    return done


Step = tuple[str, Callable[[duckdb.DuckDBPyConnection], object]]


def maintenance(con: duckdb.DuckDBPyConnection, now: datetime,
                settings: WarehouseSettings) -> list[Step]:
    """Maintenance as named steps, each one DuckLake call (or compaction) that commits on its
    own, so a step DuckDB's memory limit refuses can be run again alone under a larger one: flush
    inlined rows to Parquet, rewrite files that are mostly deleted rows, compact, merge small
    files table by table, expire snapshots superseded more than the grace period ago and delete
    the files that only expired snapshots (or interrupted commits) referenced."""
    tables = sorted(str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [LAKE]).fetchall())
    cutoff = now - timedelta(seconds=settings.grace_period_s)
    steps: list[Step] = [("flush inlined rows", lambda c: c.execute(
        f"CALL ducklake_flush_inlined_data('{LAKE}')"))]
    steps += [(f"rewrite {t}", partial(_rewrite, table=t)) for t in tables]
    steps.append(("compact", lambda c: compact(c, settings)))
    steps += [(f"merge {t}", partial(_merge, table=t, most=settings.maintain_max_files))
              for t in tables]
    steps += [("expire snapshots", partial(_expire, cutoff=cutoff)),
              ("clean up old files", lambda c: c.execute(
                  f"CALL ducklake_cleanup_old_files('{LAKE}', older_than => ?)", [cutoff])),
              # Files of a commit killed before it reached the catalog; old enough that no live
              # commit of this (single) writer can still be writing them.
              ("delete orphaned files", lambda c: c.execute(
                  f"CALL ducklake_delete_orphaned_files('{LAKE}', older_than => ?)", [cutoff]))]
    return steps


def _rewrite(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"CALL ducklake_rewrite_data_files('{LAKE}', ?, delete_threshold => 0.5)",
                [table])


def _merge(con: duckdb.DuckDBPyConnection, table: str, most: int) -> None:
    con.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}', ?, max_compacted_files => ?)",
                [table, most])


def _expire(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> None:
    # A snapshot is expired once its *successor* is older than the grace period: a reader that
    # pinned it while it was the newest has at least that long to finish.
    expired = [int(r[0]) for r in con.execute(
        "SELECT snapshot_id FROM (SELECT snapshot_id, lead(snapshot_time) OVER "
        f"(ORDER BY snapshot_id) AS superseded FROM ducklake_snapshots('{LAKE}')) "
        "WHERE superseded < ? ORDER BY snapshot_id LIMIT ?",
        [cutoff, MAX_EXPIRED_PER_CALL]).fetchall()]
    if expired:
        con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', versions => ?)", [expired])
