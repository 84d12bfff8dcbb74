"""SPEC 5.1 identity conflicts: every refused link of SPEC 2.2, by time then event_id."""

from __future__ import annotations

from typing import Any

import duckdb

from api.metrics.filters import has_relation, iso

SQL = """
SELECT key_type, key_value, event_id, "at", customer_id, refused_customer_id
FROM identity_conflicts ORDER BY "at", event_id, key_type, key_value LIMIT $limit OFFSET $offset
"""


def conflicts(con: duckdb.DuckDBPyConnection, limit: int, offset: int) -> list[dict[str, Any]]:
    """GET /v1/identity/conflicts: the key that could not be joined, the event that carried it,
    its time, the event's customer and the customer holding the key."""
    if not has_relation(con, "identity_conflicts"):
        return []
    rows = con.execute(SQL, {"limit": limit, "offset": offset}).fetchall()
    return [{"key": {"type": t, "value": v}, "event_id": e, "at": iso(at), "customer_id": c,
             "refused_customer_id": r} for t, v, e, at, c, r in rows]
