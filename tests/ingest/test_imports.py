"""SPEC 1.1 native imports: call-centre and store exports (CSV, JSON Lines) via HTTP and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from ingest.app import create_app
from ingest.errors import InvalidEventError
from ingest.imports import import_items, row_message
from ingest.settings import IngestSettings
from journey.deadletter import list_dead_letters
from journey.import_cli import run_import
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event, IdentityKey

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "imports"
Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]


def events(log: EmbeddedLog, read_log: ReadLog) -> dict[str, Event]:
    found = [Event.from_json(r.value) for r in read_log(log)]
    return {e.event_id: e for e in found}


def post(client: TestClient, basic: Basic, name: str, kind: str, **params: str) -> Any:
    response = client.post("/v1/imports", params={"kind": kind, **params}, headers=basic(),
                           content=(FIXTURES / name).read_bytes())
    assert response.status_code == 200, response.text
    return response.json()


def test_1_1_call_csv_rows_become_call_completed_and_bad_rows_are_named_by_line(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
) -> None:
    body = post(client, basic, "calls.csv", "call")
    assert body["imported"] == 3
    rejected = {r["line"]: r["reason"] for r in body["rejected"]}
    assert sorted(rejected) == [4, 5, 6]
    assert "no identity key" in rejected[4]
    assert "duration_s is not a number" in rejected[5]
    assert "started_at is missing" in rejected[6]
    stored = events(log, read_log)
    assert sorted(stored) == ["call-C-1001", "call-C-1002", "call-C-1006"]
    first = stored["call-C-1001"]
    assert (first.event, first.channel, first.source, first.medium) == (
        "Call Completed", "call", "call", "(none)")
    assert first.timestamp == datetime(2024, 4, 30, 9, 15, tzinfo=UTC)
    assert set(first.keys) == {IdentityKey(type="user_id", value="u-17"),
                               IdentityKey(type="email", value="ann@example.com"),
                               IdentityKey(type="phone", value="15550100001")}
    assert first.properties["duration_s"] == 312.0 and first.properties["agent"] == "maria"
    assert stored["call-C-1002"].properties["reason"] == "delivery, late"
    assert stored["call-C-1006"].properties["reason"] == "multi\nline note"


def test_1_2_reimporting_the_same_file_repeats_the_same_event_ids(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
) -> None:
    post(client, basic, "store.csv", "store")
    once = sorted(Event.from_json(r.value).event_id for r in read_log(log))
    post(client, basic, "store.csv", "store")
    twice = sorted(Event.from_json(r.value).event_id for r in read_log(log))
    assert twice == sorted(once + once)  # the dedup key repeats, so nothing is stored twice
    assert len(set(once)) == 3


def test_1_1_store_rows_are_visits_or_orders_keyed_by_loyalty_card(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
) -> None:
    body = post(client, basic, "store.csv", "store")
    assert body["imported"] == 3
    assert [r["line"] for r in body["rejected"]] == [5]
    stored = events(log, read_log)
    orders = {e.properties["order_id"]: e for e in stored.values() if e.event == "Order Completed"}
    visit = next(e for e in stored.values() if e.event == "Store Visited")
    assert visit.channel == "store" and visit.primary_key.type == "email"
    assert IdentityKey(type="loyalty_card", value="LC-0042") in visit.keys
    assert orders["O-9001"].event_id == "order-O-9001"
    assert orders["O-9001"].properties["total"] == 59.9
    assert orders["O-9001"].properties["currency"] == "EUR"
    assert orders["O-9001"].properties["products"] == [{"product_id": "SKU-1"},
                                                      {"product_id": "SKU-2"}]
    assert orders["O-9002"].timestamp == datetime.fromtimestamp(1714400000, UTC)
    assert orders["O-9002"].properties["quantity"] == 3


def test_1_1_a_column_mapping_renames_an_exports_own_columns(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
) -> None:
    mapping = "Ticket=call_id,Caller=phone,Agent Name=agent,Start=started_at,Secs=duration_s"
    body = post(client, basic, "calls_custom.csv", "call", mapping=mapping)
    assert body == {"imported": 1, "rejected": []}
    (event,) = events(log, read_log).values()
    assert event.event_id == "call-T-1" and event.primary_key.value == "442079460001"
    assert event.timestamp == datetime(2024, 4, 1, 8, tzinfo=UTC)
    assert event.properties["duration_s"] == 30.0 and event.properties["agent"] == "joe"


def test_1_1_segment_jsonl_import_defaults_type_and_messageid(
    client: TestClient, log: EmbeddedLog, basic: Basic, read_log: ReadLog,
    settings: IngestSettings,
) -> None:
    body = post(client, basic, "events.jsonl", "events")
    assert body["imported"] == 3
    assert [r["line"] for r in body["rejected"]] == [5, 6]
    stored = events(log, read_log)
    assert "svy-1" in stored
    review = next(e for e in stored.values() if e.event == "Review Submitted")
    assert review.type == "track" and review.event_id.startswith("import-h")
    # Unreadable lines are kept apart; lines that fail normalisation are replayable letters.
    stages = {d.stage for d in list_dead_letters(settings.data_dir / "deadletter", 10)}
    assert stages == {"import", "collector"}


def test_1_3_an_import_whose_rows_are_all_bad_is_400(client: TestClient, basic: Basic) -> None:
    response = client.post("/v1/imports", params={"kind": "call"}, headers=basic(),
                           content=b"call_id,agent\nX-1,joe\n")
    assert response.status_code == 400
    assert response.json()["rejected"][0]["line"] == 2


@pytest.mark.parametrize(("params", "status"), [
    ({"kind": "events", "format": "csv"}, 400),
    ({"kind": "fax"}, 400),
    ({"kind": "call", "mapping": "nonsense"}, 400),
])
def test_1_3_bad_import_parameters_are_400(client: TestClient, basic: Basic,
                                           params: dict[str, str], status: int) -> None:
    response = client.post("/v1/imports", params=params, headers=basic(), content=b"a\n1\n")
    assert response.status_code == status
    assert response.json()["success"] is False


def test_1_1_import_needs_a_write_key_by_basic_auth_or_query(
    client: TestClient, write_key: str,
) -> None:
    data = (FIXTURES / "calls.jsonl").read_bytes()
    assert client.post("/v1/imports?kind=call&format=jsonl", content=data).status_code == 401
    assert client.post("/v1/imports?kind=call&format=jsonl&key=wrong",
                       content=data).status_code == 401
    ok = client.post(f"/v1/imports?kind=call&format=jsonl&key={write_key}", content=data)
    assert ok.json() == {"imported": 1, "rejected": []}


def test_1_2_hashed_ids_follow_the_row_content() -> None:
    row = {"email": "a@x.io", "started_at": "2024-01-01T00:00:00Z", "agent": "joe"}
    first = row_message("call", dict(row), {})["messageId"]
    assert row_message("call", dict(row), {})["messageId"] == first
    assert row_message("call", {**row, "agent": "ann"}, {})["messageId"] != first


def test_1_3_csv_row_with_wrong_field_count_is_named() -> None:
    (item,) = import_items(b"call_id,email\nC-1,a@x.io,extra\n", "call", "csv", {})
    assert item[0] == 2 and isinstance(item[2], InvalidEventError)
    assert "3 fields; the header has 2" in item[2].message


@pytest.fixture
def server(settings: IngestSettings, log: EmbeddedLog) -> Iterator[str]:
    """The collector on a real uvicorn at 127.0.0.1 (the CLI talks HTTP to it)."""
    config = uvicorn.Config(create_app(settings, log), host="127.0.0.1", port=0,
                            log_level="warning")
    app_server = uvicorn.Server(config)
    thread = threading.Thread(target=app_server.run, daemon=True)
    thread.start()
    while not app_server.started:
        threading.Event().wait(0.02)
    port = app_server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    app_server.should_exit = True
    thread.join(10)


def test_1_1_cli_import_posts_in_chunks_and_reports_file_lines(
    server: str, write_key: str, log: EmbeddedLog, read_log: ReadLog,
) -> None:
    summary = run_import(FIXTURES / "events.jsonl", "events", None, server, write_key,
                         chunk_rows=2)
    assert summary.imported == 3
    assert [line for line, _ in summary.rejected] == [5, 6]
    assert "no identity key" in summary.rejected[1][1]
    assert len(read_log(log)) == 3
