"""SPEC 5 Funnel, on a hand-made warehouse whose expected numbers are worked out below."""

from __future__ import annotations

import duckdb
import pytest

from api.metrics.filters import CustomerFilter, load_model, parse_filter
from api.metrics.funnel import funnel
from tests.api.conftest import DAY, Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    # a: web, pro; awareness d0, consideration +60 s, decision +1 day
    data.customer("a", at(0), channel="web", traits={"plan": "pro"})
    data.stages("a", [at(0), at(0, 60), at(1)])
    # b: email, free; awareness d2, consideration +120 s
    data.customer("b", at(2), channel="email", traits={"plan": "free"})
    data.stages("b", [at(2), at(2, 120)])
    # c: web, pro; consideration inferred with decision at +300 s, retention +2 days
    data.customer("c", at(5), channel="web", traits={"plan": "pro", "vip": True})
    data.stages("c", [at(5), at(5, 300), at(5, 300), at(7)], inferred=(2,))
    # d: web, no traits; awareness only
    data.customer("d", at(10), channel="web")
    data.stages("d", [at(10)])
    data.load(con)
    return con


def stages(con: duckdb.DuckDBPyConnection, f: CustomerFilter) -> list[tuple[object, ...]]:
    out = funnel(con, load_model(con, "default"), f)
    assert out["model"] == "default"
    return [tuple(s.values()) for s in out["stages"]]


def test_5_funnel_counts_ratios_and_interpolated_median(loaded: duckdb.DuckDBPyConnection) -> None:
    assert stages(loaded, CustomerFilter()) == [
        ("awareness", 4, 1.0, 1.0, 0.0),
        ("consideration", 3, 0.75, 0.75, 120.0),
        ("decision", 2, 2 / 3, 0.5, (DAY + 300) / 2),  # median of two values interpolates
        ("retention", 1, 0.5, 0.25, 2 * DAY),
        ("advocacy", 0, 0.0, 0.0, None),
    ]


def test_5_inferred_stages_count_as_reached(loaded: duckdb.DuckDBPyConnection) -> None:
    only_c = CustomerFilter(since=at(5), until=at(6))
    assert [s[1] for s in stages(loaded, only_c)] == [1, 1, 1, 1, 0]


def test_5_first_touch_channel_filter(loaded: duckdb.DuckDBPyConnection) -> None:
    web = stages(loaded, parse_filter({"channel": "WEB"}))
    assert [s[1] for s in web] == [3, 2, 2, 1, 0]
    assert web[1] == ("consideration", 2, 2 / 3, 2 / 3, 180.0)
    assert web[2][2] == 1.0


def test_5_first_seen_window_is_half_open(loaded: duckdb.DuckDBPyConnection) -> None:
    # from = b's first_seen (included), to = d's first_seen (excluded): b and c
    window = stages(loaded, parse_filter({"from": at(2).isoformat(), "to": "2024-01-11"}))
    assert [s[1] for s in window] == [2, 2, 1, 1, 0]
    assert stages(loaded, parse_filter({"to": "2024-01-11T00:00:01Z"}))[0][1] == 4


def test_2_3_segment_filter_on_current_traits(loaded: duckdb.DuckDBPyConnection) -> None:
    assert [s[1] for s in stages(loaded, parse_filter({"trait.plan": "pro"}))] == [2, 2, 2, 1, 0]
    assert [s[1] for s in stages(loaded, parse_filter({"trait.vip": "true"}))] == [1, 1, 1, 1, 0]
    both = parse_filter({"trait.plan": "pro", "channel": "email"})
    assert [s[1] for s in stages(loaded, both)] == [0, 0, 0, 0, 0]


def test_5_ratios_are_null_when_the_denominator_is_zero(loaded: duckdb.DuckDBPyConnection) -> None:
    empty = stages(loaded, parse_filter({"trait.plan": "enterprise"}))
    assert empty == [(name, 0, None, None, None) for name in
                     ("awareness", "consideration", "decision", "retention", "advocacy")]
