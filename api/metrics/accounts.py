"""SPEC 5.1 B2B accounts: one account's journey with its members, and the account funnel.

Both read the account views (warehouse/accounts.py), which the API store materialises per
snapshot: an account's stage is its members' furthest, `entered_at(k)` the earliest member's,
`first_seen` the members' earliest.
"""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from api.errors import AccountNotFoundError, UnknownTraitError
from api.metrics.filters import (
    CustomerFilter,
    StageModel,
    has_relation,
    iso,
    window_channel_where,
)
from api.metrics.funnel import stage_rows

# A trait name as a JSON pointer (RFC 6901), as api.metrics.prepared extracts customer traits.
_TRAIT = "json_extract_string(traits, '/' || replace(replace($name{i}, '~', '~0'), '/', '~1'))"


def account(con: duckdb.DuckDBPyConnection, model: StageModel, account_id: str) -> dict[str, Any]:
    """GET /v1/accounts/{group_id}: traits, stage, first_seen, stages and members (by id)."""
    row = con.execute("SELECT traits, first_seen FROM accounts WHERE account_id = $a",
                      {"a": account_id}).fetchone() if has_relation(con, "accounts") else None
    if row is None:
        raise AccountNotFoundError(f"no account has the group id {account_id!r}",
                                   account_id=account_id)
    traits, first_seen = row
    stages = con.execute(
        "SELECT stage, entered_at FROM account_stage_entries WHERE account_id = $a AND "
        "model = $m ORDER BY stage_index", {"a": account_id, "m": model.name}).fetchall()
    members = con.execute("""
        SELECT am.customer_id, (SELECT arg_max(se.stage, se.stage_index) FROM stage_entries se
                                WHERE se.customer_id = am.customer_id AND se.model = $m)
        FROM account_members am WHERE am.account_id = $a ORDER BY am.customer_id""",
        {"a": account_id, "m": model.name}).fetchall()
    return {
        "account_id": account_id,
        "traits": dict(sorted(orjson.loads(traits).items())),
        "stage": stages[-1][0] if stages else None,
        "first_seen": iso(first_seen),
        "stages": [{"stage": s, "entered_at": iso(at)} for s, at in stages],
        "members": [{"customer_id": c, "stage": s} for c, s in members],
    }


def _where(f: CustomerFilter) -> tuple[str, dict[str, Any]]:
    """The funnel's selection (first_seen window, first-touch channel, traits) over accounts."""
    where, params = window_channel_where(f)
    for i, (name, value) in enumerate(f.traits):
        where.append(f"{_TRAIT.format(i=i)} = $value{i}")
        params[f"name{i}"], params[f"value{i}"] = name, value
    return " AND ".join(where), params


def _check_traits(con: duckdb.DuckDBPyConnection, f: CustomerFilter) -> None:
    """UnknownTraitError when a trait filter names a trait that no account has."""
    if not f.traits:
        return
    known = sorted({str(k) for (t,) in con.execute("SELECT traits FROM accounts").fetchall()
                    for k in orjson.loads(t)}) if has_relation(con, "accounts") else []
    for name, _ in f.traits:
        if name not in known:
            raise UnknownTraitError(
                f"no account has the trait {name!r}; known traits: {', '.join(known) or 'none'}",
                trait=name, known=known[:100])


def account_funnel(con: duckdb.DuckDBPyConnection, model: StageModel,
                   f: CustomerFilter) -> dict[str, Any]:
    """GET /v1/funnel?level=account: the funnel of SPEC 5 over accounts (`customers` counts
    accounts), with each account's first_seen, first-touch channel and traits."""
    counts: dict[str, tuple[int, float | None]] = {}
    _check_traits(con, f)
    if has_relation(con, "accounts"):
        where, params = _where(f)
        counts = {stage: (int(n), median) for stage, n, median in con.execute(f"""
            SELECT s.stage, count(*), median(epoch(s.entered_at) - epoch(a.first_seen))
            FROM (SELECT account_id, first_seen FROM accounts WHERE {where}) a
            JOIN account_stage_entries s USING (account_id)
            WHERE s.model = $model GROUP BY s.stage""", {**params, "model": model.name}
        ).fetchall()}
    reached = [counts.get(name, (0, None)) for name in model.stages]
    return {"model": model.name, "level": "account", "stages": stage_rows(model, reached)}



def account_list(con: duckdb.DuckDBPyConnection, model: StageModel, limit: int,
                 offset: int) -> list[dict[str, Any]]:
    """GET /v1/accounts: every account by id with its name (traits.name when a string), members,
    furthest stage of the model, first_seen and last_seen."""
    if not has_relation(con, "accounts"):
        return []
    rows = con.execute("""
        SELECT a.account_id,
               CASE WHEN json_type(a.traits, '$.name') = 'VARCHAR'
                    THEN json_extract_string(a.traits, '$.name') END,
               a.members,
               (SELECT arg_max(s.stage, s.stage_index) FROM account_stage_entries s
                WHERE s.account_id = a.account_id AND s.model = $m),
               a.first_seen, a.last_seen
        FROM accounts a ORDER BY a.account_id LIMIT $limit OFFSET $offset""",
        {"m": model.name, "limit": limit, "offset": offset}).fetchall()
    return [{"account_id": a, "name": name, "members": int(members), "stage": stage,
             "first_seen": iso(first), "last_seen": iso(last)}
            for a, name, members, stage, first, last in rows]
