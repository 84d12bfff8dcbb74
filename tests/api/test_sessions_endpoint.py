"""/v1/sessions statistics over the sessions table."""

from __future__ import annotations

import duckdb
import pytest

from api.metrics.sessions import session_stats
from tests.api.conftest import Dataset, at


def test_6_2_session_counts_and_duration_statistics(con: duckdb.DuckDBPyConnection,
                                                    data: Dataset) -> None:
    data.session("w1", "a", at(0), duration_s=0, events=1)
    data.session("w2", "a", at(1), duration_s=60, events=3)
    data.session("w3", "b", at(1), duration_s=120, events=2)
    data.session("w4", "b", at(2), duration_s=600, events=5)
    data.session("e1", "c", at(2), channel="email", duration_s=0, events=1)
    data.session("late", "c", at(9), duration_s=30, events=1)
    data.load(con)
    out = session_stats(con, at(0), at(3), None)
    assert (out["sessions"], out["customers"]) == (5, 3)
    assert out["mean_duration_s"] == pytest.approx(156)
    assert out["median_duration_s"] == 60
    assert out["p90_duration_s"] == pytest.approx(120 + 0.6 * 480)  # position 3.6 of 0..4
    assert out["max_duration_s"] == 600
    assert out["bounce_rate"] == pytest.approx(2 / 5)
    assert [(c["channel"], c["sessions"]) for c in out["by_channel"]] == [("web", 4), ("email", 1)]
    web = session_stats(con, None, at(3), "web")
    assert (web["sessions"], web["median_duration_s"]) == (4, 90)
    assert session_stats(con, at(3), None, None)["sessions"] == 1


def test_6_2_no_sessions_gives_zero_counts_and_null_statistics(
    con: duckdb.DuckDBPyConnection, data: Dataset
) -> None:
    data.load(con)
    out = session_stats(con, None, None, None)
    assert out["sessions"] == 0 and out["median_duration_s"] is None and out["by_channel"] == []
