"""Per-snapshot pre-aggregates that let the metrics answer from small tables instead of
re-scanning events: built once when a snapshot loads (or on the first metric call on a
hand-made connection), never changed afterwards.

Customers are grouped into *classes* of equal (first_channel, traits): every customer filter
without a first_seen window selects whole classes, and every count of distinct customers is
additive over classes (a customer is in exactly one), so event-level aggregates keyed by class
answer filtered queries exactly. Event rows of customers missing from `customers` get class NULL:
unfiltered queries count them (as the plain SQL does), filtered ones never select them.
"""

from __future__ import annotations

import duckdb

DONE = "__j_done"
MAX_PATH_STEPS = 20  # the largest `steps=` /v1/paths accepts
PREFIX_STEPS = 5  # paths of up to this many steps are counted per length

_CLASSES = """
CREATE TABLE __j_class AS
SELECT CAST(row_number() OVER (ORDER BY first_channel, traits) AS INTEGER) AS k,
       first_channel, traits
FROM (SELECT DISTINCT first_channel, traits FROM customers);
CREATE TABLE __j_ktraits AS
SELECT k, name, json_extract_string(traits, '/' || replace(replace(name, '~', '~0'), '/', '~1'))
       AS value
FROM (SELECT k, traits, unnest(json_keys(traits)) AS name FROM __j_class
      WHERE traits IS NOT NULL);
CREATE TABLE __j_cust AS
SELECT c.customer_id, cl.k, c.first_seen, c.last_seen, c.event_count, c.first_channel
FROM customers c JOIN __j_class cl ON cl.first_channel IS NOT DISTINCT FROM c.first_channel
    AND cl.traits IS NOT DISTINCT FROM c.traits;
CREATE TABLE __j_stages AS
SELECT model, stage, stage_index,
       CAST(row_number() OVER (PARTITION BY model ORDER BY stage_index) AS INTEGER) AS pos
FROM models;
CREATE TABLE __j_conversion AS
SELECT model, coalesce(first(stage ORDER BY stage_index) FILTER (WHERE conversion_stage),
                       last(stage ORDER BY stage_index)) AS stage
FROM models GROUP BY model;
"""

# One row per (model, customer): what the funnel, KPIs and journey map need, with d<i> the
# seconds from first_seen to entering the model's i-th stage (NULL: not reached).
_REACH = """
CREATE TABLE __j_reach AS
WITH e AS (
    SELECT se.model, se.customer_id, max(se.stage_index) AS si,
           arg_max(se.stage, se.stage_index) AS cur_stage, {firsts}
    FROM stage_entries se LEFT JOIN __j_stages st ON st.model = se.model AND st.stage = se.stage
    GROUP BY se.model, se.customer_id
)
SELECT m.model, c.customer_id, c.k, c.first_seen, c.last_seen, c.event_count, c.first_channel,
       e.si, e.cur_stage, {deltas}
FROM __j_cust c CROSS JOIN (SELECT DISTINCT model FROM models) m
LEFT JOIN e ON e.model = m.model AND e.customer_id = c.customer_id
ORDER BY m.model, c.k
"""

# Customer counts that add up over classes: for KPIs and current stages (lapsed is fixed per
# snapshot: the watermark and lapse_after_s are), and per stage for the funnel; __j_dsorted holds
# every customer's time to each stage sorted, so a median is a row at an offset, not a sort.
_COUNTS = """
CREATE TABLE __j_kpi AS
SELECT r.model, r.k, r.si, r.cur_stage,
       coalesce(epoch((SELECT max(watermark) FROM meta)) - epoch(r.last_seen) > m.lapse_after_s,
                FALSE) AS lapsed,
       count(*) AS customers, sum(r.event_count) AS events
FROM __j_reach r JOIN (SELECT model, max(lapse_after_s) AS lapse_after_s FROM models
                       GROUP BY model) m USING (model)
GROUP BY ALL;
CREATE TABLE __j_responses AS
SELECT model, k, survey, score, stage_at, {norm} AS norm
FROM (
    SELECT s.model, c.k, lower(any_value(s.survey)) AS survey, any_value(s.score) AS score,
           any_value(s.stage_at) AS stage_at
    FROM surveys s LEFT JOIN __j_cust c USING (customer_id)
    GROUP BY s.model, s.event_id, c.k
){scale};
CREATE TABLE __j_dsorted AS
SELECT model, pos, k, d FROM (
    {stages}
) ORDER BY model, pos, d;
CREATE TABLE __j_dcount AS
SELECT model, k, pos, count(*) AS customers FROM __j_dsorted GROUP BY ALL;
CREATE TABLE __j_funnel AS
SELECT model, pos, count(d) AS customers, median(d) AS median FROM __j_dsorted GROUP BY ALL;
"""

# SPEC 5.1 drop-off: one row per lapsed (model, customer) with its current stage's position,
# the days from entering that stage to its last event, and that last event (by time, then
# event_id). Lapsed is fixed per snapshot, as in __j_kpi.
_STOPS = """
CREATE TABLE __j_stop AS
WITH lapsed AS (
    SELECT r.model, r.customer_id, r.k, r.first_seen, r.first_channel, r.last_seen, r.cur_stage,
           st.pos
    FROM __j_reach r
    JOIN (SELECT model, max(lapse_after_s) AS lapse_after_s FROM models GROUP BY model) m
        USING (model)
    JOIN __j_stages st ON st.model = r.model AND st.stage = r.cur_stage
    WHERE coalesce(epoch((SELECT max(watermark) FROM meta)) - epoch(r.last_seen)
                   > m.lapse_after_s, FALSE)
),
entered AS (
    SELECT l.model, l.customer_id, min(se.entered_at) AS entered_at
    FROM lapsed l JOIN stage_entries se ON se.model = l.model
        AND se.customer_id = l.customer_id AND se.stage = l.cur_stage
    GROUP BY ALL
),
last AS (
    SELECT es.model, es.customer_id,
           arg_max(es.event, (es.timestamp, es.event_id)) AS event,
           arg_max(es.channel, (es.timestamp, es.event_id)) AS channel
    FROM event_stages es SEMI JOIN lapsed l
        ON l.model = es.model AND l.customer_id = es.customer_id
    GROUP BY ALL
)
SELECT l.model, l.customer_id, l.k, l.first_seen, l.first_channel, l.pos,
       date_diff('microsecond', e.entered_at, l.last_seen) / 86400e6 AS days,
       last.event, last.channel
FROM lapsed l LEFT JOIN entered e USING (model, customer_id)
LEFT JOIN last USING (model, customer_id)
ORDER BY l.model, l.k, l.pos;
CREATE TABLE __j_stopall AS
SELECT model, pos, count(*) AS stopped, median(days) AS median_days FROM __j_stop GROUP BY ALL;
CREATE TABLE __j_stoptouch AS
SELECT model, pos, event, channel, count(*) AS customers FROM __j_stop
WHERE event IS NOT NULL GROUP BY ALL;
"""

# SPEC 5 survey scales (scores outside are dropped) and the emotion of a score in [-1, 1].
SCALE = """
    WHERE (survey = 'nps' AND score BETWEEN 0 AND 10) OR (survey = 'csat' AND score BETWEEN 1 AND 5)
       OR (survey = 'ces' AND score BETWEEN 1 AND 7)"""
NORM = """CASE survey WHEN 'nps' THEN (score - 5) / 5 WHEN 'csat' THEN (score - 3) / 2
                    ELSE (score - 4) / 3 END"""

_EVENTS = """
CREATE TABLE __j_touch AS
SELECT es.model, c.k, es.stage_at, es.event, es.channel, count(*) AS n
FROM event_stages es LEFT JOIN __j_cust c USING (customer_id)
GROUP BY ALL;
CREATE TABLE __j_daily AS
SELECT es.model, c.k, date_trunc('day', es.timestamp) AS day, es.channel,
       count(*) AS events, count(DISTINCT es.customer_id) AS customers
FROM event_stages es LEFT JOIN __j_cust c USING (customer_id)
GROUP BY ALL;
CREATE TABLE __j_csize AS
SELECT k, date_trunc('week', first_seen) AS cohort, count(*) AS customers
FROM __j_cust GROUP BY ALL;
CREATE TABLE __j_cactive AS
SELECT es.model, c.k, date_trunc('week', c.first_seen) AS cohort,
       CAST(floor((epoch(es.timestamp) - epoch(date_trunc('week', c.first_seen))) / 604800)
            AS INTEGER) AS week,
       count(DISTINCT es.customer_id) AS active
FROM event_stages es JOIN __j_cust c USING (customer_id)
GROUP BY ALL;
CREATE TABLE __j_trans AS
SELECT t.model, c.k, t.from_stage, t.to_stage, sum(t.transitions) AS transitions,
       count(DISTINCT t.customer_id) AS customers
FROM transitions t JOIN __j_cust c USING (customer_id)
WHERE t.transitions > 0
GROUP BY ALL;
"""

# Per customer, the first MAX_PATH_STEPS entries of its collapsed sequence, counted per class.
_PATHS = """
INSERT INTO __j_paths
WITH seq AS (
    SELECT es.model, es.customer_id, es.{column} AS step, es.timestamp, es.event_id,
        lag(es.{column}) OVER (PARTITION BY es.model, es.customer_id
                               ORDER BY es.timestamp, es.event_id) AS previous
    FROM event_stages es WHERE es.{column} IS NOT NULL
),
numbered AS (
    SELECT model, customer_id, step, row_number() OVER (
        PARTITION BY model, customer_id ORDER BY timestamp, event_id) AS n
    FROM seq WHERE previous IS NULL OR previous <> step
),
per_customer AS (
    SELECT model, customer_id, list(step ORDER BY n) AS path FROM numbered
    WHERE n <= {steps} GROUP BY model, customer_id
)
SELECT p.model, '{by}' AS kind, {steps} AS steps, c.k, p.path, count(*) AS customers
FROM per_customer p LEFT JOIN __j_cust c USING (customer_id)
GROUP BY ALL
"""

# Attribution credit of every method, per model, class and key (channel or source).
_ATTRIBUTION = """
CREATE TABLE __j_attr AS
WITH conv AS (
    SELECT se.model, se.customer_id, c.k, min(se.entered_at) AS entered_at
    FROM stage_entries se JOIN __j_conversion v ON v.model = se.model AND v.stage = se.stage
    JOIN __j_cust c ON c.customer_id = se.customer_id
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
    FROM sessions s JOIN conv ON conv.customer_id = s.customer_id
    WHERE s.start <= conv.entered_at
),
credited AS (
    SELECT model, k, customer_id, channel, source, medium,
        CAST(CASE WHEN pf = 1 THEN 1.0 ELSE 0.0 END AS DOUBLE) AS first_touch,
        CAST(CASE WHEN pl = n THEN 1.0 ELSE 0.0 END AS DOUBLE) AS last_touch,
        CAST(1.0 / n AS DOUBLE) AS linear,
        CAST({position_based} AS DOUBLE) AS position_based
    FROM (SELECT *, {ends} FROM touches)
),
keyed AS (
    SELECT *, 'channel' AS kind, channel AS key FROM credited
    UNION ALL SELECT *, 'source' AS kind, source AS key FROM credited
    UNION ALL SELECT *, 'source_medium' AS kind,
        source || ' / ' || coalesce(medium, '(none)') AS key FROM credited
)
SELECT model, k, kind, key, {sums}
FROM keyed GROUP BY model, k, kind, key
"""

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


def is_prepared(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether prepare() already ran on this database."""
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $t", {"t": DONE}).fetchone()
    return bool(row and row[0])


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """prepare(con) unless it already ran (the store prepares before serving a snapshot)."""
    if not is_prepared(con):
        prepare(con)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Build every pre-aggregate of the current tables/views of con (once per snapshot)."""
    con.execute(_CLASSES)
    row = con.execute("SELECT coalesce(max(pos), 0) FROM __j_stages").fetchone()
    stages = max(1, int(row[0]) if row else 0)
    firsts = ", ".join(f"min(epoch(se.entered_at)) FILTER (WHERE st.pos = {i}) AS e{i}"
                       for i in range(1, stages + 1))
    deltas = ", ".join(f"e.e{i} - epoch(c.first_seen) AS d{i}" for i in range(1, stages + 1))
    con.execute(_REACH.format(firsts=firsts, deltas=deltas))
    con.execute(_COUNTS.format(norm=NORM, scale=SCALE, stages=" UNION ALL ".join(
        f"SELECT model, {i} AS pos, k, d{i} AS d FROM __j_reach WHERE d{i} IS NOT NULL"
        for i in range(1, stages + 1))))
    con.execute(_STOPS)
    con.execute(_EVENTS)
    con.execute("CREATE TABLE __j_paths (model VARCHAR, kind VARCHAR, steps INTEGER, k INTEGER, "
                "path VARCHAR[], customers BIGINT)")
    for by, column in (("stage", "own_stage"), ("event", "event")):
        con.execute(_PATHS.format(column=column, by=by, steps=MAX_PATH_STEPS))
    # The shortest prefixes (the dashboard's default is 4 steps) pre-counted too: counting
    # sliced lists over every distinct 20-step path costs far more than the rest of a query.
    for steps in range(1, PREFIX_STEPS + 1):
        con.execute(f"INSERT INTO __j_paths SELECT model, kind, {steps}, k, path[1:{steps}], "
                    f"sum(customers) FROM __j_paths WHERE steps = {MAX_PATH_STEPS} GROUP BY ALL")
    sums = ", ".join(f"sum({m}) AS cr_{m}, count(DISTINCT customer_id) FILTER (WHERE {m} > 0) "
                     f"AS cv_{m}" for m in METHODS)
    con.execute(_ATTRIBUTION.format(sums=sums, position_based=POSITION_BASED,
                                    ends=ends("model, customer_id")))
    con.execute(f"CREATE TABLE {DONE} AS SELECT 1 AS done")
