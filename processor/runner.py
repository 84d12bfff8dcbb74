"""The consume loop: poll a micro-batch, apply it to the state, commit it with its offsets.

Exactly-once effect: the next offset of every partition is stored in the warehouse manifest in
the same atomic commit as the data it produced. On start the processor re-derives its state from
the stored events and seeks the log to the stored offsets, so a crash at any point replays only
what was not committed, and replayed duplicates are dropped by event_id.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from journey.errors import RetryableError
from journey.log.base import LogConsumer, Record
from journey.schema import Event
from processor.errors import UndecodableRecordError
from processor.state import JourneyState
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")
GC_GEN0_THRESHOLD = 20_000  # allocations between young collections (CPython's default: 700)
TOP_UP_WAIT_S = 0.05  # Kafka needs a moment to return its next fetch
TOP_UP_BUDGET_S = 0.5  # most time spent topping a batch up (a commit of a backlog takes longer)


@dataclass(slots=True)
class BatchStats:
    """What one micro-batch did, for logs and metrics."""

    records: int = 0
    new_events: int = 0
    dead_letters: int = 0
    buckets: int = 0
    seconds: float = 0.0


class Processor:
    """Runs the consume loop over one log and one warehouse."""

    def __init__(
        self,
        consumer: LogConsumer,
        writer: WarehouseWriter,
        state: JourneyState,
        model_rows: list[object],
        batch_max_records: int,
        poll_timeout_s: float,
        dead_letter: Callable[[Record, Exception], None],
    ) -> None:
        self._consumer = consumer
        self._writer = writer
        self._state = state
        self._model_rows = model_rows
        self._batch_max = batch_max_records
        self._poll_timeout = poll_timeout_s
        self._dead_letter = dead_letter
        self._offsets: dict[int, int] = {}
        self._watermark: datetime | None = None

    def start(self) -> None:
        """Rebuild the state from the warehouse and seek the log to the committed offsets."""
        manifest = self._writer.state()
        # One apply over every stored event derives each component once.
        loaded = len(
            self._state.apply(
                event for chunk in self._writer.iter_events(50_000) for event, _, _ in chunk
            ).new_events
        )
        self._offsets = {p: manifest.offsets.get(p, 0) for p in self._consumer.partitions()}
        self._watermark = manifest.watermark
        self._consumer.seek(self._offsets)
        # Models may have changed since the last commit: publish the current definitions.
        self._writer.commit(
            events=[],
            buckets=self._state.bucket_facts(self._state.all_buckets()) if loaded else {},
            offsets=self._offsets,
            watermark=self._watermark,
            models=self._model_rows,  # type: ignore[arg-type]
        )
        # The state is long-lived (every event and derived row): keep the collector from walking
        # it on each full collection, and collect the young generation less often.
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
        log.info("processor started: %d stored events, offsets %s", loaded, self._offsets)

    def run_once(self) -> BatchStats:
        """Poll and commit one micro-batch; a batch with no record commits nothing."""
        began = time.perf_counter()
        records = self._consumer.poll(self._batch_max, self._poll_timeout)
        # When behind, top the batch up with what is already available (Kafka hands out about
        # one fetch per poll): a commit rewrites the touched buckets whole, so one big batch is
        # much cheaper than several small ones. Bounded by batch_max and by TOP_UP_BUDGET_S.
        deadline = time.monotonic() + TOP_UP_BUDGET_S
        while records and len(records) < self._batch_max and time.monotonic() < deadline:
            more = self._consumer.poll(self._batch_max - len(records), TOP_UP_WAIT_S)
            if not more:
                break
            records += more
        stats = BatchStats(records=len(records))
        if not records:
            return stats
        events: list[tuple[Event, int, int]] = []
        for record in records:
            self._offsets[record.partition] = record.offset + 1
            try:
                events.append((decode(record), record.partition, record.offset))
            except UndecodableRecordError as exc:
                self._dead_letter(record, exc)
                stats.dead_letters += 1
        applied = self._state.apply(event for event, _, _ in events)
        new_ids = {e.event_id for e in applied.new_events}
        stored = [item for item in events if item[0].event_id in new_ids]
        # A duplicate inside one batch must be stored once: keep the first occurrence.
        seen: set[str] = set()
        unique = []
        for item in stored:
            if item[0].event_id not in seen:
                seen.add(item[0].event_id)
                unique.append(item)
        for event, _, _ in unique:
            if self._watermark is None or event.timestamp > self._watermark:
                self._watermark = event.timestamp
        self._commit_until_done(unique, applied.touched_buckets)
        stats.new_events = len(unique)
        stats.buckets = len(applied.touched_buckets)
        stats.seconds = time.perf_counter() - began
        return stats

    def _commit_until_done(self, events: list[tuple[Event, int, int]], buckets: set[int]) -> None:
        # The state already holds these events: giving up on the commit would lose them, so a
        # retryable failure is retried here (a fatal one crashes, and the restart replays them).
        wait = 0.2
        while True:
            try:
                self._writer.commit(
                    events=events,
                    buckets=self._state.bucket_facts(buckets),
                    offsets=dict(self._offsets),
                    watermark=self._watermark,
                    models=None,
                )
                return
            except RetryableError as exc:
                log.warning("commit failed, retrying in %.1fs: %s", wait, exc)
                time.sleep(wait)
                wait = min(wait * 2, 30.0)

    def run(self, should_stop: Callable[[], bool], backoff_s: float = 1.0) -> None:
        """Loop until should_stop(); retry retryable failures of the log with backoff."""
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
            if stats.records:
                log.info(
                    "batch: %d records, %d new events, %d buckets, %.3fs",
                    stats.records,
                    stats.new_events,
                    stats.buckets,
                    stats.seconds,
                )


def decode(record: Record) -> Event:
    """The canonical event in a record, or UndecodableRecordError."""
    try:
        return Event.from_json(record.value)
    except (ValidationError, ValueError) as exc:
        raise UndecodableRecordError(
            "record is not a canonical event", partition=record.partition, offset=record.offset
        ) from exc
