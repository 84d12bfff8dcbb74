"""Paths: most common first-N sequences of own stages or event names."""

from __future__ import annotations

import duckdb
import pytest

from api.metrics.filters import CustomerFilter, load_model
from api.metrics.paths import paths
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    seqs: dict[str, list[tuple[str, str | None]]] = {
        "a": [("Page Viewed", None), ("Product Viewed", "consideration"),
              ("Product Viewed", "consideration"), ("Order Completed", "decision"),
              ("Cart Viewed", "consideration")],
        "b": [("Page Viewed", None), ("Page Viewed", None), ("Product Viewed", "consideration"),
              ("Checkout Started", "decision")],
        "c": [("Product Viewed", "consideration"), ("Order Completed", "decision"),
              ("Product Viewed", "consideration")],
    }
    for cid, seq in seqs.items():
        data.customer(cid, at(0))
        for i, (event, own) in enumerate(seq):
            # same timestamp for all: event_id breaks the tie, so "e0" < "e1" < ...
            data.event(f"{cid}-e{i}", cid, at(1), event, own or "awareness", own_stage=own)
    data.load(con)
    return con


def test_5_stage_paths_skip_events_without_own_stage_and_collapse_repeats(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    model = load_model(loaded, "default")
    assert paths(loaded, model, CustomerFilter(), "stage", steps=4, top=10) == [
        {"path": ["consideration", "decision", "consideration"], "customers": 2,
         "share": pytest.approx(2 / 3)},
        {"path": ["consideration", "decision"], "customers": 1, "share": pytest.approx(1 / 3)},
    ]
    two = paths(loaded, model, CustomerFilter(), "stage", steps=2, top=10)
    assert two == [{"path": ["consideration", "decision"], "customers": 3, "share": 1.0}]


def test_5_event_paths(loaded: duckdb.DuckDBPyConnection) -> None:
    model = load_model(loaded, "default")
    got = paths(loaded, model, CustomerFilter(), "event", steps=3, top=2)
    assert got == [
        {"path": ["Page Viewed", "Product Viewed", "Checkout Started"], "customers": 1,
         "share": pytest.approx(1 / 3)},
        {"path": ["Page Viewed", "Product Viewed", "Order Completed"], "customers": 1,
         "share": pytest.approx(1 / 3)},
    ]
