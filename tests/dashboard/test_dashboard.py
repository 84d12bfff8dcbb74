"""SPEC 6.2 (last bullet): the dashboard at `/` shows the journey map from the live API.

Every number is read off the page and compared with the API's answer for the same selection.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from conftest import ARTIFACTS, TOKEN, Screenshots, Served, build_app, serve
from playwright.sync_api import Page, Response, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from pydantic import SecretStr

from api.query import query_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from journey.schema import Event
from warehouse.reader import WarehouseReader

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


def transition_cells(page: Page) -> list[tuple[str, str, int]]:
    cells = page.eval_on_selector_all(
        "[data-testid=transitions] td[data-value]",
        "ts => ts.map(t => [t.dataset.from, t.dataset.to, Number(t.dataset.value)])")
    return [(str(f), str(to), int(n)) for f, to, n in cells]


def expected_transitions(served: Served, **params: str) -> list[tuple[str, str, int]]:
    """The API's transitions, plus (the first stage being reached only by `any`, so never an own
    stage of SPEC 4.2) each customer's first own stage as the step out of the first stage."""
    rows = [(t["from"], t["to"], t["transitions"]) for t in served.api("/v1/transitions", **params)]
    first = served.api("/v1/funnel", **params)["stages"][0]["stage"]
    assert all(r[0] != first for r in rows)  # why the page adds the entry step
    entries = served.api("/v1/paths", **params, by="stage", steps="1", top="1000")
    rows += [(first, e["path"][0], e["customers"]) for e in entries if e["path"][0] != first]
    return sorted(rows)


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

    assert sorted(transition_cells(page)) == expected_transitions(served, model="default")
    first = journey["stages"][0]["stage"]
    assert any(c[0] == first for c in transition_cells(page))  # the first row is not empty

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
    growing: tuple[Served, list[Event]], page: Page, screenshot: Screenshots
) -> None:
    # `growing` comes first so that its server stops after the polling page has closed.
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


def test_6_2_a_poll_answered_from_two_snapshots_is_asked_again_not_shown(
    served: Served, page: Page
) -> None:
    # One funnel answer is made to look as if a newer snapshot had been swapped in between the
    # poll's requests: its ETag names another version and its numbers differ. The page must not
    # show it beside the other panels' answers; asked again, the funnel comes from the snapshot of
    # the rest.
    forged: list[int] = []
    funnel_requests: list[str] = []

    def forge(route: Route) -> None:
        funnel_requests.append(route.request.url)
        if forged:
            route.continue_()
            return
        # Unconditional, so that the answer has a body to forge (the page's own would get a 304).
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "if-none-match"}
        resp = route.fetch(headers=headers)
        body = resp.json()
        body["stages"][0]["customers"] += 1_000_000
        forged.append(body["stages"][0]["customers"])
        forged_etag = '"v999999-forged"'
        route.fulfill(response=resp, json=body, headers={**resp.headers, "etag": forged_etag})

    open_dashboard(page, served)
    page.evaluate("""() => { window.__shown = [];
        new MutationObserver(() => document.querySelectorAll('[data-testid=funnel] .frow')
          .forEach(r => window.__shown.push(
            Number(r.querySelector('[data-field=customers]').dataset.value))))
          .observe(document.getElementById('funnel'), {childList: true, subtree: true}); }""")
    polls = int(page.evaluate("() => Number(document.body.dataset.polls)"))
    page.route(re.compile(r"/v1/funnel\?"), forge)
    page.wait_for_function("n => Number(document.body.dataset.polls) >= n", arg=polls + 2,
                           timeout=20_000)
    assert forged, "no funnel answer was forged"
    assert len(funnel_requests) >= 2  # the forged poll was asked again
    shown = page.evaluate("() => window.__shown")
    assert forged[0] not in shown
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


# ---- issue 11: filters, comparison, exports, cohorts/paths/sessions, model selector, groups ----

FROM, TO = "2025-02-01", "2025-03-31"  # a first-seen range inside the demo's data
CHANNEL = "web"


def filtered(model: str = "default", persona: str = "", day_from: str = "", day_to: str = "",
             channel: str = "") -> dict[str, str]:
    """The API parameters of a page selection: its `to` day is included, the API's is not."""
    p = {"model": model}
    if persona:
        p["trait.persona"] = persona
    if day_from:
        p["from"] = day_from
    if day_to:
        p["to"] = (date.fromisoformat(day_to) + timedelta(days=1)).isoformat()
    if channel:
        p["channel"] = channel
    return p


def wait_selection(page: Page, **want: str) -> None:
    """Wait until the panels show a selection with these fields."""
    page.wait_for_function(
        "w => { const s = JSON.parse(document.body.dataset.shown || '{}');"
        " return Object.entries(w).every(([k, v]) => (s[k] ?? '') === v); }",
        arg=want, timeout=20_000)


def panel_shot(page: Page, panel_id: str, name: str) -> None:
    """A screenshot of one panel (the section holding #panel_id) as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    section = page.locator(f"section.panel:has(#{panel_id})")
    section.scroll_into_view_if_needed()
    section.screenshot(path=str(ARTIFACTS / f"panel-{name}.png"))


def cohorts_on_page(page: Page) -> list[list[Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=cohorts] tbody tr",
        """rs => rs.map(r => [r.dataset.cohort,
             Number(r.querySelector('[data-field=customers]').dataset.value),
             [...r.querySelectorAll('[data-week]')].map(c => c.dataset.value === '' ? null
               : Number(c.dataset.value))])""")


def paths_on_page(page: Page) -> list[tuple[list[str], int]]:
    rows = page.eval_on_selector_all(
        "[data-testid=paths] li", "ls => ls.map(l => [JSON.parse(l.dataset.path), "
        "Number(l.dataset.value)])")
    return [(p, n) for p, n in rows]


def sessions_on_page(page: Page) -> dict[str, tuple[int, int]]:
    rows = page.eval_on_selector_all(
        "[data-testid=sessions] tr[data-channel]",
        """rs => rs.map(r => [r.dataset.channel, [
             Number(r.querySelector('[data-field=sessions]').dataset.value),
             Number(r.querySelector('[data-field=customers]').dataset.value)]])""")
    return {c: (n, cu) for c, (n, cu) in rows}


def assert_panels_match(page: Page, served: Served, params: dict[str, str]) -> None:
    """Funnel, KPIs, transitions, cohorts, paths, sessions and the channel mix equal the API."""
    assert_funnel_and_kpis_match(page, served, **params)
    assert sorted(transition_cells(page)) == expected_transitions(served, **params)
    cohorts = served.api("/v1/cohorts", **params, weeks="8")
    assert cohorts_on_page(page) == [[c["cohort"][:10], c["customers"], c["retention"]]
                                     for c in cohorts]
    paths = served.api("/v1/paths", **params, by="stage", steps="4", top="8")
    assert paths_on_page(page) == [(p["path"], p["customers"]) for p in paths]
    period = {k: v for k, v in params.items() if k in ("from", "to", "channel")}
    sessions = served.api("/v1/sessions", **period)
    want = {r["channel"]: (r["sessions"], r["customers"]) for r in sessions["by_channel"]}
    assert sessions_on_page(page) == {**want, "all": (sessions["sessions"], sessions["customers"])}
    series = served.api("/v1/timeseries", **{k: v for k, v in params.items() if k != "channel"},
                        **({"channel": params["channel"]} if "channel" in params else {}))
    per_channel: dict[str, int] = defaultdict(int)
    for row in series:
        per_channel[row["channel"]] += row["events"]
    legend = dict(page.eval_on_selector_all(
        "[data-testid=mix] [data-channel]", "bs => bs.map(b => [b.dataset.channel, "
        "Number(b.dataset.value)])"))
    assert legend == per_channel


def test_issue11_date_range_and_channel_filter_change_every_panel(
    page: Page, served: Served, screenshot: Screenshots
) -> None:
    open_dashboard(page, served)
    everyone = filtered()
    assert_panels_match(page, served, everyone)
    page.locator("#from").fill(FROM)
    page.locator("#to").fill(TO)
    wait_selection(page, **{"from": FROM, "to": TO})
    ranged = filtered(day_from=FROM, day_to=TO)
    assert_panels_match(page, served, ranged)
    assert served.api("/v1/kpis", **ranged)["customers"] < \
        served.api("/v1/kpis", **everyone)["customers"]
    assert served.api("/v1/cohorts", **ranged, weeks="8") != \
        served.api("/v1/cohorts", **everyone, weeks="8")
    page.locator("#channel").select_option(CHANNEL)
    wait_selection(page, **{"from": FROM, "to": TO, "channel": CHANNEL})
    both = filtered(day_from=FROM, day_to=TO, channel=CHANNEL)
    assert_panels_match(page, served, both)
    assert served.api("/v1/sessions", **{k: both[k] for k in ("from", "to", "channel")}) != \
        served.api("/v1/sessions", **{k: both[k] for k in ("from", "to")})
    assert f"from={FROM}" in page.url and f"channel={CHANNEL}" in page.url  # shareable
    page.reload()
    wait_selection(page, **{"from": FROM, "to": TO, "channel": CHANNEL})
    assert_panels_match(page, served, both)
    screenshot(page, "filtered")
    screenshot(page, "filtered-first-screen", full_page=False)
    page.locator("#clear-filters").click()
    wait_selection(page, **{"from": "", "to": "", "channel": ""})
    assert_panels_match(page, served, everyone)


def compare_on_page(page: Page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=compare] tbody tr",
        """rs => rs.map(r => { const v = f => { const d = r.querySelector(`[data-field=${f}]`)
             .dataset.value; return d === '' ? null : Number(d); };
           return {stage: r.dataset.stage, a: v('a_customers'), b: v('b_customers'),
             dc: v('delta_conversion_from_first'), dm: v('delta_median_time_to_stage_s')}; })""")


def assert_compare_matches(page: Page, served: Served, a: dict[str, str],
                           b: dict[str, str]) -> None:
    fa, fb = served.api("/v1/funnel", **a)["stages"], served.api("/v1/funnel", **b)["stages"]
    want = []
    for sa, sb in zip(fa, fb, strict=True):
        def delta(key: str, sa: dict[str, Any] = sa, sb: dict[str, Any] = sb) -> float | None:
            return None if sa[key] is None or sb[key] is None else sb[key] - sa[key]
        want.append({"stage": sa["stage"], "a": sa["customers"], "b": sb["customers"],
                     "dc": delta("conversion_from_first"),
                     "dm": delta("median_time_to_stage_s")})
    got = compare_on_page(page)
    assert [g["stage"] for g in got] == [w["stage"] for w in want]
    for g, w in zip(got, want, strict=True):
        assert (g["a"], g["b"]) == (w["a"], w["b"])
        for k in ("dc", "dm"):
            assert (g[k] is None) == (w[k] is None)
            assert g[k] is None or abs(g[k] - w[k]) < 1e-9


def test_issue11_persona_and_period_comparison_side_by_side(
    page: Page, served: Served
) -> None:
    open_dashboard(page, served)
    page.locator("#b-persona").fill(PERSONA)
    page.locator("#b-persona").press("Enter")
    page.wait_for_function("p => document.querySelector('[data-testid=compare] thead th.b')"
                           ".textContent.includes(p)", arg=PERSONA, timeout=20_000)
    assert_compare_matches(page, served, filtered(), filtered(persona=PERSONA))
    deltas = [r["dc"] for r in compare_on_page(page)[1:]]
    assert any(d not in (None, 0) for d in deltas)  # the personas do differ
    panel_shot(page, "compare", "compare-persona")

    # Period against the period before it, same length.
    page.locator("#b-persona").fill("")
    page.locator("#from").fill("2025-03-01")
    page.locator("#to").fill("2025-03-31")
    wait_selection(page, **{"from": "2025-03-01", "to": "2025-03-31"})
    page.locator("#b-previous").click()
    page.wait_for_function("() => document.getElementById('b-to').value === '2025-02-28'")
    assert page.locator("#b-from").input_value() == "2025-01-29"  # 31 days before March 1st
    page.wait_for_function("() => document.querySelector('[data-testid=compare] thead th.b')"
                           ".textContent.includes('2025-01-29')", timeout=20_000)
    assert_compare_matches(page, served, filtered(day_from="2025-03-01", day_to="2025-03-31"),
                           filtered(day_from="2025-01-29", day_to="2025-02-28"))
    panel_shot(page, "compare", "compare-period")


def download(page: Page, panel: str, fmt: str) -> str:
    # The page re-renders its panels on every poll: a click that lands on a button being
    # replaced starts no download, so it is clicked again (a person would click twice too).
    for attempt in range(3):
        try:
            with page.expect_download(timeout=10_000) as info:
                page.locator(f"button.exp[data-export={panel}][data-format={fmt}]").click()
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
    path = info.value.path()
    assert info.value.suggested_filename == f"journey-{panel}.{fmt}"
    return Path(path).read_text(encoding="utf-8")


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def test_issue11_csv_and_svg_exports_hold_the_api_numbers(page: Page, served: Served) -> None:
    open_dashboard(page, served)
    params = filtered()
    funnel = list(csv.DictReader(io.StringIO(download(page, "funnel", "csv"))))
    assert [(r["stage"], int(r["customers"]), number(r["conversion_from_first"])) for r in funnel] \
        == [(s["stage"], s["customers"], s["conversion_from_first"])
            for s in served.api("/v1/funnel", **params)["stages"]]
    trans = list(csv.DictReader(io.StringIO(download(page, "transitions", "csv"))))
    assert sorted((r["from"], r["to"], int(r["transitions"])) for r in trans) == \
        expected_transitions(served, **params)
    cohorts = list(csv.reader(io.StringIO(download(page, "cohorts", "csv"))))
    assert cohorts[0][:3] == ["cohort", "customers", "week 0"]
    assert [[r[0], int(r[1]), [number(x) for x in r[2:]]] for r in cohorts[1:]] == \
        [[c["cohort"][:10], c["customers"], c["retention"]]
         for c in served.api("/v1/cohorts", **params, weeks="8")]
    paths = list(csv.DictReader(io.StringIO(download(page, "paths", "csv"))))
    assert [(r["path"].split(" > "), int(r["customers"])) for r in paths] == \
        [(p["path"], p["customers"])
         for p in served.api("/v1/paths", **params, by="stage", steps="4", top="8")]
    sessions = {r["channel"]: int(r["sessions"])
                for r in csv.DictReader(io.StringIO(download(page, "sessions", "csv")))}
    api_sessions = served.api("/v1/sessions")
    assert sessions == {**{r["channel"]: r["sessions"] for r in api_sessions["by_channel"]},
                        "all": api_sessions["sessions"]}
    attribution = list(csv.DictReader(io.StringIO(download(page, "attribution", "csv"))))
    assert [(r["key"], float(r["credit"])) for r in attribution] == [
        (r["key"], r["credit"]) for r in served.api(
            "/v1/attribution", **params, method="position_based", by="channel")]
    mix = list(csv.DictReader(io.StringIO(download(page, "mix", "csv"))))
    assert sum(int(r["events"]) for r in mix) == served.api("/v1/kpis", **params)["events"]
    compare = list(csv.DictReader(io.StringIO(download(page, "compare", "csv"))))
    assert [int(r["a_customers"]) for r in compare] == [int(r["b_customers"]) for r in compare]
    assert {r["delta_conversion_from_first"] for r in compare} == {"0"}  # B = A: all customers
    board = list(csv.DictReader(io.StringIO(download(page, "map", "csv"))))
    assert [(r["stage"], int(r["customers"])) for r in board] == [
        (s["stage"], s["customers"]) for s in served.api("/v1/journey-map", **params)["stages"]]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    journey = served.api("/v1/journey-map", **params)
    for panel in ("map", "cohorts", "paths", "sessions"):
        svg = download(page, panel, "svg")
        root = ElementTree.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
        if panel == "map":
            assert [fmt_int(s["customers"]) for s in journey["stages"]] == texts[
                texts.index("Customers") + 1:texts.index("Customers") + 1 + len(journey["stages"])]
        if panel == "sessions":
            assert fmt_int(api_sessions["sessions"]) in texts
        (ARTIFACTS / f"export-{panel}.svg").write_text(svg, encoding="utf-8")
    # Render an exported SVG in the browser: people look at the PNG.
    view = page.context.new_page()
    view.set_content(f"<body style='margin:0'>{(ARTIFACTS / 'export-map.svg').read_text()}</body>")
    view.locator("svg").screenshot(path=str(ARTIFACTS / "export-map.png"))
    view.close()


@pytest.fixture(scope="module")
def served_with_models(served: Served) -> Iterator[Served]:
    """The same warehouse served with GET /v1/models too, as `journey up` does. (Only that route
    of the query router: the page then takes the persona suggestions from nowhere, which it
    must survive, and this test does not depend on POST /v1/query.)"""
    data_dir = served.writer.settings.data_dir
    app = build_app(data_dir)
    settings = ApiSettings(data_dir=data_dir, api_tokens=[SecretStr(TOKEN)],
                           refresh_interval_s=0.0)
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    router = query_router(settings, store)
    router.routes = [r for r in router.routes if getattr(r, "path", "") == "/v1/models"]
    app.include_router(router)
    with serve(app) as url:
        yield Served(url, served.writer, served.config, served.events)


def test_issue11_model_selector_lists_the_api_models(
    served_with_models: Served, page: Page
) -> None:
    served = served_with_models
    open_dashboard(page, served)
    options = page.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
    assert options == [m["model"] for m in served.api("/v1/models")] and len(options) >= 2
    page.locator("#model").select_option("aida")
    wait_selection(page, model="aida")
    assert "model=aida" in page.url
    assert_panels_match(page, served, filtered(model="aida"))


GROUP_CASES = [  # (source, medium) -> default channel group, per docs/dashboard.md
    ("(direct)", "(none)", "Direct"), ("google", "cpc", "Paid Search"),
    ("bing", "cpc", "Paid Search"), ("www.bing.com", "referral", "Organic Search"),
    ("bing", "organic", "Organic Search"), ("duckduckgo.com", "referral", "Organic Search"),
    ("google.co.uk", "referral", "Organic Search"), ("facebook", "paid_social", "Paid Social"),
    ("instagram", "social", "Organic Social"), ("t.co", "referral", "Organic Social"),
    ("www.pinterest.com", "referral", "Organic Social"), ("newsletter", "email", "Email"),
    ("email", "(none)", "Email"), ("partner.example", "affiliate", "Affiliates"),
    ("blog.example.org", "referral", "Referral"), ("sms", "(none)", "SMS"),
    ("ads.example", "display", "Display"), ("call", "(none)", "Call"),
    ("store", "(none)", "Store"), ("youtube.com", "referral", "Organic Video"),
    ("weird", "(none)", "Unassigned"),
]


def test_issue11_default_channel_grouping_of_sources(page: Page, served: Served) -> None:
    open_dashboard(page, served)
    got = page.evaluate(
        "cases => import('/static/dashboard/groups.js').then(m => "
        "cases.map(([s, md]) => m.channelGroup(s, md)))", [[s, m] for s, m, _ in GROUP_CASES])
    assert got == [g for _, _, g in GROUP_CASES]

    keys = served.api("/v1/attribution", method="linear", by="source_medium")
    by_channel = served.api("/v1/attribution", method="linear", by="channel")
    page.locator("#attr-method").select_option("linear")
    for by in ("group", "site"):
        page.locator("#attr-by").select_option(by)
        page.wait_for_function(
            "() => document.querySelector('#attribution .bname') && "
            f"document.querySelector('#attr-by').value === '{by}'")
        page.wait_for_timeout(300)  # the poll after the change has rendered
        mapped = page.evaluate(
            "([ks, by]) => import('/static/dashboard/groups.js').then(m => ks.map(k => {"
            " const [s, md] = m.splitSourceMedium(k); return by === 'group' ?"
            " m.channelGroup(s, md) : m.sourceSite(s); }))", [[k["key"] for k in keys], by])
        want: dict[str, float] = defaultdict(float)
        for k, name in zip(keys, mapped, strict=True):
            want[name] += k["credit"]
        rows = list(csv.DictReader(io.StringIO(download(page, "attribution", "csv"))))
        assert {r["key"]: round(float(r["credit"]), 6) for r in rows} == \
            {k: round(v, 6) for k, v in want.items()}
        # Grouping moves credit between rows, never creates or loses any.
        assert abs(sum(float(r["credit"]) for r in rows) -
                   sum(r["credit"] for r in by_channel)) < 1e-6
        if by == "site":  # bing and www.bing.com are one row
            assert "bing" in {r["key"] for r in rows} and not any("www." in r["key"] for r in rows)
        panel_shot(page, "attribution", f"attribution-{by}")


def test_issue11_a_screenshot_per_panel(page: Page, served: Served, all_events: list[Event],
                                        screenshot: Screenshots) -> None:
    open_dashboard(page, served)
    for panel_id, name in (("board", "map"), ("funnel", "funnel"), ("transitions", "transitions"),
                           ("compare", "compare"), ("mix", "mix"),
                           ("attribution", "attribution"), ("cohorts", "cohorts"),
                           ("paths", "paths"), ("sessions", "sessions")):
        panel_shot(page, panel_id, name)
    page.locator("#lookup-key").fill(busiest_email(all_events))
    page.locator("#lookup-form button").click()
    page.wait_for_selector("[data-testid=timeline]", timeout=20_000)
    panel_shot(page, "customer", "customer")
    # Nothing overlaps on the first screen: the header rows, tiles and board do not cover
    # each other, and the board ends above the fold of a 1440x900 screen.
    page.evaluate("window.scrollTo(0, 0)")
    boxes = page.evaluate("""() => ['.topbar', '#filters', '#kpis', '#board']
        .map(s => document.querySelector(s).getBoundingClientRect())
        .map(r => [r.top, r.bottom, r.left, r.right])""")
    for upper, lower in pairwise(boxes):
        assert upper[1] <= lower[0] + 0.5
    assert boxes[-1][1] <= 900 and max(b[3] for b in boxes) <= 1440
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= 1440
    screenshot(page, "first-screen", full_page=False)
