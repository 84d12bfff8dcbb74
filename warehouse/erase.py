"""Erasure in the warehouse (SPEC 2.4): a customer's rows deleted in one DuckLake transaction with
the one-way hashes of its keys, then the lake purged so no file keeps the deleted values.

DuckLake deletes only write delete files; the data files (and inlined rows in the catalog) still
hold the values, and older snapshots still reference them. The purge therefore flushes inlined
rows, rewrites every file that has deletes, expires every snapshot but the newest (ignoring the
readers' grace period: an erased customer may not stay readable), removes the old and orphaned
files and VACUUMs a SQLite catalog so that freed pages do not keep the values either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from journey.facts import FACT_TABLES
from journey.hashing import key_hash
from journey.keys import normalize_email, normalize_phone
from journey.schema import key_rank
from warehouse.lake import DELETES_LOG, LAKE, Committed, ident
from warehouse.writer import WarehouseWriter

# Every table with a customer_id column whose rows describe one customer.
CUSTOMER_TABLES = (*FACT_TABLES, "customer_state")
_NORMALISE = {"email": normalize_email, "phone": normalize_phone}


@dataclass(frozen=True, slots=True)
class Found:
    """The customer holding a key, with every identity key it has."""

    customer_id: str
    keys: tuple[tuple[str, str], ...]

    @property
    def hashes(self) -> list[int]:
        """The key hashes of the customer's keys (as the processor's graph and events hold)."""
        return sorted({key_hash(t, v) for t, v in self.keys})


def find(writer: WarehouseWriter, key: str) -> Found | None:
    """The customer of a key given as `value` or `type:value` (as GET /v1/customers does)."""
    if "\x00" in key:
        # DuckLake 1.5.5 pushes the filter's literal into its catalog query, where a NUL ends the
        # string ("unterminated quoted string"); no collected key holds one (JSON-normalised ids).
        return None
    kind, sep, value = key.partition(":")
    rows: list[tuple[object, ...]] = []
    if sep:
        clean = _NORMALISE.get(kind)
        value = (clean(value) or value) if clean is not None else value
        rows = _rows(writer, "SELECT customer_id, type FROM identities WHERE type = ? AND "
                     "value = ?", [kind, value])
    if not rows:
        rows = _rows(writer, "SELECT customer_id, type FROM identities WHERE value = ?", [key])
    if not rows:
        return None
    cid = str(min(rows, key=lambda r: (key_rank(str(r[1])), str(r[0])))[0])
    keys = _rows(writer, "SELECT type, value FROM identities WHERE customer_id = ? "
                 "ORDER BY type, value", [cid])
    return Found(cid, tuple((str(t), str(v)) for t, v in keys))


def erasures(writer: WarehouseWriter) -> dict[int, datetime]:
    """Every erased key hash with the time of its latest erasure."""
    out: dict[int, datetime] = {}
    sql = "SELECT key_hash, max(erased_at) AS at FROM erasures GROUP BY key_hash"
    for batch in writer.scan(sql):
        for h, at in zip(*batch.to_pydict().values(), strict=True):
            out[int(h)] = at
    return out


def record(writer: WarehouseWriter, erased: dict[int, datetime]) -> None:
    """Insert erasure records (key hash -> time) into a lake, e.g. one rebuilt by a repair."""
    rows = pa.table({"key_hash": pa.array(list(erased), pa.int64()),
                     "erased_at": pa.array(list(erased.values()), pa.timestamp("us", "UTC"))})

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.register("__journey_erased", rows)
        try:
            con.execute(f"INSERT INTO {LAKE}.erasures SELECT key_hash, erased_at FROM "
                        "__journey_erased")
        finally:
            con.unregister("__journey_erased")

    writer.transact(work)


def delete_customer(writer: WarehouseWriter, found: Found, now: datetime) -> Committed:
    """One transaction: the customer's events and rows go, the hashes of its keys are recorded."""
    hashes = pa.table({"h": pa.array(found.hashes, pa.int64())})

    def work(con: duckdb.DuckDBPyConnection) -> None:
        con.register("__journey_erased", hashes)
        try:
            con.execute(f"DELETE FROM {LAKE}.events WHERE key_hash IN "
                        "(SELECT h FROM __journey_erased)")
            for table in CUSTOMER_TABLES:
                con.execute(f"DELETE FROM {LAKE}.{ident(table)} WHERE customer_id = ?",
                            [found.customer_id])
            # A neighbour's refused link names the erased customer's key.
            con.execute(f"DELETE FROM {LAKE}.identity_conflicts WHERE refused_customer_id = ?",
                        [found.customer_id])
            con.execute(f"INSERT INTO {LAKE}.erasures SELECT h, ? FROM __journey_erased", [now])
            # The last commit's deletes may name the customer's and its sessions' ids.
            con.execute(f"DELETE FROM {LAKE}.{DELETES_LOG}")
        finally:
            con.unregister("__journey_erased")

    return writer.transact(work)


def purge(writer: WarehouseWriter) -> None:
    """Leave no file (data, delete, inlined or older-snapshot) holding a deleted row's values."""

    def rewrite(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')")
        con.execute(f"CALL ducklake_rewrite_data_files('{LAKE}', delete_threshold => 0)")

    def expire(con: duckdb.DuckDBPyConnection) -> None:
        older = [int(r[0]) for r in con.execute(
            f"SELECT snapshot_id FROM ducklake_snapshots('{LAKE}') WHERE snapshot_id < "
            f"(SELECT max(snapshot_id) FROM ducklake_snapshots('{LAKE}'))").fetchall()]
        if older:
            con.execute(f"CALL ducklake_expire_snapshots('{LAKE}', versions => ?)", [older])
        con.execute(f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)")
        # Files of an interrupted commit may hold the customer's rows too; this writer holds the
        # lock, so no commit of its own is writing files now.
        con.execute(f"CALL ducklake_delete_orphaned_files('{LAKE}', cleanup_all => true)")

    writer.run(rewrite)
    writer.run(expire)
    writer.vacuum_catalog()


def _rows(writer: WarehouseWriter, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for batch in writer.scan(sql, params):
        out += list(zip(*batch.to_pydict().values(), strict=True))
    return out
