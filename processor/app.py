"""Entry point of the processor role: wire log, warehouse, state and loop, then run."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType

from prometheus_client import start_http_server

from journey import metrics
from journey.deadletter import DeadLetter, DeadLetterStore
from journey.log.base import LogConsumer, Record
from journey.log.factory import open_consumer, open_group_consumer
from processor import gcpolicy, member
from processor.config import core_config
from processor.erasure import Eraser, ErasingConsumer
from processor.fingerprint import fingerprint, record, recorded
from processor.models_table import model_rows
from processor.observe import BetweenBatches
from processor.runner import Processor
from processor.settings import ProcessorSettings
from processor.state import JourneyState
from warehouse.errors import WarehouseLockedError
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")


def take_warehouse(writer: WarehouseWriter, stop: threading.Event) -> bool:
    """Open the writer, standing by while another processor holds the warehouse.

    One processor writes a warehouse at a time (README, "Scaling out"); a second instance waits
    here as a hot standby and takes over when the lock frees. False if stopped while waiting.
    """
    announced = False
    while not stop.is_set():
        try:
            writer.open()
            if announced:
                log.info("warehouse lock taken; this processor is now active")
            return True
        except WarehouseLockedError:
            if not announced:
                log.info("another processor holds the warehouse; standing by")
                announced = True
    return False


def build(settings: ProcessorSettings, stop: threading.Event) -> tuple[Processor, WarehouseWriter]:
    """A started processor over the configured log and warehouse."""
    processor, writer, _ = build_observed(settings, stop)
    return processor, writer


def build_observed(settings: ProcessorSettings,
                   stop: threading.Event) -> tuple[Processor, WarehouseWriter, BetweenBatches]:
    """build(), with the hook that records its metrics and serves rebuild requests."""
    config = core_config(settings)
    # On Kafka, processors share the warehouse and a consumer group divides the partitions
    # (README, "Scaling out"); the embedded log has one active processor and hot standbys.
    shared = bool(settings.kafka_bootstrap)
    # A short lock timeout: take_warehouse() keeps retrying, and says at once that it waits.
    writer = WarehouseWriter(WarehouseSettings(data_dir=settings.data_dir, lock_timeout_s=1.0),
                             shared=shared)
    if not take_warehouse(writer, stop):
        raise SystemExit(0)
    log_: LogConsumer
    try:
        if shared:
            group = open_group_consumer(settings, settings.group)
            group.positions = partial(_committed_positions, writer)
            log_ = group
        else:
            log_ = open_consumer(settings)
    except BaseException:
        writer.close()  # e.g. a damaged embedded log (LogCorrupt): release the lock
        raise
    eraser = Eraser(settings.data_dir, writer, log_)
    consumer = ErasingConsumer(log_, eraser)
    letters = DeadLetterStore(settings.data_dir / "deadletter", stage="processor")

    def dead_letter(record: Record, exc: Exception) -> None:
        letter = DeadLetter(
            received_at=None, reason=str(exc), event=record.value.decode("utf-8", "replace"),
            stage="processor", partition=record.partition, offset=record.offset,
        )
        letters.append([letter])

    processor = Processor(
        consumer=consumer,
        writer=writer,
        state=JourneyState(config, writer),
        model_rows=list(model_rows(config.models)),
        batch_max_records=settings.batch_max_records,
        poll_timeout_s=settings.poll_timeout_s,
        dead_letter=dead_letter,
        maintain_every=settings.maintain_every,
        rebuild_workers=settings.workers,
    )
    eraser.state = lambda: processor.state
    eraser.guard = processor.exclusive
    gcpolicy.tune()
    built_with = fingerprint(config)
    known = recorded(settings.data_dir)
    if known is not None and known != built_with:  # None: first start, or before this existed
        log.info("stage model rules or session settings changed since the derived tables were "
                 "built: rebuilding them before consuming")
    try:
        processor.start(rebuild=known is not None and known != built_with)
    except BaseException:
        processor.close()
        writer.close()  # a damaged store (StoreDamagedError) stops the start: release the lock
        raise
    record(settings.data_dir, built_with)
    gc.freeze()
    hook = BetweenBatches(settings, processor, consumer, writer)
    hook.refresh()
    return processor, writer, hook


def _committed_positions(writer: WarehouseWriter, partitions: list[int]) -> dict[int, int]:
    """Where a partition the group just assigned is read from: its committed offset."""
    committed = writer.committed_offsets()
    return {p: committed.get(p, 0) for p in partitions}


def stop_on_signal(stop: threading.Event) -> Callable[[int, FrameType | None], None]:
    """A SIGTERM/SIGINT handler that sets `stop` once and ignores further signals.

    Event.set takes a lock: a second signal arriving inside it (a parent's death signal and a
    supervisor's SIGTERM together) would wait for that lock in the same thread for ever, which
    left orphaned processors hanging. SIGKILL still ends the process."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()

    return on_signal


def run(settings: ProcessorSettings, metrics_port: int | None = None) -> None:
    """Run the processor until SIGTERM or SIGINT; serve its metrics on metrics_port if set."""
    stop = threading.Event()
    handler = stop_on_signal(stop)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    me = member.this_process()
    if metrics_port is not None:
        start_http_server(metrics_port, registry=metrics.processor_registry(me.id))
    # Until it consumes, only this thread says the processor is there (`journey status`).
    waiting = member.Standby(settings.data_dir, me,
                             "starting" if settings.kafka_bootstrap else "standby").start()
    try:
        processor, writer, hook = build_observed(settings, stop)
    except BaseException:
        waiting.stop()
        member.remove(settings.data_dir, me.id)
        raise
    waiting.stop()
    try:
        hook.refresh()  # the active record replaces a standby one the thread may have rewritten
        processor.run(stop.is_set, settings.retry_backoff_s, hook)
    finally:
        processor.close()
        writer.close()
        hook.leave()
