"""SPEC 4.2 stage transitions summed over customers."""

from __future__ import annotations

import duckdb

from api.metrics.filters import CustomerFilter, load_model, parse_filter
from api.metrics.transitions import transitions
from tests.api.conftest import Dataset, at


def test_4_2_transitions_forward_and_backward(con: duckdb.DuckDBPyConnection,
                                              data: Dataset) -> None:
    data.customer("a", at(0), traits={"plan": "pro"})
    data.customer("b", at(0))
    data.transition("a", "awareness", "consideration")
    data.transition("a", "consideration", "decision")
    data.transition("a", "decision", "consideration")
    data.transition("b", "awareness", "consideration")
    data.transition("b", "consideration", "decision", 2)
    data.load(con)
    model = load_model(con, "default")
    assert transitions(con, model, CustomerFilter()) == [
        {"from": "consideration", "to": "decision", "transitions": 3, "customers": 2},
        {"from": "awareness", "to": "consideration", "transitions": 2, "customers": 2},
        {"from": "decision", "to": "consideration", "transitions": 1, "customers": 1},
    ]
    pro = transitions(con, model, parse_filter({"trait.plan": "pro"}))
    assert [(t["from"], t["to"], t["transitions"]) for t in pro] == [
        ("awareness", "consideration", 1), ("consideration", "decision", 1),
        ("decision", "consideration", 1)]
