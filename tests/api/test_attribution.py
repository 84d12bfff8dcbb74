"""SPEC 5 Attribution: first/last touch, linear and position-based credit, by channel or source."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from api.metrics.attribution import By, Method, attribution
from api.metrics.filters import CustomerFilter, load_model
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    # A converts at day 1 12:00 after four touches; s4 (email) starts inside the converting web
    # session s3, which still is the last touch; s5 starts after the conversion.
    data.customer("A", at(0))
    data.stages("A", [at(0), at(0.5), at(1.5)])
    data.session("s1", "A", at(0), source="google")
    data.session("s2", "A", at(0.5), channel="email", source="newsletter")
    data.session("s3", "A", at(1.4), source="(direct)", converted=("default",))
    data.session("s4", "A", at(1.45), channel="email", source="email")
    data.session("s5", "A", at(2), source="google")
    # B converts in its only session
    data.customer("B", at(3))
    data.stages("B", [at(3), at(3), at(3)])
    data.session("s6", "B", at(3), channel="app", source="app", converted=("default",))
    # C: two touches, the converting one a call
    data.customer("C", at(4))
    data.stages("C", [at(4), at(4), at(4.5)])
    data.session("s7", "C", at(4), source="google")
    data.session("s8", "C", at(4.5), channel="call", source="call", converted=("default",))
    # D never converts
    data.customer("D", at(5))
    data.stages("D", [at(5), at(5)])
    data.session("s9", "D", at(5), source="google")
    data.load(con)
    return con


def credit(con: duckdb.DuckDBPyConnection, method: Method, by: By) -> list[tuple[str, Any, int]]:
    rows = attribution(con, load_model(con, "default"), CustomerFilter(), method, by)
    return [(r["key"], pytest.approx(r["credit"]), r["conversions"]) for r in rows]


def test_5_first_touch(loaded: duckdb.DuckDBPyConnection) -> None:
    assert credit(loaded, "first_touch", "channel") == [("web", 2, 2), ("app", 1, 1)]


def test_5_last_touch_is_the_converting_session(loaded: duckdb.DuckDBPyConnection) -> None:
    assert credit(loaded, "last_touch", "channel") == [("app", 1, 1), ("call", 1, 1),
                                                       ("web", 1, 1)]


def test_5_linear(loaded: duckdb.DuckDBPyConnection) -> None:
    assert credit(loaded, "linear", "channel") == [
        ("app", 1.0, 1), ("web", 1.0, 2), ("call", 0.5, 1), ("email", 0.5, 1)]


def test_5_position_based_40_20_40_one_touch_100_two_50_50(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    # A: web .4 + .4, email .1 + .1; B: app 1; C: web .5, call .5
    assert credit(loaded, "position_based", "channel") == [
        ("web", 1.3, 2), ("app", 1.0, 1), ("call", 0.5, 1), ("email", 0.2, 1)]


def test_5_credit_by_source(loaded: duckdb.DuckDBPyConnection) -> None:
    assert credit(loaded, "position_based", "source") == [
        ("app", 1.0, 1), ("google", 0.9, 2), ("call", 0.5, 1), ("(direct)", 0.4, 1),
        ("email", 0.1, 1), ("newsletter", 0.1, 1)]


def test_5_total_credit_equals_conversions(loaded: duckdb.DuckDBPyConnection) -> None:
    methods: tuple[Method, ...] = ("first_touch", "last_touch", "linear", "position_based")
    for method in methods:
        model = load_model(loaded, "default")
        rows = attribution(loaded, model, CustomerFilter(), method, "source")
        total = sum(r["credit"] for r in rows)
        assert total == pytest.approx(3)


def test_5_first_touch_is_the_earliest_starting_touch(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    # E's converting web session starts first; an email touch starts inside it. The email is
    # neither the first touch (the web session started earlier) nor the last (it did not convert).
    data.customer("E", at(0))
    data.stages("E", [at(0), at(0.1), at(0.2)])
    data.session("w", "E", at(0), source="google", converted=("default",))
    data.session("m", "E", at(0.1), channel="email", source="newsletter")
    data.load(con)
    model = load_model(con, "default")
    # The per-class pre-aggregate (no first_seen window) and the plain SQL (with one) agree.
    for f in (CustomerFilter(), CustomerFilter(since=at(-1))):
        def got(method: Method, f: CustomerFilter = f) -> list[tuple[str, Any, int]]:
            rows = attribution(con, model, f, method, "channel")
            return [(r["key"], pytest.approx(r["credit"]), r["conversions"]) for r in rows]

        assert got("first_touch") == [("web", 1, 1)]
        assert got("last_touch") == [("web", 1, 1)]
        assert got("position_based") == [("email", 0.5, 1), ("web", 0.5, 1)]
