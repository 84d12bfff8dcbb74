"""`journey rebuild` beside a running processor: a request file in, a progress file out.

The running processor holds the warehouse's writer lock, so a second process cannot commit a
rebuild. Instead `journey rebuild` writes REQUEST under the data dir; the processor checks it
between batches, re-reads its stage model settings, re-derives every derived table in one
DuckLake transaction (readers see the old version or the new one, never a mix) and goes on
consuming. It reports in PROGRESS, which the command polls for its progress bar.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path

import msgspec

from processor import fingerprint
from processor.config import core_config
from processor.models_table import model_rows
from processor.restore import restore
from processor.runner import Processor
from processor.settings import ProcessorSettings
from processor.state import JourneyState
from warehouse.writer import WarehouseWriter

log = logging.getLogger("journey.processor")
REQUEST = "rebuild/request.json"
PROGRESS = "rebuild/progress.json"
WRITE_EVERY_S = 0.25  # a progress file per rebuild chunk would cost more than it tells


class Status(msgspec.Struct, frozen=True):
    """What the processor says about one rebuild request."""

    id: str
    state: str  # running, done or failed
    phase: str = ""
    done: int = 0
    total: int = 0
    version: int | None = None
    error: str | None = None


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)  # a reader never sees half a file


def ask(data_dir: Path) -> str:
    """Ask the running processor for a rebuild; the request's id."""
    request_id = uuid.uuid4().hex
    _write(data_dir / REQUEST, msgspec.json.encode({"id": request_id}))
    return request_id


def withdraw(data_dir: Path, request_id: str) -> None:
    """Take back a request the processor has not picked up yet."""
    if pending(data_dir) == request_id:
        (data_dir / REQUEST).unlink(missing_ok=True)


def pending(data_dir: Path) -> str | None:
    """The id of the request waiting for the processor, if any."""
    try:
        return str(msgspec.json.decode((data_dir / REQUEST).read_bytes())["id"])
    except (FileNotFoundError, msgspec.DecodeError, KeyError, TypeError):
        return None


def status(data_dir: Path) -> Status | None:
    """The last status the processor reported."""
    try:
        return msgspec.json.decode((data_dir / PROGRESS).read_bytes(), type=Status)
    except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
        return None


class Reporter:
    """A rebuild's progress callback that writes PROGRESS at most every WRITE_EVERY_S."""

    def __init__(self, data_dir: Path, request_id: str) -> None:
        self._path = data_dir / PROGRESS
        self._id = request_id
        self._last = 0.0

    def report(self, status: Status) -> None:
        """Write status now."""
        _write(self._path, msgspec.json.encode(status))
        self._last = time.monotonic()

    def __call__(self, phase: str, done: int, total: int) -> None:
        if time.monotonic() - self._last >= WRITE_EVERY_S:
            self.report(Status(self._id, "running", phase, done, total))


def serve_request(settings: ProcessorSettings, processor: Processor,
                  writer: WarehouseWriter) -> bool:
    """Run a pending rebuild request, if any, between two batches; True if one was served."""
    if pending(settings.data_dir) is None:
        return False
    # Processors sharing a warehouse read one request file: the first to take the lock serves.
    with processor.exclusive():
        return _serve(settings, processor, writer)


def _serve(settings: ProcessorSettings, processor: Processor, writer: WarehouseWriter) -> bool:
    request_id = pending(settings.data_dir)
    if request_id is None:
        return False
    (settings.data_dir / REQUEST).unlink(missing_ok=True)
    reporter = Reporter(settings.data_dir, request_id)
    reporter.report(Status(request_id, "running", "starting"))
    try:
        # The model files (and JOURNEY_MODELS) are read again: that is the point of the request.
        fresh = ProcessorSettings(data_dir=settings.data_dir)
        config = core_config(fresh)
    except Exception as exc:  # e.g. a broken model file: go on with the old models, say why
        log.error("rebuild requested, but the stage models do not load: %s", exc)
        reporter.report(Status(request_id, "failed", error=str(exc)))
        return True
    rows = list(model_rows(config.models))
    log.info("rebuild requested: re-deriving every derived table with models %s",
             ", ".join(fresh.models))
    state = JourneyState(config, writer)
    try:
        restored = restore(state, writer, rows, force=True, progress=reporter,
                           workers=fresh.workers)
    except Exception as exc:
        # The rebuild may have committed before failing: the old state no longer matches the
        # warehouse, so the processor stops and its restart restores (and rebuilds) afresh.
        reporter.report(Status(request_id, "failed", error=str(exc)))
        raise
    processor.replace_state(state, rows)
    fingerprint.record(settings.data_dir, fingerprint.fingerprint(config))
    version = writer.state().version
    reporter.report(Status(request_id, "done", "done", restored.events, restored.events,
                           version=version))
    log.info("rebuild done: %d customers from %d events (snapshot %d)",
             restored.customers, restored.events, version)
    return True
