"""What the processor does between two batches: record its metrics, publish its member record,
serve rebuild requests.

The series (journey/metrics.py, PROCESSOR_REGISTRY) are written to this processor's textfile
under the data dir, which the serving process's /metrics appends (under `journey up` the
processor is a child process), and served on --metrics-port when `journey processor` runs alone
elsewhere. The member record (processor/member.py) is what `journey status` shows of it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import duckdb

from journey import metrics
from journey.errors import JourneyError, RetryableError
from journey.log.base import LogConsumer
from processor import member
from processor.rebuild_request import serve_request
from processor.runner import BatchStats, Processor
from processor.settings import ProcessorSettings
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")
REFRESH_S = 1.0  # lag and the textfile at most once a second: end offsets cost a log round trip


class BetweenBatches:
    """The processor loop's after_batch hook."""

    def __init__(self, settings: ProcessorSettings, processor: Processor,
                 consumer: LogConsumer, writer: WarehouseWriter) -> None:
        self._settings = settings
        self._processor = processor
        self._consumer = consumer
        self._writer = writer
        self._refreshed = 0.0
        self._me = member.this_process()
        self._last_commit: datetime | None = None
        self._lag_series: set[str] = set()

    def __call__(self, stats: BatchStats) -> None:
        if stats.records:
            metrics.PROCESSOR_RECORDS.inc(stats.records)
            metrics.PROCESSOR_EVENTS.inc(stats.new_events)
            metrics.PROCESSOR_DEAD_LETTERS.inc(stats.dead_letters)
            metrics.PROCESSOR_EXTENDED.inc(stats.extended)
            metrics.PROCESSOR_REDERIVED.inc(stats.rederived)
            metrics.PROCESSOR_BATCH_RECORDS.observe(stats.records)
            metrics.PROCESSOR_BATCH_SECONDS.observe(stats.seconds)
            metrics.PROCESSOR_COMMIT_SECONDS.observe(stats.commit_seconds)
            self._last_commit = datetime.now(UTC)
            metrics.PROCESSOR_LAST_COMMIT.set(self._last_commit.timestamp())
        if serve_request(self._settings, self._processor, self._writer):
            metrics.PROCESSOR_REBUILDS.inc()
            self._refreshed = 0.0
        if time.monotonic() - self._refreshed >= REFRESH_S:
            self.refresh()

    @property
    def member_id(self) -> str:
        """This processor's member id (its record's and its textfile's name)."""
        return self._me.id

    def refresh(self) -> None:
        """Update the gauges, write the textfile and the member record."""
        self._refreshed = time.monotonic()
        metrics.PROCESSOR_CUSTOMERS.set(self._processor.customers)
        owned = self._consumer.partitions()  # on Kafka: what the group assigned to it now
        try:
            ends = self._consumer.end_offsets()
        except RetryableError as exc:  # the lag can wait for the log to come back
            log.debug("end offsets unavailable: %s", exc)
            ends = {}
        lags = member.lags(owned, self._committed(), ends)
        metrics.PROCESSOR_PARTITIONS.set(len(owned))
        shown = {str(p): lag.lag for p, lag in lags.items() if lag.lag is not None}
        # A partition handed to another processor is that one's series now; one whose log end
        # is unknown gets none (its last value would be stale, 0 would hide the outage).
        for handed in self._lag_series - set(shown):
            metrics.PROCESSOR_LAG.remove(handed)
        for partition, lag in shown.items():
            metrics.PROCESSOR_LAG.labels(partition=partition).set(lag)
        self._lag_series = set(shown)
        me = self._me
        caught = self._processor.caught
        record = member.Member(
            id=me.id, host=me.host, pid=me.pid, started_at=me.started_at,
            heartbeat=datetime.now(UTC), role="active",
            group=self._settings.group if self._settings.kafka_bootstrap else None,
            partitions=lags, last_commit=self._last_commit,
            customers=self._processor.customers,
            caught={"events": caught.events, "customers": caught.customers,
                    "erasures": caught.erasures})
        try:
            metrics.write_textfile(self._settings.data_dir, me.id)
            member.publish(self._settings.data_dir, record)
        except OSError as exc:  # metrics must never stop the pipeline
            log.warning("cannot write the processor's metrics file or member record: %s", exc)

    def _committed(self) -> dict[int, int]:
        # Read afresh: on Kafka a partition just handed over was committed by its last owner,
        # which neither this processor's offsets nor its writer's last state may show yet.
        try:
            return self._writer.committed_offsets()
        except (JourneyError, duckdb.Error) as exc:  # a real fault shows at the next commit
            log.debug("committed offsets unavailable: %s", exc)
            known = self._writer.state().offsets
            mine = self._processor.offsets
            return {p: max(known.get(p, 0), mine.get(p, 0)) for p in set(known) | set(mine)}

    def leave(self) -> None:
        """Remove the member record and the textfile: a clean stop (a killed processor's go
        stale, see processor/member.py)."""
        member.remove(self._settings.data_dir, self._me.id)
        metrics.remove_textfile(self._settings.data_dir, self._me.id)
