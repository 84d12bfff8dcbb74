"""Attribution by `source_medium` ("source / medium", as GA4 names it): what the dashboard needs
to group sources into default channel groups (the medium tells paid from organic search)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import duckdb
import pytest

from api.metrics.attribution import METHODS, attribution
from api.metrics.filters import CustomerFilter, load_model
from tests.api.conftest import Dataset, at


@pytest.fixture
def loaded(con: duckdb.DuckDBPyConnection, data: Dataset) -> duckdb.DuckDBPyConnection:
    # A: google ads, then organic google, converts in a direct session; B: bing referral, converts.
    data.customer("A", at(0))
    data.stages("A", [at(0), at(0.5), at(1.5)])
    data.session("s1", "A", at(0), source="google")
    data.session("s2", "A", at(0.5), source="google")
    data.session("s3", "A", at(1.4), source="(direct)", converted=("default",))
    data.customer("B", at(3))
    data.stages("B", [at(3), at(3), at(3.2)])
    data.session("s4", "B", at(3), source="www.bing.com", converted=("default",))
    mediums = {"s1": "cpc", "s2": "organic", "s3": "(none)", "s4": "referral"}
    for row in data.rows["sessions"]:
        row["medium"] = mediums[row["session_id"]]
    data.load(con)
    return con


def test_credit_by_source_medium_keeps_the_medium(loaded: duckdb.DuckDBPyConnection) -> None:
    model = load_model(loaded, "default")
    rows = attribution(loaded, model, CustomerFilter(), "linear", "source_medium")
    got = {r["key"]: (pytest.approx(r["credit"]), r["conversions"]) for r in rows}
    third = pytest.approx(1 / 3)
    assert got == {"www.bing.com / referral": (1.0, 1), "google / cpc": (third, 1),
                   "google / organic": (third, 1), "(direct) / (none)": (third, 1)}


@pytest.mark.parametrize("window", [False, True])
def test_source_medium_sums_to_by_source_for_every_method(
    loaded: duckdb.DuckDBPyConnection, window: bool
) -> None:
    # window=True takes the per-customer SQL, False the per-class pre-aggregate: both must agree.
    f = CustomerFilter(since=at(0) - timedelta(days=1)) if window else CustomerFilter()
    model = load_model(loaded, "default")
    for method in METHODS:
        by_pair: dict[str, float] = defaultdict(float)
        for r in attribution(loaded, model, f, method, "source_medium"):  # type: ignore[arg-type]
            by_pair[r["key"].rsplit(" / ", 1)[0]] += r["credit"]
        by_source = {r["key"]: r["credit"]
                     for r in attribution(loaded, model, f, method, "source")}  # type: ignore[arg-type]
        assert by_pair == pytest.approx(by_source)
