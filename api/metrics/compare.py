"""SPEC 5.1 Comparison: the funnels of two customer selections side by side, and per stage the
differences b − a of conversion from first and of median time to stage."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics.filters import CustomerFilter, StageModel, iso
from api.metrics.funnel import funnel

DELTAS = (("delta_conversion_from_first", "conversion_from_first"),
          ("delta_median_time_to_stage_s", "median_time_to_stage_s"))


def echo(f: CustomerFilter) -> dict[str, Any]:
    """The selection as parsed: {"from", "to", "channel", "traits"} (unset: null, {})."""
    return {"from": iso(f.since), "to": iso(f.until), "channel": f.channel, "traits": f.segment}


def compare(con: duckdb.DuckDBPyConnection, model: StageModel, a: CustomerFilter,
            b: CustomerFilter) -> dict[str, Any]:
    """GET /v1/compare: {"model", "a": {"filter", "stages"}, "b": {...}, "delta": [...]}."""
    sa, sb = funnel(con, model, a)["stages"], funnel(con, model, b)["stages"]
    delta = []
    for x, y in zip(sa, sb, strict=True):
        row: dict[str, Any] = {"stage": x["stage"]}
        for name, key in DELTAS:
            row[name] = None if x[key] is None or y[key] is None else y[key] - x[key]
        delta.append(row)
    return {"model": model.name, "a": {"filter": echo(a), "stages": sa},
            "b": {"filter": echo(b), "stages": sb}, "delta": delta}
