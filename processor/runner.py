"""The consume loop: poll a micro-batch, apply it to the state, commit it with its offsets.

Exactly-once effect: the next offset of every partition is stored in the warehouse in the same
transaction as the data it produced. On start the processor restores its state from the
warehouse (processor/restore.py) and seeks the log to the stored offsets, so a crash at any
point replays only what was not committed, and replayed duplicates are dropped by event_id.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from journey.errors import RetryableError
from journey.facts import Changes
from journey.log.base import LogConsumer, Record
from journey.schema import Event
from processor import heap
from processor.catchup import Caught, catch_up
from processor.errors import LogBehindWarehouseError, UndecodableRecordError
from processor.restore import restore
from processor.state import JourneyState
from warehouse.maintain import Step
from warehouse.tables import ModelRow
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")
T = TypeVar("T")
TOP_UP_WAIT_S = 0.05  # Kafka needs a moment to return its next fetch
TOP_UP_BUDGET_S = 0.25  # most time spent topping a batch up before it is applied
# Commits between two checks whether a table needs compacting (a catalog query of about 20 ms).
COMPACT_CHECK_EVERY = 10
# A round of maintenance runs a step at a time after commits (and while idle), until this many
# seconds have passed each time, instead of all at once: in a 30-minute trickle at 1k events/s a
# whole round took 6-25 s, during which nothing was committed and the API stood still.
MAINTAIN_BUDGET_S = 1.0
# A trim walks the heap's free lists (30-40 ms for a fragmented 600 MB heap): after a commit at
# most this often, so a trickle of small commits does not pay it each time.
TRIM_EVERY_S = 30.0


@dataclass(slots=True)
class BatchStats:
    """What one micro-batch did, for logs and metrics."""

    records: int = 0
    new_events: int = 0
    dead_letters: int = 0
    extended: int = 0
    rederived: int = 0
    seconds: float = 0.0
    commit_seconds: float = 0.0


class Processor:
    """Runs the consume loop over one log and one warehouse."""

    def __init__(
        self,
        consumer: LogConsumer,
        writer: WarehouseWriter,
        state: JourneyState,
        model_rows: Sequence[ModelRow],
        batch_max_records: int,
        poll_timeout_s: float,
        dead_letter: Callable[[Record, Exception], None],
        maintain_every: int = 100,
        rebuild_workers: int | None = None,
    ) -> None:
        self._consumer = consumer
        self._writer = writer
        self._state = state
        self._model_rows = list(model_rows)
        self._batch_max = batch_max_records
        self._poll_timeout = poll_timeout_s
        self._dead_letter = dead_letter
        self._maintain_every = maintain_every
        self._rebuild_workers = rebuild_workers
        self._commits = 0
        self._upkeep: list[Step] = []  # the maintenance steps of the round under way
        self._trimmed = time.monotonic()
        self._offsets: dict[int, int] = {}
        self._watermark: datetime | None = None
        self._synced = 0  # the snapshot the state reflects (shared writers catch up from it)
        self.caught = Caught(0, 0, 0)  # what catching up has read in all, for metrics

    def close(self) -> None:
        """Close the log consumer (a Kafka consumer's connections); the writer is the caller's."""
        self._consumer.close()

    def start(self, rebuild: bool = False) -> None:
        """Restore the state from the warehouse (rebuilding it first if asked, or if the stored
        models differ) and seek the log to the committed offsets."""
        # Shared writers restore under the commit lock: the state is then exactly the snapshot
        # it starts catching up from.
        with self._writer.exclusive() as committed:
            _check_log_not_behind(committed.offsets, self._consumer.end_offsets())
            restored = restore(self._state, self._writer, self._model_rows, force=rebuild,
                               workers=self._rebuild_workers)
            self._synced = self._writer.state().version
            committed = self._writer.state()
        self._trim()  # the restore's Arrow slices and decoded rows are freed, not yet returned
        # A group member owns no partition before its first poll; the group's assignment seeks.
        self._offsets = {p: committed.offsets.get(p, 0) for p in self._consumer.partitions()}
        self._watermark = committed.watermark
        self._consumer.seek(self._offsets)
        log.info("processor started: %d customers, %d stored events, offsets %s",
                 restored.customers, restored.events, self._offsets)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the warehouse's commit lock with the state caught up with every commit other
        processors made (a no-op lock for a warehouse's only writer)."""
        with self._writer.exclusive() as committed:
            if self._writer.shared and committed.version != self._synced:
                # Records are polled and their offsets taken: a failure here must not end the
                # batch, so a retryable one is retried (catching up again from the same snapshot
                # gives the same state).
                caught = _until_done(lambda: catch_up(self._state, self._writer, self._synced),
                                     "catching up")
                self.caught = Caught(self.caught.events + caught.events,
                                     self.caught.customers + caught.customers,
                                     self.caught.erasures + caught.erasures)
                log.debug("caught up from snapshot %d to %d: %s", self._synced,
                          committed.version, caught)
            yield
            self._synced = self._writer.state().version

    @property
    def customers(self) -> int:
        """Customers held by the state."""
        return self._state.customers

    @property
    def state(self) -> JourneyState:
        """The state batches are applied to (an erasure forgets a customer in it)."""
        return self._state

    @property
    def offsets(self) -> dict[int, int]:
        """The next offset of each partition, as committed (between batches)."""
        return dict(self._offsets)

    def replace_state(self, state: JourneyState, model_rows: Sequence[ModelRow]) -> None:
        """Go on with a state restored under other stage models (between batches only)."""
        self._state = state
        self._model_rows = list(model_rows)

    def run_once(self) -> BatchStats:
        """Poll and commit one micro-batch; a batch with no record commits nothing."""
        began = time.perf_counter()
        records = self._consumer.poll(self._batch_max, self._poll_timeout)
        # When behind, top the batch up with what is already available (Kafka hands out about
        # one fetch per poll): a commit has a fixed cost, so a bigger batch is cheaper per event.
        # The budget is short so that a trickle is committed (and visible) within a moment.
        deadline = time.monotonic() + TOP_UP_BUDGET_S
        while records and len(records) < self._batch_max and time.monotonic() < deadline:
            try:
                more = self._consumer.poll(self._batch_max - len(records), TOP_UP_WAIT_S)
            except RetryableError as exc:  # raising would drop the records already polled
                log.warning("topping the batch up failed; applying what was polled: %s", exc)
                break
            if not more:
                break
            records += more
        stats = BatchStats(records=len(records))
        if not records:
            if self._upkeep:  # idle: go on with the round under way
                with self.exclusive():
                    self._maintain(False)
            return stats
        events: list[Event] = []
        where: dict[str, tuple[int, int]] = {}
        for record in records:
            self._offsets[record.partition] = record.offset + 1
            try:
                event = decode(record)
            except UndecodableRecordError as exc:
                self._dead_letter(record, exc)
                stats.dead_letters += 1
                continue
            events.append(event)
            where.setdefault(event.event_id, (record.partition, record.offset))
        with self.exclusive():
            applied = self._state.apply(events)
            stored = [(e, *where[e.event_id]) for e in applied.new_events]
            for event in applied.new_events:
                if self._watermark is None or event.timestamp > self._watermark:
                    self._watermark = event.timestamp
            stats.commit_seconds = self._commit_until_done(stored, applied.changes)
        stats.new_events = len(stored)
        stats.extended, stats.rederived = applied.extended, applied.rederived
        stats.seconds = time.perf_counter() - began
        return stats

    def _commit_until_done(self, events: list[tuple[Event, int, int]], changes: Changes) -> float:
        # The state already holds these events: giving up on the commit would lose them, so a
        # retryable failure is retried here (a fatal one crashes, and the restart replays them).
        wait = 0.2
        began = time.perf_counter()
        while True:
            try:
                self._writer.commit(events, changes, dict(self._offsets), self._watermark)
                break
            except RetryableError as exc:
                log.warning("commit failed, retrying in %.1fs: %s", wait, exc)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)
        took = time.perf_counter() - began
        self._commits += 1
        self._maintain(self._commits % self._maintain_every == 0)
        if time.monotonic() - self._trimmed >= TRIM_EVERY_S:
            self._trim()
        return took

    def _maintain(self, new_round: bool) -> None:
        """Start a round of maintenance if due and none is under way, run some of the round's
        steps (MAINTAIN_BUDGET_S), or else check whether a table needs compacting."""
        try:
            if new_round and not self._upkeep:
                self._upkeep = self._writer.maintenance_steps()
            if self._upkeep:
                self._trim()  # maintenance's DuckDB memory comes on top of what is resident
                self._writer.run_maintenance(self._upkeep, MAINTAIN_BUDGET_S)
            elif self._commits % COMPACT_CHECK_EVERY == 0:
                self._writer.compact()
        except RetryableError as exc:  # maintenance can wait for the next round
            self._upkeep = []
            log.warning("warehouse maintenance failed: %s", exc)

    def _trim(self) -> None:
        heap.trim()
        self._trimmed = time.monotonic()

    def run(self, should_stop: Callable[[], bool], backoff_s: float = 1.0,
            after_batch: Callable[[BatchStats], None] | None = None) -> None:
        """Loop until should_stop(); retry retryable failures of the log with backoff.

        after_batch(stats) runs after every poll, empty or not (metrics, rebuild requests).
        """
        wait = backoff_s
        while not should_stop():
            try:
                stats = self.run_once()
            except RetryableError as exc:
                log.warning("retryable failure, retrying in %.1fs: %s", wait, exc)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)
                continue
            wait = backoff_s
            if after_batch is not None:
                after_batch(stats)
            if stats.records:
                log.info(
                    "batch: %d records, %d new events, %d customers extended, %d components "
                    "re-derived, %.3fs",
                    stats.records, stats.new_events, stats.extended, stats.rederived,
                    stats.seconds,
                )


def _until_done(work: Callable[[], T], what: str) -> T:
    wait = 0.2
    while True:
        try:
            return work()
        except RetryableError as exc:
            log.warning("%s failed, retrying in %.1fs: %s", what, wait, exc)
            time.sleep(wait)
            wait = min(wait * 2, 30.0)


def _check_log_not_behind(committed: dict[int, int], ends: dict[int, int]) -> None:
    """A log that ends before the committed offsets was replaced (or lost its file): seeking
    there would skip every record it gets until it reaches them again."""
    behind = {p: (ends.get(p, 0), o) for p, o in committed.items() if ends.get(p, 0) < o}
    if behind:
        p, (end, offset) = min(behind.items())
        raise LogBehindWarehouseError(
            f"the log ends before the warehouse's committed offsets on {len(behind)} partitions "
            f"(partition {p}: log ends at {end}, warehouse committed {offset}); the log was "
            "replaced or lost", path="log", partition=p, log_end=end, committed=offset)


def decode(record: Record) -> Event:
    """The canonical event in a record, or UndecodableRecordError."""
    try:
        return Event.from_json(record.value)
    except ValueError as exc:
        raise UndecodableRecordError(
            "record is not a canonical event", partition=record.partition, offset=record.offset
        ) from exc
