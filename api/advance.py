"""Moves the API's in-memory copy of a snapshot to a newer snapshot by the customers that
changed (SPEC 6.4: the API's work per snapshot follows the change, not the warehouse).

A commit changes every table only for customers whose `customers` row it deleted or inserted.
DuckLake's change feed of that one table, read around maintenance's snapshots, names them; the
catalog's list of each snapshot's changes names the tables the commits touched. In one DuckDB
transaction on the served database: the copied tables the commits touched lose the rows the
commits deleted, by the keys each commit logged (warehouse/statements.py log_deletes: the
feed's deletions would read every data file they deleted from), and gain the rows the commits
inserted that no later one deleted (the feed's insertions: only the new files); the changed
customers' `event_stages` rows (a view over the lake) are read from the old snapshot once and
moved likewise. Per-customer pre-aggregates are replaced; additive ones
(api/metrics/prepared.py) lose the changed customers' old contributions and gain their new ones;
the two medians are recomputed. Customers whose lapsed status moved with the watermark join the
scope of the lapse-dependent tables. Requests read in transactions of their own (api/store.py),
so each sees one snapshot whole.

A full build is still made when the models changed, when the change feed cannot answer (the old
snapshot expired), when a commit in between created or altered a table or did not log its
deletes (an erasure, a rebuild, a repair), or when so many customers changed that rebuilding
costs less.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import duckdb

from api.metrics import prepared
from api.metrics.prepared import GROUP_HASH, Sources, Table
from warehouse.accounts import ACCOUNT_VIEWS
from warehouse.lake import DELETES_LOG, LAKE, attach_sql, ident, literal, one_row
from warehouse.reader import Snapshot, meta_select
from warehouse.tables import SCHEMAS

log = logging.getLogger(__name__)

# Beyond this share of all customers changed, a full build costs less than a delta.
MAX_CHANGED_SHARE = 0.2
MIN_CHANGED_LIMIT = 1000
# Up to this many keys are looked up by a literal list rather than a semi join (_listed): an
# in-memory table's index finds each in about 20 us (a 1.45M-row table: 4 ms for 172 keys, 36 ms
# for 2,000, where a semi join scans it in 50-90 ms).
MAX_LISTED = 1000

# The copied tables whose rows belong to one customer each (api/store.py MATERIALISED).
CUSTOMER_TABLES = ("identities", "customers", "sessions", "stage_entries", "transitions",
                   "surveys", "account_events", "identity_conflicts")

# The writer's upkeep (warehouse/maintain.py), each call a snapshot of its own: it changes no
# table's rows, so the change feed is read around it. A rewrite lists every row of the files it
# rewrote as deleted and inserted again, which would name every customer in them as changed.
UPKEEP_CHANGES = frozenset({"rewrite_delete", "merge_adjacent", "flushed_inlined"})
# A commit's changes. Anything else (a table created or altered, say) is built whole.
COMMIT_CHANGES = frozenset({"tables_inserted_into", "tables_deleted_from", "inlined_insert",
                            "inlined_delete"})

_C = "(SELECT customer_id FROM __d_c)"  # the changed customers
_S = "(SELECT customer_id FROM __d_s)"  # ... and those whose lapsed status changed

# (scratch name, source, scope): the old side's copies, then the new side's (see _settle).
_OLD = (
    ("__o_cust", "__j_cust", _C), ("__o_se", "stage_entries", _C), ("__o_sess", "sessions", _C),
    ("__o_tr", "transitions", _C), ("__o_dsorted", "__j_dsorted", _C),
    ("__o_reach", "__j_reach", _S), ("__o_stop", "__j_stop", _S),
)
_NEW = (
    ("__n_customers", "customers", _C), ("__n_se", "stage_entries", _C),
    ("__n_ses", "stage_entries", _S),
    ("__n_sess", "sessions", _C), ("__n_tr", "transitions", _C), ("__n_surveys", "surveys", _C),
    ("__n_cust", "__j_cust", _C), ("__n_reach", "__j_reach", _C), ("__n_reachs", "__j_reach", _S),
    ("__n_dsorted", "__j_dsorted", _C), ("__n_last", "__j_last", _S), ("__n_stop", "__j_stop", _S),
)


@dataclass(frozen=True, slots=True)
class Advanced:
    """The outcome of one advance: the lake alias the views now read, customers changed."""

    alias: str
    changed: int
    lapsed: int


class FullBuildNeeded(Exception):
    """The delta cannot be applied; build the snapshot whole (the reason is the message)."""


def advance(con: duckdb.DuckDBPyConnection, snap: Snapshot, tables: frozenset[str],
            listing: AbstractContextManager[Any] | None = None) -> Advanced:
    """Move con (a served snapshot holding `tables` of its own: own_tables) to snap, its views
    then reading the lake attached as alias_of(snap.version). The attachments of earlier
    snapshots stay: the caller lets go of those no request reads any more (let_go).

    Raises FullBuildNeeded when the delta cannot be applied; con is then unchanged. `listing`
    is held around a DETACH (api/store.py SnapshotStore.listing)."""
    w = con.cursor()
    try:
        return _advance(w, snap, tables, listing or nullcontext())
    finally:
        w.close()


def own_tables(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The tables of con's own in-memory database."""
    return frozenset(str(r[0]) for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'memory'").fetchall())


def _advance(w: duckdb.DuckDBPyConnection, snap: Snapshot, here: frozenset[str],
             listing: AbstractContextManager[Any]) -> Advanced:
    row = one_row(w, "SELECT max(version) FROM meta")
    v0 = None if row is None or row[0] is None else int(row[0])
    if v0 is None or snap.version <= v0:
        raise FullBuildNeeded(f"no older version to advance from ({v0} -> {snap.version})")
    alias = alias_of(snap.version)
    with listing:
        _detach(w, alias)
    w.execute(attach_sql(snap.location, read_only=True, snapshot=snap.version, alias=alias))
    try:
        span = _span(w, alias, v0, snap.version)
        _logged(w, alias, span)
        changed = _changed(w, alias, span)
        w.execute("BEGIN TRANSACTION")
        try:
            lapsed = _apply(w, alias, span, here)
            w.execute("COMMIT")
        except BaseException:
            w.execute("ROLLBACK")
            raise
    except BaseException:
        with listing:
            _detach(w, alias)
        raise
    finally:
        w.execute("DROP TABLE IF EXISTS __d_c; DROP TABLE IF EXISTS __d_del")
    return Advanced(alias, changed, lapsed)


def alias_of(version: int) -> str:
    """The lake attachment whose views show this snapshot after an advance to it."""
    return f"{LAKE}_v{version}"


def let_go(con: duckdb.DuckDBPyConnection, keep: Collection[str]) -> None:
    """Detach the snapshots' lake attachments that are not in keep (the served one, the one
    before, those requests still read: DETACH is not transactional, and a request whose views
    read a detached one fails)."""
    w = con.cursor()
    try:
        for (name,) in w.execute("SELECT database_name FROM duckdb_databases() "
                                 "WHERE database_name LIKE ?", [f"{LAKE}_v%"]).fetchall():
            if str(name) not in keep:
                _detach(w, str(name))
    finally:
        w.close()


def _detach(w: duckdb.DuckDBPyConnection, alias: str) -> None:
    if w.execute("SELECT 1 FROM duckdb_databases() WHERE database_name = ?", [alias]).fetchone():
        w.execute(f"DETACH {ident(alias)}")


@dataclass(frozen=True, slots=True)
class _Span:
    """What the snapshots after the served one (`since`) up to `version` did, per the catalog."""

    since: int
    version: int
    tables: frozenset[str]  # the lake's tables
    touched: frozenset[str]  # the tables whose rows they changed
    runs: tuple[tuple[int, int], ...]  # the runs of snapshots that changed rows (not upkeep)

    def feed(self, alias: str, table: str, kind: str, select: str = "*") -> str:
        """DuckLake's insertions or deletions of a table in the span, as a relation. Over a run
        of snapshots, the insertions include rows a later snapshot of the run deleted."""
        calls = " UNION ALL ".join(
            f"SELECT {select} FROM ducklake_table_{kind}('{alias}', 'main', '{table}', {a}, {b})"
            for a, b in self.runs)
        return f"({calls})"


def _span(w: duckdb.DuckDBPyConnection, alias: str, v0: int, v1: int) -> _Span:
    ids = {str(i): str(name) for name, i in w.execute(
        f"SELECT table_name, table_id FROM ducklake_table_info('{alias}')").fetchall()}
    touched: set[str] = set()
    runs: list[tuple[int, int]] = []
    snapshots = w.execute(
        f"SELECT snapshot_id, changes FROM ducklake_snapshots('{alias}') "
        "WHERE snapshot_id BETWEEN ? AND ? ORDER BY snapshot_id", [v0, v1]).fetchall()
    if [int(r[0]) for r in snapshots] != list(range(v0, v1 + 1)):
        # An erasure, or maintenance after the grace period, expired some of them.
        raise FullBuildNeeded(f"snapshots from {v0} to {v1} expired")
    for snapshot, changes in snapshots[1:]:
        if UPKEEP_CHANGES & set(changes):
            continue
        if not set(changes) <= COMMIT_CHANGES:
            raise FullBuildNeeded(f"snapshot {snapshot} changed the lake's tables: {changes}")
        inserted = {ids.get(v) for k in ("tables_inserted_into", "inlined_insert")
                    for v in changes.get(k, ())}
        if DELETES_LOG not in inserted:  # an erasure's or a rebuild's, say: its deletes unknown
            raise FullBuildNeeded(f"snapshot {snapshot} did not log its deletes")
        for table in (v for values in changes.values() for v in values):
            if table not in ids:
                raise FullBuildNeeded(f"snapshot {snapshot} changed a table gone since")
            touched.add(ids[table])
        if runs and runs[-1][1] == snapshot - 1:
            runs[-1] = (runs[-1][0], snapshot)
        else:
            runs.append((snapshot, snapshot))
    tables = frozenset(ids.values())
    return _Span(v0, v1, tables, frozenset(touched), tuple(runs))


def _logged(w: duckdb.DuckDBPyConnection, alias: str, span: _Span) -> None:
    """Fill temp table __d_del with the keys the span's commits deleted by (col, key, tables),
    from the deletes log's insertions (warehouse/statements.py log_deletes)."""
    w.execute("DROP TABLE IF EXISTS __d_del")
    if span.runs:
        logged = span.feed(alias, DELETES_LOG, "insertions", "snapshot_id, *")
        try:
            w.execute(f"CREATE TEMP TABLE __d_del AS SELECT snapshot_id, col, \"key\", tables "
                      f"FROM {logged} WHERE col <> ''")
        except duckdb.Error as error:  # e.g. the old snapshot was expired by maintenance
            raise FullBuildNeeded(f"no deletes log after {span.since}: {error}") from None
    else:
        w.execute('CREATE TEMP TABLE __d_del '
                  '(snapshot_id BIGINT, col VARCHAR, "key" VARCHAR, tables VARCHAR)')


def _changed(w: duckdb.DuckDBPyConnection, alias: str, span: _Span) -> int:
    """Fill temp table __d_c with the customers changed in the span; their count: those whose
    `customers` row a commit inserted or deleted (by the deletes log: DuckLake's deletions feed
    reads every file a commit deleted from)."""
    lake = ident(alias)
    if "models" in span.touched:
        differ = one_row(w,
            f"SELECT count(*) FROM ((FROM models EXCEPT ALL FROM {lake}.models) UNION ALL "
            f"(FROM {lake}.models EXCEPT ALL FROM models))")
        if differ is None or differ[0]:
            raise FullBuildNeeded("the stage models changed")
    w.execute("DROP TABLE IF EXISTS __d_c")
    try:
        if "customers" not in span.touched:
            w.execute("CREATE TEMP TABLE __d_c AS SELECT customer_id FROM customers LIMIT 0")
        else:
            moved = _Moved(w, span, "customers", ("customer_id",))
            w.execute(
                f"CREATE TEMP TABLE __d_c AS SELECT customer_id FROM "
                f"{span.feed(alias, 'customers', 'insertions')} UNION SELECT \"key\" "
                f"FROM __d_del WHERE col = 'customer_id' AND contains(tables, '{moved.tag}')")
    except duckdb.Error as error:  # e.g. the old snapshot was expired by maintenance
        raise FullBuildNeeded(f"no change feed after {span.since}: {error}") from None
    row = w.execute("SELECT (SELECT count(*) FROM __d_c), (SELECT count(*) FROM customers)"
                    ).fetchone()
    changed, total = (int(row[0]), int(row[1])) if row else (0, 0)
    if changed > max(MIN_CHANGED_LIMIT, MAX_CHANGED_SHARE * total):
        raise FullBuildNeeded(f"{changed} of {total} customers changed")
    return changed


def _apply(w: duckdb.DuckDBPyConnection, alias: str, span: _Span, here: frozenset[str]) -> int:
    """Inside the write transaction: every change of the span; the number of unchanged
    customers whose lapsed status changed."""
    stages = prepared.stage_count(w)
    lake = ident(alias)
    w.execute(f"CREATE TEMP TABLE __o_meta AS FROM meta; DELETE FROM meta; "
              f"INSERT INTO meta {meta_select(f'CAST({int(span.version)} AS BIGINT)', lake)}")
    # Customers not changed whose lapsed status moved with the watermark (per model).
    before = prepared.lapsed(Sources(meta="__o_meta"))
    w.execute(f"""
CREATE TEMP TABLE __d_l AS SELECT DISTINCT r.customer_id
FROM __j_reach r JOIN {prepared.LAPSE} m USING (model)
WHERE {before} <> {prepared.lapsed(prepared.WHOLE)} AND r.customer_id NOT IN {_C};
CREATE TEMP TABLE __d_s AS SELECT customer_id FROM __d_c UNION ALL SELECT customer_id FROM __d_l;
""")
    row = w.execute("SELECT count(*) FROM __d_l").fetchone()
    lapsed = int(row[0]) if row else 0
    scope = {_C: _listed(w, "__d_c"), _S: _listed(w, "__d_s")}

    # The old side, copied before anything changes: the changed customers' rows (narrow) and,
    # for the lapse-dependent tables, also the re-lapsed ones' (wide).
    scratch = ["__o_meta", "__d_l", "__d_s", "__n_es", "__o_es"]
    # The changed customers' event_stages rows (a view over the lake: the largest table): the
    # old snapshot's, read once, and the new ones moved from them like a copied table.
    es = prepared.EVENT_STAGE_COLUMNS
    columns = ", ".join(ident(c) for c in es)
    w.execute(f"CREATE TEMP TABLE __o_es AS SELECT {columns} FROM event_stages "
              f"WHERE customer_id IN {scope[_C]}")
    if "event_stages" in span.touched:
        moved = _Moved(w, span, "event_stages", es)
        w.execute(f"CREATE TEMP TABLE __n_es AS SELECT {columns} FROM __o_es r "
                  f"WHERE NOT ({moved.deleted('r')}) UNION ALL "
                  f"{moved.inserted(alias, columns, f'customer_id IN {scope[_C]}')}")
    else:
        w.execute("CREATE TEMP TABLE __n_es AS FROM __o_es")
    for name, source, which in _OLD:
        w.execute(f"CREATE TEMP TABLE {name} AS FROM {source} WHERE customer_id IN {scope[which]}")
        scratch.append(name)
    old = Sources(customers="__o_none", stage_entries="__o_se", event_stages="__o_es",
                  sessions="__o_sess", transitions="__o_tr", surveys="__o_none",
                  meta="__o_meta", cust="__o_cust", reach="__o_reach", dsorted="__o_dsorted",
                  last="__o_none", stop="__o_stop")
    for t in prepared.TABLES:
        if t.additive:
            w.execute(f"CREATE TEMP TABLE __m{t.name} AS {t.select(old, stages)}")
            scratch.append(f"__m{t.name}")

    _replace_rows(w, alias, span, here, scope[_C])

    # The new side: the changed customers' rows of each updated table, copied once it holds
    # them (a copied table now, a pre-aggregate once the loop below has replaced its rows), so
    # that the selects reading them (__n_cust ten times) look them up in the big table once.
    final, copied = set(CUSTOMER_TABLES), set[str]()
    for name, source, which in _NEW:
        if source not in final:
            w.execute(f"CREATE TEMP VIEW {name} AS FROM {source} "
                      f"WHERE customer_id IN {scope[which]}")
    _settle(w, final, copied, scope)
    narrow = Sources(customers="__n_customers", stage_entries="__n_se", event_stages="__n_es",
                     sessions="__n_sess", transitions="__n_tr", surveys="__n_surveys",
                     cust="__n_cust", reach="__n_reach", dsorted="__n_dsorted", last="__n_last",
                     stop="__n_stop")
    wide = replace(narrow, reach="__n_reachs", stage_entries="__n_ses", event_stages="__o_none")
    _add_classes(w)
    for t in prepared.TABLES:
        src = wide if t.lapse else narrow
        if t.per_customer:
            w.execute(f"DELETE FROM {t.name} WHERE customer_id IN {scope[_S if t.lapse else _C]}; "
                      f"INSERT INTO {t.name} BY NAME {t.select(src, stages)}")
            final.add(t.name)
            _settle(w, final, copied, scope)
        elif t.additive:
            _merge(w, t, f"({t.select(src, stages)})", f"__m{t.name}")
        else:
            w.execute(f"DELETE FROM {t.name}; "
                      f"INSERT INTO {t.name} BY NAME {t.select(prepared.WHOLE, stages)}")
    # A class no customer is in any more is gone, as a full build would not make it; only a
    # class the changed customers were in can have emptied.
    w.execute("""
CREATE TEMP TABLE __d_k AS SELECT DISTINCT k FROM __o_cust;
DELETE FROM __j_class WHERE k IN (SELECT k FROM __d_k)
    AND k NOT IN (SELECT k FROM __j_cust WHERE k IN (SELECT k FROM __d_k));
DELETE FROM __j_ktraits WHERE k IN (SELECT k FROM __d_k)
    AND k NOT IN (SELECT k FROM __j_class WHERE k IN (SELECT k FROM __d_k));
DROP TABLE __d_k""")
    for name, _, _ in _NEW:
        w.execute(f"DROP {'TABLE' if name in copied else 'VIEW'} {name}")
    for name in scratch:
        w.execute(f"DROP TABLE {name}")
    return lapsed


def _settle(w: duckdb.DuckDBPyConnection, final: set[str], copied: set[str],
            scope: dict[str, str]) -> None:
    """Copy the new-side rows of each table that is final (dropping the view that stood for
    them until then); `copied` holds the names copied so far."""
    for name, source, which in _NEW:
        if source in final and name not in copied:
            w.execute(f"DROP VIEW IF EXISTS {name}; CREATE TEMP TABLE {name} AS FROM {source} "
                      f"WHERE customer_id IN {scope[which]}")
            copied.add(name)


def _replace_rows(w: duckdb.DuckDBPyConnection, alias: str, span: _Span,
                  here: frozenset[str], changed: str) -> None:
    """The copied tables the span touched take the new snapshot's rows of the changed
    customers; the views of the big tables read the new snapshot; the account tables are
    recomputed."""
    there, lake = span.tables, ident(alias)
    accounts = _count(w, "account_events") if "account_events" in here else 0
    for table in CUSTOMER_TABLES:
        if table not in here or (table in there and table not in span.touched):
            continue
        name = ident(table)
        if table not in there:
            w.execute(f"DELETE FROM {name} WHERE customer_id IN {changed}")
            continue
        moved = _Moved(w, span, table, SCHEMAS[table].names)
        # Only the changed customers lose rows: their list finds them by the table's index.
        w.execute(f"DELETE FROM {name} WHERE {name}.customer_id IN {changed} "
                  f"AND ({moved.deleted(name)})")
        w.execute(f"INSERT INTO {name} BY NAME {moved.inserted(alias, '*')}")
    for table in SCHEMAS:
        if table not in here and table in there:
            w.execute(f"CREATE OR REPLACE VIEW {ident(table)} AS FROM {lake}.{ident(table)}")
    if accounts or ("account_events" in here and _count(w, "account_events")):
        for name, sql in ACCOUNT_VIEWS.items():  # in order: members, then accounts
            if name in here:
                w.execute(f"DELETE FROM {ident(name)}; INSERT INTO {ident(name)} BY NAME {sql}")


class _Moved:
    """One table's changes in the span: the rows its commits deleted (by the keys they logged,
    in __d_del) and the rows they inserted that no later commit of the span deleted."""

    def __init__(self, w: duckdb.DuckDBPyConnection, span: _Span, table: str,
                 columns: Sequence[str]) -> None:
        self.span, self.table, self.tag = span, table, f",{table},"
        self.columns = [str(r[0]) for r in w.execute(
            "SELECT DISTINCT col FROM __d_del WHERE contains(tables, ?) ORDER BY 1",
            [self.tag]).fetchall()]
        unknown = set(self.columns) - set(columns)
        if unknown:
            raise FullBuildNeeded(f"{table} deleted by columns it lacks: {sorted(unknown)}")

    def deleted(self, row: str) -> str:
        """Whether a row (of the given relation alias) held before the span was deleted."""
        return " OR ".join(
            f"{row}.{ident(c)} IN (SELECT \"key\" FROM __d_del WHERE col = '{c}' "
            f"AND contains(tables, '{self.tag}'))" for c in self.columns) or "false"

    def inserted(self, alias: str, columns: str, where: str = "true") -> str:
        """A SELECT of the span's inserted rows that stayed (the table's columns given)."""
        later = " OR ".join(f"(d.col = '{c}' AND d.\"key\" = i.{ident(c)})" for c in self.columns)
        stayed = "true" if not later else (
            f"NOT EXISTS (SELECT 1 FROM __d_del d WHERE d.snapshot_id > i.snapshot_id AND "
            f"contains(d.tables, '{self.tag}') AND ({later}))")
        feed = self.span.feed(alias, self.table, "insertions", "snapshot_id, *")
        chosen = "* EXCLUDE (snapshot_id)" if columns == "*" else columns
        return f"SELECT {chosen} FROM {feed} i WHERE ({where}) AND {stayed}"


def _listed(w: duckdb.DuckDBPyConnection, table: str) -> str:
    """The customers of a scratch table, for `customer_id IN ...`: a literal list when there are
    few. A semi join scans the whole table it filters; a literal list is looked up in the
    in-memory tables' customer_id indexes (api/store.py INDEXES). In the lake the Parquet reader
    checks each listed value against a row group's range, where a semi join hands it only the
    range of all of them: with `event_stages` sorted by customer (tried, warehouse/maintain.py
    SORTED) the read of 172 customers of 10M rows went from 1.2-2.0 s to 0.4-0.6 s."""
    row = w.execute(f"SELECT count(*) FROM {table}").fetchone()
    if row is None or not 0 < int(row[0]) <= MAX_LISTED:
        return f"(SELECT customer_id FROM {table})"
    return "(" + ", ".join(literal(str(r[0])) for r in w.execute(
        f"SELECT DISTINCT customer_id FROM {table} ORDER BY 1").fetchall()) + ")"


def _count(w: duckdb.DuckDBPyConnection, table: str) -> int:
    row = w.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()
    return int(row[0]) if row else 0


def _add_classes(w: duckdb.DuckDBPyConnection) -> None:
    """New (first_channel, traits) classes of the changed customers, numbered after the rest."""
    row = w.execute("SELECT coalesce(max(k), 0) FROM __j_class").fetchone()
    top = int(row[0]) if row else 0
    w.execute(f"""
INSERT INTO __j_class
SELECT CAST({top} + row_number() OVER (ORDER BY first_channel, traits) AS INTEGER),
       first_channel, traits
FROM (SELECT DISTINCT first_channel, traits FROM __n_customers) n
WHERE NOT EXISTS (SELECT 1 FROM __j_class cl WHERE cl.first_channel IS NOT DISTINCT FROM
                  n.first_channel AND cl.traits IS NOT DISTINCT FROM n.traits);
INSERT INTO __j_ktraits {prepared.ktraits(f"(FROM __j_class WHERE k > {top})")}""")


def _merge(w: duckdb.DuckDBPyConnection, t: Table, plus: str, minus: str) -> None:
    """t += plus - minus, group by group; a group left with nothing is removed."""
    dims = ", ".join(ident(d) for d in t.dims)
    measures = ", ".join(ident(m) for m in t.measures)
    negated = ", ".join(f"-{ident(m)} AS {ident(m)}" for m in t.measures)
    # Float credit sums come back to 0 only approximately; every real credit is far above 1e-9.
    sums = ", ".join(
        f"CASE WHEN abs(sum({ident(m)})) < 1e-9 THEN 0.0 ELSE sum({ident(m)}) END AS {ident(m)}"
        if m.startswith("cr_") else f"sum({ident(m)}) AS {ident(m)}" for m in t.measures)
    g = GROUP_HASH
    w.execute(f"""
CREATE TEMP TABLE __d_plus AS {plus};
CREATE TEMP TABLE __d_g AS SELECT DISTINCT {t.group_hash} AS {g} FROM (
    SELECT {dims} FROM __d_plus UNION ALL SELECT {dims} FROM {minus})""")
    # The touched groups' rows leave the table in the statement that reads them, found by the
    # table's index on the group hash when they are few enough to list.
    hashes = [int(r[0]) for r in w.execute(f"SELECT {g} FROM __d_g LIMIT {MAX_LISTED + 1}")
              .fetchall()]
    groups = (f"({', '.join(map(str, hashes))})" if 0 < len(hashes) <= MAX_LISTED
              else f"(SELECT {g} FROM __d_g)")
    w.register("__d_held", w.execute(f"DELETE FROM {t.name} WHERE {g} IN {groups} "
                                     f"RETURNING {dims}, {measures}").to_arrow_table())
    w.execute(f"""
INSERT INTO {t.name} BY NAME
SELECT * FROM (
    SELECT {dims}, {sums}, {t.group_hash} AS {g} FROM (
        SELECT {dims}, {measures} FROM __d_held
        UNION ALL SELECT {dims}, {measures} FROM __d_plus
        UNION ALL SELECT {dims}, {negated} FROM {minus}
    ) GROUP BY {dims}
) WHERE {ident(t.keep)} <> 0;
DROP TABLE __d_plus; DROP TABLE __d_g;
""")
    w.unregister("__d_held")
