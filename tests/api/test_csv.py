"""SPEC 6.2: every endpoint that answers a list or a table answers CSV (text/csv, header row)
to `Accept: text/csv`, over the app of `journey up` on the hand-made warehouse of test_scopes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.settings import ApiSettings
from ingest.settings import IngestSettings
from journey import server
from journey.csvout import flatten, render, wants_csv
from journey.log.embedded import EmbeddedLog
from tests.api.conftest import MemoryWarehouse, make_store
from tests.api.test_scopes import dataset

TOKEN = "tok-csv"
JSON = {"Authorization": f"Bearer {TOKEN}"}
CSV = {**JSON, "Accept": "text/csv"}
FUNNEL = ["stage", "customers", "conversion_from_previous", "conversion_from_first",
          "median_time_to_stage_s"]

# (path, the header of its table, where the table's rows are in the JSON answer)
HEADERS: list[tuple[str, list[str], Any]] = [
    ("/v1/funnel", FUNNEL, lambda j: j["stages"]),
    ("/v1/kpis", ["model", "customers", "events", "conversion_rate", "retention_rate",
                  "churn_rate", "nps_score", "nps_responses", "csat_score", "csat_responses",
                  "ces_score", "ces_responses", "watermark"], lambda j: [j]),
    ("/v1/journey-map", [*FUNNEL, "touchpoints", "channels", "kpis_current_customers",
                         "kpis_lapsed_customers", "emotion_score", "emotion_responses",
                         "conversion_stage"], lambda j: j["stages"]),
    ("/v1/dropoff", ["stage", "reached", "stopped", "stop_rate", "median_days_to_stop",
                     "last_touchpoints"], lambda j: j["stages"]),
    ("/v1/compare?b.channel=email", ["stage", *(f"{side}_{k}" for side in "ab" for k in FUNNEL[1:]),
                                     "delta_conversion_from_first",
                                     "delta_median_time_to_stage_s"], lambda j: j["delta"]),
    ("/v1/transitions", ["from", "to", "transitions", "customers"], lambda j: j),
    ("/v1/attribution", ["key", "credit", "conversions"], lambda j: j),
    ("/v1/cohorts?weeks=2", ["cohort", "customers", "week_0", "week_1"], lambda j: j),
    ("/v1/paths", ["path", "customers", "share"], lambda j: j),
    ("/v1/timeseries", ["date", "channel", "events", "customers"], lambda j: j),
    ("/v1/sessions", ["channel", "sessions", "customers", "mean_duration_s", "median_duration_s",
                      "p90_duration_s", "max_duration_s", "mean_events", "mean_page_views",
                      "bounce_rate"], lambda j: [*j["by_channel"], j]),
    ("/v1/customers/u1/events", ["event_id", "type", "event", "channel", "timestamp",
                                 "received_at", "timestamp_flagged", "keys", "previous_id",
                                 "properties", "traits", "context", "campaign_source",
                                 "campaign_medium", "campaign_name", "source", "medium",
                                 "page_url"], lambda j: j),
    ("/v1/models", ["model", "version", "conversion_stage", "stages"], lambda j: j),
    ("/v1/traits/plan/values", ["value", "customers"], lambda j: j["values"]),
]


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    ingest = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr("wk")],
                            api_tokens=[SecretStr(TOKEN)])
    api = ApiSettings(data_dir=tmp_path, api_tokens=[SecretStr(TOKEN)])
    monkeypatch.setattr(server, "api_store", lambda _: make_store(MemoryWarehouse(dataset())))
    log = EmbeddedLog(tmp_path / "log", 1, "events")
    try:
        with TestClient(server.create_app(ingest, api, log)) as c:
            yield c
    finally:
        log.close()


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(("path", "header", "rows"), HEADERS, ids=[h[0] for h in HEADERS])
def test_6_2_list_endpoints_answer_csv_with_a_header_row(
    client: TestClient, path: str, header: list[str], rows: Any
) -> None:
    r = client.get(path, headers=CSV)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    got = table(r.text)
    assert got[0] == header
    assert len(got) - 1 == len(rows(client.get(path, headers=JSON).json()))


def test_6_2_csv_cells_are_the_json_values(client: TestClient) -> None:
    funnel = client.get("/v1/funnel", headers=JSON).json()["stages"]
    rows = list(csv.DictReader(io.StringIO(client.get("/v1/funnel", headers=CSV).text)))
    assert [(r["stage"], int(r["customers"]),
             None if r["conversion_from_previous"] == "" else float(r["conversion_from_previous"]),
             None if r["median_time_to_stage_s"] == "" else float(r["median_time_to_stage_s"]))
            for r in rows] == [(s["stage"], s["customers"], s["conversion_from_previous"],
                                s["median_time_to_stage_s"]) for s in funnel]
    # lists of scalars are one cell joined by " > ", lists of objects one cell of JSON
    models = list(csv.DictReader(io.StringIO(client.get("/v1/models", headers=CSV).text)))
    assert models[0]["stages"] == "awareness > consideration > decision > retention > advocacy"
    board = list(csv.DictReader(io.StringIO(client.get("/v1/journey-map", headers=CSV).text)))
    assert orjson.loads(board[0]["touchpoints"]) == [{"event": "Page Viewed", "events": 1}]


def test_6_2_dropoff_last_touchpoints_are_a_json_cell() -> None:
    stage = {"stage": "consideration", "reached": 4, "stopped": 2, "stop_rate": 0.5,
             "median_days_to_stop": 6.0, "last_touchpoints": [
                 {"event": "Cart Viewed", "channel": "web", "customers": 1},
                 {"event": "Email, \"Clicked\"", "channel": "email", "customers": 1}]}
    rows = list(csv.DictReader(io.StringIO(render([flatten(stage)]).decode())))
    assert orjson.loads(rows[0]["last_touchpoints"]) == stage["last_touchpoints"]
    assert rows[0]["stop_rate"] == "0.5" and rows[0]["median_days_to_stop"] == "6.0"


def test_6_2_query_rows_and_dead_letters_answer_csv(client: TestClient) -> None:
    r = client.post("/v1/query", headers=CSV,
                    json={"sql": "SELECT customer_id, traits, 1.5 AS x, NULL AS n FROM customers"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["x-journey-truncated"] == "false"
    assert table(r.text) == [["customer_id", "traits", "x", "n"],
                             ["c1", '{"plan":"pro"}', "1.5", ""]]
    empty = client.get("/v1/deadletters", headers=CSV)
    assert table(empty.text) == [["id", "replayed", "received_at", "write_key", "reason", "index",
                                  "event", "stage", "partition", "offset"]]
    client.post("/v1/track", auth=("wk", ""), json={"type": "track", "event": "No Key"})
    letters = list(csv.DictReader(io.StringIO(client.get("/v1/deadletters", headers=CSV).text)))
    assert len(letters) == 1 and "no identity key" in letters[0]["reason"]
    assert orjson.loads(letters[0]["event"]) == {"type": "track", "event": "No Key"}


@pytest.mark.parametrize("path", ["/v1/funnel?model=nope", "/v1/dropoff?from=yesterday",
                                  "/v1/compare?a.channel=fax", "/v1/customers/nobody/events"])
def test_6_2_an_error_asked_as_csv_stays_json(client: TestClient, path: str) -> None:
    r = client.get(path, headers=CSV)
    assert r.status_code in (400, 404)
    assert r.headers["content-type"] == "application/json"
    assert "error" in r.json()
    unauthorized = client.get("/v1/funnel", headers={"Accept": "text/csv"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"] == "application/json"


def test_6_2_csv_has_its_own_etag_and_304(client: TestClient) -> None:
    as_json = client.get("/v1/dropoff", headers=JSON)
    as_csv = client.get("/v1/dropoff", headers=CSV)
    assert as_json.headers["etag"] != as_csv.headers["etag"]
    assert as_csv.headers["vary"] == "Accept"
    again = client.get("/v1/dropoff", headers={**CSV, "If-None-Match": as_csv.headers["etag"]})
    assert again.status_code == 304
    # The CSV's tag does not stand for the JSON answer.
    other = client.get("/v1/dropoff", headers={**JSON, "If-None-Match": as_csv.headers["etag"]})
    assert other.status_code == 200 and other.headers["content-type"] == "application/json"


def test_6_2_json_unless_csv_is_asked_for(client: TestClient) -> None:
    for accept in ("*/*", "application/json", "text/html,application/xhtml+xml,*/*;q=0.8",
                   "text/csv;q=0", "text/csv;q=0.5, application/json", "text/csv;q=x"):
        r = client.get("/v1/funnel", headers={**JSON, "Accept": accept})
        assert r.headers["content-type"] == "application/json", accept
    # An object that is no table (one customer's profile) stays JSON.
    assert client.get("/v1/customers/u1", headers=CSV).headers["content-type"] == \
        "application/json"
    assert wants_csv("application/json;q=0.9, text/csv") and not wants_csv(None)
    assert wants_csv("*/*, text/csv") and wants_csv("text/csv; charset=utf-8")
