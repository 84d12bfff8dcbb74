"""SPEC 6.4 and 7 with several processors on one warehouse: whatever processor applies which
batch, in whatever interleaving, the warehouse ends equal (row for row, ids included) to one
processor's on the same records.

Each processor here is the real consume loop (processor/runner.py) on its own shared writer of
one real DuckLake; its log is a list of records per partition (the Kafka group hand-over itself
is tested on the real broker in tests/e2e/test_scale_out.py). Records are the generated
multi-channel events of test_property (shared devices, aliases, refused links, group calls, late
events), spread over partitions, with resent duplicates on other partitions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey.log.base import Record
from journey.schema import Event
from processor.erasure import Eraser
from processor.errors import ModelsChangedError
from processor.models_table import model_rows
from processor.rebuild import rederive_all
from processor.runner import Processor
from processor.state import JourneyState
from tests.processor.test_property import CONFIG, Raw, _build, raw_event
from warehouse.settings import WarehouseSettings
from warehouse.tables import ROW_SCHEMAS
from warehouse.writer import WarehouseWriter

PARTITIONS = 4
# Raw events keep their (partition, offset) of the first copy stored, which the order decides.
EVENT_COLUMNS = "* EXCLUDE (\"partition\", \"offset\")"


class ListLog:
    """A LogConsumer over fixed records: partitions are handed to it and taken away by the test
    (as a Kafka group would), and a hand-over seeks to the warehouse's committed offsets."""

    def __init__(self, records: dict[int, list[bytes]]) -> None:
        self.records = records
        self.owned: set[int] = set()
        self.next: dict[int, int] = {}
        self.positions: Callable[[list[int]], dict[int, int]] = lambda ps: {}

    def assign(self, partitions: set[int]) -> None:
        fresh = partitions - self.owned
        self.owned = set(partitions)
        self.next.update(self.positions(sorted(fresh)))

    def partitions(self) -> list[int]:
        return sorted(self.owned)

    def seek(self, positions: dict[int, int]) -> None:
        self.next.update({p: o for p, o in positions.items() if p in self.owned})

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        out: list[Record] = []
        for p in sorted(self.owned):
            start = self.next.get(p, 0)
            take = self.records[p][start:start + max_records - len(out)]
            out += [Record(p, start + i, b"k", v) for i, v in enumerate(take)]
            self.next[p] = start + len(take)
        return out

    def end_offsets(self) -> dict[int, int]:
        return {p: len(r) for p, r in self.records.items()}

    def close(self) -> None:
        pass


def _processor(root: Path, log: ListLog, shared: bool, batch: int) -> tuple[Processor, Any]:
    writer = WarehouseWriter(WarehouseSettings(data_dir=root), shared=shared)
    writer.open()
    processor = Processor(log, writer, JourneyState(CONFIG, writer), [], batch, 0.0,
                          dead_letter=lambda record, exc: None)
    log.positions = lambda ps: {p: o for p, o in writer.committed_offsets().items() if p in ps}
    return processor, writer


def _tables(writer: WarehouseWriter) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for table in [*ROW_SCHEMAS, "events"]:
        if table in ("models", "customer_state"):  # the running states may differ in form
            continue
        columns = EVENT_COLUMNS if table == "events" else "*"
        rows: list[tuple[object, ...]] = []
        for batch in writer.scan(f"SELECT {columns} FROM {table} ORDER BY ALL"):
            rows += [tuple(r.values()) for r in batch.to_pylist()]
        out[table] = rows
    return out


def _count(writer: WarehouseWriter, table: str) -> int:
    return sum(int(b.column(0)[0].as_py()) for b in writer.scan(f"SELECT count(*) FROM {table}"))


def _records(events: list[Event], resent: list[tuple[Event, int]],
             home: list[int]) -> dict[int, list[bytes]]:
    records: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    for event, p in zip(events, home, strict=True):
        records[p].append(event.to_json())
    for event, p in resent:
        records[p].append(event.to_json())
    return records


def _single(root: Path, records: dict[int, list[bytes]]) -> dict[str, list[tuple[object, ...]]]:
    log = ListLog(records)
    log.assign(set(records))
    processor, writer = _processor(root, log, shared=False, batch=7)
    try:
        processor.start()
        while processor.run_once().records:
            pass
        return _tables(writer)
    finally:
        writer.close()


def _run_shared(root: Path, records: dict[int, list[bytes]], steps: list[tuple[int, int]],
                members: int) -> dict[str, list[tuple[object, ...]]]:
    """Run `members` processors; each step (member, reassign seed) lets one member apply one
    batch, after reassigning the partitions among the members when the seed says so."""
    logs = [ListLog(records) for _ in range(members)]
    built = [_processor(root, log, shared=True, batch=5) for log in logs]
    try:
        for processor, _ in built:
            processor.start()
        _deal(logs, 0)
        for member, seed in steps:
            if seed % 4 == 0:
                _deal(logs, seed)
            built[member][0].run_once()
        _deal(logs, 1)
        while any(p.run_once().records for p, _ in built):
            pass
        # Caught up, every member holds each stored customer's running state once (stale
        # states left beside fresh ones would only cost re-derivations, not show in the rows).
        stored = _count(built[0][1], "customer_state")
        for processor, _ in built:
            with processor.exclusive():
                assert processor.customers == stored
        return _tables(built[0][1])
    finally:
        for _, writer in built:
            writer.close()


@contextlib.contextmanager
def _two(root: Path, records: dict[int, list[bytes]]) -> Iterator[list[tuple[Processor, Any]]]:
    """Processors A (partitions 0 and 2) and B (1 and 3) on one warehouse, both caught up."""
    logs = [ListLog(records), ListLog(records)]
    built = [_processor(root, log, shared=True, batch=5) for log in logs]
    try:
        for processor, _ in built:
            processor.start()
        logs[0].assign({0, 2})
        logs[1].assign({1, 3})
        while any([p.run_once().records for p, _ in built]):
            pass
        yield built
    finally:
        for _, writer in built:
            writer.close()


def _deal(logs: list[ListLog], seed: int) -> None:
    for i, log in enumerate(logs):
        log.assign({p for p in range(PARTITIONS) if (p + seed) % len(logs) == i})


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raws=st.lists(raw_event, min_size=10, max_size=30), data=st.data())
def test_6_4_several_processors_give_one_processors_tables(
    make: Any, tmp_path_factory: pytest.TempPathFactory, raws: list[Raw], data: st.DataObject,
) -> None:
    events = [_build(make, i, raw) for i, raw in enumerate(raws)]
    order = data.draw(st.permutations(events), label="arrival order")
    home = data.draw(st.lists(st.integers(0, PARTITIONS - 1), min_size=len(order),
                              max_size=len(order)), label="partitions")
    resent = data.draw(st.lists(st.tuples(st.sampled_from(events),
                                          st.integers(0, PARTITIONS - 1)), max_size=4),
                       label="resent")
    records = _records(order, resent, home)
    members = data.draw(st.integers(2, 3), label="members")
    steps = data.draw(st.lists(st.tuples(st.integers(0, members - 1), st.integers(0, 7)),
                               max_size=20), label="steps")
    single = _single(tmp_path_factory.mktemp("single"), records)
    shared = _run_shared(tmp_path_factory.mktemp("shared"), records, steps, members)
    assert shared == single


def test_2_4_an_erasure_by_one_processor_reaches_the_others(make: Any, tmp_path: Path) -> None:
    """Processor A erases a customer whose events both processors applied; B catches up: it
    forgets the customer's running state and drops a replayed older event of its keys."""
    x = [make("x1", 0, anon="ax", email="x@example.org"),
         make("x2", 60, "Call Completed", channel="call", phone="555", email="x@example.org"),
         make("y1", 120, anon="ay")]
    records = {0: [x[0].to_json(), x[2].to_json()], 1: [x[1].to_json()], 2: [], 3: []}
    with _two(tmp_path, records) as ((a, wa), (b, wb)):
        eraser = Eraser(tmp_path, wa, None, state=lambda: a.state)
        with a.exclusive():
            assert eraser.erase("email:x@example.org")["status"] == "erased"
        # An event of the erased customer sent before the erasure, arriving only now.
        records[1].append(make("x3", 90, "Call Completed", channel="call", phone="555").to_json())
        assert b.run_once().records == 1
        with b.exclusive():
            assert (a.customers, b.customers) == (1, 1) == (_count(wb, "customer_state"),) * 2
        ids = [r["event_id"] for batch in wb.scan("SELECT event_id FROM events")
               for r in batch.to_pylist()]
        assert ids == ["y1"]


def test_6_4_a_rebuild_by_one_processor_stops_the_others(make: Any, tmp_path: Path) -> None:
    """A rebuild another processor served rewrote every derived row (perhaps under other stage
    models): B stops before applying anything, and once restarted gives one processor's tables."""
    records = {0: [make("a1", 0, anon="a").to_json()], 1: [], 2: [], 3: []}
    with _two(tmp_path, records) as ((a, wa), (b, wb)):
        with a.exclusive():
            rederive_all(wa, CONFIG, list(model_rows(CONFIG.models)))
        records[1].append(make("b1", 60, anon="b").to_json())
        before = wb.committed_offsets()
        with pytest.raises(ModelsChangedError):
            b.run_once()
        assert wb.committed_offsets() == before
        wb.close()
        log = ListLog(records)
        restarted, writer = _processor(tmp_path, log, shared=True, batch=5)
        try:
            restarted.start()
            log.assign({1, 3})
            assert restarted.run_once().records == 1
            assert _tables(writer) == _single(tmp_path / "single", records)
        finally:
            writer.close()
