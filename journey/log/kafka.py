"""The Kafka log on kafka-python: acks=all producer, manually assigned consumer without commits.

The producer and the consumer client are created on first use, so a process that only appends
(the collector) never opens a consumer and vice versa.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource
from kafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
)
from kafka.net.compat import KafkaNetClient

from journey.log.base import Record
from journey.log.errors import LogRejected, LogUnavailable, UnknownPartition
from journey.log.kafka_health import abandon, reachable

log = logging.getLogger(__name__)
PROBE_EVERY_S = 0.5
WATCH_S = 0.5  # while an append waits, how often it checks that a broker is still there


def _is_retryable(exc: Exception) -> bool:
    """Timeouts and a broker that cannot be reached may pass; a refusal (too large...) will not."""
    if isinstance(exc, KafkaTimeoutError | KafkaConnectionError | OSError):
        return True
    return bool(getattr(exc, "retriable", False)) or not isinstance(exc, KafkaError)


def _wrap(exc: Exception, message: str, **context: object) -> LogUnavailable | LogRejected:
    error_type = LogUnavailable if _is_retryable(exc) else LogRejected
    return error_type(f"{message}: {type(exc).__name__}: {exc}", **context)


class _Clients:
    """Builds kafka-python's network clients and remembers them.

    A kafka-python client whose constructor fails (no broker within the bootstrap timeout)
    leaves its sockets open and its IO thread running; passing this as `kafka_client` lets us
    close them.
    """

    def __init__(self) -> None:
        self._built: list[Any] = []

    def __call__(self, **configs: Any) -> Any:
        client = KafkaNetClient(**configs)
        self._built.append(client)
        return client

    def close(self) -> None:
        for client in self._built:
            client.close()
        self._built.clear()


def _construct(factory: Any, **configs: Any) -> Any:
    """Call a kafka-python client class; if it raises, close what it had opened."""
    clients = _Clients()
    try:
        return factory(kafka_client=clients, **configs)
    except BaseException:
        clients.close()
        raise


def poll_records(consumer: Any, max_records: int, timeout_s: float,
                 context: dict[str, object]) -> list[Record]:
    """One poll of a kafka-python consumer as Records, by partition then offset."""
    try:
        batches = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
    except Exception as exc:
        raise _wrap(exc, "poll failed", **context) from exc
    return [
        Record(tp.partition, m.offset, m.key if m.key is not None else b"", m.value)
        for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition)
        for m in messages
    ]


def end_offsets(consumer: Any, partitions: list[TopicPartition], timeout_s: float,
                context: dict[str, object]) -> dict[int, int]:
    """The offset after the last record of each of these partitions."""
    try:
        ends = consumer.end_offsets(partitions, timeout_ms=int(timeout_s * 1000))
    except Exception as exc:
        raise _wrap(exc, "end_offsets failed", **context) from exc
    return {tp.partition: int(offset) for tp, offset in ends.items()}


def ensure_topic(
    bootstrap: str, topic: str, partitions: int, replication: int = 1, timeout_s: float = 30.0,
    retention_ms: int | None = None,
) -> int:
    """Create the topic unless it exists and wait for its leaders; return its partition count.

    With retention_ms, the topic's `retention.ms` is set to it (on an existing topic too): SPEC
    2.4 makes the topic's retention the bound on how long erased raw events stay in the broker.
    """
    try:
        admin = _construct(
            KafkaAdminClient,
            bootstrap_servers=bootstrap,
            client_id="journey-admin",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
        )
    except Exception as exc:
        raise _wrap(exc, "cannot reach Kafka", bootstrap=bootstrap, topic=topic) from exc
    try:
        # Idempotent: an existing topic keeps its partition count.
        configs = {} if retention_ms is None else {"retention.ms": str(retention_ms)}
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(
                {topic: {"num_partitions": partitions, "replication_factor": replication,
                         "configs": configs}},
                timeout_ms=int(timeout_s * 1000),
            )
        admin.wait_for_topics([topic], timeout_ms=int(timeout_s * 1000))
        if configs:  # an existing topic keeps its partitions but takes the configured retention
            admin.alter_configs([ConfigResource("TOPIC", topic, configs)])
        described: list[dict[str, Any]] = admin.describe_topics([topic])
        return len(described[0]["partitions"])
    except Exception as exc:
        raise _wrap(exc, "cannot create topic", bootstrap=bootstrap, topic=topic) from exc
    finally:
        admin.close()


class KafkaLog:
    """A topic of a Kafka cluster as a LogProducer and a LogConsumer.

    After a failed append the producer is dropped and rebuilt on the next one: kafka-python's
    idempotent producer does not always recover from a broker that was killed and restarted.
    Until the broker accepts connections again, appends fail at once instead of waiting.
    When `partitions` is given, the producer creates the topic on its first append, so a
    collector can start (and answer 503) while the broker is down.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_id: str = "journey",
        timeout_s: float = 10.0,
        linger_ms: int = 5,
        batch_size: int = 256 * 1024,
        partitions: int | None = None,
        retention_ms: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._partitions = partitions  # None: the caller ensured the topic
        self._retention_ms = retention_ms
        self._lock = threading.Lock()
        self._down_until = 0.0  # monotonic time before which the broker is taken as down
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._batch_size = batch_size
        self._producer: Any = None
        self._consumer: Any = None
        self._assigned: list[TopicPartition] = []

    def _context(self, **more: object) -> dict[str, object]:
        return {"bootstrap": self.bootstrap, "topic": self.topic, **more}

    # -- producer --------------------------------------------------------------------------

    def _open_producer(self) -> Any:
        with self._lock:  # appends run on many threads: build one producer, not one each
            return self._open_producer_locked()

    def _open_producer_locked(self) -> Any:
        if self._producer is None:
            # One probe per PROBE_EVERY_S at most: a burst of appends must not queue on probes.
            now = time.monotonic()
            if now < self._down_until:
                raise LogUnavailable("no Kafka broker accepted connections", **self._context())
            if not reachable(self.bootstrap):
                self._down_until = now + PROBE_EVERY_S
                raise LogUnavailable("no Kafka broker accepts connections", **self._context())
            if self._partitions is not None:
                timeout_s = self._timeout_s
                ensure_topic(self.bootstrap, self.topic, self._partitions, timeout_s=timeout_s,
                             retention_ms=self._retention_ms)
                self._partitions = None
            try:
                self._producer = _construct(
                    KafkaProducer,
                    bootstrap_servers=self.bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=True,  # retries neither duplicate nor reorder records
                    linger_ms=self._linger_ms,
                    batch_size=self._batch_size,
                    max_block_ms=int(self._timeout_s * 1000),
                    bootstrap_timeout_ms=int(self._timeout_s * 1000),
                    request_timeout_ms=int(self._timeout_s * 1000),
                    delivery_timeout_ms=int(self._timeout_s * 1000) + self._linger_ms,
                )
            except Exception as exc:
                raise _wrap(exc, "cannot connect the producer", **self._context()) from exc
        return self._producer

    def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Send every record (key = partition key); return once all are acknowledged (acks=all)."""
        if not records:
            return
        producer = self._open_producer()
        deadline = time.monotonic() + self._timeout_s
        try:
            futures = [producer.send(self.topic, key=key, value=value) for key, value in records]
            for index, future in enumerate(futures):
                try:
                    self._await(future, deadline)
                except Exception as exc:
                    context = self._context(record=index, records=len(records))
                    if producer is not self._producer:  # abandoned by another append's failure
                        raise LogUnavailable(f"append abandoned: {exc}", **context) from exc
                    raise _wrap(exc, "append not acknowledged", **context) from exc
        except LogRejected:
            raise
        except Exception as exc:
            self._drop_producer(producer)
            if isinstance(exc, LogUnavailable):
                raise
            raise _wrap(exc, "append failed", **self._context(records=len(records))) from exc

    def _await(self, future: Any, deadline: float) -> None:
        """Wait for one record's acknowledgement, but give up within about WATCH_S once no
        broker accepts connections: kafka-python would retry until the deadline."""
        while True:
            try:
                future.get(timeout=max(min(deadline - time.monotonic(), WATCH_S), 0.001))
                return
            except KafkaTimeoutError:
                if future.is_done or time.monotonic() >= deadline:
                    raise
            if not reachable(self.bootstrap, timeout_s=WATCH_S):
                raise LogUnavailable("the broker went away during the append",
                                     **self._context())

    def _drop_producer(self, failed: Any) -> None:
        """Forget the producer after a failure; the next append builds a fresh one."""
        with self._lock:
            if self._producer is not failed:
                return  # another append already replaced it: keep the new one
            self._producer = None
        log.warning("Kafka append failed; the producer is rebuilt on the next append")
        abandon(failed)

    # -- consumer --------------------------------------------------------------------------

    def _open_consumer(self) -> Any:
        if self._consumer is not None:
            return self._consumer
        try:
            consumer = _construct(
                KafkaConsumer,
                bootstrap_servers=self.bootstrap,
                client_id=self._client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                bootstrap_timeout_ms=int(self._timeout_s * 1000),
                request_timeout_ms=int(self._timeout_s * 1000) + 1000,
            )
        except Exception as exc:
            raise _wrap(exc, "cannot connect the consumer", **self._context()) from exc
        deadline = time.monotonic() + self._timeout_s
        partitions = consumer.partitions_for_topic(self.topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)  # metadata for the topic may not have arrived yet
            partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            consumer.close()
            raise LogRejected("topic does not exist", **self._context())
        self._assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(self._assigned)
        self._consumer = consumer
        return consumer

    def partitions(self) -> list[int]:
        """All partitions of the topic."""
        self._open_consumer()
        return [tp.partition for tp in self._assigned]

    def seek(self, positions: dict[int, int]) -> None:
        """Read each listed partition from that offset next."""
        consumer = self._open_consumer()
        known = {tp.partition for tp in self._assigned}
        for partition, offset in positions.items():
            if partition not in known:
                raise UnknownPartition(
                    "no such partition", **self._context(partition=partition, offset=offset)
                )
            if offset < 0:
                raise ValueError(f"offset must be >= 0, got {offset} for partition {partition}")
            consumer.seek(TopicPartition(self.topic, partition), offset)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to max_records records, waiting at most timeout_s for the first one."""
        return poll_records(self._open_consumer(), max_records, timeout_s, self._context())

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of each partition."""
        return end_offsets(self._open_consumer(), self._assigned, self._timeout_s,
                           self._context())

    def beginning_offsets(self) -> dict[int, int]:
        """The offset of the oldest record the topic still keeps in each partition (retention
        removes older ones); `journey doctor` compares them with the warehouse's offsets."""
        consumer = self._open_consumer()
        try:
            starts = consumer.beginning_offsets(self._assigned,
                                                timeout_ms=int(self._timeout_s * 1000))
        except Exception as exc:
            raise _wrap(exc, "beginning_offsets failed", **self._context()) from exc
        return {tp.partition: int(offset) for tp, offset in starts.items()}

    def close(self) -> None:
        """Close the clients (the producer first flushes what it still holds)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=self._timeout_s)
            except Exception:  # the broker is gone: what it still held was never acknowledged
                abandon(producer)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
