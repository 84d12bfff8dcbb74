"""A rebuild's two passes, and running them on worker processes.

Pass 1 links every stored event's keys into one identity graph and cuts its components into
slices; pass 2 derives slice after slice. Deriving is pure Python and holds the GIL, so threads
would not help: each worker is a process with its own read-only DuckDB connection to the lake,
pinned to the snapshot the rebuild reads. Pass 1 runs in a process of its own that exits when
done: reading every event leaves Python's allocator fragmented (336 MiB of arenas held for 85 MiB
of live objects after 1M events), which the rebuilding process would otherwise keep. A pass 2
worker reads one slice's events by key hash, derives them (a fresh JourneyState: every component
is new to it, exactly as in the serial pass) and sends the rows back as Arrow tables; the
rebuilding process only inserts them into its one transaction. Slices are consumed in the order
they were handed out, with a bounded number in flight, so memory stays a few slices.
"""

from __future__ import annotations

import gc
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from journey.facts import Changes
from journey.schema import Event
from processor import gcpolicy
from processor.derive import CoreConfig
from processor.memory import MemoryWarehouse
from processor.state import JourneyState
from warehouse import lakeread
from warehouse.convert import Linked, rows_to_arrow
from warehouse.lake import Location, attach_sql, connect

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass(frozen=True, slots=True)
class Derived:
    """One slice's rows per table, and what it held."""

    tables: dict[str, pa.Table]
    events: int
    customers: int


def link(chunks: Iterable[list[Linked]], config: CoreConfig, progress: Progress | None,
         total: int) -> JourneyState:
    """Pass 1: the identity graph of every stored event (its keys, and an alias's previousId)."""
    linker = JourneyState(config, MemoryWarehouse())
    done = 0
    for chunk in chunks:
        linker.link_only(chunk)
        done += len(chunk)
        if progress:
            progress("linking identities", done, total)
    return linker


def derive(events: list[Event], config: CoreConfig) -> tuple[Changes, int]:
    """A slice's rows, all new (a rebuild empties the tables first), and its customers."""
    state = JourneyState(config, MemoryWarehouse())
    changes = state.apply(events).changes
    changes.drop_deletes()
    return changes, state.customers


def cut(linker: JourneyState, total: int, slice_events: int) -> list[npt.NDArray[np.int64]]:
    """The key hashes of each slice: whole components, about slice_events events each."""
    count = max(1, -(-total // slice_events))
    slices: list[list[int]] = [[] for _ in range(count)]
    for h, root in linker.graph.roots():
        slices[root % count].append(h)
    return [np.array(s, dtype=np.int64) for s in slices if s]


def _read_only(loc: Location, snapshot: int) -> duckdb.DuckDBPyConnection:
    con = connect(":memory:", loc)
    con.execute(attach_sql(loc, read_only=True, snapshot=snapshot))
    return con


def _link_job(loc: Location, snapshot: int, config: CoreConfig, total: int,
              slice_events: int) -> list[npt.NDArray[np.int64]]:
    gcpolicy.tune()
    con = _read_only(loc, snapshot)
    try:
        chunks = lakeread.iter_links(con.cursor(), 100_000)
        return cut(link(chunks, config, None, total), total, slice_events)
    finally:
        con.close()


def slices_in_worker(loc: Location, snapshot: int, config: CoreConfig, total: int,
                     slice_events: int) -> list[npt.NDArray[np.int64]]:
    """Pass 1 in a process of its own; the slices it cut."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_link_job, loc, snapshot, config, total, slice_events).result()


_worker: tuple[duckdb.DuckDBPyConnection, CoreConfig] | None = None


def _start(loc: Location, snapshot: int, config: CoreConfig) -> None:
    global _worker
    gcpolicy.tune()
    _worker = (_read_only(loc, snapshot), config)


def derive_slice(hashes: npt.NDArray[np.int64]) -> Derived:
    """(In a worker) the rows of every customer whose keys hash to `hashes`."""
    if _worker is None:
        raise RuntimeError("derive_slice runs in a rebuild worker only")
    con, config = _worker
    events = lakeread.events_by_key_hash(con.cursor(), hashes.tolist())
    changes, customers = derive(events, config)
    tables = {table: rows_to_arrow(table, r) for table, r in changes.rows.items() if r}
    derived = Derived(tables, len(events), customers)
    del events, changes
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
