"""SPEC 4.1 / 6.1: `journey rebuild` re-derives every derived table from the stored raw events."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ingest.normalize import normalize
from journey.demo import generate
from journey.log.factory import open_producer
from processor.app import build
from processor.config import core_config
from processor.memory import MemoryWarehouse
from processor.models_table import model_rows
from processor.rebuild import rederive_all
from processor.settings import ProcessorSettings
from processor.state import JourneyState
from tests.processor.test_property import CONFIG, Raw, _build, raw_event
from warehouse.reader import WarehouseReader
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import WarehouseWriter

ROOT = Path(__file__).resolve().parents[2]


def _tables(settings: ProcessorSettings) -> dict[str, list[tuple[object, ...]]]:
    reader = WarehouseReader(settings.warehouse_dir)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    return {
        table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("customers", "sessions", "stage_entries", "transitions", "models")
    }


def test_6_1_rebuild_applies_a_new_model_set_to_the_stored_events(tmp_path: Path) -> None:
    received = datetime(2026, 6, 1, tzinfo=UTC)
    events = [normalize(m, received) for m in generate(customers=15, seed=4)]
    first = ProcessorSettings(data_dir=tmp_path / "a", partitions=2)
    producer = open_producer(first)
    producer.append([(e.primary_key.value.encode(), e.to_json()) for e in events])
    producer.close()
    processor, writer = build(first, threading.Event())
    while processor.run_once().records:
        pass
    writer.close()
    assert {row[0] for row in _tables(first)["models"]} == {"default"}

    # The same stored events, rebuilt under two models by the CLI ...
    done = subprocess.run(
        [sys.executable, "-m", "journey", "rebuild", "--data-dir", str(first.data_dir)],
        cwd=ROOT, env={"JOURNEY_MODELS": "default,aida", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rebuilt" in done.stdout
    rebuilt = _tables(first)
    assert {row[0] for row in rebuilt["models"]} == {"default", "aida"}

    # ... equal a processor that ran with both models from the start.
    second = ProcessorSettings(data_dir=tmp_path / "b", partitions=2, models=["default", "aida"])
    producer = open_producer(second)
    producer.append([(e.primary_key.value.encode(), e.to_json()) for e in events])
    producer.close()
    processor, writer = build(second, threading.Event())
    while processor.run_once().records:
        pass
    writer.close()
    assert rebuilt == _tables(second)


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "worker-processes"])
def test_6_1_a_rebuild_in_slices_equals_the_processors_tables(tmp_path: Path,
                                                               workers: int) -> None:
    """Pass 2 cut into many slices, derived here or by worker processes, gives every derived
    row the live processor gave (late and merged customers included)."""
    received = datetime(2026, 6, 1, tzinfo=UTC)
    events = [normalize(m, received) for m in generate(customers=40, seed=9)]
    events = events[::2] + events[1::2]  # half the events arrive late
    settings = ProcessorSettings(data_dir=tmp_path, partitions=2)
    producer = open_producer(settings)
    producer.append([(e.primary_key.value.encode(), e.to_json()) for e in events])
    producer.close()
    processor, writer = build(settings, threading.Event())
    try:
        while processor.run_once().records:
            pass
        live = _derived_rows(writer)
        config = core_config(settings)
        total, customers, _ = rederive_all(writer, config, list(model_rows(config.models)),
                                           workers=workers, slice_events=len(events) // 6)
        assert (total, customers) == (len(events), processor.customers)
        assert _derived_rows(writer) == live
    finally:
        writer.close()


def _derived_rows(writer: WarehouseWriter) -> dict[str, list[tuple[object, ...]]]:
    out: dict[str, list[tuple[object, ...]]] = {}
    for table in DERIVED_ROWS:
        out[table] = [tuple(r.values()) for batch in writer.scan(
            f"SELECT * FROM {table} ORDER BY ALL") for r in batch.to_pylist()]
    assert out["customers"] and out["sessions"]
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raws=st.lists(raw_event, min_size=1, max_size=30), data=st.data())
def test_6_1_the_linking_pass_builds_the_processors_identity_graph(
    make: Any, raws: list[Raw], data: st.DataObject,
) -> None:
    """A rebuild's pass 1 links keys and alias previousIds only (no event decoded): its graph
    has the components the processor's graph has after the same events, in any order, resent
    copies included."""
    events = [_build(make, i, raw) for i, raw in enumerate(raws)]
    order = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events),
                                                                   max_size=3))))
    processor = JourneyState(CONFIG, MemoryWarehouse())
    processor.apply(events)
    linker = JourneyState(CONFIG, MemoryWarehouse())
    linker.link_only([(e.keys, e.previous_id if e.type == "alias" else None) for e in order])
    assert _components(linker) == _components(processor)


def _components(state: JourneyState) -> set[frozenset[int]]:
    members: dict[int, set[int]] = {}
    for h, root in state.graph.roots():
        members.setdefault(root, set()).add(h)
    return {frozenset(m) for m in members.values()}


def test_the_rebuild_workers_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """JOURNEY_REBUILD_WORKERS=1 keeps a rebuild in one process; unset (0) means one per core."""
    monkeypatch.setenv("JOURNEY_REBUILD_WORKERS", "1")
    assert ProcessorSettings(data_dir=tmp_path).workers == 1
    monkeypatch.delenv("JOURNEY_REBUILD_WORKERS")
    assert ProcessorSettings(data_dir=tmp_path).workers is None
    with pytest.raises(ValidationError):
        ProcessorSettings(data_dir=tmp_path, rebuild_workers=-1)
