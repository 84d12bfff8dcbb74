"""SPEC 6.5 on Kafka: `journey doctor` compares the topic with what the warehouse committed.

A topic that lost records the warehouse never stored (retention, here `delete_records`, which
moves the log start the same way) is reported with the lost offsets, as not recoverable; a topic
replaced by an empty one stops the processor (it would skip every new record below the committed
offsets), and the repair reads the new topic from its start while the stored events stay.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, TopicPartition
from typer.testing import CliRunner

from ingest.normalize import normalize
from ingest.routes import partition_key
from journey.cli import app
from journey.log.factory import open_producer
from journey.log.kafka import KafkaLog
from journey.settings import CommonSettings
from processor.app import build
from processor.settings import ProcessorSettings
from tests.e2e.test_doctor import T0, _messages, contents, files
from warehouse.errors import StoreDamagedError

pytestmark = [pytest.mark.kafka, pytest.mark.usefixtures("kafka_python_garbage")]
PARTITIONS = 2


def _settings(data: Path, bootstrap: str, topic: str) -> dict[str, Any]:
    return {"data_dir": data, "kafka_bootstrap": bootstrap, "topic": topic,
            "partitions": PARTITIONS}


def _send(settings: dict[str, Any], users: range) -> None:
    producer = open_producer(CommonSettings(**settings))
    try:
        events = [normalize(m, T0) for u in users for m in _messages(f"k{u}", f"k{u}@x.org", u)]
        producer.append([(partition_key(e), e.to_json()) for e in events])
    finally:
        producer.close()


def _process(settings: dict[str, Any]) -> None:
    processor, writer = build(ProcessorSettings(**settings, poll_timeout_s=0.2),
                              threading.Event())
    try:
        idle = 0
        while idle < 3:  # a Kafka poll may come back empty before the records are fetched
            idle = 0 if processor.run_once().records else idle + 1
    finally:
        processor.close()
        writer.close()


def _doctor(data: Path, env: pytest.MonkeyPatch, bootstrap: str, topic: str,
            *more: str) -> tuple[int, str]:
    env.setenv("JOURNEY_KAFKA_BOOTSTRAP", bootstrap)
    env.setenv("JOURNEY_TOPIC", topic)
    env.setenv("JOURNEY_PARTITIONS", str(PARTITIONS))
    result = CliRunner().invoke(app, ["doctor", "--data-dir", str(data), *more])
    return result.exit_code, result.output


def test_6_5_records_lost_to_retention_are_reported_with_their_offsets(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"doctor.retention.{uuid.uuid4().hex[:8]}"
    settings = _settings(tmp_path / "data", kafka_bootstrap, topic)
    _send(settings, range(6))
    _process(settings)
    stored = contents(settings["data_dir"])
    code, out = _doctor(settings["data_dir"], monkeypatch, kafka_bootstrap, topic)
    assert code == 0, out
    _send(settings, range(6, 12))  # never processed, then gone as if retention removed them
    log = KafkaLog(kafka_bootstrap, topic)
    try:
        ends = log.end_offsets()
    finally:
        log.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_records({TopicPartition(topic, p): o for p, o in ends.items()})
    finally:
        admin.close()
    code, out = _doctor(settings["data_dir"], monkeypatch, kafka_bootstrap, topic)
    assert code == 1 and "no longer in the topic" in out and "lost" in out, out
    kept = files(settings["data_dir"])
    code, out = _doctor(settings["data_dir"], monkeypatch, kafka_bootstrap, topic, "--repair")
    assert code == 1 and "no longer in the topic" in out and "lost" in out, out  # said plainly
    assert kept <= files(settings["data_dir"])
    assert contents(settings["data_dir"]) == stored


def test_6_5_a_replaced_topic_stops_the_processor_and_the_repair_reads_the_new_one(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = f"doctor.first.{uuid.uuid4().hex[:8]}"
    settings = _settings(tmp_path / "data", kafka_bootstrap, first)
    _send(settings, range(5))
    _process(settings)
    stored = contents(settings["data_dir"])
    replaced = {**settings, "topic": f"doctor.new.{uuid.uuid4().hex[:8]}"}
    _send(replaced, range(5, 7))  # the new topic starts at offset 0, below the committed ones
    kept = files(settings["data_dir"])
    with pytest.raises(StoreDamagedError) as raised:
        _process(replaced)
    assert "journey doctor --repair" in str(raised.value)
    assert kept <= files(settings["data_dir"])
    code, out = _doctor(settings["data_dir"], monkeypatch, kafka_bootstrap, replaced["topic"])
    assert code == 1 and "ends before the warehouse's committed offsets" in out, out
    code, out = _doctor(settings["data_dir"], monkeypatch, kafka_bootstrap, replaced["topic"],
                        "--repair")
    assert code == 0, out
    _process(replaced)
    after = contents(settings["data_dir"])
    assert set(stored["events"]) < set(after["events"])  # the old events stay, the new arrive
    assert len(after["customers"]) == len(stored["customers"]) + 2
