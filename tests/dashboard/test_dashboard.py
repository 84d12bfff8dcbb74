"""SPEC 6.2 (last bullet): the dashboard at `/` shows the journey map from the live API."""

from __future__ import annotations

from playwright.sync_api import Page

from conftest import Screenshots, Served


def open_dashboard(page: Page, served: Served, query: str = "?poll=1") -> None:
    page.goto(f"{served.url}/{query}#token={served.token}")
    page.wait_for_selector("body[data-state=ready]", timeout=20_000)


def test_6_2_dashboard_renders_every_panel(
    page: Page, served: Served, screenshot: Screenshots
) -> None:
    open_dashboard(page, served)
    screenshot(page, "overview")
