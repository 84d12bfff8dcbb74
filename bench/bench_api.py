"""Latency of the analytics API on a warehouse-shaped dataset at 1M and 10M events.

    .venv/bin/python bench/bench_api.py [--events 1000000 10000000] [--repeat 20] [--dir D]

Generates (once per size, kept under --dir) Parquet files with the columns of the warehouse views,
distributed roughly like the demo: ~10 events per customer, the default five-stage model (every
customer aware, ~60% considering, ~25% deciding, ~10% retained, ~4% advocates), web/app/email/
call/store channels, sessions of ~3 events, surveys from ~5% of customers. Then serves them
through SnapshotStore + the real FastAPI app (in-process ASGI, bearer token, no result cache) and
prints p50/p95 per endpoint.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from api.store import SnapshotStore
from warehouse.accounts import account_view_statements

TABLES = ("customers", "identities", "stage_entries", "event_stages", "events", "sessions",
          "transitions", "surveys", "models", "account_events", "identity_conflicts")
T0 = "TIMESTAMPTZ '2025-01-01 00:00:00+00'"

# Each statement creates one table in a scratch DuckDB; $n is the number of customers.
GENERATE = {
    "customers": f"""
        SELECT 'c' || i AS customer_id, 'u' || i AS user_id,
            {T0} + to_seconds(CAST(hash(i, 1) % (180 * 86400) AS BIGINT)) AS first_seen,
            CAST(1 + hash(i, 2) % 19 AS BIGINT) AS event_count,
            ['web', 'web', 'web', 'app', 'app', 'email', 'email', 'call', 'store'][
                1 + hash(i, 3) % 9] AS first_channel,
            ['google', '(direct)', 'newsletter', 'facebook'][1 + hash(i, 4) % 4] AS first_source,
            '(none)' AS first_medium,
            '{{"plan": "' || ['free', 'pro', 'team'][1 + hash(i, 5) % 3] || '", "country": "'
                || ['de', 'fr', 'us', 'uk', 'jp'][1 + hash(i, 6) % 5] || '"}}' AS traits,
            CASE WHEN hash(i, 7) % 100 < 4 THEN 4 WHEN hash(i, 7) % 100 < 10 THEN 3
                 WHEN hash(i, 7) % 100 < 25 THEN 2 WHEN hash(i, 7) % 100 < 60 THEN 1
                 ELSE 0 END AS max_stage
        FROM range($n) t(i)""",
    "ev": """
        SELECT c.customer_id, k, c.event_count, c.max_stage,
            c.customer_id || '-' || k AS event_id,
            c.first_seen + to_seconds(CAST(k * (600 + hash(c.customer_id, k) % 86400) AS BIGINT))
                AS ts,
            LEAST(c.max_stage, CAST(floor(k * (c.max_stage + 1) / c.event_count) AS INTEGER))
                AS stage_idx,
            ['web', 'web', 'web', 'web', 'app', 'app', 'email', 'call', 'store'][
                1 + hash(c.customer_id, k, 1) % 9] AS channel
        FROM customers c, unnest(range(c.event_count)) u(k)""",
    "stage_names": """
        SELECT * FROM (VALUES (0, 'awareness'), (1, 'consideration'), (2, 'decision'),
            (3, 'retention'), (4, 'advocacy')) t(stage_index, stage)""",
    "stage_entries": """
        SELECT c.customer_id, 'default' AS model, s.stage, s.stage_index,
            c.first_seen + to_seconds(s.stage_index * 3600 * (1 + hash(c.customer_id) % 48))
                AS entered_at, s.stage_index = 1 AND hash(c.customer_id, 9) % 5 = 0 AS inferred,
            c.customer_id || '-s' || s.stage_index AS event_id
        FROM customers c JOIN stage_names s ON s.stage_index <= c.max_stage""",
    "event_stages": """
        SELECT e.event_id, e.customer_id, e.customer_id || '-sess' || (e.k // 3) AS session_id,
            'default' AS model, e.ts AS timestamp,
            CASE WHEN e.stage_idx = 0 THEN ['Page Viewed', 'Screen Viewed', 'Email Opened'][
                    1 + hash(e.event_id) % 3]
                 WHEN e.stage_idx = 1 THEN ['Product Viewed', 'Products Searched', 'Cart Viewed',
                    'Email Clicked', 'Pricing Viewed'][1 + hash(e.event_id) % 5]
                 WHEN e.stage_idx = 2 THEN ['Checkout Started', 'Order Completed'][
                    1 + hash(e.event_id) % 2]
                 WHEN e.stage_idx = 3 THEN 'Product Used' ELSE 'Review Submitted' END AS event,
            e.channel,
            CASE WHEN e.stage_idx > 0 OR hash(e.event_id) % 2 = 0 THEN s.stage END AS own_stage,
            s.stage AS stage_at, e.stage_idx AS stage_at_index
        FROM ev e JOIN stage_names s ON s.stage_index = e.stage_idx""",
    "events": """
        SELECT es.event_id, 'track' AS type, es.event, es.channel, es.timestamp,
            es.timestamp AS received_at, FALSE AS timestamp_flagged,
            CASE WHEN hash(es.event_id) % 3 = 0 THEN 'anonymous_id' ELSE 'user_id' END AS key_type,
            CASE WHEN hash(es.event_id) % 3 = 0 THEN 'a' || es.customer_id
                 ELSE 'u' || substr(es.customer_id, 2) END AS key_value,
            '[{"type":"user_id","value":"' || es.customer_id || '"}]' AS keys,
            CAST(NULL AS VARCHAR) AS previous_id,
            '{"price": ' || (hash(es.event_id) % 100) || ', "sku": "sku-' || (hash(es.event_id)
                % 5000) || '"}' AS properties, '{}' AS traits,
            '{"library": {"name": "analytics.js"}}' AS context,
            CAST(NULL AS VARCHAR) AS campaign_source, CAST(NULL AS VARCHAR) AS campaign_medium,
            CAST(NULL AS VARCHAR) AS campaign_name, '(direct)' AS source, '(none)' AS medium,
            'https://shop.example/p/' || (hash(es.event_id) % 500) AS page_url,
            CAST(hash(es.customer_id) % 6 AS INTEGER) AS partition, CAST(0 AS BIGINT) AS "offset"
        FROM event_stages es ORDER BY es.timestamp""",
    "identities": """
        SELECT customer_id, 'user_id' AS type, 'u' || substr(customer_id, 2) AS value, first_seen
        FROM customers
        UNION ALL SELECT customer_id, 'anonymous_id', 'a' || customer_id, first_seen
        FROM customers""",
    "sessions": """
        SELECT session_id, any_value(customer_id) AS customer_id, arg_min(channel, timestamp)
                AS channel, min(timestamp) AS start, max(timestamp) AS "end",
            epoch(max(timestamp)) - epoch(min(timestamp)) AS duration_s,
            count(*) AS event_count, count(*) FILTER (WHERE channel = 'web') AS page_views,
            CAST(NULL AS VARCHAR) AS landing_page,
            ['google', '(direct)', 'newsletter', 'facebook'][1 + hash(session_id) % 4] AS source,
            '(none)' AS medium, CAST(NULL AS VARCHAR) AS campaign,
            CASE WHEN bool_or(stage_at_index = 2 AND own_stage = 'decision')
                 THEN ['default'] ELSE [] END AS converted_models
        FROM event_stages GROUP BY session_id""",
    "transitions": """
        SELECT customer_id, 'default' AS model, f.stage AS from_stage, t.stage AS to_stage,
            CAST(1 AS BIGINT) AS transitions
        FROM customers c JOIN stage_names f ON f.stage_index < c.max_stage
        JOIN stage_names t ON t.stage_index = f.stage_index + 1""",
    "surveys": """
        SELECT event_id, customer_id, 'default' AS model, timestamp,
            ['nps', 'csat', 'ces'][1 + hash(event_id, 1) % 3] AS survey,
            CAST(hash(event_id, 2) % 11 AS DOUBLE) AS score, stage_at
        FROM event_stages WHERE hash(event_id, 3) % 200 = 0""",
    # B2B: one customer in 20 is a member of an account of about four (one group call each).
    "account_events": """
        SELECT customer_id || '-g' AS event_id, customer_id,
            'acct' || (CAST(substr(customer_id, 2) AS BIGINT) // 80) AS account_id,
            first_seen AS timestamp,
            '{"name": "Account ' || (CAST(substr(customer_id, 2) AS BIGINT) // 80)
                || '", "plan": "' || ['team', 'enterprise'][1 + hash(customer_id, 11) % 2]
                || '"}' AS traits
        FROM customers WHERE CAST(substr(customer_id, 2) AS BIGINT) % 20 = 0""",
    # One customer in 100 had a link refused (a shared device or mailbox), on two events.
    "identity_conflicts": """
        SELECT e.customer_id, 'anonymous_id' AS key_type, 'shared-' || e.customer_id AS key_value,
            e.event_id, e.ts AS "at", 'c' || ((CAST(substr(e.customer_id, 2) AS BIGINT) + 1)
                % $n) AS refused_customer_id
        FROM ev e WHERE CAST(hash(e.customer_id, 12) % 100 AS BIGINT) = 0 AND e.k < 2""",
    "models": """
        SELECT 'default' AS model, stage, stage_index, stage = 'decision' AS conversion_stage,
            90 * 86400.0 AS lapse_after_s FROM stage_names""",
}


def generate(root: Path, events: int) -> None:
    """Write every table as Parquet under root (skipped when already there)."""
    if (root / "done").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    started = time.perf_counter()
    for name, sql in GENERATE.items():
        # hash() is UBIGINT; list indexes and intervals want BIGINT
        sql = re.sub(r"hash\(([^()]*)\) % (\d+)", r"CAST(hash(\1) % \2 AS BIGINT)", sql)
        con.execute(f"CREATE TABLE {name} AS {sql.replace('$n', str(events // 10))}")
    # ~10 events per customer on average: 1 + hash % 19
    for table in TABLES:
        query = f"SELECT * FROM {table}"
        if table == "customers":
            query = ("SELECT c.* EXCLUDE (max_stage), l.last_seen FROM customers c JOIN "
                     "(SELECT customer_id, max(ts) AS last_seen FROM ev GROUP BY 1) l "
                     "USING (customer_id)")
        con.execute(f"COPY ({query}) TO '{root / table}.parquet' "
                    "(FORMAT parquet, ROW_GROUP_SIZE 122880)")
    (root / "done").write_text("ok")
    n = con.execute("SELECT count(*) FROM events").fetchone()
    print(f"generated {n[0] if n else 0:,} events in {time.perf_counter() - started:.1f}s",
          flush=True)


@dataclass(frozen=True)
class BenchSnapshot:
    version: int


class ParquetWarehouse:
    """Views over the generated files, like warehouse.reader's (read_parquet per table)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def current(self) -> BenchSnapshot:
        return BenchSnapshot(1)

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: BenchSnapshot) -> None:
        for table in TABLES:
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM "
                        f"read_parquet('{self.root / table}.parquet')")
        con.execute(f"CREATE VIEW meta AS SELECT 1::BIGINT AS version, {T0} AS committed_at, "
                    "(SELECT max(timestamp) FROM events) AS watermark")
        con.execute(account_view_statements())


AUTH = {"Authorization": "Bearer bench"}
ENDPOINTS = [
    "/v1/funnel", "/v1/funnel?trait.plan=pro&channel=web", "/v1/kpis", "/v1/kpis?trait.plan=pro",
    "/v1/journey-map", "/v1/journey-map?trait.plan=pro", "/v1/customers/u4242",
    "/v1/customers/u4242/events", "/v1/sessions?from=2025-02-01&to=2025-03-01",
    "/v1/transitions", "/v1/attribution?method=position_based", "/v1/cohorts",
    "/v1/paths", "/v1/paths?by=event", "/v1/timeseries?from=2025-03-01&to=2025-04-01",
    "/v1/dropoff", "/v1/dropoff?trait.plan=pro&channel=web",
    "/v1/compare?a.channel=web&b.channel=email", "/v1/compare?a.trait.plan=pro&b.trait.plan=free",
    "/v1/funnel?level=account", "/v1/funnel?level=account&trait.plan=team", "/v1/accounts/acct42",
    "/v1/identity/conflicts", "/v1/identity/conflicts?offset=500&limit=100",
]


def timed(client: TestClient, url: str, repeat: int, budget_s: float) -> list[float]:
    """Milliseconds of up to `repeat` GETs of url, stopping early once budget_s is spent."""
    times: list[float] = []
    spent = time.perf_counter()
    while len(times) < repeat and (len(times) < 3 or time.perf_counter() - spent < budget_s):
        t = time.perf_counter()
        r = client.get(url, headers=AUTH)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.text)
    return times


def p50_p95(times: list[float]) -> str:
    q = statistics.quantiles(times, n=20, method="inclusive")
    return f"{statistics.median(times):11.1f} {q[18]:11.1f}"


def bench(root: Path, repeat: int, budget_s: float, modes: list[str]) -> None:
    """Per endpoint: p50/p95 with no result cache (cold SQL every time) and as served (results
    cached per snapshot version; funnel/KPIs/journey map computed when the snapshot loads)."""
    clients = {}
    for mode, cache in (("cold", False), ("served", True)):
        if mode not in modes:
            continue
        started = time.perf_counter()
        store = SnapshotStore(ParquetWarehouse(root), lambda: datetime.now(UTC),
                              cache_entries=1024 if cache else 0)
        settings = ApiSettings(api_tokens=["bench"], warm_cache=cache)  # type: ignore[list-item]
        clients[mode] = TestClient(create_app(settings, store))
        store.refresh(force=True)
        print(f"{mode}: snapshot loaded in {time.perf_counter() - started:.1f}s "
              "(views, in-memory derived tables" + (", warm-up)" if cache else ")"), flush=True)
    print(f"{'endpoint':46}" + "".join(f" {m + ' p50':>11} {m + ' p95':>11}" for m in clients)
          + "  n")
    for url in ENDPOINTS:
        times = {m: timed(c, url, repeat, budget_s) for m, c in clients.items()}
        print(f"{url:46} " + " ".join(p50_p95(t) for t in times.values())
              + f"  {min(len(t) for t in times.values())}", flush=True)
    client = clients.get("served")
    if client is None:
        return
    etag = client.get("/v1/journey-map", headers=AUTH).headers["etag"]
    t = time.perf_counter()
    for _ in range(repeat):
        client.get("/v1/journey-map", headers={**AUTH, "If-None-Match": etag})
    print(f"{'/v1/journey-map 304 (If-None-Match), mean':46} "
          f"{(time.perf_counter() - t) * 1000 / repeat:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per endpoint and mode")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/journey-bench"))
    parser.add_argument("--modes", nargs="+", default=["cold", "served"],
                        choices=["cold", "served"], help="cold: no result cache; served: cache")
    args = parser.parse_args()
    for n in args.events:
        root = args.dir / f"{n}"
        generate(root, n)
        print(f"== {n:,} events ({root})")
        bench(root, args.repeat, args.budget, args.modes)


if __name__ == "__main__":
    main()
