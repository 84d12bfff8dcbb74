"""SPEC 5.1 in the dashboard: the journey map's drop-off view (/v1/dropoff) and the comparison of
two personas or two periods (/v1/compare), on the demo data through the real pipeline; every
number is read off the page and compared with the API's answer, and each view is saved as a
screenshot under test-artifacts/dashboard/."""

from __future__ import annotations

import csv
import io
from typing import Any

from conftest import Served
from playwright.sync_api import Page
from test_dashboard import (
    compare_on_page,
    download,
    filtered,
    open_dashboard,
    panel_shot,
    wait_selection,
)

STOPPING = "Churn risk"  # a persona of journey.demo that stops more than most
PERSONA = "Loyal Regular"


def dropoff_on_page(page: Page) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        "[data-testid=dropoff] .stagehead",
        """hs => hs.map(hd => { const st = hd.dataset.stage;
             const f = n => document.querySelector(
               `[data-testid=dropoff] .cell[data-stage="${st}"] [data-field=${n}]`);
             const v = n => f(n).dataset.value === '' ? null : Number(f(n).dataset.value);
             return {stage: st, reached: v('reached'), stopped: v('stopped'),
               stop_rate: v('stop_rate'), median_days_to_stop: v('median_days_to_stop'),
               rate_text: f('stop_rate').textContent,
               last_touchpoints: [...document.querySelectorAll(
                 `[data-testid=dropoff] .cell[data-stage="${st}"] li`)].map(li => ({
                   event: li.dataset.event, channel: li.dataset.channel,
                   customers: Number(li.dataset.value)}))}; })""")


def assert_dropoff_matches(page: Page, served: Served, **params: str) -> list[dict[str, Any]]:
    want = served.api("/v1/dropoff", **params)["stages"]
    got = dropoff_on_page(page)
    assert [g["stage"] for g in got] == [w["stage"] for w in want]
    for g, w in zip(got, want, strict=True):
        for key in ("reached", "stopped", "last_touchpoints"):
            assert g[key] == w[key], (w["stage"], key)
        for key in ("stop_rate", "median_days_to_stop"):
            assert (g[key] is None) == (w[key] is None)
            assert g[key] is None or abs(g[key] - w[key]) < 1e-9
        assert g["rate_text"] == ("–" if w["stop_rate"] is None else f"{w['stop_rate'] * 100:.1f}%")
    return want


def test_5_1_dropoff_view_on_the_journey_map_shows_the_api_numbers(
    page: Page, served: Served
) -> None:
    open_dashboard(page, served)
    assert page.locator("#dropoff").is_hidden()
    page.locator("#view-dropoff").click()
    page.wait_for_selector("[data-testid=dropoff]", state="visible", timeout=20_000)
    assert page.locator("#board").is_hidden()
    want = assert_dropoff_matches(page, served, **filtered())
    assert sum(s["stopped"] for s in want) > 0  # the demo has customers that stopped
    assert any(s["last_touchpoints"] for s in want)
    panel_shot(page, "dropoff", "dropoff")

    # A persona narrows it like every other panel; the view is kept in the address.
    page.locator("#persona").fill(STOPPING)
    page.locator("#persona").press("Enter")
    wait_selection(page, persona=STOPPING)
    assert_dropoff_matches(page, served, **filtered(persona=STOPPING))
    assert "view=dropoff" in page.url
    rows = list(csv.DictReader(io.StringIO(download(page, "dropoff", "csv"))))
    want = served.api("/v1/dropoff", **filtered(persona=STOPPING))["stages"]
    assert [(r["stage"], int(r["reached"]), int(r["stopped"])) for r in rows] == \
        [(s["stage"], s["reached"], s["stopped"]) for s in want]
    panel_shot(page, "dropoff", "dropoff-persona")
    page.reload()
    page.wait_for_selector("[data-testid=dropoff]", state="visible", timeout=20_000)
    page.locator("#view-map").click()
    assert page.locator("#board").is_visible() and page.locator("#dropoff").is_hidden()
    assert "view=" not in page.url


def assert_compare_is_the_apis(page: Page, served: Served, a: dict[str, str],
                               b: dict[str, str]) -> dict[str, Any]:
    params = {"model": a["model"], **{f"a.{k}": v for k, v in a.items() if k != "model"},
              **{f"b.{k}": v for k, v in b.items() if k != "model"}}
    want = served.api("/v1/compare", **params)
    got = compare_on_page(page)
    assert [g["stage"] for g in got] == [d["stage"] for d in want["delta"]]
    for g, sa, sb, d in zip(got, want["a"]["stages"], want["b"]["stages"], want["delta"],
                            strict=True):
        assert (g["a"], g["b"]) == (sa["customers"], sb["customers"])
        assert g["dc"] == d["delta_conversion_from_first"]
        assert g["dm"] == d["delta_median_time_to_stage_s"]
    return want  # type: ignore[no-any-return]


def test_5_1_comparison_of_two_personas_and_of_two_periods(page: Page, served: Served) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/v1/compare" in r.url else None)
    open_dashboard(page, served)
    other = "Bargain Hunter"
    page.locator("#persona").fill(PERSONA)
    page.locator("#persona").press("Enter")
    wait_selection(page, persona=PERSONA)
    page.locator("#b-persona").fill(other)
    page.locator("#b-persona").press("Enter")
    page.wait_for_function("p => document.querySelector('[data-testid=compare] thead th.b')"
                           ".textContent.includes(p)", arg=other, timeout=20_000)
    want = assert_compare_is_the_apis(page, served, filtered(persona=PERSONA),
                                      filtered(persona=other))
    assert want["a"]["filter"]["traits"] == {"persona": PERSONA}
    assert any(d["delta_conversion_from_first"] not in (None, 0) for d in want["delta"][1:])
    assert any("b.trait.persona=" in u for u in asked)
    panel_shot(page, "compare", "compare-personas")

    # Two periods: A is March, B the 31 days before it ("previous period").
    page.locator("#persona").fill("")
    page.locator("#persona").press("Enter")
    page.locator("#from").fill("2025-03-01")
    page.locator("#to").fill("2025-03-31")
    wait_selection(page, **{"from": "2025-03-01", "to": "2025-03-31", "persona": ""})
    page.locator("#b-previous").click()
    page.wait_for_function("() => document.querySelector('[data-testid=compare] thead th.b')"
                           ".textContent.includes('2025-01-29')", timeout=20_000)
    page.wait_for_timeout(300)  # the poll after the change has rendered
    assert_compare_is_the_apis(page, served, filtered(day_from="2025-03-01", day_to="2025-03-31"),
                               filtered(day_from="2025-01-29", day_to="2025-02-28"))
    panel_shot(page, "compare", "compare-periods")
