"""SPEC 6.2 (last bullet): the dashboard at `/` shows the journey map from the live API.

Every number is read off the page and compared with the API's answer for the same selection.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import httpx
from conftest import Screenshots, Served
from playwright.sync_api import Page, Response

from journey.schema import Event

PERSONA = "Loyal Regular"  # a persona of journey.demo


def fmt_int(n: float) -> str:
    return f"{round(n):,}"


def fmt_pct(r: float | None) -> str:
    return "–" if r is None else f"{r * 100:.1f}%"


def open_dashboard(page: Page, served: Served, query: str = "?poll=1") -> None:
    page.goto(f"{served.url}/{query}#token={served.token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)


def wait_shown(page: Page, model: str, persona: str) -> None:
    """Wait until the panels show this selection."""
    page.wait_for_function(
        "([m, p]) => { const s = JSON.parse(document.body.dataset.shown || '{}');"
        " return s.model === m && s.persona === p; }", arg=[model, persona], timeout=20_000)


def funnel_on_page(page: Page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=funnel] .frow",
        """rows => rows.map(r => ({stage: r.dataset.stage,
             customers: Number(r.querySelector('[data-field=customers]').dataset.value),
             text: r.querySelector('[data-field=customers]').textContent,
             first: r.querySelector('[data-field=conversion_from_first]').textContent}))""")


def kpis_on_page(page: Page) -> dict[str, dict[str, str]]:
    tiles = page.eval_on_selector_all(
        "#kpis .tile",
        """ts => ts.map(t => [t.dataset.kpi, {value: t.dataset.value,
             text: t.querySelector('.tile-value').textContent,
             sub: t.querySelector('.tile-sub').textContent}])""")
    return dict(tiles)


def assert_funnel_and_kpis_match(page: Page, served: Served, **params: str) -> None:
    funnel = served.api("/v1/funnel", **params)
    shown = funnel_on_page(page)
    assert [s["stage"] for s in shown] == [s["stage"] for s in funnel["stages"]]
    for got, want in zip(shown, funnel["stages"], strict=True):
        assert got["customers"] == want["customers"]
        assert got["text"] == fmt_int(want["customers"])
        assert got["first"] == fmt_pct(want["conversion_from_first"])
    kpis = served.api("/v1/kpis", **params)
    tiles = kpis_on_page(page)
    assert tiles["customers"]["text"] == fmt_int(kpis["customers"])
    assert tiles["customers"]["sub"] == f"{fmt_int(kpis['events'])} events"
    for rate in ("conversion_rate", "retention_rate", "churn_rate"):
        assert tiles[rate]["text"] == fmt_pct(kpis[rate])
    assert tiles["nps"]["text"] == f"{kpis['nps']['score']:.0f}"
    assert tiles["csat"]["text"] == f"{kpis['csat']['score']:.0f}%"
    assert tiles["ces"]["text"] == f"{kpis['ces']['score']:.2f} / 7"
    for survey in ("nps", "csat", "ces"):
        assert tiles[survey]["sub"] == f"{fmt_int(kpis[survey]['responses'])} responses"


def test_6_2_dashboard_is_served_at_root_and_dashboard(served: Served) -> None:
    for path in ("/", "/dashboard"):
        resp = httpx.get(served.url + path)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert '<script type="module" src="/static/dashboard/app.js">' in resp.text
    js = httpx.get(served.url + "/static/dashboard/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert httpx.get(served.url + "/static/dashboard/..%2Fdashboard.py").status_code == 404
    assert httpx.get(served.url + "/static/dashboard/nope.js").status_code == 404


def test_6_2_every_panel_renders_the_api_numbers(
    page: Page, served: Served, screenshot: Screenshots
) -> None:
    open_dashboard(page, served)
    assert "#token" not in page.url  # the token leaves the address bar for localStorage
    assert page.evaluate("localStorage.getItem('journey.token')") == served.token
    assert_funnel_and_kpis_match(page, served, model="default")

    journey = served.api("/v1/journey-map", model="default")
    heads = page.eval_on_selector_all("[data-testid=board] .stagehead",
                                      "hs => hs.map(h => h.dataset.stage)")
    assert heads == [s["stage"] for s in journey["stages"]]
    board = page.eval_on_selector_all(
        "[data-testid=board] .r-customers [data-field=customers]",
        "cs => cs.map(c => Number(c.dataset.value))")
    assert board == [s["customers"] for s in journey["stages"]]
    touch = page.locator("[data-testid=board] ol.touch li").count()
    assert touch == sum(len(s["touchpoints"]) for s in journey["stages"]) > 0
    dots = page.eval_on_selector_all(".emo-dot", "ds => ds.map(d => Number(d.dataset.value))")
    want_moods = [s["emotion"]["score"] for s in journey["stages"]
                  if s["emotion"]["score"] is not None]
    assert dots == want_moods and dots

    transitions = served.api("/v1/transitions", model="default")
    cells = page.eval_on_selector_all(
        "[data-testid=transitions] td[data-value]",
        "ts => ts.map(t => [t.dataset.from, t.dataset.to, Number(t.dataset.value)])")
    assert sorted(map(tuple, cells)) == sorted(
        (t["from"], t["to"], t["transitions"]) for t in transitions)

    series = served.api("/v1/timeseries", model="default")
    per_channel: dict[str, int] = defaultdict(int)
    for row in series:
        per_channel[row["channel"]] += row["events"]
    legend = dict(page.eval_on_selector_all(
        "[data-testid=mix] [data-channel]", "bs => bs.map(b => [b.dataset.channel, "
        "Number(b.dataset.value)])"))
    assert legend == per_channel and sum(legend.values()) > 0

    credit = served.api("/v1/attribution", model="default", method="position_based",
                        by="channel")
    bars = page.eval_on_selector_all("[data-testid=attribution] .bval",
                                     "bs => bs.map(b => Number(b.dataset.value))")
    assert bars == [r["credit"] for r in credit][:8] and bars

    watermark = served.api("/v1/kpis", model="default")["watermark"]
    assert watermark[:16].replace("T", " ") in page.locator("#fresh-text").inner_text()
    assert page.locator("#freshness").get_attribute("data-status") == "ok"
    screenshot(page, "overview")
    screenshot(page, "first-screen", full_page=False)


def test_6_2_persona_and_model_selection_update_funnel_and_kpis(
    page: Page, served: Served, screenshot: Screenshots
) -> None:
    open_dashboard(page, served)
    everyone = served.api("/v1/kpis", model="default")["customers"]
    page.locator("#persona").fill(PERSONA)
    page.locator("#persona").press("Enter")
    wait_shown(page, "default", PERSONA)
    assert_funnel_and_kpis_match(page, served, model="default", **{"trait.persona": PERSONA})
    assert 0 < served.api("/v1/kpis", **{"trait.persona": PERSONA})["customers"] < everyone
    assert PERSONA in page.locator("#map-segment").inner_text()
    assert f"persona={PERSONA.replace(' ', '+')}" in page.url  # shareable view
    screenshot(page, "persona")

    # A shared link naming another model opens on that model, persona kept.
    page.goto(page.url.replace("?", "?model=aida&", 1))
    wait_shown(page, "aida", PERSONA)
    assert_funnel_and_kpis_match(page, served, model="aida", **{"trait.persona": PERSONA})
    aida = [s["stage"] for s in served.api("/v1/funnel", model="aida")["stages"]]
    assert [s["stage"] for s in funnel_on_page(page)] == aida != \
        [s["stage"] for s in served.api("/v1/funnel")["stages"]]
    page.locator("#persona").fill("")
    page.locator("#persona").press("Enter")
    wait_shown(page, "aida", "")
    assert_funnel_and_kpis_match(page, served, model="aida")


def busiest_email(events: list[Event]) -> str:
    """The email key whose events span the most channels (a multi-channel journey)."""
    channels: dict[str, set[str]] = defaultdict(set)
    for e in events:
        for k in e.keys:
            if k.type == "email":
                channels[k.value].add(e.channel)
    return max(sorted(channels), key=lambda v: len(channels[v]))


def test_6_2_customer_lookup_shows_the_timeline_across_channels(
    page: Page, served: Served, all_events: list[Event], screenshot: Screenshots
) -> None:
    open_dashboard(page, served)
    email = busiest_email(all_events)
    page.locator("#lookup-key").fill(email)
    page.locator("#lookup-form button").click()
    page.wait_for_selector("[data-testid=timeline]", timeout=20_000)
    customer = served.api(f"/v1/customers/{email}", model="default")
    events = served.api(f"/v1/customers/{email}/events")
    assert page.locator("[data-testid=customer]").get_attribute("data-customer") == \
        customer["customer_id"]
    assert page.locator("[data-testid=timeline] circle.evt").count() == len(events) > 1
    lanes = page.eval_on_selector_all(".timeline .lanelabel", "ls => ls.map(l => l.textContent)")
    assert sorted(lanes) == sorted({e["channel"] for e in events}) and len(lanes) >= 2
    chips = page.eval_on_selector_all("ol.stagechips li b", "bs => bs.map(b => b.textContent)")
    assert [c.lower() for c in chips] == [s["stage"] for s in customer["stages"]]
    page.locator("#customer").scroll_into_view_if_needed()
    screenshot(page, "customer", full_page=False)


def test_6_2_polls_with_if_none_match_and_shows_new_data(
    page: Page, growing: tuple[Served, list[Event]], screenshot: Screenshots
) -> None:
    served, later = growing
    statuses: list[int] = []

    def record(resp: Response) -> None:
        if "/v1/funnel" in resp.url:
            statuses.append(resp.status)

    page.on("response", record)
    open_dashboard(page, served)
    page.wait_for_function("() => Number(document.body.dataset.polls) >= 3", timeout=20_000)
    assert statuses[0] == 200 and 304 in statuses  # unchanged data: conditional polls
    before = served.api("/v1/kpis")["events"]
    served.add(later)
    # A request that lands while a poll is loading the new snapshot is answered from the old one
    # (the store never blocks readers), so give the swap a moment.
    deadline = time.monotonic() + 20
    after = served.api("/v1/kpis")["events"]
    while after != before + len(later) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = served.api("/v1/kpis")["events"]
    assert after == before + len(later)
    page.wait_for_function(
        "t => document.querySelector('[data-kpi=customers] .tile-sub').textContent === t",
        arg=f"{fmt_int(after)} events", timeout=20_000)
    assert_funnel_and_kpis_match(page, served, model="default")


def test_6_2_asks_for_the_token_when_none_is_known(page: Page, served: Served) -> None:
    page.goto(f"{served.url}/dashboard?poll=1")
    dialog = page.locator("#token-dialog")
    dialog.wait_for(state="visible")
    page.locator("#token-input").fill(served.token)
    page.locator("#token-form button").click()
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)
    assert not dialog.is_visible()
    assert_funnel_and_kpis_match(page, served, model="default")
