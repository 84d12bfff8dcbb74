"""`journey rebuild`: re-derive every derived table from the stored raw events (SPEC 6.1).

Run it after changing a stage model or the session settings. It takes the warehouse's writer
lock, so it waits for (or must replace) a running processor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from processor.app import core_config
from processor.models_table import model_rows
from processor.settings import ProcessorSettings
from processor.state import JourneyState
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


@dataclass(frozen=True, slots=True)
class RebuildResult:
    events: int
    customers: int
    seconds: float
    version: int


def rebuild(settings: ProcessorSettings) -> RebuildResult:
    """Derive everything again from the stored events and replace every derived table at once."""
    began = time.perf_counter()
    config = core_config(settings)
    writer = WarehouseWriter(
        WarehouseSettings(data_dir=settings.data_dir, buckets=settings.buckets)
    )
    writer.open()
    try:
        state = JourneyState(config, settings.buckets)
        state.apply(event for chunk in writer.iter_events(100_000) for event, _, _ in chunk)
        manifest = writer.replace_all(
            buckets=state.bucket_facts(state.all_buckets()),
            models=list(model_rows(config.models)),
        )
    finally:
        writer.close()
    return RebuildResult(
        events=state.event_count,
        customers=state.customer_count,
        seconds=time.perf_counter() - began,
        version=manifest.version,
    )
