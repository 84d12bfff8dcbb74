"""SPEC 6.5 with the real processor, warehouse and embedded log: one test per fault.

Each test builds a small data directory (events through the log, the processor, an erasure
whose raw records the log still holds, as a Kafka topic would, and dead letters), injects one
fault, and checks that the processor refuses to start without deleting a file, that
`journey doctor` names the damaged path, that `journey doctor --repair` repairs it, and that
after a restart the warehouse holds the same events and customers and the erased customer
stays erased.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.normalize import normalize
from ingest.routes import partition_key
from journey.cli import app
from journey.deadletter import DeadLetter, DeadLetterStore, list_dead_letters
from journey.errors import FatalError
from journey.log.embedded import EmbeddedLog
from journey.settings import CommonSettings
from processor.app import build
from processor.erasure import request
from processor.settings import ProcessorSettings
from warehouse import erasure_record
from warehouse.errors import StoreDamagedError
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
CUSTOMERS = 40
PARTITIONS = 3
VICTIM = "victim-7c1d@example.com"
STEPS = ("Product Viewed", "Checkout Started", "Order Completed")


def _messages(user: str, email: str, minute: int) -> list[dict[str, Any]]:
    at = T0 + timedelta(minutes=minute)
    msgs: list[dict[str, Any]] = [{
        "type": "identify", "userId": user, "anonymousId": f"anon-{user}",
        "messageId": f"{user}-id", "traits": {"email": email}, "timestamp": at.isoformat()}]
    msgs += [{"type": "track", "event": name, "userId": user, "messageId": f"{user}-{i}",
              "timestamp": (at + timedelta(seconds=10 * (i + 1))).isoformat()}
             for i, name in enumerate(STEPS)]
    return msgs


def _records(msgs: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    received = datetime.now(UTC)
    return [(partition_key(e), e.to_json()) for e in (normalize(m, received) for m in msgs)]


def _append(data: Path, records: list[tuple[bytes, bytes]]) -> None:
    log = EmbeddedLog(data / "log", PARTITIONS)
    try:
        log.append(records)
    finally:
        log.close()


def run_processor(data: Path) -> None:
    """The real processor (processor.app.build) until the log is consumed, then stopped."""
    processor, writer = build(ProcessorSettings(data_dir=data, poll_timeout_s=0.01),
                              threading.Event())
    try:
        while processor.run_once().records:
            pass
    finally:
        writer.close()


def contents(data: Path) -> dict[str, Any]:
    """What the warehouse holds: event ids, customers, the victim's events."""
    with WarehouseWriter(WarehouseSettings(data_dir=data, lock_timeout_s=5)) as writer:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            out: list[tuple[Any, ...]] = []
            for batch in writer.scan(sql):
                out += list(zip(*batch.to_pydict().values(), strict=True))
            return sorted(out)

        return {"events": rows("SELECT event_id FROM events"),
                "customers": rows("SELECT customer_id, event_count FROM customers"),
                "victim": rows(f"SELECT customer_id FROM identities WHERE value = '{VICTIM}'")}


def files(data: Path) -> set[str]:
    """Every file under data but SQLite's -wal/-shm, which come and go with its connections
    (the last one to close folds the WAL into the database and removes both)."""
    return {str(p.relative_to(data)) for p in data.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


@dataclass
class Store:
    data: Path
    before: dict[str, Any]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A data dir: 40 customers, an erased one whose records were appended again (a Kafka topic
    cannot delete them), 5 dead letters; small commits become Parquet files, not inlined rows.
    Built once; each test gets a fresh copy at the same path (the catalog names its files by
    absolute path)."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("JOURNEY_KAFKA_BOOTSTRAP", "JOURNEY_MODELS", "JOURNEY_CATALOG_URL"):
            env.delenv(name, raising=False)
        env.setenv("JOURNEY_INLINE_ROW_LIMIT", "5")
        env.setenv("JOURNEY_LOG_LEVEL", "warning")  # the CLI sets it; restored afterwards
        data = tmp_path_factory.mktemp("doctor") / "data"
        victim = _records(_messages("victim-7c1d", VICTIM, 0))
        people = [m for c in range(CUSTOMERS) for m in _messages(f"u{c}", f"p{c}@x.org", c + 1)]
        _append(data, victim + _records(people))
        DeadLetterStore(data / "deadletter").append([
            DeadLetter(received_at=T0, reason="bad", event={"i": i}) for i in range(5)])
        run_processor(data)
        result = request(CommonSettings(data_dir=data), VICTIM, 60)
        assert result is not None and result["status"] == "erased", result
        _append(data, victim)  # received before the erasure: a replay must drop them
        run_processor(data)
        before = contents(data)
        assert len(before["customers"]) == CUSTOMERS and not before["victim"]
        assert len(erasure_record.read(data)) >= 2  # user_id, anonymous_id, email
        shutil.copytree(data, data.with_name("template"))
        yield Store(data, before)


@pytest.fixture
def store(built: Store) -> Store:
    """A fresh copy of the built data dir."""
    shutil.rmtree(built.data)
    shutil.copytree(built.data.with_name("template"), built.data)
    return built


def doctor(data: Path, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["doctor", "--data-dir", str(data), *more])
    return result.exit_code, result.output


def refused_without_deleting(data: Path, error: type[Exception] = StoreDamagedError) -> str:
    """The processor stops with the typed error and every file is still there."""
    kept = files(data)
    with pytest.raises(error) as raised:
        run_processor(data)
    assert kept <= files(data)
    assert "journey doctor --repair" in str(raised.value) or error is not StoreDamagedError
    return str(raised.value)


def repaired_and_same(store: Store, path: Path) -> str:
    """doctor names the path and fails; --repair succeeds; the restart has the same data."""
    code, out = doctor(store.data)
    assert code == 1 and str(path) in out and "problem" in out, out
    code, out = doctor(store.data, "--repair")
    assert code == 0, out
    run_processor(store.data)
    assert contents(store.data) == store.before
    code, again = doctor(store.data)
    assert code == 0, again
    return out


def _lake_file(data: Path, table: str) -> Path:
    found = sorted((data / "warehouse" / "data" / "main" / table).glob("*.parquet"))
    assert found, f"no Parquet file of {table}"
    return found[0]


def test_6_5_missing_catalog_stops_the_processor_and_doctor_rereads_the_log(store: Store) -> None:
    catalog = store.data / "warehouse" / "catalog.sqlite"
    for path in catalog.parent.glob("catalog.sqlite*"):
        path.unlink()
    assert "catalog" in refused_without_deleting(store.data)
    out = repaired_and_same(store, catalog)
    assert "re-reads the log" in out
    assert list((store.data / "quarantine").rglob("*.parquet"))  # moved aside, not deleted


def test_6_5_damaged_catalog_stops_the_processor_and_doctor_rereads_the_log(store: Store) -> None:
    catalog = store.data / "warehouse" / "catalog.sqlite"
    head = catalog.read_bytes()
    catalog.write_bytes(head[: len(head) // 3])
    assert "cannot be read" in refused_without_deleting(store.data)
    repaired_and_same(store, catalog)
    assert list((store.data / "quarantine").rglob("catalog.sqlite"))


def test_6_5_missing_derived_file_is_rebuilt_from_the_stored_events(store: Store) -> None:
    victim = _lake_file(store.data, "customers")
    victim.unlink()
    assert str(victim) in refused_without_deleting(store.data)
    code, out = doctor(store.data, "--json")
    report = json.loads(out)
    assert code == 1 and not report["healthy"]
    assert {"store": "data file", "status": "problem", "path": str(victim),
            "message": "data file of table customers missing"} in report["findings"]
    out = repaired_and_same(store, victim)
    assert "derived every table again" in out


def test_6_5_damaged_events_file_is_reported_and_reread_from_the_log(store: Store) -> None:
    damaged = _lake_file(store.data, "events")
    body = damaged.read_bytes()
    damaged.write_bytes(body[:4] + b"\0" * (len(body) - 100) + body[-96:])  # same size
    refused_without_deleting(store.data)
    repaired_and_same(store, damaged)


def test_6_5_damaged_log_is_salvaged_at_its_offsets(store: Store) -> None:
    log = store.data / "log" / "journey.events.sqlite3"
    body = bytearray(log.read_bytes())
    page = 4096
    body[page : 2 * page] = b"\xff" * page  # the second page: a table's root
    log.write_bytes(bytes(body))
    refused_without_deleting(store.data, FatalError)
    out = repaired_and_same(store, log)
    assert "copied the" in out
    assert list((store.data / "quarantine").rglob("journey.events.sqlite3"))


def test_6_5_lost_log_stops_the_processor_and_new_records_are_not_skipped(store: Store) -> None:
    log = store.data / "log" / "journey.events.sqlite3"
    for path in log.parent.iterdir():
        path.unlink()
    _append(store.data, [])  # the collector starts a new, empty log
    assert "log ends before" in refused_without_deleting(store.data)
    repaired_and_same(store, log)
    _append(store.data, _records(_messages("late", "late@x.org", 90)))
    run_processor(store.data)  # the new log's offsets 0.. are read, not skipped
    assert len(contents(store.data)["customers"]) == CUSTOMERS + 1


def test_6_5_damaged_dead_letters_move_aside_once_no_processor_runs(store: Store) -> None:
    letters = store.data / "deadletter" / "collector.jsonl"
    with letters.open("ab") as f:
        f.write(b"{not json at all\n" + b'{"reason": "cut sh')  # garbage, then a cut line
    run_processor(store.data)  # the processor does not read them: it starts
    code, out = doctor(store.data)
    assert code == 1 and str(letters) in out and "2 of 7 lines" in out, out
    with WarehouseWriter(WarehouseSettings(data_dir=store.data)):  # as a running processor
        code, out = doctor(store.data, "--repair")
    assert code == 2 and "holds the warehouse" in out and "repaired" not in out, out
    code, out = doctor(store.data, "--repair")
    assert code == 0, out
    assert len(list_dead_letters(store.data / "deadletter")) == 5
    assert letters.read_bytes().endswith(b"\n")
    aside = list((store.data / "quarantine").rglob("collector.jsonl.bad-lines"))
    assert aside and aside[0].read_bytes().count(b"\n") == 2
    assert contents(store.data) == store.before
