"""One customer (SPEC 6.2 /v1/customers/{key}): found by any identity key, with its identities,
traits, stage, lapsed flag, stages reached and sessions; and its canonical events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import orjson

from api.errors import CustomerNotFoundError
from api.metrics.filters import StageModel, iso, rows_as_dicts
from api.metrics.kpis import LAPSED_EXPR
from journey.keys import normalize_email, normalize_phone
from journey.schema import key_rank

_LAPSED = LAPSED_EXPR.format(
    watermark="(SELECT max(watermark) FROM meta)",
    last_seen="c.last_seen",
    lapse_after_s="(SELECT max(lapse_after_s) FROM models WHERE model = $model)",
)

CUSTOMER_SQL = f"""
SELECT c.customer_id, c.traits, timezone('UTC', c.first_seen) AS first_seen,
       timezone('UTC', c.last_seen) AS last_seen, {_LAPSED} AS lapsed
FROM customers c WHERE c.customer_id = $cid
"""

STAGES_SQL = """
SELECT stage, timezone('UTC', min(entered_at)) AS entered_at, bool_and(inferred) AS inferred
FROM stage_entries WHERE customer_id = $cid AND model = $model
GROUP BY stage, stage_index ORDER BY stage_index
"""

SESSIONS_SQL = """
SELECT session_id, channel, timezone('UTC', start) AS start, timezone('UTC', "end") AS "end",
       event_count, source, medium, campaign
FROM sessions WHERE customer_id = $cid ORDER BY start, session_id
"""

# The canonical event (journey.schema.Event) fields, in the events view's column names.
EVENTS_SQL = """
SELECT e.event_id, e.type, e.event, e.channel, timezone('UTC', e.timestamp) AS timestamp,
       timezone('UTC', e.received_at) AS received_at, e.timestamp_flagged, e.keys, e.previous_id,
       e.properties, e.traits, e.context, e.campaign_source, e.campaign_medium, e.campaign_name,
       e.source, e.medium, e.page_url
FROM events e
WHERE e.key_value IN (SELECT value FROM identities WHERE customer_id = $cid)
  AND (e.key_type, e.key_value) IN (SELECT (type, value) FROM identities WHERE customer_id = $cid)
ORDER BY e.timestamp, e.event_id
LIMIT $limit OFFSET $offset
"""

JSON_COLUMNS = ("keys", "properties", "traits", "context")
_NORMALISE: dict[str, Callable[[str], str | None]] = {
    "email": normalize_email, "phone": normalize_phone}


def find_customer(con: duckdb.DuckDBPyConnection, key: str) -> str:
    """The customer_id of an identity key `value` or `type:value`; CustomerNotFoundError."""
    kind, sep, value = key.partition(":")
    rows: list[tuple[str, str]] = []
    # Keys are stored normalised (SPEC 2.1): `email:Foo@Example.com` must find foo@example.com.
    clean = _NORMALISE.get(kind)
    value = (clean(value) or value) if clean is not None else value
    if sep:  # `email:a@b.c`; but a bare value may itself contain ':', so fall back to it
        rows = con.execute(
            "SELECT customer_id, type FROM identities WHERE type = $t AND value = $v",
            {"t": kind, "v": value},
        ).fetchall()
    if not rows:
        rows = con.execute(
            "SELECT customer_id, type FROM identities WHERE value = $v", {"v": key}
        ).fetchall()
    if not rows:
        raise CustomerNotFoundError(f"no customer has the identity key {key!r}", key=key)
    # One value under several key types: the highest-priority key wins (SPEC 2.2).
    return min(rows, key=lambda r: (key_rank(r[1]), r[0]))[0]


def customer(con: duckdb.DuckDBPyConnection, model: StageModel, key: str) -> dict[str, Any]:
    """GET /v1/customers/{key}: the SPEC 6.2 customer object."""
    cid = find_customer(con, key)
    params = {"cid": cid, "model": model.name}
    row = rows_as_dicts(con.execute(CUSTOMER_SQL, params))
    if not row:  # an identity whose customer row is missing: treat as unknown
        raise CustomerNotFoundError(f"no customer has the identity key {key!r}", key=key)
    c = row[0]
    identities = sorted(
        con.execute("SELECT type, value FROM identities WHERE customer_id = $cid", {"cid": cid})
        .fetchall(),
        key=lambda r: (key_rank(r[0]), r[1]),
    )
    stages = rows_as_dicts(con.execute(STAGES_SQL, params))
    sessions = rows_as_dicts(con.execute(SESSIONS_SQL, {"cid": cid}))
    for s in stages:
        s["entered_at"] = iso(s["entered_at"])
    for s in sessions:
        s["start"], s["end"] = iso(s["start"]), iso(s["end"])
        s["event_count"] = int(s["event_count"])
    return {
        "customer_id": cid,
        "identities": [{"type": t, "value": v} for t, v in identities],
        "traits": orjson.loads(c["traits"] or "{}"),
        "stage": stages[-1]["stage"] if stages else None,
        "first_seen": iso(c["first_seen"]),
        "last_seen": iso(c["last_seen"]),
        "lapsed": bool(c["lapsed"]),
        "stages": stages,
        "sessions": sessions,
    }


def customer_events(
    con: duckdb.DuckDBPyConnection, key: str, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """GET /v1/customers/{key}/events: canonical events of all its identity keys, by time."""
    cid = find_customer(con, key)
    cur = con.execute(EVENTS_SQL, {"cid": cid, "limit": limit, "offset": offset})
    events = rows_as_dicts(cur)
    for e in events:
        e["timestamp"], e["received_at"] = iso(e["timestamp"]), iso(e["received_at"])
        for name in JSON_COLUMNS:
            e[name] = orjson.loads(e[name]) if e[name] else ({} if name != "keys" else [])
    return events
