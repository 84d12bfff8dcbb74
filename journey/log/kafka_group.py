"""A Kafka consumer-group member: several processors divide the topic's partitions.

The group only hands out partitions: nothing is committed to Kafka. Where a partition is read
from is the warehouse's business (its offsets commit with the data they produced), so when the
group assigns a partition (at start, when a member joins, leaves or dies) the member asks the
`positions` callback for the committed offsets and seeks there. A record two members both read
around a hand-over is dropped by the second one's dedup (processor/catchup.py brings it the
first one's events before it applies a batch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from journey.log.base import Record
from journey.log.errors import LogRejected
from journey.log.kafka import _construct, _wrap, end_offsets, poll_records

log = logging.getLogger(__name__)
Positions = Callable[[list[int]], dict[int, int]]
# A member that stops heartbeating (killed) loses its partitions after this long; the broker
# refuses less than group.min.session.timeout.ms (6 s by default).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
# A batch may wait for the commit lock behind the others' batches, or a rebuild: give it time
# before the group takes the partitions away.
MAX_POLL_INTERVAL_MS = 600_000


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, member: KafkaGroupConsumer) -> None:
        self._member = member

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._member._revoked([tp.partition for tp in revoked])

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._member._assigned_now([tp.partition for tp in assigned])


class KafkaGroupConsumer:
    """A LogConsumer whose partitions are those the group assigns to it (they change)."""

    def __init__(self, bootstrap: str, topic: str, group_id: str, *,
                 client_id: str = "journey-processor", timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = group_id
        self.positions: Positions = lambda partitions: {}
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._consumer: Any = None
        self._owned: set[int] = set()
        self._lock = threading.Lock()  # partitions() is read by the metrics, beside poll()
        self.rebalances = 0

    def _context(self, **more: object) -> dict[str, object]:
        return {"bootstrap": self.bootstrap, "topic": self.topic, "group": self.group_id, **more}

    def _open(self) -> Any:
        if self._consumer is not None:
            return self._consumer
        try:
            consumer = _construct(
                KafkaConsumer,
                bootstrap_servers=self.bootstrap,
                client_id=self._client_id,
                group_id=self.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=SESSION_TIMEOUT_MS,
                heartbeat_interval_ms=HEARTBEAT_MS,
                max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
                bootstrap_timeout_ms=int(self._timeout_s * 1000),
                request_timeout_ms=int(self._timeout_s * 1000) + 1000,
            )
        except Exception as exc:
            raise _wrap(exc, "cannot connect the consumer", **self._context()) from exc
        deadline = time.monotonic() + self._timeout_s
        while not consumer.partitions_for_topic(self.topic) and time.monotonic() < deadline:
            time.sleep(0.1)  # metadata for the topic may not have arrived yet
        if not consumer.partitions_for_topic(self.topic):
            consumer.close()
            raise LogRejected("topic does not exist", **self._context())
        consumer.subscribe([self.topic], listener=_Listener(self))
        self._consumer = consumer
        return consumer

    def _revoked(self, partitions: list[int]) -> None:
        with self._lock:
            self._owned.difference_update(partitions)
        if partitions:
            log.info("partitions %s handed over", sorted(partitions))

    def _assigned_now(self, partitions: list[int]) -> None:
        self.rebalances += 1
        with self._lock:
            self._owned.update(partitions)
        if not partitions:
            return
        try:
            offsets = self.positions(sorted(partitions))
        except Exception:  # kafka-python swallows a listener's error: say it, read from 0
            log.exception("cannot read the committed offsets of partitions %s; reading them "
                          "from their start (replayed events are dropped as duplicates)",
                          sorted(partitions))
            offsets = {}
        for partition in partitions:
            self._consumer.seek(TopicPartition(self.topic, partition), offsets.get(partition, 0))
        log.info("partitions %s assigned, from offsets %s", sorted(partitions),
                 {p: offsets.get(p, 0) for p in sorted(partitions)})

    def all_partitions(self) -> list[int]:
        """Every partition of the topic."""
        found = self._open().partitions_for_topic(self.topic) or set()
        return sorted(found)

    def partitions(self) -> list[int]:
        """The partitions the group assigned to this member now (none before the first poll)."""
        self._open()
        with self._lock:
            return sorted(self._owned)

    def seek(self, positions: dict[int, int]) -> None:
        """Read each listed partition this member owns from that offset next (the others are
        sought when the group assigns them)."""
        consumer = self._open()
        with self._lock:
            owned = set(self._owned)
        for partition, offset in positions.items():
            if partition in owned:
                consumer.seek(TopicPartition(self.topic, partition), offset)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to max_records records of the owned partitions (a rebalance may run inside)."""
        return poll_records(self._open(), max_records, timeout_s, self._context())

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of every partition of the topic."""
        consumer = self._open()
        tps = [TopicPartition(self.topic, p) for p in self.all_partitions()]
        return end_offsets(consumer, tps, self._timeout_s, self._context())

    def close(self) -> None:
        """Leave the group (its partitions go to the other members at once) and disconnect."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
