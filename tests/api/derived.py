"""A warehouse for API tests whose tables are what the real processor state derives from events
(processor.state.JourneyState over processor.memory's store), with the account views of
warehouse/accounts.py on top: the API then reads exactly what the processor would commit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from journey.schema import Event
from processor.derive import CoreConfig
from processor.memory import MemoryWarehouse as MemoryStore
from processor.models_table import model_rows
from processor.state import JourneyState
from warehouse.accounts import account_view_statements
from warehouse.convert import rows_to_arrow
from warehouse.tables import DERIVED_ROWS


@dataclass(frozen=True)
class DerivedSnapshot:
    version: int
    watermark: datetime | None


class DerivedWarehouse:
    """Streams batches of events through the processor's state; serves the derived tables."""

    def __init__(self, config: CoreConfig, watermark: datetime | None = None) -> None:
        self.config = config
        self.store = MemoryStore()
        self.state = JourneyState(config, self.store)
        self.watermark = watermark
        self.version = 0

    def add(self, batch: Iterable[Event]) -> DerivedWarehouse:
        applied = self.state.apply(list(batch))
        self.store.commit(applied.new_events, applied.changes)
        self.version += 1
        return self

    def current(self) -> DerivedSnapshot | None:
        return DerivedSnapshot(self.version, self.watermark) if self.version else None

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: DerivedSnapshot) -> None:
        tables = {name: rows_to_arrow(name, self.store.tables.get(name, []))
                  for name in DERIVED_ROWS}
        tables["models"] = rows_to_arrow("models", list(model_rows(self.config.models)))
        tables["meta"] = pa.table({"version": [snap.version], "committed_at": [self.watermark],
                                   "watermark": [self.watermark]},
                                  schema=pa.schema([("version", pa.int64()),
                                                    ("committed_at", pa.timestamp("us", "UTC")),
                                                    ("watermark", pa.timestamp("us", "UTC"))]))
        for name, rows in tables.items():
            con.register("__rows", rows)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __rows')
            con.unregister("__rows")
        con.execute(account_view_statements())
