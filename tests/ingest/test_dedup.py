"""SPEC 1.2 Duplicates: one batch posted again and again (in a row, all at once, after the collector
was killed and restarted, and after it was already processed) is stored once."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from journey.log.factory import open_consumer
from journey.settings import CommonSettings
from tests.e2e.conftest import WRITE_KEY, Proc, free_port, track, wait_http
from tests.e2e.test_crash import run_until_caught_up
from warehouse.reader import WarehouseReader


def post(base: str, body: dict[str, Any]) -> None:
    answer = httpx.post(f"{base}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=30)
    assert answer.status_code == 200, answer.text
    assert not answer.json().get("rejected"), answer.text


def logged(settings: CommonSettings) -> tuple[int, dict[int, int]]:
    """How many records the log holds, and its end offsets."""
    consumer = open_consumer(settings)
    try:
        end = consumer.end_offsets()
    finally:
        consumer.close()
    return sum(end.values()), end


def stored_ids(settings: CommonSettings) -> list[str]:
    """event_id of every row of the warehouse's events view."""
    reader = WarehouseReader(settings.warehouse_dir)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    return [str(row[0]) for row in con.execute("SELECT event_id FROM events").fetchall()]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_1_2_batch_posted_repeatedly_concurrently_and_across_restarts_is_stored_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    kafka = request.getfixturevalue("kafka_bootstrap") if backend == "kafka" else None
    topic = f"journey.dedup.{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("JOURNEY_")},
        "JOURNEY_DATA_DIR": str(tmp_path / "data"), "JOURNEY_WRITE_KEYS": WRITE_KEY,
        "JOURNEY_TOPIC": topic, "JOURNEY_PARTITIONS": "3",
        **({"JOURNEY_KAFKA_BOOTSTRAP": kafka} if kafka else {}),
    }
    settings = CommonSettings(data_dir=tmp_path / "data", kafka_bootstrap=kafka, topic=topic,
                              partitions=3)
    batch = track(6, "dedup-ann") + track(4, "dedup-bob", event="Checkout Started")
    body = {"batch": batch}
    sent = {m["messageId"] for m in batch}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    collector = Proc(["collector", "--port", str(port)], env, tmp_path / "collector.log")
    processor = Proc(["processor"], env, tmp_path / "processor.log")
    try:
        collector.start()
        wait_http(base + "/healthz", proc=collector)
        for _ in range(3):
            post(base, body)
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda _: post(base, body), range(3)))
        collector.kill()
        collector.start()
        wait_http(base + "/healthz", proc=collector)
        post(base, body)
        count, end = logged(settings)
        # The duplicates really are in the log: the dedup under test is the processor's.
        assert count == 7 * len(batch)
        run_until_caught_up(processor, settings, end)
        first = stored_ids(settings)
        assert sorted(first) == sorted(sent), "an event was lost or stored twice"

        # However late: the same batch again after it was processed and committed.
        post(base, body)
        count, end = logged(settings)
        assert count == 8 * len(batch)
        run_until_caught_up(processor, settings, end)
        assert sorted(stored_ids(settings)) == sorted(sent)
    finally:
        collector.stop()
        processor.stop()
