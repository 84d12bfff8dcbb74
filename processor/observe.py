"""What the processor does between two batches: record its metrics, serve rebuild requests.

The series (journey/metrics.py, PROCESSOR_REGISTRY) are written to a textfile under the data dir
that the serving process's /metrics appends (under `journey up` the processor is a child
process), and served on --metrics-port when `journey processor` runs alone elsewhere.
"""

from __future__ import annotations

import logging
import time

from journey import metrics
from journey.errors import RetryableError
from journey.log.base import LogConsumer
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
            metrics.PROCESSOR_LAST_COMMIT.set(time.time())
        if serve_request(self._settings, self._processor, self._writer):
            metrics.PROCESSOR_REBUILDS.inc()
            self._refreshed = 0.0
        if time.monotonic() - self._refreshed >= REFRESH_S:
            self.refresh()

    def refresh(self) -> None:
        """Update the gauges and write the textfile."""
        self._refreshed = time.monotonic()
        metrics.PROCESSOR_CUSTOMERS.set(self._processor.customers)
        committed = self._processor.offsets
        try:
            ends = self._consumer.end_offsets()
        except RetryableError as exc:  # the lag can wait for the log to come back
            log.debug("end offsets unavailable: %s", exc)
            ends = {}
        # Every partition this processor reads gets a series, also one nothing was written to.
        for partition in sorted(set(committed) | set(ends)):
            lag = max(0, ends.get(partition, 0) - committed.get(partition, 0))
            metrics.PROCESSOR_LAG.labels(partition=str(partition)).set(lag)
        try:
            metrics.write_textfile(self._settings.data_dir)
        except OSError as exc:  # metrics must never stop the pipeline
            log.warning("cannot write the processor's metrics file: %s", exc)
