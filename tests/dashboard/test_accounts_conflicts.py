"""SPEC 5.1 in the dashboard: the B2B account view (/v1/accounts, /v1/accounts/{group_id}), the
account-level funnel (/v1/funnel?level=account) and the operator's identity conflicts
(/v1/identity/conflicts, scope pii), on the demo data through the real pipeline (its six
accounts and the couples sharing an email); what the page shows is compared with the API's
answer, a token without pii gets the explanatory message, and each view is saved as a
screenshot under test-artifacts/dashboard/."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import TOKEN, Console, Served, serve
from fastapi import FastAPI
from playwright.sync_api import Page
from pydantic import SecretStr
from test_dashboard import download, filtered, open_dashboard, panel_shot

from api.dashboard import dashboard_router
from api.ops import ops_router
from api.query import query_router
from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from warehouse.reader import WarehouseReader

READ_ONLY = "dashboard-read-only-token"


@pytest.fixture(scope="module")
def served_full(served: Served) -> Iterator[Served]:
    """The demo warehouse served as `journey up` does (with POST /v1/query, which the page uses
    to show customer ids as people), to the test token (all scopes) and a read-only token."""
    data_dir = served.writer.settings.data_dir
    settings = ApiSettings(data_dir=data_dir, refresh_interval_s=0.0,
                           api_tokens=[SecretStr(TOKEN), SecretStr(f"{READ_ONLY}:read")])
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    app = FastAPI(title="journey dashboard test (two tokens)")
    for router in (api_router(settings, store), query_router(settings, store), ops_router(store),
                   dashboard_router()):
        app.include_router(router)
    with serve(app) as url:
        yield Served(url, served.writer, served.config, served.events)


def accounts_on_page(page: Page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=account-list] tbody tr",
        """rs => rs.map(r => ({account_id: r.dataset.account,
             members: Number(r.querySelector('[data-field=members]').dataset.value),
             stage: r.querySelector('[data-field=stage]').dataset.value || null}))""")


def account_on_page(page: Page) -> dict[str, Any]:
    return page.evaluate(  # type: ignore[no-any-return]
        """() => { const a = document.querySelector('[data-testid=account]');
           return {account_id: a.dataset.account,
             stages: [...a.querySelectorAll('[data-testid=account-stages] li')].map(li =>
               ({stage: li.dataset.stage, entered_at: li.dataset.entered || null})),
             members: [...a.querySelectorAll('[data-testid=account-members] tbody tr')].map(r =>
               ({customer_id: r.dataset.customer, stage: r.dataset.stage || null})),
             traits: Object.fromEntries([...a.querySelectorAll('[data-trait]')].map(t =>
               [t.dataset.trait, t.lastChild.textContent])),
             links: [...a.querySelectorAll('[data-testid=account-members] button.link')]
               .map(b => b.dataset.key)}; }""")


def wait_account(page: Page, account_id: str) -> None:
    page.wait_for_selector(f"[data-testid=account][data-account='{account_id}']", timeout=20_000)


def assert_account_is_the_apis(page: Page, served: Served, account_id: str,
                               model: str = "default") -> dict[str, Any]:
    want = served.api(f"/v1/accounts/{account_id}", model=model)
    got = account_on_page(page)
    assert got["account_id"] == account_id
    assert got["members"] == want["members"]
    entered = {s["stage"]: s["entered_at"] for s in want["stages"]}
    order = [s["stage"] for s in served.api("/v1/funnel", model=model)["stages"]]
    assert got["stages"] == [{"stage": s, "entered_at": entered.get(s)} for s in order]
    assert got["traits"] == {k: str(v) for k, v in want["traits"].items()}
    return want  # type: ignore[no-any-return]


def test_5_1_account_view_shows_each_accounts_journey_and_opens_its_members(
    page: Page, served_full: Served
) -> None:
    served = served_full
    open_dashboard(page, served)
    page.wait_for_selector("[data-testid=account]", timeout=20_000)
    listed = served.api("/v1/accounts")
    assert 3 <= len(listed) <= 6  # journey.demo's accounts whose members signed up
    assert accounts_on_page(page) == [{k: a[k] for k in ("account_id", "members", "stage")}
                                      for a in listed]
    options = page.eval_on_selector_all("#account option", "os => os.map(o => o.value)")
    assert options == [a["account_id"] for a in listed]
    # The account with the most members, chosen in the selector; then another from the list.
    big = max(listed, key=lambda a: (a["members"], a["account_id"]))["account_id"]
    page.locator("#account").select_option(big)
    wait_account(page, big)
    want = assert_account_is_the_apis(page, served, big)
    assert len(want["members"]) >= 2 and want["stages"]
    assert "account=" in page.url
    got = account_on_page(page)
    assert len(got["links"]) == len(want["members"])  # pii token: each member opens
    panel_shot(page, "accounts", "accounts")
    rows = list(csv.DictReader(io.StringIO(download(page, "accounts", "csv"))))
    assert [r["account_id"] for r in rows] == [a["account_id"] for a in listed]

    other = next(a["account_id"] for a in listed if a["account_id"] != big)
    page.locator(f"[data-testid=account-list] tr[data-account='{other}'] button").click()
    wait_account(page, other)
    assert_account_is_the_apis(page, served, other)
    page.locator("#model").select_option("aida")
    page.wait_for_selector("[data-testid=account-stages] li[data-stage=desire]", timeout=20_000)
    assert_account_is_the_apis(page, served, other, model="aida")

    # A member opens in the customer lookup.
    member = page.locator("[data-testid=account-members] button.link").first
    customer_id = member.get_attribute("data-customer")
    member.click()
    page.wait_for_selector(f"[data-testid=customer][data-customer='{customer_id}']",
                           timeout=20_000)
    assert page.locator("#lookup-key").input_value() == member.get_attribute("data-key")
    panel_shot(page, "customer", "account-member")


def test_5_1_funnel_panel_switches_to_the_account_funnel(
    page: Page, served_full: Served
) -> None:
    served = served_full
    open_dashboard(page, served)
    page.locator("#funnel-accounts").click()
    page.wait_for_selector("#funnel[data-level=account] [data-testid=funnel]", timeout=20_000)
    want = served.api("/v1/funnel", model="default", level="account")
    assert want["level"] == "account"
    got = page.eval_on_selector_all(
        "#funnel [data-testid=funnel] .frow",
        "rs => rs.map(r => [r.dataset.stage, Number(r.querySelector('[data-field=customers]')"
        ".dataset.value)])")
    assert got == [[s["stage"], s["customers"]] for s in want["stages"]]
    assert got[0][1] == len(served.api("/v1/accounts")) >= 3
    assert "accounts reaching" in page.locator("#funnel-sub").inner_text()
    assert "funnel=account" in page.url
    rows = list(csv.DictReader(io.StringIO(download(page, "funnel", "csv"))))
    assert [(r["stage"], int(r["accounts"])) for r in rows] == [tuple(g) for g in got]
    panel_shot(page, "funnel", "account-funnel")
    page.locator("#funnel-customers").click()
    page.wait_for_selector("#funnel[data-level=customer]", timeout=20_000)
    customers = served.api("/v1/funnel", **filtered())["stages"][0]["customers"]
    page.wait_for_function("n => Number(document.querySelector('#funnel [data-field=customers]')"
                           ".dataset.value) === n", arg=customers, timeout=20_000)


def conflicts_on_page(page: Page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=conflicts] tbody tr",
        """rs => rs.map(r => ({key: {type: r.dataset.keyType, value: r.dataset.keyValue},
             event_id: r.dataset.event,
             at: r.querySelector('[data-field=at]').dataset.value,
             customer_id: r.querySelector('[data-field=customer_id]').dataset.value,
             refused_customer_id: r.querySelector('[data-field=refused_customer_id]')
               .dataset.value}))""")


def test_5_1_identity_conflicts_view_pages_through_the_refused_links(
    page: Page, served_full: Served
) -> None:
    served = served_full
    every = served.api("/v1/identity/conflicts")
    assert len(every) >= 2  # the demo's couples sharing an email
    open_dashboard(page, served)
    page.wait_for_selector("[data-testid=conflicts]", timeout=20_000)
    assert conflicts_on_page(page) == every[:50]
    rows = list(csv.DictReader(io.StringIO(download(page, "conflicts", "csv"))))
    assert [(r["key_value"], r["event_id"], r["customer_id"]) for r in rows] == \
        [(c["key"]["value"], c["event_id"], c["customer_id"]) for c in every[:50]]
    panel_shot(page, "conflicts", "conflicts")

    # Pages of one row: the second is the API's offset=1.
    page.locator("#conflicts-size").evaluate(
        "s => { s.append(new Option('1 a page', '1')); s.value = '1';"
        " s.dispatchEvent(new Event('change')); }")
    page.wait_for_selector("#conflicts[data-offset='0'] [data-testid=conflicts]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=conflicts] tbody tr')"
                           ".length === 1", timeout=20_000)
    page.locator("#conflicts-next").click()
    page.wait_for_selector("#conflicts[data-offset='1']", timeout=20_000)
    assert conflicts_on_page(page) == served.api("/v1/identity/conflicts", limit="1", offset="1")
    assert page.locator("#conflicts-prev").is_enabled()

    # Each customer opens in the lookup: the one holding the key too.
    cell = page.locator("[data-testid=conflicts] [data-field=refused_customer_id] button.link")
    holder = every[1]["refused_customer_id"]
    cell.click()
    page.wait_for_selector(f"[data-testid=customer][data-customer='{holder}']", timeout=20_000)
    page.locator("[data-testid=conflicts] [data-field=customer_id] button.link").click()
    page.wait_for_selector(f"[data-testid=customer][data-customer='{every[1]['customer_id']}']",
                           timeout=20_000)


def test_5_1_no_conflicts_explains_what_a_conflict_is(page: Page, served_full: Served) -> None:
    # The demo always has conflicts: the API's answer for a warehouse without any is [].
    page.route("**/v1/identity/conflicts?*", lambda route: route.fulfill(
        status=200, content_type="application/json", body="[]", headers={"ETag": '"none"'}))
    open_dashboard(page, served_full)
    empty = page.wait_for_selector("[data-testid=conflicts-empty]", timeout=20_000)
    assert empty is not None
    text = empty.inner_text()
    assert "user_id" in text and "SPEC 2.2" in text
    panel_shot(page, "conflicts", "conflicts-empty")


def test_6_1_a_token_without_pii_gets_a_message_not_a_broken_panel(
    page: Page, served_full: Served, console: Console
) -> None:
    served = served_full
    assert httpx.get(served.url + "/v1/identity/conflicts",
                     headers={"Authorization": f"Bearer {READ_ONLY}"}).status_code == 403
    page.goto(f"{served.url}/?poll=1#token={READ_ONLY}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    note = page.wait_for_selector("[data-testid=conflicts-need-pii]", timeout=20_000)
    assert note is not None and "pii scope" in note.inner_text()
    page.wait_for_selector("[data-testid=account]", timeout=20_000)
    assert_account_is_the_apis(page, served, served.api("/v1/accounts")[0]["account_id"])
    assert "pii scope" in page.locator("[data-testid=members-need-pii]").inner_text()
    assert account_on_page(page)["links"] == []  # members are ids, not links that would fail
    # The customer lookup says the same instead of asking for another token.
    page.locator("#lookup-key").fill(served.api("/v1/identity/conflicts")[0]["key"]["value"])
    page.locator("#lookup-form button").click()
    assert "pii scope" in page.wait_for_selector("[data-testid=customer-needs-pii]",
                                                 timeout=20_000).inner_text()  # type: ignore[union-attr]
    assert page.locator("#token-dialog").is_hidden()  # the token is kept: it can read
    assert page.evaluate("document.body.dataset.state") == "ready"
    panel_shot(page, "conflicts", "conflicts-no-pii")
    panel_shot(page, "accounts", "accounts-no-pii")
    # The browser logs each refused request (403) as a console error: those, and only those.
    refused = [e for e in console.errors if "403" in e]
    assert refused
    console.errors[:] = [e for e in console.errors if "403" not in e]
