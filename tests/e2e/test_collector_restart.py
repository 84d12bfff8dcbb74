"""Issue 2, must-show 3 (collector): the collector is killed and restarted while clients keep
posting and retrying; every event is stored exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from journey.demo import batches, generate
from journey.log.factory import open_consumer
from journey.settings import CommonSettings
from tests.e2e.conftest import WRITE_KEY, Proc, free_port, wait_http
from tests.e2e.test_crash import run_until_caught_up
from warehouse.reader import WarehouseReader


def post_with_retry(base: str, body: dict[str, Any], stop_at: float) -> int:
    """Post one batch until the collector answers 200, as an SDK does; returns the attempts."""
    attempts = 0
    while time.monotonic() < stop_at:
        attempts += 1
        try:
            answer = httpx.post(f"{base}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=5)
            if answer.status_code == 200:
                assert not answer.json().get("rejected"), answer.text
                return attempts
            assert answer.status_code in (429, 503), answer.text
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("batch never accepted")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_2_collector_restart_while_clients_retry_stores_each_event_once(
    backend: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path,
    procs: list[Proc],
) -> None:
    kafka = request.getfixturevalue("kafka_bootstrap") if backend == "kafka" else None
    if kafka:
        env = {**env, "JOURNEY_KAFKA_BOOTSTRAP": kafka}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    collector = Proc(["collector", "--port", str(port)], env, tmp_path / "collector.log").start()
    procs.append(collector)
    wait_http(base + "/healthz", proc=collector)

    messages = generate(customers=60, seed=3)
    bodies = list(batches(messages, size=40))
    stop_at = time.monotonic() + 180
    attempts: list[int] = []

    def client(part: list[dict[str, Any]]) -> None:
        for body in part:
            attempts.append(post_with_retry(base, body, stop_at))

    threads = [threading.Thread(target=client, args=(bodies[i::3],)) for i in range(3)]
    for thread in threads:
        thread.start()
    for third in (1, 2):
        while len(attempts) < len(bodies) * third // 3 and time.monotonic() < stop_at:
            time.sleep(0.005)
        collector.kill()
        time.sleep(0.3)
        collector.start()
    for thread in threads:
        thread.join()
    collector.stop()

    settings = CommonSettings(
        data_dir=Path(env["JOURNEY_DATA_DIR"]), kafka_bootstrap=kafka, topic=env["JOURNEY_TOPIC"],
        partitions=3,
    )
    consumer = open_consumer(settings)
    end = consumer.end_offsets()
    consumer.close()
    processor = Proc(["processor"], env, tmp_path / "processor.log")
    procs.append(processor)
    run_until_caught_up(processor, settings, end)

    reader = WarehouseReader(settings.warehouse_dir)
    snap = reader.current()
    assert snap is not None
    con = duckdb.connect()
    reader.register_views(con, snap)
    stored = [row[0] for row in con.execute("SELECT event_id FROM events").fetchall()]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(stored) == {m["messageId"] for m in messages}, "an event was lost"
    assert max(attempts) > 1, "the restarts never made a client retry; the test proved nothing"
