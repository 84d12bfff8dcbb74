"""SPEC 6.3: the example queries of docs/analysts.md run through POST /v1/query over a warehouse
built from the demo data by the real pipeline core, and agree with the API where they overlap."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.query import query_router
from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from tests.api.test_sql_escape import build_warehouse
from warehouse.reader import WarehouseReader

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"
TOKEN = "analyst-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def examples() -> dict[str, str]:
    """The ```sql blocks of docs/analysts.md by their first line (`-- name`)."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.DOTALL)
    return {b.splitlines()[0].removeprefix("--").strip(): b for b in blocks}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("analysts")
    build_warehouse(data_dir, customers=60)
    settings = ApiSettings(data_dir=data_dir, api_tokens=[SecretStr(TOKEN)], warm_cache=False)
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    app = FastAPI()
    app.include_router(api_router(settings, store))
    app.include_router(query_router(settings, store))
    with TestClient(app) as c:
        yield c


def run(client: TestClient, name: str) -> list[dict[str, Any]]:
    """An example's rows as dicts, through POST /v1/query."""
    r = client.post("/v1/query", json={"sql": examples()[name]}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["truncated"] is False
    names = [c["name"] for c in body["columns"]]
    return [dict(zip(names, row, strict=True)) for row in body["rows"]]


def api(client: TestClient, path: str, **params: str) -> Any:
    r = client.get(path, params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def test_6_3_the_doc_has_the_promised_examples_and_each_runs(client: TestClient) -> None:
    names = set(examples())
    assert {"funnel by week", "time to decision by first channel", "top paths",
            "sessions by source"} <= names
    for name in names:
        assert run(client, name), f"{name} returned no rows over the demo data"


def test_5_funnel_by_week_summed_over_weeks_is_the_funnel(client: TestClient) -> None:
    rows = run(client, "funnel by week")
    by_week: dict[str, list[int]] = defaultdict(list)
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        by_week[r["week"]].append(r["customers"])
        totals[r["stage"]] += r["customers"]
    assert len(by_week) > 3
    for counts in by_week.values():  # reaching a stage reaches every earlier one (SPEC 4.2)
        assert counts == sorted(counts, reverse=True)
    funnel = api(client, "/v1/funnel", model="default")["stages"]
    assert {s["stage"]: s["customers"] for s in funnel} == dict(totals)
    assert funnel[2]["customers"] > 0


def test_5_time_to_decision_by_first_channel_is_the_channel_funnel(client: TestClient) -> None:
    rows = run(client, "time to decision by first channel")
    assert len(rows) >= 2
    for r in rows:
        stages = api(client, "/v1/funnel", model="default", channel=r["first_channel"])["stages"]
        decision = next(s for s in stages if s["stage"] == "decision")
        assert decision["customers"] == r["customers"]
        assert decision["median_time_to_stage_s"] == pytest.approx(r["median_time_to_decision_s"])


def test_5_top_paths_are_the_event_paths(client: TestClient) -> None:
    rows = run(client, "top paths")
    paths = api(client, "/v1/paths", model="default", by="event", steps="4", top="10")
    assert [(r["path"], r["customers"]) for r in rows] == [
        (p["path"], p["customers"]) for p in paths]
    assert [r["share"] for r in rows] == pytest.approx([p["share"] for p in paths])


def test_3_sessions_by_source_add_up_to_the_session_statistics(client: TestClient) -> None:
    rows = run(client, "sessions by source")
    stats = api(client, "/v1/sessions")
    sessions = sum(r["sessions"] for r in rows)
    assert len(rows) > 3 and sessions == stats["sessions"]
    assert sum(r["total_duration_s"] for r in rows) / sessions == pytest.approx(
        stats["mean_duration_s"])


def test_5_current_stages_give_the_kpi_conversion_rate(client: TestClient) -> None:
    rows = run(client, "current stage")
    kpis = api(client, "/v1/kpis", model="default")
    assert sum(r["customers"] for r in rows) == kpis["customers"]
    converted = sum(r["customers"] for r in rows
                    if r["stage"] in ("decision", "retention", "advocacy"))
    assert converted / kpis["customers"] == pytest.approx(kpis["conversion_rate"])


def test_5_1_accounts_and_their_stage_are_the_account_answers(client: TestClient) -> None:
    rows = run(client, "accounts and their stage")
    assert len(rows) >= 2
    for r in rows:
        account = api(client, f"/v1/accounts/{r['account_id']}", model="default")
        assert account["stage"] == r["stage"]
        assert len(account["members"]) == r["members"]
        assert account["traits"].get("name") == r["name"]
    members = run(client, "account members")
    assert len(members) == sum(r["members"] for r in rows)
    calls = run(client, "group calls")
    assert {c["account_id"] for c in calls} == {r["account_id"] for r in rows}
    assert len(calls) >= len(members)  # one call or more per member


def test_5_1_identity_conflicts_by_key_type_count_the_refused_links(client: TestClient) -> None:
    rows = run(client, "identity conflicts by key type")
    conflicts = api(client, "/v1/identity/conflicts", limit="100000")
    assert sum(r["refused_links"] for r in rows) == len(conflicts) > 0
