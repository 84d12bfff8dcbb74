"""Erasure (SPEC 2.4) applied by the single writer of the warehouse.

For each queued request (processor/erasure_requests.py): find the customer holding the key,
delete its events and rows and record the hashes of its keys in one warehouse transaction,
forget it in the processor's memory, purge the lake's files, delete its records from the
embedded log and its dead letters, then publish the result. The processor applies requests at
its polls, between micro-batches' commits: records already polled but not yet applied carry a
`received_at` before the erasure and are dropped by the state like any replayed record.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journey.deadletter import rewrite_without
from journey.errors import JourneyError, RetryableError
from journey.log.base import ErasableLog, LogConsumer, Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event
from journey.settings import QUARANTINE, CommonSettings
from processor import erasure_requests as requests
from processor.erased import Erased, not_erased
from processor.sessions import micros
from processor.state import JourneyState
from warehouse import erase, erasure_record
from warehouse.errors import WarehouseLockedError
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")
CHECK_EVERY_S = 0.05  # how often polls look for queued requests


class Eraser:
    """Applies queued erasure requests with the warehouse writer (and the state, if running)."""

    def __init__(self, data_dir: Path, writer: WarehouseWriter, log_: object | None,
                 state: Callable[[], JourneyState | None] = lambda: None) -> None:
        self.data_dir = data_dir
        self.writer = writer
        self.log = log_
        self.state = state
        # Where requests are applied: under the processor's commit lock, with its state caught
        # up (processors sharing a warehouse serve one queue; the first to take the lock wins).
        self.guard: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext

    def apply_pending(self) -> int:
        """Apply every queued request; how many."""
        if not requests.pending(self.data_dir):
            return 0
        with self.guard():
            return self._apply_pending()

    def _apply_pending(self) -> int:
        queued = requests.pending(self.data_dir)
        for rid, body in queued:
            try:
                result = self.erase(str(body["key"]), rid, body)
            except RetryableError:
                raise  # the request stays queued; the loop retries after its backoff
            except JourneyError as exc:  # never a restart loop over one request
                log.error("erasure failed: %s", exc.message)
                result = {"status": "failed", "message": exc.message}
            requests.finish(self.data_dir, rid, result)
        return len(queued)

    def erase(self, key: str, rid: str | None = None,
              body: dict[str, Any] | None = None) -> requests.Result:
        """Erase the customer holding key everywhere this product stores it (a request whose
        commit was made before a crash is finished from what its body recorded)."""
        began = time.perf_counter()
        found = erase.find(self.writer, key)
        if found is None and body is not None and "customer_id" in body:
            found = erase.Found(str(body["customer_id"]),
                                tuple((str(t), str(v)) for t, v in body["keys"]))
            now = datetime.fromisoformat(str(body["erased_at"]))
        elif found is None:
            return {"status": "not_found"}
        else:
            now = datetime.now(UTC)
            if rid is not None:
                requests.begin(self.data_dir, rid, {
                    "key": key, "customer_id": found.customer_id,
                    "keys": [list(k) for k in found.keys], "erased_at": now.isoformat()})
            erase.delete_customer(self.writer, found, now)
        # The durable copy outside the lake (also when finishing a request after a crash).
        erasure_record.append(self.data_dir, found.hashes, now)
        state = self.state()
        if state is not None:
            state.forget(found.customer_id, found.hashes, micros(now))
        erase.purge(self.writer)
        marks: Erased = dict.fromkeys(found.hashes, micros(now))
        values = [v for _, v in found.keys]
        records = 0
        if isinstance(self.log, ErasableLog):
            records = self.log.erase(lambda value: _record_matches(value, marks, values))
        else:
            log.info("erasure: the Kafka topic keeps the customer's raw records until its "
                     "retention ends; a replay drops them")
        letters = rewrite_without(self.data_dir / "deadletter",
                                  lambda line: _holds_value(line, values))
        quarantine = self.data_dir / QUARANTINE
        removed = quarantine.exists()
        if removed:
            # Damaged files a repair moved aside cannot be read to remove one customer from
            # them; SPEC 2.4 wins over keeping them for inspection.
            shutil.rmtree(quarantine)
            log.warning("erasure: removed %s (files `journey doctor --repair` had moved aside), "
                        "which may have held the erased customer's data", quarantine)
        log.info("erased customer %s: %d keys, %d log records, %d dead letters, %.2fs",
                 found.customer_id, len(found.keys), records, letters,
                 time.perf_counter() - began)
        return {"status": "erased", "customer_id": found.customer_id, "keys": len(found.keys),
                "log_records": records, "dead_letters": letters, "quarantine_removed": removed,
                "erased_at": now.isoformat(), "version": self.writer.state().version}


class ErasingConsumer:
    """A LogConsumer that lets the eraser run at its polls (no batch is being applied then)."""

    def __init__(self, inner: LogConsumer, eraser: Eraser) -> None:
        self.inner = inner
        self.eraser = eraser
        self._checked = 0.0

    def partitions(self) -> list[int]:
        """All partitions of the topic."""
        return self.inner.partitions()

    def seek(self, positions: dict[int, int]) -> None:
        """Read each listed partition from that offset next."""
        self.inner.seek(positions)

    def poll(self, max_records: int, timeout_s: float) -> list[Record]:
        """Apply queued erasures (at most every CHECK_EVERY_S), then poll."""
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self.eraser.apply_pending()
        return self.inner.poll(max_records, timeout_s)

    def end_offsets(self) -> dict[int, int]:
        """The offset after the last record of each partition."""
        return self.inner.end_offsets()

    def close(self) -> None:
        """Close the inner consumer."""
        self.inner.close()


def apply_without_processor(data_dir: Path, log_: Callable[[], object | None]) -> bool:
    """Apply the queue here if no processor holds the warehouse; whether it could."""
    if not requests.pending(data_dir):
        return False
    writer = WarehouseWriter(WarehouseSettings(data_dir=data_dir, lock_timeout_s=0.0))
    try:
        writer.open()
    except WarehouseLockedError:
        return False
    opened = None
    try:
        opened = log_()
        Eraser(data_dir, writer, opened).apply_pending()
    finally:
        writer.close()
        close = getattr(opened, "close", None)
        if close is not None:
            close()
    return True


def _record_matches(value: bytes, marks: Erased, values: list[str]) -> bool:
    try:
        event = Event.from_json(value)
    except ValueError:  # not a canonical event: look for the values themselves
        return _holds_value(value, values)
    return not not_erased(marks, [event])


def _holds_value(data: bytes, values: list[str]) -> bool:
    """Whether data holds one of the values as a whole JSON string (plain or inside JSON text)."""
    low = data.lower()
    for value in values:
        v = value.lower().encode()
        if b'"' + v + b'"' in low or b'\\"' + v + b'\\"' in low:
            return True
    return False


def request(settings: CommonSettings, key: str, timeout_s: float) -> requests.Result | None:
    """Erase the customer holding key and wait for the result (None: not applied in time)."""

    def open_log() -> object | None:
        # On Kafka a record cannot be deleted (see ErasableLog): nothing to open.
        if settings.kafka_bootstrap:
            return None
        return EmbeddedLog(settings.log_dir, settings.partitions, settings.topic)

    rid = requests.submit(settings.data_dir, key)
    return requests.wait(settings.data_dir, rid, timeout_s,
                         lambda: apply_without_processor(settings.data_dir, open_log))
