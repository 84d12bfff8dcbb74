"""B2B accounts (SPEC 5.1) as views over the per-customer `account_events` rows.

The processor derives one `account_events` row per `group` call, with the customer it belongs to;
a customer's rows change only when the customer does, so they are incremental like the other
derived tables. What an account *is* (its members, traits, first_seen and, per model, the
earliest time a member entered each stage) is then a small aggregate over those rows and the
members' `customers` and `stage_entries` rows: these views compute it when read, so an account's
stage moves the moment one member's does, and no account fact can go stale.
"""

from __future__ import annotations

# A trait name as a JSON pointer segment (RFC 6901: ~ and / escaped).
_POINTER = "'/' || replace(replace(name, '~', '~0'), '/', '~1')"

ACCOUNT_VIEWS: dict[str, str] = {
    # One row per (account, member): when the member's first and latest group call was.
    "account_members": """
SELECT account_id, customer_id, min("timestamp") AS joined_at,
       max("timestamp") AS last_group_at, count(*) AS group_events
FROM account_events GROUP BY account_id, customer_id""",
    # One row per account: traits merged over its group calls (the latest call wins per trait;
    # ties: the larger event_id), and its members' earliest first_seen and latest last_seen;
    # first_channel is the first-touch channel of the member seen first (ties: customer_id).
    "accounts": f"""
WITH kv AS (
    SELECT account_id, name,
           arg_max(json_extract(traits, {_POINTER}), ("timestamp", event_id)) AS value
    FROM (SELECT account_id, "timestamp", event_id, traits,
                 unnest(json_keys(traits)) AS name FROM account_events)
    GROUP BY account_id, name
), t AS (
    SELECT account_id, CAST(json_group_object(name, value) AS VARCHAR) AS traits
    FROM (SELECT * FROM kv ORDER BY account_id, name) GROUP BY account_id
), m AS (
    SELECT am.account_id, count(*) AS members, min(c.first_seen) AS first_seen,
           max(c.last_seen) AS last_seen,
           arg_min(c.first_channel, (c.first_seen, c.customer_id)) AS first_channel
    FROM account_members am JOIN customers c USING (customer_id)
    GROUP BY am.account_id
)
SELECT m.account_id, coalesce(t.traits, '{{}}') AS traits, m.first_seen, m.last_seen,
       m.first_channel, m.members
FROM m LEFT JOIN t USING (account_id)""",
    # Per account, model and stage a member reached: the earliest entered_at, and that member
    # (ties: customer_id). The account's stage is its furthest stage_index.
    "account_stage_entries": """
SELECT am.account_id, s.model, s.stage, s.stage_index, min(s.entered_at) AS entered_at,
       arg_min(s.customer_id, (s.entered_at, s.customer_id)) AS customer_id
FROM account_members am JOIN stage_entries s USING (customer_id)
GROUP BY am.account_id, s.model, s.stage, s.stage_index""",
}


def account_view_statements() -> str:
    """CREATE VIEW statements of the account views, over the unqualified derived views."""
    return "".join(f"CREATE OR REPLACE VIEW {name} AS{sql};\n"
                   for name, sql in ACCOUNT_VIEWS.items())
