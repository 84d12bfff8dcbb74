"""Start-up: the processor's memory rebuilt from what the warehouse committed.

The dedup set comes from the `event_hash` column, the identity graph from each customer's
identities (plus the value nodes of alias events), and each customer's running state from the
`customer_state` table that every commit writes with the rows it produced. No event is decoded,
so a restart costs about the number of customers, not of events. When the configured stage models
differ from the stored ones (or the derived state is missing while events exist), every derived
table is rebuilt first (processor/rebuild.py), so the warehouse never mixes two versions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np

from journey.facts import Changes
from processor.dedup import EventIdSet
from processor.rebuild import rederive_all
from processor.rebuild_workers import Progress
from processor.sessions import micros
from processor.state import JourneyState
from warehouse import erasure_record
from warehouse.erase import erasures
from warehouse.errors import DataFileError, WarehouseMemoryError
from warehouse.tables import ModelRow
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")



def customers_sql(where: str = "") -> str:
    """Stored customers (id, component tag, running state, key types and values), those of
    customer_state matching `where` (SQL over its columns, e.g. `snapshot_id > ?`) if given."""
    chosen = f"SELECT customer_id, component, state FROM customer_state WHERE {where or 'true'}"
    semi = "WHERE customer_id IN (SELECT customer_id FROM s)" if where else ""
    return f"""
WITH s AS ({chosen})
SELECT s.customer_id, s.component, s.state, i.types, i.vals
FROM s JOIN (
    SELECT customer_id, list(type ORDER BY type, value) AS types,
           list(value ORDER BY type, value) AS vals
    FROM identities {semi} GROUP BY customer_id
) i USING (customer_id)
"""
ALIASES = """
SELECT key_type, key_value, previous_id FROM events
WHERE type = 'alias' AND previous_id IS NOT NULL
"""
StoredCustomer = tuple[str, list[tuple[str, str]], int, bytes]
RESTORE_SLICE_CUSTOMERS = 50_000


@dataclass(frozen=True, slots=True)
class Restored:
    """What start-up found (and rebuilt)."""

    events: int
    customers: int
    rebuilt: bool


def stored_customers(writer: WarehouseWriter, sql: str,
                     params: Sequence[object] = ()) -> Iterator[StoredCustomer]:
    """(customer_id, keys, component tag, encoded running state) of the customers a
    customers_sql() finds."""
    for batch in writer.scan(sql, params):
        columns = batch.to_pydict()
        for cid, component, blob, types, vals in zip(
            columns["customer_id"], columns["component"], columns["state"], columns["types"],
            columns["vals"], strict=True,
        ):
            yield cid, list(zip(types, vals, strict=True)), component, blob


def stored_aliases(writer: WarehouseWriter, sql: str,
                   params: Sequence[object] = ()) -> Iterator[tuple[tuple[str, str], str]]:
    """(primary key, previousId) of the alias events an ALIASES query finds."""
    for batch in writer.scan(sql, params):
        for key_type, key_value, previous_id in zip(*batch.to_pydict().values(), strict=True):
            yield (key_type, key_value), previous_id


def _count(writer: WarehouseWriter, table: str) -> int:
    for batch in writer.scan(f"SELECT count(*) AS n FROM {table}"):
        return int(batch.column(0)[0].as_py())
    return 0


def stored_models(writer: WarehouseWriter) -> list[ModelRow]:
    """The models table as committed."""
    rows: list[ModelRow] = []
    sql = ("SELECT model, stage, stage_index, conversion_stage, lapse_after_s FROM models "
           "ORDER BY model, stage_index")
    for batch in writer.scan(sql):
        rows += [ModelRow(**r) for r in batch.to_pylist()]
    return rows


def restore(state: JourneyState, writer: WarehouseWriter, models: Sequence[ModelRow],
            force: bool = False, progress: Progress | None = None,
            workers: int | None = None) -> Restored:
    """Fill an empty state from the warehouse; rebuild derived tables if stale (or forced),
    with `workers` processes (None: one per core).

    A file that cannot be read (damaged inside, where the writer's size check cannot see it)
    stops the start with DataFileError rather than an anonymous DuckDB error.
    """
    try:
        return _restore(state, writer, models, force, progress, workers)
    except duckdb.OutOfMemoryException as error:
        raise WarehouseMemoryError(f"restoring the state ran out of DuckDB's memory limit: "
                                   f"{error}", detail=str(error)) from None
    except duckdb.Error as error:
        raise DataFileError(f"a warehouse file could not be read at start: {error}",
                            path=str(writer.location.data_path)) from None


def _restore(state: JourneyState, writer: WarehouseWriter, models: Sequence[ModelRow],
             force: bool, progress: Progress | None, workers: int | None) -> Restored:
    configured = sorted(models, key=lambda m: (m.model, m.stage_index))
    events = _count(writer, "events")
    rebuilt = False
    if force:
        # `journey rebuild` beside a running processor: a model's rules may have changed without
        # its stage list (which is all the models table records), so never trust the comparison.
        rederive_all(writer, state.config, configured, progress, workers)
        rebuilt = True
    elif stored_models(writer) != configured:
        if events:
            log.info("the stage models changed since the last commit: rebuilding every derived "
                     "table from the %d stored events", events)
            rederive_all(writer, state.config, configured, progress, workers)
            rebuilt = True
        else:
            committed = writer.state()
            writer.commit([], Changes(), {}, committed.watermark, models=configured)
    elif events and not _count(writer, "customer_state"):
        log.info("no processor state stored beside %d events: rebuilding it", events)
        rederive_all(writer, state.config, configured, progress, workers)
        rebuilt = True
    parts = [b.column(0).to_numpy(zero_copy_only=False).astype(np.int64)
             for b in writer.scan("SELECT event_hash FROM events")]
    state.seen = EventIdSet(np.concatenate(parts) if parts else None)
    # The lake's records and their durable copy beside it (a lake rebuilt by `journey doctor`
    # from the log starts with the copy's records only).
    erased = erasure_record.union(erasures(writer), erasure_record.read(writer.settings.data_dir))
    state.erased = {h: micros(at) for h, at in erased.items()}
    # In slices by customer: a slice's join holds its customers' running states (about 1 KB
    # each); 1.4M customers at 10M events in one query, or 180k per slice, ran out of the
    # writer's 256 MB DuckDB limit (50k per slice: about 1 s each, 4 MiB resident after).
    slices = max(1, -(-_count(writer, "customer_state") // RESTORE_SLICE_CUSTOMERS))
    for i in range(slices):
        where = f"hash(customer_id) % {slices} = {i}" if slices > 1 else ""
        for _, keys, component, blob in stored_customers(writer, customers_sql(where)):
            state.restore_customer(keys, component, blob)
    for primary, previous_id in stored_aliases(writer, ALIASES):
        state.restore_alias(primary, previous_id)
    return Restored(events=events, customers=state.customers, rebuilt=rebuilt)
