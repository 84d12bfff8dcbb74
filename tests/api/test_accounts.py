"""SPEC 5.1 B2B accounts and identity conflicts, end to end from events: the real processor state
derives account_events and identity_conflicts, the account views aggregate them, the API serves
/v1/accounts/{group_id}, /v1/funnel?level=account and /v1/identity/conflicts."""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from journey.schema import Event
from processor.derive import CoreConfig
from processor.stages.model import preset
from tests.api.conftest import TOKEN, make_store
from tests.api.derived import DerivedWarehouse
from tests.processor.conftest import T0, make_event

CONFIG = CoreConfig(models=(preset("default"),))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOUR = 3600.0


def group(eid: str, at: float, account: str, traits: dict[str, Any], **keys: Any) -> Event:
    return make_event(eid, at, "Grouped", properties={"group_id": account, "group_traits": traits},
                      **keys)


def b2b_events() -> list[Event]:
    """Acme: ann (joins first, views a product), bob (buys late), cat (only joins); Globex: dan.
    Ann and bob share no key: accounts never merge customers."""
    return [
        make_event("a1", 0, anon="ann-dev"),
        group("a2", 10, "acme", {"name": "Acme", "plan": "trial"}, user="ann", anon="ann-dev"),
        make_event("a3", HOUR, "Product Viewed", user="ann"),
        group("b1", 2 * HOUR, "acme", {"plan": "enterprise", "seats": 40}, user="bob"),
        make_event("b2", 5 * HOUR, "Order Completed", user="bob"),
        group("c1", 3 * HOUR, "acme", {"plan": "pro"}, user="cat"),
        group("d1", 4 * HOUR, "globex", {"name": "Globex"}, user="dan"),
        make_event("d2", 4 * HOUR + 60, "Product Viewed", user="dan"),
    ]


def client_for(wh: DerivedWarehouse, settings: ApiSettings) -> TestClient:
    return TestClient(create_app(settings, make_store(wh)))  # type: ignore[arg-type]


def get(client: TestClient, path: str, **params: str) -> Any:
    answer = client.get(path, params=params, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()


def iso(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat() + "Z"


def test_5_1_an_account_is_its_members_furthest_stage_earliest_entries_and_latest_traits(
    settings: ApiSettings,
) -> None:
    client = client_for(DerivedWarehouse(CONFIG).add(b2b_events()), settings)
    acme = get(client, "/v1/accounts/acme")
    assert acme["account_id"] == "acme"
    # The latest group call wins per trait: plan from cat's (3h), seats from bob's, name ann's.
    assert acme["traits"] == {"name": "Acme", "plan": "pro", "seats": 40}
    assert acme["stage"] == "decision"  # bob's
    assert acme["first_seen"] == iso(0)  # ann's first event, before she joined
    assert acme["stages"] == [
        {"stage": "awareness", "entered_at": iso(0)},
        {"stage": "consideration", "entered_at": iso(HOUR)},  # ann's product view
        {"stage": "decision", "entered_at": iso(5 * HOUR)},  # bob's order
    ]
    members = acme["members"]
    assert [m["customer_id"] for m in members] == sorted(m["customer_id"] for m in members)
    assert sorted(m["stage"] for m in members) == ["awareness", "consideration", "decision"]
    customers = {get(client, f"/v1/customers/user_id:{u}")["customer_id"] for u in
                 ("ann", "bob", "cat")}
    assert customers == {m["customer_id"] for m in members}  # three customers, not merged


def test_5_1_unknown_account_is_404_and_a_person_is_no_account(settings: ApiSettings) -> None:
    client = client_for(DerivedWarehouse(CONFIG).add(b2b_events()), settings)
    for name in ("nobody", "ann"):
        answer = client.get(f"/v1/accounts/{name}", headers=AUTH)
        assert answer.status_code == 404
        assert answer.json()["error"] == "account_not_found"


def test_5_1_account_stage_moves_with_a_members_late_event(settings: ApiSettings) -> None:
    events = b2b_events()
    wh = DerivedWarehouse(CONFIG).add(events)
    client = client_for(wh, settings)
    assert get(client, "/v1/accounts/globex")["stage"] == "consideration"
    # Dan's order arrives late: it happened before his product view and his group call.
    late = make_event("d0", HOUR, "Order Completed", user="dan")
    wh.add([late])
    globex = get(client, "/v1/accounts/globex")
    assert globex["stage"] == "decision"
    assert globex["stages"][-1] == {"stage": "decision", "entered_at": iso(HOUR)}
    assert globex["first_seen"] == iso(HOUR)
    once = DerivedWarehouse(CONFIG).add([*events, late])
    assert globex == get(client_for(once, settings), "/v1/accounts/globex")


def test_5_1_account_funnel_counts_accounts_with_their_first_seen(settings: ApiSettings) -> None:
    client = client_for(DerivedWarehouse(CONFIG).add(b2b_events()), settings)
    body = get(client, "/v1/funnel", level="account")
    assert body["level"] == "account"
    stages = {s["stage"]: s for s in body["stages"]}
    assert [s["customers"] for s in body["stages"]] == [2, 2, 1, 0, 0]
    # consideration: acme 1h after its first_seen, globex 60 s after dan's first event.
    assert stages["consideration"]["median_time_to_stage_s"] == pytest.approx((HOUR + 60) / 2)
    assert stages["decision"]["conversion_from_first"] == 0.5
    assert [s["customers"] for s in get(client, "/v1/funnel", level="account", **{
        "trait.name": "Globex"})["stages"]] == [1, 1, 0, 0, 0]
    assert [s["customers"] for s in get(client, "/v1/funnel", level="account", **{
        "from": iso(HOUR)})["stages"]] == [1, 1, 0, 0, 0]  # globex only
    # The customer funnel is unchanged by accounts: four people.
    assert get(client, "/v1/funnel")["stages"][0]["customers"] == 4
    answer = client.get("/v1/funnel", params={"level": "team"}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["param"] == "level"
    answer = client.get("/v1/funnel", params={"level": "account", "trait.nope": "x"},
                        headers=AUTH)
    assert answer.status_code == 400 and answer.json()["error"] == "unknown_trait"


def conflict_events() -> list[Event]:
    """Two people share one email; the second link (bob's, later) is refused on each event."""
    return [
        make_event("e1", 0, "Identified", user="ann", email="team@shared.example"),
        make_event("e2", 60, "Identified", user="bob", email="team@shared.example"),
        make_event("e3", 120, "Product Viewed", user="bob", email="team@shared.example"),
        make_event("e4", 180, "Product Viewed", user="bob", anon="bob-dev"),
    ]


def test_5_1_a_refused_link_is_recorded_once_per_event(settings: ApiSettings) -> None:
    events = conflict_events()
    client = client_for(DerivedWarehouse(CONFIG).add(events), settings)
    rows = get(client, "/v1/identity/conflicts")
    ann = get(client, "/v1/customers/user_id:ann")["customer_id"]
    bob = get(client, "/v1/customers/user_id:bob")["customer_id"]
    assert rows == [
        {"key": {"type": "email", "value": "team@shared.example"}, "event_id": eid,
         "at": iso(at), "customer_id": bob, "refused_customer_id": ann}
        for eid, at in (("e2", 60), ("e3", 120))
    ]
    assert get(client, "/v1/identity/conflicts", limit="1", offset="1") == rows[1:]


@pytest.mark.parametrize("seed", range(6))
def test_5_1_accounts_and_conflicts_do_not_depend_on_arrival_order(
    settings: ApiSettings, seed: int
) -> None:
    events = [*b2b_events(), *conflict_events()]
    rng = random.Random(seed)
    shuffled = rng.sample(events, len(events)) + rng.sample(events, 3)  # and some resent
    cuts = sorted(rng.sample(range(1, len(shuffled)), 4))
    streamed = DerivedWarehouse(CONFIG)
    for lo, hi in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
        streamed.add(shuffled[lo:hi])
    once = DerivedWarehouse(CONFIG).add(events)
    a, b = client_for(streamed, settings), client_for(once, settings)
    for path, params in (("/v1/accounts/acme", {}), ("/v1/accounts/globex", {}),
                         ("/v1/funnel", {"level": "account"}), ("/v1/identity/conflicts", {})):
        assert get(a, path, **params) == get(b, path, **params), path


def test_6_2_accounts_and_conflicts_answer_csv_with_a_header(settings: ApiSettings) -> None:
    client = client_for(DerivedWarehouse(CONFIG).add([*b2b_events(), *conflict_events()]),
                        settings)
    for path, header in (
        ("/v1/accounts/acme", ["customer_id", "stage"]),
        ("/v1/identity/conflicts", ["key_type", "key_value", "event_id", "at", "customer_id",
                                    "refused_customer_id"]),
    ):
        answer = client.get(path, headers={**AUTH, "Accept": "text/csv"})
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert rows[0] == header, path
        assert len(rows) >= 3, path
