"""A rebuild's second pass on worker processes: slices derived on every core.

Deriving is pure Python and holds the GIL, so threads would not help; each worker is a process
with its own read-only DuckDB connection to the lake, pinned to the snapshot the rebuild reads.
A worker reads one slice's events by key hash, derives them (a fresh JourneyState: every
component is new to it, exactly as in the serial pass) and sends the rows back as Arrow tables;
the rebuilding process only inserts them into its one transaction. Slices are consumed in the
order they were handed out, with a bounded number in flight, so memory stays a few slices.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from processor import gcpolicy
from processor.derive import CoreConfig
from processor.memory import MemoryWarehouse
from processor.state import JourneyState
from warehouse import lakeread
from warehouse.convert import rows_to_arrow
from warehouse.lake import Location, attach_sql, connect

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True, slots=True)
class Derived:
    """One slice's rows per table, and what it held."""

    tables: dict[str, pa.Table]
    events: int
    customers: int


_worker: tuple[duckdb.DuckDBPyConnection, CoreConfig] | None = None


def _start(loc: Location, snapshot: int, config: CoreConfig) -> None:
    global _worker
    gcpolicy.tune()
    con = connect(":memory:", loc)
    con.execute(attach_sql(loc, read_only=True, snapshot=snapshot))
    _worker = (con, config)


def derive_slice(hashes: npt.NDArray[np.int64]) -> Derived:
    """(In a worker) the rows of every customer whose keys hash to `hashes`."""
    if _worker is None:
        raise RuntimeError("derive_slice runs in a rebuild worker only")
    con, config = _worker
    events = lakeread.events_by_key_hash(con.cursor(), hashes.tolist())
    state = JourneyState(config, MemoryWarehouse())
    rows = state.apply(events).changes.rows  # every row is new: a rebuild empties the tables
    tables = {table: rows_to_arrow(table, r) for table, r in rows.items() if r}
    derived = Derived(tables, len(events), state.customers)
    del events, state, rows
    gc.collect()
    return derived


def derive_in_workers(loc: Location, snapshot: int, config: CoreConfig,
                      slices: Sequence[npt.NDArray[np.int64]], workers: int,
                      progress: Progress | None, total: int,
                      counts: list[int]) -> Iterator[dict[str, pa.Table]]:
    """Every slice's rows, derived by `workers` processes, in slice order; counts[0] is raised
    by the customers of each slice yielded."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start, initargs=(loc, snapshot, config))
    pending: deque[Future[Derived]] = deque()
    queued = iter(slices)
    done = 0
    try:
        for hashes in queued:
            pending.append(pool.submit(derive_slice, hashes))
            if len(pending) > workers:
                break
        while pending:
            derived = pending.popleft().result()
            following = next(queued, None)
            if following is not None:
                pending.append(pool.submit(derive_slice, following))
            counts[0] += derived.customers
            done += derived.events
            if progress:
                progress("deriving customers", done, total)
            yield derived.tables
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
