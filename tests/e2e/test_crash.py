"""Issue 2, must-show 3: a processor killed with SIGKILL mid-stream and restarted stores exactly
what an uninterrupted run stores (no event lost, none counted twice), on both logs."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ingest.normalize import normalize
from journey.demo import generate
from journey.log.factory import open_consumer, open_producer
from journey.schema import Event
from journey.settings import CommonSettings
from tests.e2e.conftest import Proc
from warehouse.reader import WarehouseReader

TABLES = (
    "events", "identities", "customers", "sessions", "stage_entries", "event_stages",
    "transitions", "surveys", "models",
)
RECEIVED = datetime(2026, 6, 1, tzinfo=UTC)


def demo_events(customers: int) -> list[Event]:
    """Canonical demo events, as the collector would have appended them."""
    return [normalize(m, RECEIVED) for m in generate(customers=customers, seed=11)]


def append_all(settings: CommonSettings, events: list[Event], chunk: int = 250) -> None:
    producer = open_producer(settings)
    try:
        for i in range(0, len(events), chunk):
            part = events[i : i + chunk]
            producer.append([(e.primary_key.value.encode(), e.to_json()) for e in part])
    finally:
        producer.close()


def log_end(settings: CommonSettings) -> dict[int, int]:
    consumer = open_consumer(settings)
    try:
        return consumer.end_offsets()
    finally:
        consumer.close()


def committed(settings: CommonSettings) -> tuple[int, dict[int, int]]:
    reader = WarehouseReader(settings.warehouse_dir, settings.catalog_url)
    snap = reader.current()
    if snap is None:
        return 0, {}
    return snap.version, reader.offsets(snap)


def run_until_caught_up(proc: Proc, settings: CommonSettings, end: dict[int, int]) -> None:
    proc.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        _, offsets = committed(settings)
        if offsets and all(offsets.get(p, 0) >= n for p, n in end.items()):
            proc.stop()
            return
        assert proc.alive(), proc.tail()
        time.sleep(0.2)
    raise AssertionError("processor did not catch up:\n" + proc.tail())


def table_rows(settings: CommonSettings) -> dict[str, list[tuple[object, ...]]]:
    reader = WarehouseReader(settings.warehouse_dir, settings.catalog_url)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    rows = {}
    for table in TABLES:
        # received_at is the collector's clock: equal here because both logs got the same events.
        rows[table] = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_2_processor_sigkill_mid_stream_equals_uninterrupted_run(
    backend: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path,
    procs: list[Proc],
) -> None:
    kafka = request.getfixturevalue("kafka_bootstrap") if backend == "kafka" else None
    events = demo_events(customers=120)
    runs = {}
    for name in ("steady", "crashy"):
        run_env = {**env, "JOURNEY_DATA_DIR": str(tmp_path / name)}
        if kafka:
            run_env["JOURNEY_KAFKA_BOOTSTRAP"] = kafka
            run_env["JOURNEY_TOPIC"] = env["JOURNEY_TOPIC"] + "." + name
        if name == "crashy":
            run_env["JOURNEY_BATCH_MAX_RECORDS"] = "97"  # many small commits to land kills inside
        settings = CommonSettings(
            data_dir=tmp_path / name, kafka_bootstrap=kafka, topic=run_env["JOURNEY_TOPIC"],
            partitions=3,
        )
        runs[name] = (settings, run_env)

    steady, steady_env = runs["steady"]
    append_all(steady, events)
    steady_proc = Proc(["processor"], steady_env, tmp_path / "steady.log")
    procs.append(steady_proc)
    run_until_caught_up(steady_proc, steady, log_end(steady))

    crashy, crashy_env = runs["crashy"]
    rng = random.Random(5)
    half = len(events) // 2
    append_all(crashy, events[:half])
    proc = Proc(["processor"], crashy_env, tmp_path / "crashy.log")
    procs.append(proc)
    kills = 0
    for round_ in range(4):
        if round_ == 2:
            append_all(crashy, events[half:])  # the stream goes on while the processor is down
        proc.start()
        version0, _ = committed(crashy)
        deadline = time.monotonic() + 120
        while committed(crashy)[0] < version0 + 2 and time.monotonic() < deadline:
            assert proc.alive(), proc.tail()
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        kills += 1
    run_until_caught_up(proc, crashy, log_end(crashy))

    assert kills == 4
    expected, got = table_rows(steady), table_rows(crashy)
    assert len(expected["events"]) == len({e.event_id for e in events})
    for table in TABLES:
        assert got[table] == expected[table], table
