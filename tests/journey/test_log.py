"""One suite for both logs (embedded and Kafka): the semantics of journey/log/base.py."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource

from journey.errors import RetryableError
from journey.log.base import LogConsumer, LogProducer, Record, partition_for
from journey.log.embedded import EmbeddedLog
from journey.log.errors import LogUnavailable, UnknownPartition
from journey.log.factory import open_consumer, open_producer
from journey.log.kafka import KafkaLog, ensure_topic
from journey.settings import CommonSettings

REPO = Path(__file__).resolve().parents[2]


class Backend(Protocol):
    """What the `log_backend` fixture (tests/conftest.py) offers."""

    name: str
    settings: CommonSettings | None

    def __call__(self, partitions: int = 3) -> tuple[LogProducer, LogConsumer]: ...

    def open(self, settings: CommonSettings) -> tuple[LogProducer, LogConsumer]: ...


def drain(consumer: LogConsumer, expected: int, timeout_s: float = 20.0) -> list[Record]:
    """Poll until `expected` records have arrived (or the time is up)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < expected and time.monotonic() < deadline:
        records += consumer.poll(1000, 0.2)
    return records


def by_partition(records: list[Record]) -> dict[int, list[Record]]:
    out: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        out[record.partition].append(record)
    return out


def batch(prefix: str, keys: int, start: int, count: int) -> list[tuple[bytes, bytes]]:
    """`count` records cycling over `keys` keys; values say which key and which sequence number."""
    return [
        (f"{prefix}-k{i % keys}".encode(), f"{prefix}-k{i % keys}:{i}".encode())
        for i in range(start, start + count)
    ]


def test_same_key_goes_to_the_same_partition_in_append_order(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=4)
    for start in range(0, 60, 20):
        producer.append(batch("c", keys=7, start=start, count=20))
    records = drain(consumer, 60)
    assert len(records) == 60
    sequence_by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        assert record.partition == partition_for(record.key, 4)
        sequence_by_key[record.key].append(int(record.value.split(b":")[1]))
    assert len(sequence_by_key) == 7
    for sequence in sequence_by_key.values():
        assert sequence == sorted(sequence)


def test_offsets_start_at_zero_and_are_dense_per_partition(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=3)
    producer.append(batch("d", keys=11, start=0, count=50))
    producer.append(batch("d", keys=11, start=50, count=25))
    records = drain(consumer, 75)
    assert len(records) == 75
    for partition_records in by_partition(records).values():
        assert [r.offset for r in partition_records] == list(range(len(partition_records)))


def test_seek_rereads_the_same_records_from_an_offset(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=2)
    producer.append(batch("s", keys=5, start=0, count=40))
    first = by_partition(drain(consumer, 40))
    partition = max(first, key=lambda p: len(first[p]))
    assert len(first[partition]) > 3
    consumer.seek({partition: 2})
    again = drain(consumer, len(first[partition]) - 2)
    assert again == first[partition][2:]
    assert consumer.poll(100, 0.2) == []


def test_seek_to_an_unknown_partition_is_refused(log_backend: Backend) -> None:
    _, consumer = log_backend(partitions=2)
    with pytest.raises(UnknownPartition):
        consumer.seek({2: 0})


def test_poll_on_an_empty_log_waits_for_the_timeout_and_returns_nothing(
    log_backend: Backend,
) -> None:
    _, consumer = log_backend(partitions=2)
    consumer.poll(10, 0.1)  # the first poll of a Kafka consumer also fetches metadata
    started = time.monotonic()
    assert consumer.poll(10, 0.5) == []
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 3.0


def test_poll_wakes_up_for_a_record_appended_while_it_waits(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=2)
    consumer.poll(10, 0.1)
    timer = threading.Timer(0.3, producer.append, args=([(b"late", b"v")],))
    timer.start()
    started = time.monotonic()
    records = consumer.poll(10, 10.0)
    elapsed = time.monotonic() - started
    timer.join()
    assert [(r.key, r.value) for r in records] == [(b"late", b"v")]
    assert 0.2 <= elapsed < 5.0


def test_poll_returns_at_most_max_records(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=1)
    producer.append(batch("m", keys=1, start=0, count=30))
    drained = drain(consumer, 0)  # nothing: expected 0 returns at once
    assert drained == []
    deadline = time.monotonic() + 20
    first: list[Record] = []
    while not first and time.monotonic() < deadline:
        first = consumer.poll(7, 0.5)
    assert 1 <= len(first) <= 7
    assert [r.offset for r in first] == list(range(len(first)))


def test_end_offsets_are_zero_when_empty_then_count_each_partition(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=3)
    assert consumer.partitions() == [0, 1, 2]
    assert consumer.end_offsets() == {0: 0, 1: 0, 2: 0}
    records = batch("e", keys=9, start=0, count=45)
    producer.append(records)
    expected = dict.fromkeys(range(3), 0)
    for key, _ in records:
        expected[partition_for(key, 3)] += 1
    assert consumer.end_offsets() == expected


def test_several_producers_appending_at_once_lose_and_reorder_nothing(
    log_backend: Backend,
) -> None:
    _, consumer = log_backend(partitions=3)
    assert log_backend.settings is not None
    producers = [log_backend.open(log_backend.settings)[0] for _ in range(3)]
    errors: list[BaseException] = []

    def run(index: int, producer: LogProducer) -> None:
        try:
            for start in range(0, 100, 10):
                producer.append(batch(f"p{index}", keys=4, start=start, count=10))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = drain(consumer, 300)
    assert len(records) == 300
    assert len({r.value for r in records}) == 300
    for partition_records in by_partition(records).values():
        assert [r.offset for r in partition_records] == list(range(len(partition_records)))
    sequence_by_key: dict[bytes, list[int]] = defaultdict(list)
    for record in records:
        sequence_by_key[record.key].append(int(record.value.split(b":")[1]))
    assert all(seq == sorted(seq) and len(seq) == 25 for seq in sequence_by_key.values())


def test_records_are_still_there_after_closing_and_reopening(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=2)
    written = batch("r", keys=6, start=0, count=30)
    producer.append(written)
    producer.close()
    consumer.close()
    assert log_backend.settings is not None
    _, reopened = log_backend.open(log_backend.settings)
    records = drain(reopened, 30)
    assert sorted((r.key, r.value) for r in records) == sorted(written)
    assert reopened.end_offsets() == {p: len(rs) for p, rs in by_partition(records).items()}


def test_partition_count_is_fixed_when_the_log_is_created(log_backend: Backend) -> None:
    producer, _ = log_backend(partitions=3)
    assert log_backend.settings is not None
    producer.append([(b"a", b"1")])
    _, other = log_backend.open(log_backend.settings.model_copy(update={"partitions": 5}))
    assert other.partitions() == [0, 1, 2]
    assert sum(other.end_offsets().values()) == 1


def test_empty_append_is_a_no_op(log_backend: Backend) -> None:
    producer, consumer = log_backend(partitions=2)
    producer.append([])
    assert consumer.end_offsets() == {0: 0, 1: 0}


# -- embedded log only: crashes and processes --------------------------------------------

_CHILD = """
import sys
from pathlib import Path
from journey.log.embedded import EmbeddedLog

log = EmbeddedLog(Path(sys.argv[1]), partitions=4)
prefix, batches = sys.argv[2], int(sys.argv[3])
for n in range(batches):
    log.append([(f"{prefix}{i % 13}".encode(), f"{prefix}:{n}:{i}".encode()) for i in range(50)])
    print(n + 1, flush=True)  # printed only after append returned: the batch is acknowledged
"""


def _child(directory: Path, prefix: str, batches: int, stdout: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(directory), prefix, str(batches)],
        cwd=REPO,
        stdout=stdout,
        text=True,
    )


def test_embedded_acknowledged_appends_survive_sigkill(tmp_path: Path) -> None:
    with _child(tmp_path, "x", 100_000, subprocess.PIPE) as child:
        assert child.stdout is not None
        acked = 0
        while acked < 20:
            line = child.stdout.readline()
            assert line, "the child process died before acknowledging 20 appends"
            acked = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    log = EmbeddedLog(tmp_path, partitions=4)
    try:
        total = sum(log.end_offsets().values())
        assert total >= acked * 50
        assert total % 50 == 0  # a batch is all or nothing
        records = drain(log, total, timeout_s=5)
        assert len(records) == total
        for partition_records in by_partition(records).values():
            assert [r.offset for r in partition_records] == list(range(len(partition_records)))
    finally:
        log.close()


def test_embedded_two_processes_append_while_a_third_reads(tmp_path: Path) -> None:
    reader = EmbeddedLog(tmp_path, partitions=4)
    children = [_child(tmp_path, prefix, 20, subprocess.DEVNULL) for prefix in ("a", "b")]
    try:
        records = drain(reader, 2 * 20 * 50, timeout_s=60)
    finally:
        codes = [child.wait(timeout=60) for child in children]
        reader.close()
    assert codes == [0, 0]
    assert len({r.value for r in records}) == 2000
    for partition_records in by_partition(records).values():
        assert [r.offset for r in partition_records] == list(range(len(partition_records)))


def test_embedded_reopening_with_another_partition_count_keeps_the_stored_one(
    tmp_path: Path,
) -> None:
    EmbeddedLog(tmp_path, partitions=2).close()
    log = EmbeddedLog(tmp_path, partitions=8)
    try:
        assert log.partitions() == [0, 1]
    finally:
        log.close()


def test_embedded_append_raises_a_retryable_error_while_another_writer_holds_the_lock(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path, partitions=2, busy_timeout_s=0.2)
    blocker = sqlite3.connect(log.path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(LogUnavailable) as raised:
            log.append([(b"k", b"v")])
        assert time.monotonic() - started < 5.0
        assert raised.value.context["file"] == str(log.path)
        blocker.execute("ROLLBACK")
        log.append([(b"k", b"v")])  # the same call succeeds once the lock is released
        assert sum(log.end_offsets().values()) == 1
    finally:
        blocker.close()
        log.close()


# -- Kafka only: an unreachable broker -----------------------------------------------------


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.usefixtures("kafka_python_garbage")
def test_append_to_unreachable_kafka_raises_a_retryable_error_in_bounded_time() -> None:
    log = KafkaLog(f"127.0.0.1:{_closed_port()}", "journey.events", timeout_s=2.0)
    started = time.monotonic()
    try:
        with pytest.raises(LogUnavailable) as raised:
            log.append([(b"k", b"v")])
    finally:
        log.close()
    assert isinstance(raised.value, RetryableError)
    assert raised.value.context["topic"] == "journey.events"
    assert time.monotonic() - started < 10.0


@pytest.mark.usefixtures("kafka_python_garbage")
def test_ensure_topic_on_unreachable_kafka_raises_a_retryable_error_in_bounded_time() -> None:
    started = time.monotonic()
    with pytest.raises(LogUnavailable):
        ensure_topic(f"127.0.0.1:{_closed_port()}", "journey.events", 3, timeout_s=2.0)
    assert time.monotonic() - started < 10.0


@pytest.mark.kafka
def test_ensure_topic_is_idempotent_and_keeps_the_partition_count(kafka_bootstrap: str) -> None:
    topic = f"test.gone.{time.monotonic_ns()}"
    assert ensure_topic(kafka_bootstrap, topic, 2) == 2
    assert ensure_topic(kafka_bootstrap, topic, 5) == 2  # idempotent, keeps its partitions


def _retention_ms(bootstrap: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_configs([ConfigResource("TOPIC", topic, ["retention.ms"])],
                                           config_filter="all")
    finally:
        admin.close()
    return int(described["topic"][topic]["retention.ms"]["value"])


@pytest.mark.kafka
def test_2_4_journey_sets_the_topics_retention_on_a_new_and_an_existing_topic(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"test.retention.{time.monotonic_ns()}"
    settings = CommonSettings(data_dir=tmp_path, kafka_bootstrap=kafka_bootstrap, topic=topic,
                              partitions=2, kafka_retention_hours=48)
    producer = open_producer(settings)  # creates the topic on its first append
    try:
        producer.append([(b"k", b"v")])
    finally:
        producer.close()
    assert _retention_ms(kafka_bootstrap, topic) == 48 * 3_600_000
    open_consumer(settings.model_copy(update={"kafka_retention_hours": 168})).close()
    assert _retention_ms(kafka_bootstrap, topic) == 7 * 24 * 3_600_000  # the default: 7 days


@pytest.mark.kafka
@pytest.mark.usefixtures("kafka_python_garbage")
def test_append_after_the_broker_stopped_raises_a_retryable_error(tmp_path: Path) -> None:
    """A broker of its own (the session's must stay up): acknowledged, then stopped."""
    script = str(REPO / "scripts" / "kafka.sh")
    port = _closed_port()
    started = subprocess.run(
        ["bash", script, "start", str(tmp_path), str(port), str(_closed_port())],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert started.returncode == 0, started.stdout + started.stderr
    stopped = False
    log = KafkaLog(f"127.0.0.1:{port}", "gone", timeout_s=3.0)
    try:
        ensure_topic(f"127.0.0.1:{port}", "gone", 1)
        log.append([(b"k", b"before")])
        subprocess.run(["bash", script, "stop", str(tmp_path)], check=True, timeout=90)
        stopped = True
        began = time.monotonic()
        with pytest.raises(LogUnavailable):
            log.append([(b"k", b"after")])
        assert time.monotonic() - began < 15.0
    finally:
        log.close()
        if not stopped:
            subprocess.run(["bash", script, "stop", str(tmp_path)], check=False, timeout=90)
