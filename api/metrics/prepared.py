"""Per-snapshot pre-aggregates that let the metrics answer from small tables instead of
re-scanning events: built whole when a snapshot loads (or on the first metric call on a
hand-made connection), then moved to each newer snapshot by the changed customers only
(api/advance.py).

Customers are grouped into *classes* of equal (first_channel, traits): every customer filter
without a first_seen window selects whole classes, and every count of distinct customers is
additive over classes (a customer is in exactly one), so event-level aggregates keyed by class
answer filtered queries exactly. Event rows of customers missing from `customers` get class NULL:
unfiltered queries count them (as the plain SQL does), filtered ones never select them.

Every aggregate is one of three kinds, which is what makes the incremental path possible:
- per customer (`Table.per_customer`): a customer's rows depend on that customer alone;
- additive (`Table.dims`): a sum over customers of each customer's contribution, so a changed
  customer's old contribution is subtracted and its new one added;
- whole: a median over a per-customer table, recomputed from it.
Each is one SELECT over named sources (`Sources`): the snapshot's tables for a full build, the
changed customers' rows (before or after the change) for a delta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from warehouse.lake import ident

DONE = "__j_done"
MAX_PATH_STEPS = 20  # the largest `steps=` /v1/paths accepts
PREFIX_STEPS = 5  # paths of up to this many steps are counted per length


@dataclass(frozen=True, slots=True)
class Sources:
    """The relations an aggregate's SELECT reads (defaults: the whole snapshot)."""

    customers: str = "customers"
    stage_entries: str = "stage_entries"
    event_stages: str = "event_stages"
    sessions: str = "sessions"
    transitions: str = "transitions"
    surveys: str = "surveys"
    meta: str = "meta"
    cust: str = "__j_cust"
    reach: str = "__j_reach"
    dsorted: str = "__j_dsorted"
    last: str = "__j_last"
    stop: str = "__j_stop"

    @property
    def watermark(self) -> str:
        return f"(SELECT max(watermark) FROM {self.meta})"


WHOLE = Sources()

# The columns of event_stages the aggregates read: a delta reads only these from the lake.
EVENT_STAGE_COLUMNS = ("model", "customer_id", "event_id", "timestamp", "event", "channel",
                       "stage_at", "own_stage")

# Class k of (first_channel, traits), numbered in order; the trait values of each class; the
# stage positions and conversion stage of each model. A delta appends classes (api/advance.py).
_CLASSES = """
CREATE TABLE __j_class AS
SELECT CAST(row_number() OVER (ORDER BY first_channel, traits) AS INTEGER) AS k,
       first_channel, traits
FROM (SELECT DISTINCT first_channel, traits FROM customers);
CREATE TABLE __j_ktraits AS {ktraits};
CREATE TABLE __j_stages AS
SELECT model, stage, stage_index,
       CAST(row_number() OVER (PARTITION BY model ORDER BY stage_index) AS INTEGER) AS pos
FROM models;
CREATE TABLE __j_conversion AS
SELECT model, coalesce(first(stage ORDER BY stage_index) FILTER (WHERE conversion_stage),
                       last(stage ORDER BY stage_index)) AS stage
FROM models GROUP BY model;
"""


def ktraits(classes: str) -> str:
    """The (k, trait name, trait value) rows of the classes in `classes`."""
    return f"""
SELECT k, name, json_extract_string(traits, '/' || replace(replace(name, '~', '~0'), '/', '~1'))
       AS value
FROM (SELECT k, traits, unnest(json_keys(traits)) AS name FROM {classes}
      WHERE traits IS NOT NULL)"""


def _cust(s: Sources, stages: int) -> str:
    return f"""
SELECT c.customer_id, cl.k, c.first_seen, c.last_seen, c.event_count, c.first_channel
FROM {s.customers} c JOIN __j_class cl ON cl.first_channel IS NOT DISTINCT FROM c.first_channel
    AND cl.traits IS NOT DISTINCT FROM c.traits"""


# One row per (model, customer): what the funnel, KPIs and journey map need, with d<i> the
# seconds from first_seen to entering the model's i-th stage (NULL: not reached).
def _reach(s: Sources, stages: int) -> str:
    firsts = ", ".join(f"min(epoch(se.entered_at)) FILTER (WHERE st.pos = {i}) AS e{i}"
                       for i in range(1, stages + 1))
    deltas = ", ".join(f"e.e{i} - epoch(c.first_seen) AS d{i}" for i in range(1, stages + 1))
    return f"""
WITH e AS (
    SELECT se.model, se.customer_id, max(se.stage_index) AS si,
           arg_max(se.stage, se.stage_index) AS cur_stage, {firsts}
    FROM {s.stage_entries} se LEFT JOIN __j_stages st ON st.model = se.model
        AND st.stage = se.stage
    GROUP BY se.model, se.customer_id
)
SELECT m.model, c.customer_id, c.k, c.first_seen, c.last_seen, c.event_count, c.first_channel,
       e.si, e.cur_stage, {deltas}
FROM {s.cust} c CROSS JOIN (SELECT DISTINCT model FROM models) m
LEFT JOIN e ON e.model = m.model AND e.customer_id = c.customer_id
ORDER BY m.model, c.k"""


# Lapsed is fixed per snapshot: the watermark and lapse_after_s are. Over r (reach rows) joined
# with LAPSE as m.
def lapsed(s: Sources) -> str:
    return (f"coalesce(epoch({s.watermark}) - epoch(r.last_seen) > m.lapse_after_s, FALSE)")


LAPSE = "(SELECT model, max(lapse_after_s) AS lapse_after_s FROM models GROUP BY model)"


# Customer counts that add up over classes: for KPIs and current stages.
def _kpi(s: Sources, stages: int) -> str:
    return f"""
SELECT r.model, r.k, r.si, r.cur_stage, {lapsed(s)} AS lapsed,
       count(*) AS customers, sum(r.event_count) AS events
FROM {s.reach} r JOIN {LAPSE} m USING (model)
GROUP BY ALL"""


# SPEC 5 survey scales (scores outside are dropped) and the emotion of a score in [-1, 1].
SCALE = """
    WHERE (survey = 'nps' AND score BETWEEN 0 AND 10) OR (survey = 'csat' AND score BETWEEN 1 AND 5)
       OR (survey = 'ces' AND score BETWEEN 1 AND 7)"""
NORM = """CASE survey WHEN 'nps' THEN (score - 5) / 5 WHEN 'csat' THEN (score - 3) / 2
                    ELSE (score - 4) / 3 END"""


def _responses(s: Sources, stages: int) -> str:
    return f"""
SELECT model, k, survey, score, stage_at, {NORM} AS norm, customer_id
FROM (
    SELECT s.model, c.k, s.customer_id, lower(any_value(s.survey)) AS survey,
           any_value(s.score) AS score, any_value(s.stage_at) AS stage_at
    FROM {s.surveys} s LEFT JOIN {s.cust} c USING (customer_id)
    GROUP BY s.model, s.event_id, c.k, s.customer_id
){SCALE}"""


# Every customer's time to each stage it reached; a funnel's median is the middle of a sort.
def _dsorted(s: Sources, stages: int) -> str:
    union = " UNION ALL ".join(
        f"SELECT model, {i} AS pos, k, d{i} AS d, customer_id FROM {s.reach} "
        f"WHERE d{i} IS NOT NULL" for i in range(1, stages + 1))
    return f"SELECT model, pos, k, d, customer_id FROM ({union}) ORDER BY model, pos, d"


def _dcount(s: Sources, stages: int) -> str:
    return f"SELECT model, k, pos, count(*) AS customers FROM {s.dsorted} GROUP BY ALL"


def _funnel(s: Sources, stages: int) -> str:
    return (f"SELECT model, pos, count(d) AS customers, median(d) AS median FROM {s.dsorted} "
            "GROUP BY ALL")


# Every (model, customer)'s last event (by time, then event_id): kept for all customers, so a
# customer that lapses as the watermark moves joins the drop-off without reading its events.
def _last(s: Sources, stages: int) -> str:
    return f"""
SELECT es.model, es.customer_id,
       arg_max(es.event, (es.timestamp, es.event_id)) AS event,
       arg_max(es.channel, (es.timestamp, es.event_id)) AS channel
FROM {s.event_stages} es GROUP BY ALL"""


# SPEC 5.1 drop-off: one row per lapsed (model, customer) with its current stage's position,
# the days from entering that stage to its last event, and that last event.
def _stop(s: Sources, stages: int) -> str:
    return f"""
WITH lapsed AS (
    SELECT r.model, r.customer_id, r.k, r.first_seen, r.first_channel, r.last_seen, r.cur_stage,
           st.pos
    FROM {s.reach} r JOIN {LAPSE} m USING (model)
    JOIN __j_stages st ON st.model = r.model AND st.stage = r.cur_stage
    WHERE {lapsed(s)}
),
entered AS (
    SELECT l.model, l.customer_id, min(se.entered_at) AS entered_at
    FROM lapsed l JOIN {s.stage_entries} se ON se.model = l.model
        AND se.customer_id = l.customer_id AND se.stage = l.cur_stage
    GROUP BY ALL
),
last AS (
    SELECT x.model, x.customer_id, x.event, x.channel
    FROM {s.last} x SEMI JOIN lapsed l ON l.model = x.model AND l.customer_id = x.customer_id
)
SELECT l.model, l.customer_id, l.k, l.first_seen, l.first_channel, l.pos,
       date_diff('microsecond', e.entered_at, l.last_seen) / 86400e6 AS days,
       last.event, last.channel
FROM lapsed l LEFT JOIN entered e USING (model, customer_id)
LEFT JOIN last USING (model, customer_id)
ORDER BY l.model, l.k, l.pos"""


def _stopall(s: Sources, stages: int) -> str:
    return (f"SELECT model, pos, count(*) AS stopped, median(days) AS median_days FROM {s.stop} "
            "GROUP BY ALL")


def _stoptouch(s: Sources, stages: int) -> str:
    return (f"SELECT model, pos, event, channel, count(*) AS customers FROM {s.stop} "
            "WHERE event IS NOT NULL GROUP BY ALL")


def _touch(s: Sources, stages: int) -> str:
    return f"""
SELECT es.model, c.k, es.stage_at, es.event, es.channel, count(*) AS n
FROM {s.event_stages} es LEFT JOIN {s.cust} c USING (customer_id)
GROUP BY ALL"""


def _daily(s: Sources, stages: int) -> str:
    return f"""
SELECT es.model, c.k, date_trunc('day', es.timestamp) AS day, es.channel,
       count(*) AS events, count(DISTINCT es.customer_id) AS customers
FROM {s.event_stages} es LEFT JOIN {s.cust} c USING (customer_id)
GROUP BY ALL"""


def _csize(s: Sources, stages: int) -> str:
    return (f"SELECT k, date_trunc('week', first_seen) AS cohort, count(*) AS customers "
            f"FROM {s.cust} GROUP BY ALL")


def _cactive(s: Sources, stages: int) -> str:
    return f"""
SELECT es.model, c.k, date_trunc('week', c.first_seen) AS cohort,
       CAST(floor((epoch(es.timestamp) - epoch(date_trunc('week', c.first_seen))) / 604800)
            AS INTEGER) AS week,
       count(DISTINCT es.customer_id) AS active
FROM {s.event_stages} es JOIN {s.cust} c USING (customer_id)
GROUP BY ALL"""


def _trans(s: Sources, stages: int) -> str:
    return f"""
SELECT t.model, c.k, t.from_stage, t.to_stage, sum(t.transitions) AS transitions,
       count(DISTINCT t.customer_id) AS customers
FROM {s.transitions} t JOIN {s.cust} c USING (customer_id)
WHERE t.transitions > 0
GROUP BY ALL"""


# Per customer, the first MAX_PATH_STEPS entries of its collapsed sequence, counted per class;
# the shortest prefixes (the dashboard's default is 4 steps) are counted too: counting sliced
# lists over every distinct 20-step path costs far more than the rest of a query.
def _path_sql(s: Sources, by: str, column: str) -> str:
    return f"""
SELECT p.model, '{by}' AS kind, {MAX_PATH_STEPS} AS steps, c.k, p.path, count(*) AS customers
FROM (
    SELECT model, customer_id, list(step ORDER BY n) AS path FROM (
        SELECT model, customer_id, step, row_number() OVER (
            PARTITION BY model, customer_id ORDER BY timestamp, event_id) AS n
        FROM (
            SELECT es.model, es.customer_id, es.{column} AS step, es.timestamp, es.event_id,
                lag(es.{column}) OVER (PARTITION BY es.model, es.customer_id
                                       ORDER BY es.timestamp, es.event_id) AS previous
            FROM {s.event_stages} es WHERE es.{column} IS NOT NULL
        ) WHERE previous IS NULL OR previous <> step
    ) WHERE n <= {MAX_PATH_STEPS} GROUP BY model, customer_id
) p LEFT JOIN {s.cust} c USING (customer_id)
GROUP BY ALL"""


def _paths(s: Sources, stages: int) -> str:
    return f"""
WITH longest AS MATERIALIZED (
    {_path_sql(s, "stage", "own_stage")}
    UNION ALL {_path_sql(s, "event", "event")}
)
SELECT model, kind, steps, k, path, customers FROM longest
UNION ALL
SELECT model, kind, CAST(p.steps AS INTEGER) AS steps, k, path[1:p.steps] AS path,
       CAST(sum(customers) AS BIGINT) AS customers
FROM longest, range(1, {PREFIX_STEPS + 1}) p(steps)
GROUP BY ALL"""


# SPEC 5 position_based over ranks pf (by start: 1 is the first touch) and pl (converting session
# last: n is the last touch): 40/20/40, one touch 100, two 50/50; when one session is both first
# and last it takes both 40s and the others share the 20.
POSITION_BASED = """CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5
             ELSE (CASE WHEN pf = 1 THEN 0.4 ELSE 0.0 END)
                  + (CASE WHEN pl = n THEN 0.4 ELSE 0.0 END)
                  + (CASE WHEN pf <> 1 AND pl <> n THEN 0.2 / (n - ends) ELSE 0.0 END) END"""


def ends(partition: str) -> str:
    """The column `ends`: 1 when a customer's first touch is also its last, else 2."""
    return (f"CASE WHEN max(CASE WHEN pf = 1 AND pl = n THEN 1 ELSE 0 END) OVER "
            f"(PARTITION BY {partition}) = 1 THEN 1 ELSE 2 END AS ends")


METHODS = ("first_touch", "last_touch", "linear", "position_based")


# Attribution credit of every method, per model, class and key (channel or source).
def _attr(s: Sources, stages: int) -> str:
    sums = ", ".join(f"sum({m}) AS cr_{m}, count(DISTINCT customer_id) FILTER (WHERE {m} > 0) "
                     f"AS cv_{m}" for m in METHODS)
    return f"""
WITH conv AS (
    SELECT se.model, se.customer_id, c.k, min(se.entered_at) AS entered_at
    FROM {s.stage_entries} se JOIN __j_conversion v ON v.model = se.model AND v.stage = se.stage
    JOIN {s.cust} c ON c.customer_id = se.customer_id
    GROUP BY se.model, se.customer_id, c.k
),
touches AS (
    SELECT conv.model, conv.k, s.customer_id, s.channel, s.source, s.medium,
        row_number() OVER (PARTITION BY conv.model, s.customer_id ORDER BY s.start, s.session_id
        ) AS pf,
        row_number() OVER (PARTITION BY conv.model, s.customer_id ORDER BY
            coalesce(list_contains(s.converted_models, conv.model), FALSE), s.start, s.session_id
        ) AS pl,
        count(*) OVER (PARTITION BY conv.model, s.customer_id) AS n
    FROM {s.sessions} s JOIN conv ON conv.customer_id = s.customer_id
    WHERE s.start <= conv.entered_at
),
credited AS (
    SELECT model, k, customer_id, channel, source, medium,
        CAST(CASE WHEN pf = 1 THEN 1.0 ELSE 0.0 END AS DOUBLE) AS first_touch,
        CAST(CASE WHEN pl = n THEN 1.0 ELSE 0.0 END AS DOUBLE) AS last_touch,
        CAST(1.0 / n AS DOUBLE) AS linear,
        CAST({POSITION_BASED} AS DOUBLE) AS position_based
    FROM (SELECT *, {ends("model, customer_id")} FROM touches)
),
keyed AS (
    SELECT *, 'channel' AS kind, channel AS key FROM credited
    UNION ALL SELECT *, 'source' AS kind, source AS key FROM credited
    UNION ALL SELECT *, 'source_medium' AS kind,
        source || ' / ' || coalesce(medium, '(none)') AS key FROM credited
)
SELECT model, k, kind, key, {sums}
FROM keyed GROUP BY model, k, kind, key"""


Select = Callable[[Sources, int], str]
GROUP_HASH = "__g"


@dataclass(frozen=True, slots=True)
class Table:
    """One pre-aggregate: its SELECT and how a delta maintains it.

    per_customer: its rows are the customers' own (keyed by customer_id); dims/measures: it is
    a sum of per-customer contributions grouped by dims, and `keep` is the measure that is 0
    exactly when no customer contributes to a group; neither: recomputed whole from `select`.
    lapse: it depends on the watermark (lapsed customers), so customers whose lapsed status
    changed are also in scope, not only changed ones.
    """

    name: str
    select: Select
    per_customer: bool = False
    dims: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()
    keep: str = ""
    lapse: bool = False

    @property
    def additive(self) -> bool:
        return bool(self.dims)

    @property
    def group_hash(self) -> str:
        """The column GROUP_HASH of an additive table: one BIGINT standing for its dims, so that
        a delta finds the groups it changes by scanning one column (a collision only makes it
        rewrite a group unchanged)."""
        return "hash(" + ", ".join(f'"{d}"' for d in self.dims) + ")"


_ATTR_MEASURES = tuple(f"{p}_{m}" for m in METHODS for p in ("cr", "cv"))

# In build order: a table reads only the tables before it.
TABLES: tuple[Table, ...] = (
    Table("__j_cust", _cust, per_customer=True),
    Table("__j_reach", _reach, per_customer=True),
    Table("__j_kpi", _kpi, dims=("model", "k", "si", "cur_stage", "lapsed"),
          measures=("customers", "events"), keep="customers", lapse=True),
    Table("__j_responses", _responses, per_customer=True),
    Table("__j_dsorted", _dsorted, per_customer=True),
    Table("__j_dcount", _dcount, dims=("model", "k", "pos"), measures=("customers",),
          keep="customers"),
    Table("__j_funnel", _funnel),
    Table("__j_last", _last, per_customer=True),
    Table("__j_stop", _stop, per_customer=True, lapse=True),
    Table("__j_stopall", _stopall),
    Table("__j_stoptouch", _stoptouch, dims=("model", "pos", "event", "channel"),
          measures=("customers",), keep="customers", lapse=True),
    Table("__j_touch", _touch, dims=("model", "k", "stage_at", "event", "channel"),
          measures=("n",), keep="n"),
    Table("__j_daily", _daily, dims=("model", "k", "day", "channel"),
          measures=("events", "customers"), keep="events"),
    Table("__j_csize", _csize, dims=("k", "cohort"), measures=("customers",), keep="customers"),
    Table("__j_cactive", _cactive, dims=("model", "k", "cohort", "week"), measures=("active",),
          keep="active"),
    Table("__j_trans", _trans, dims=("model", "k", "from_stage", "to_stage"),
          measures=("transitions", "customers"), keep="customers"),
    Table("__j_paths", _paths, dims=("model", "kind", "steps", "k", "path"),
          measures=("customers",), keep="customers"),
    Table("__j_attr", _attr, dims=("model", "k", "kind", "key"), measures=_ATTR_MEASURES,
          keep="cv_linear"),
)


def stage_count(con: duckdb.DuckDBPyConnection) -> int:
    """The most stages of any model (at least 1): the d<i>/e<i> columns of __j_reach."""
    row = con.execute("SELECT coalesce(max(pos), 0) FROM __j_stages").fetchone()
    return max(1, int(row[0]) if row else 0)


def relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether `name` resolves on con, found by looking it up rather than by listing
    duckdb_tables(): a listing reads the catalog of every attached lake, and one that the store
    detaches meanwhile (an older snapshot's, api/advance.py let_go) failed the request with
    "Catalog __ducklake_metadata_... does not exist" (seen at 1k ev/s)."""
    try:
        con.execute(f"SELECT 1 FROM {ident(name)} LIMIT 0")
    except duckdb.CatalogException:
        return False
    return True


def is_prepared(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether prepare() already ran on this database."""
    return relation_exists(con, DONE)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """prepare(con) unless it already ran (the store prepares before serving a snapshot)."""
    if not is_prepared(con):
        prepare(con)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Build every pre-aggregate of the current tables/views of con."""
    con.execute(_CLASSES.format(ktraits=ktraits("__j_class")))
    stages = stage_count(con)
    for table in TABLES:
        select = table.select(WHOLE, stages)
        if table.additive:
            select = f"SELECT *, {table.group_hash} AS {GROUP_HASH} FROM ({select})"
        con.execute(f"CREATE TABLE {table.name} AS {select}")
        # A delta looks up the changed customers' rows and the groups they touch (api/advance.py).
        key = "customer_id" if table.per_customer else GROUP_HASH if table.additive else None
        if key is not None:
            con.execute(f'CREATE INDEX "{table.name}_{key}" ON {table.name} ("{key}")')
    con.execute(f"CREATE TABLE {DONE} AS SELECT 1 AS done")
