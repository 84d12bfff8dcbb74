"""`journey rebuild`: re-derive every derived table from the stored raw events (SPEC 6.1).

Memory stays bounded by customers, not events. Pass 1 reads every event's keys (and an alias's
previousId; nothing else is decoded) to build the identity graph (its components are closed under
linking) and cuts the components into slices of about SLICE_EVENTS events by their root. Pass 2
reads each slice's events back by key hash, derives them with the same state code as the live
processor (every component is new to a fresh state, so in-order customers take the incremental path
and the others `derive()`), and streams the rows into one warehouse transaction that replaces every
derived table at once. Beyond one slice, pass 1 runs in a process of its own and pass 2 on one
worker process per core (processor/rebuild_workers.py). It takes the warehouse's writer lock;
beside a running processor, `journey rebuild` asks that processor to run it instead
(processor/rebuild_request.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from journey.facts import Changes
from processor import fingerprint, gcpolicy
from processor.config import core_config
from processor.derive import CoreConfig
from processor.models_table import model_rows
from processor.rebuild_workers import (
    Progress,
    cut,
    derive,
    derive_in_workers,
    link,
    slices_in_worker,
)
from processor.settings import ProcessorSettings
from warehouse.settings import WarehouseSettings
from warehouse.tables import ModelRow
from warehouse.writer import WarehouseWriter

SLICE_EVENTS = 100_000  # a worker holds one slice's events while it derives them
MAX_WORKERS = 4


@dataclass(frozen=True, slots=True)
class RebuildResult:
    events: int
    customers: int
    seconds: float
    version: int


def _derived(writer: WarehouseWriter, slices: list[npt.NDArray[np.int64]], config: CoreConfig,
             total: int, progress: Progress | None, counts: list[int]) -> Iterator[Changes]:
    """Pass 2 in this process: the rows of every customer, slice by slice, as pure inserts."""
    done = 0
    for hashes in slices:
        events = writer.events_by_key_hash(hashes.tolist())
        changes, customers = derive(events, config)
        counts[0] += customers
        done += len(events)
        if progress:
            progress("deriving customers", done, total)
        yield changes


def default_workers() -> int:
    """Processes deriving a rebuild's second pass: one per core, at most MAX_WORKERS."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def rederive_all(writer: WarehouseWriter, config: CoreConfig, models: Sequence[ModelRow],
                 progress: Progress | None = None, workers: int | None = None,
                 slice_events: int = SLICE_EVENTS) -> tuple[int, int, int]:
    """Replace every derived table from the stored events; (events, customers, version).
    With more than one worker and more than one slice, slices are derived by worker processes
    (processor/rebuild_workers.py); the rows are the same either way."""
    with gcpolicy.tuned():
        return _rederive_all(writer, config, models, progress,
                             default_workers() if workers is None else workers, slice_events)


def _rederive_all(writer: WarehouseWriter, config: CoreConfig, models: Sequence[ModelRow],
                  progress: Progress | None, workers: int,
                  slice_events: int) -> tuple[int, int, int]:
    total = 0
    for batch in writer.scan("SELECT count(*) FROM events"):
        total = int(batch.column(0)[0].as_py())
    parallel = workers > 1 and total > slice_events
    if parallel:
        if progress:
            progress("linking identities", 0, total)
        slices = slices_in_worker(writer.location, writer.state().version, config, total,
                                  slice_events)
    else:
        linker = link(writer.iter_links(), config, progress, total)
        slices = cut(linker, total, slice_events)
        del linker  # the graph is only needed to cut slices along components
    counts = [0]
    chunks: Iterator[Changes | dict[str, pa.Table]]
    if parallel and len(slices) > 1:
        chunks = derive_in_workers(writer.location, writer.state().version, config, slices,
                                   min(workers, len(slices)), progress, total, counts)
    else:
        chunks = _derived(writer, slices, config, total, progress, counts)
    committed = writer.replace_derived(chunks, list(models), writer.state().watermark)
    return total, counts[0], committed.version


def rebuild(settings: ProcessorSettings, progress: Progress | None = None,
            lock_timeout_s: float | None = None) -> RebuildResult:
    """Derive everything again from the stored events and replace every derived table at once.

    WarehouseLockedError when a running processor holds the warehouse for lock_timeout_s.
    """
    began = time.perf_counter()
    config = core_config(settings)
    warehouse = WarehouseSettings(data_dir=settings.data_dir)
    if lock_timeout_s is not None:
        warehouse = WarehouseSettings(data_dir=settings.data_dir, lock_timeout_s=lock_timeout_s)
    writer = WarehouseWriter(warehouse)
    writer.open()
    try:
        events, customers, version = rederive_all(
            writer, config, list(model_rows(config.models)), progress, settings.workers)
        fingerprint.record(settings.data_dir, fingerprint.fingerprint(config))
    finally:
        writer.close()
    return RebuildResult(events=events, customers=customers,
                         seconds=time.perf_counter() - began, version=version)
