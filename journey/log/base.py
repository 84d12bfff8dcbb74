"""The log interface. Kafka and the embedded log implement it; one test suite runs against both.

Semantics follow Kafka's: a topic has a fixed number of partitions, records with the same key go
to the same partition (so one customer's events stay in order), and each partition is an ordered
sequence of records addressed by offset. The consumer does not commit offsets to the log: the
processor stores them atomically with its warehouse write and seeks to them on start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from the log."""

    partition: int
    offset: int
    key: bytes
    value: bytes


class LogProducer(Protocol):
    """Appends records; `append` returns only once every record is durably accepted."""

    def append(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Append (key, value) records; raise a RetryableError if they were not all accepted."""
        ...

    def close(self) -> None: ...


class LogConsumer(Protocol):
    """Reads every partition of the topic from explicit positions."""

    def partitions(self) -> list[int]:
        """All partitions of the topic."""
        ...

    def seek(self, positions: dict[int, int]) -> None:
        """Read each listed partition from that offset next (the next offset to read)."""
        ...

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Up to max_records records, waiting at most timeout_s for the first one."""
        ...

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of each partition (for lag)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ErasableLog(Protocol):
    """A log whose records can be deleted (the embedded log; SPEC 2.4 erasure).

    A Kafka topic cannot delete a record: there the topic's retention (7 days by default) bounds
    how long an erased customer's raw events stay, and the processor drops them when replayed.
    """

    def erase(self, match: Callable[[bytes], bool]) -> int:
        """Delete every record whose value matches, leaving no copy in the file; how many."""
        ...


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive), so both logs place a key alike."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (as in the Java client's Utils.murmur2)."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    r = 24
    h = (seed ^ length) & 0xFFFFFFFF
    length4 = length // 4
    for i in range(length4):
        i4 = i * 4
        k = (data[i4] & 0xFF) | ((data[i4 + 1] & 0xFF) << 8) | ((data[i4 + 2] & 0xFF) << 16)
        k |= (data[i4 + 3] & 0xFF) << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    extra = length % 4
    tail = length & ~3
    if extra >= 3:
        h ^= (data[tail + 2] & 0xFF) << 16
    if extra >= 2:
        h ^= (data[tail + 1] & 0xFF) << 8
    if extra >= 1:
        h ^= data[tail] & 0xFF
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    if h & 0x80000000:
        h -= 1 << 32
    return h
