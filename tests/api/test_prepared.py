"""The per-snapshot pre-aggregates (api/metrics/prepared.py) answer every metric exactly like the
plain SQL over the warehouse tables, which the metrics still use for a first_seen window: on random
datasets, a window that holds every customer must give the same answers as no window."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from typing import Any

import duckdb
import pytest

from api.metrics import attribution, cohorts, funnel, journey_map, kpis, paths, timeseries
from api.metrics import transitions as transitions_metric
from api.metrics.filters import CustomerFilter, StageModel, load_model
from api.metrics.prepared import is_prepared
from tests.api.conftest import DEFAULT_STAGES, Dataset, at

CHANNELS = ("web", "app", "email", "call")
EVENTS = ("Page Viewed", "Product Viewed", "Order Completed", "Survey Responded")


def random_dataset(data: Dataset, seed: int) -> None:
    """~40 customers with random traits, channels, stages, events, sessions and surveys."""
    rng = random.Random(seed)
    for c in range(40):
        cid = f"c{c}"
        first = at(days=rng.randrange(60), seconds=rng.randrange(86_400))
        traits: dict[str, Any] = {"plan": rng.choice(["free", "pro"])}
        if rng.random() < 0.5:
            traits["vip"] = rng.random() < 0.5
        reached = rng.randrange(1, len(DEFAULT_STAGES) + 1)
        entered = [first]
        for _ in range(reached - 1):
            entered.append(entered[-1] + timedelta(seconds=rng.choice([0, 60, 3600, 7200])))
        n = rng.randrange(1, 8)
        last = first + timedelta(days=rng.randrange(150))
        data.customer(cid, first, last, events=n, channel=rng.choice(CHANNELS), traits=traits)
        data.stages(cid, entered, inferred=tuple(i for i in range(2, reached) if rng.random() < .3))
        converted = reached >= 3
        for s in range(rng.randrange(1, 4)):
            data.session(f"{cid}-s{s}", cid, first + timedelta(hours=s),
                         channel=rng.choice(CHANNELS), source=rng.choice(["(direct)", "google"]),
                         converted=("default",) if converted and s == 0 else ())
        for e in range(n):
            stage = DEFAULT_STAGES[min(e, reached - 1)]
            data.event(f"{cid}-e{e}", cid, first + timedelta(hours=e * rng.choice([1, 30])),
                       rng.choice(EVENTS), stage, own_stage=rng.choice([None, stage]),
                       channel=rng.choice(CHANNELS))
        if rng.random() < 0.4:
            data.survey(f"{cid}-q", cid, rng.choice(["nps", "csat", "ces"]),
                        float(rng.randrange(0, 11)), DEFAULT_STAGES[reached - 1])
        for a, b in itertools.pairwise(DEFAULT_STAGES[:reached]):
            data.transition(cid, a, b, rng.randrange(1, 3))
    data.watermark = at(days=200)


def everyone(f: CustomerFilter) -> CustomerFilter:
    """f with a first_seen window holding every customer (forces the plain SQL)."""
    return CustomerFilter(at(days=-1), at(days=1000), f.channel, f.traits)


def rounded(value: Any) -> Any:
    """value with every float rounded to 9 decimals (sums and means of the same numbers taken in
    another order differ in the last bits)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def answers(con: duckdb.DuckDBPyConnection, m: StageModel, f: CustomerFilter) -> Any:
    return rounded({
        "funnel": funnel.funnel(con, m, f),
        "kpis": kpis.kpis(con, m, f),
        "journey_map": {**journey_map.journey_map(con, m, f), "segment": None},
        "transitions": transitions_metric.transitions(con, m, f),
        "cohorts": cohorts.cohorts(con, m, f, 30),
        **{f"attribution {method} {by}": attribution.attribution(con, m, f, method, by)
           for method in ("first_touch", "last_touch", "linear", "position_based")
           for by in ("channel", "source")},
        **{f"paths {by} {steps}": paths.paths(con, m, f, by, steps, 50)
           for by in ("stage", "event") for steps in (1, 4, 7)},
    })


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("f", [
    CustomerFilter(), CustomerFilter(channel="web"), CustomerFilter(traits=(("plan", "pro"),)),
    CustomerFilter(channel="app", traits=(("plan", "free"), ("vip", "true"))),
])
def test_5_pre_aggregates_answer_like_the_plain_sql(
    con: duckdb.DuckDBPyConnection, data: Dataset, seed: int, f: CustomerFilter
) -> None:
    random_dataset(data, seed)
    data.load(con)
    m = load_model(con, "default")
    fast = answers(con, m, f)
    assert is_prepared(con)
    plain = answers(con, m, everyone(f))
    assert fast == plain
    assert fast["funnel"]["stages"][0]["customers"] > 0 or f != CustomerFilter()


@pytest.mark.parametrize("seed", [4])
def test_5_daily_time_series_equals_the_event_scan(
    con: duckdb.DuckDBPyConnection, data: Dataset, seed: int
) -> None:
    random_dataset(data, seed)
    data.load(con)
    m = load_model(con, "default")
    since, until = at(days=10), at(days=40)
    # a bound one second before midnight is not a whole day: the events are scanned instead
    off = since - timedelta(seconds=1)
    for f in (CustomerFilter(), CustomerFilter(traits=(("plan", "pro"),))):
        for channel in (None, "web"):
            daily = timeseries.timeseries(con, m, f, since, until, channel)
            scanned = timeseries.timeseries(con, m, f, off, until, channel)
            assert daily == scanned and daily
