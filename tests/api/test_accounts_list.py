"""GET /v1/accounts: the B2B accounts of SPEC 5.1 as a list (the dashboard's account selector),
from events through the real processor state; each row agrees with /v1/accounts/{group_id}."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from api.settings import ApiSettings
from journey.schema import Event
from processor.derive import CoreConfig
from processor.stages.model import preset
from tests.api.derived import DerivedWarehouse
from tests.api.test_accounts import AUTH, HOUR, b2b_events, client_for, get, group, iso
from tests.processor.conftest import make_event

CONFIG = CoreConfig(models=(preset("default"), preset("aida")))


def events() -> list[Event]:
    """The accounts of test_accounts (acme, globex), one whose name is no string (initech) and
    one with no name at all (zeta, whose only member is dan, already a member of globex)."""
    return [
        *b2b_events(),
        group("i1", 6 * HOUR, "initech", {"name": 42, "plan": "pro"}, user="eve"),
        make_event("i2", 7 * HOUR, "Product Viewed", user="eve"),
        group("z1", 8 * HOUR, "zeta", {"plan": "free"}, user="dan"),
    ]


@pytest.fixture
def client(settings: ApiSettings) -> TestClient:
    return client_for(DerivedWarehouse(CONFIG).add(events()), settings)


def test_5_1_accounts_are_listed_by_id_with_name_members_stage_and_times(
    client: TestClient,
) -> None:
    rows = get(client, "/v1/accounts")
    assert [r["account_id"] for r in rows] == ["acme", "globex", "initech", "zeta"]
    by_id = {r["account_id"]: r for r in rows}
    assert by_id["acme"] == {"account_id": "acme", "name": "Acme", "members": 3,
                             "stage": "decision", "first_seen": iso(0), "last_seen": iso(5 * HOUR)}
    assert by_id["initech"]["name"] is None  # traits.name is 42, not a string
    assert by_id["zeta"]["name"] is None and by_id["zeta"]["members"] == 1
    # A customer in two accounts counts in both; accounts never merge customers.
    assert by_id["globex"]["members"] == by_id["zeta"]["members"] == 1
    for row in rows:  # the list agrees with each account's own answer
        one = get(client, f"/v1/accounts/{row['account_id']}")
        assert (row["stage"], row["first_seen"], row["members"]) == \
            (one["stage"], one["first_seen"], len(one["members"]))
        assert row["name"] == (one["traits"].get("name")
                               if isinstance(one["traits"].get("name"), str) else None)


def test_5_1_account_stage_follows_the_model(client: TestClient) -> None:
    default = {r["account_id"]: r["stage"] for r in get(client, "/v1/accounts")}
    aida = {r["account_id"]: r["stage"] for r in get(client, "/v1/accounts", model="aida")}
    assert aida == {a: get(client, f"/v1/accounts/{a}", model="aida")["stage"] for a in aida}
    assert set(aida.values()) <= {"awareness", "interest", "desire", "action"}
    assert default != aida
    answer = client.get("/v1/accounts", params={"model": "nope"}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"] == "unknown_model"


def test_6_2_accounts_page_with_limit_and_offset(client: TestClient) -> None:
    every = get(client, "/v1/accounts")
    assert get(client, "/v1/accounts", limit="2") == every[:2]
    assert get(client, "/v1/accounts", limit="2", offset="2") == every[2:]
    assert get(client, "/v1/accounts", offset="10") == []
    for name, value in (("limit", "0"), ("limit", "100001"), ("limit", "x"), ("offset", "-1")):
        answer = client.get("/v1/accounts", params={name: value}, headers=AUTH)
        assert answer.status_code == 400 and answer.json()["param"] == name, (name, value)


def test_6_2_accounts_answer_csv_with_a_header(client: TestClient, settings: ApiSettings) -> None:
    header = ["account_id", "name", "members", "stage", "first_seen", "last_seen"]
    answer = client.get("/v1/accounts", headers={**AUTH, "Accept": "text/csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == header
    assert [r[0] for r in rows[1:]] == ["acme", "globex", "initech", "zeta"]
    # No account yet: an empty list, and a CSV that is only its header.
    empty = client_for(DerivedWarehouse(CONFIG).add([make_event("x1", 0, user="solo")]), settings)
    assert get(empty, "/v1/accounts") == []
    answer = empty.get("/v1/accounts", headers={**AUTH, "Accept": "text/csv"})
    assert list(csv.reader(io.StringIO(answer.text))) == [header]
