"""SPEC 7 for the API's snapshots: a store that advances its connection in place to each new
snapshot (api/advance.py) holds the same tables and answers the same JSON as a full build of
that snapshot. The warehouse is real: Segment messages through the collector's normalisation,
the embedded log and the processor, one chunk at a time (identity merges, trait changes, late
events, surveys, accounts, customers lapsing as the watermark moves, an erasure)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.metrics.attribution import BYS, METHODS
from api.metrics.prepared import GROUP_HASH, TABLES
from api.routes import api_router
from api.settings import ApiSettings
from api.store import MATERIALISED, SnapshotStore
from ingest.normalize import normalize
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from processor.derive import CoreConfig
from processor.erasure import Eraser
from processor.models_table import model_rows
from processor.runner import Processor
from processor.stages.model import load_models
from processor.state import JourneyState
from warehouse.lake import LAKE
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

Message = dict[str, Any]
TOKEN = "advance-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
MODELS = ("default", "lifecycle")
PARTITIONS = 2
SPAN_DAYS = 130.0  # the main traffic; lapse_after_days is 90 in both models
CUTS = (0.35, 0.7)  # the main traffic's chunks, as fractions of SPAN_DAYS
LATE_SHARE = 0.1
LATE_DAYS = 3.0
QUIET_DAYS = 40.0  # then the watermark alone lapses customers
ROUND = 9


@dataclass(frozen=True, slots=True)
class Sent:
    """A Segment message and when the collector received it (a late one: days after its time)."""

    message: Message
    received: datetime


def user_id(i: int) -> str:
    """Customer i's user_id. Some hold a quote: the changed customers are read from the lake by a
    literal list (api/advance.py _listed)."""
    return f"o'u{i}" if i % 7 == 3 else f"u{i}"


def stamp(at: datetime) -> str:
    """A Segment ISO-8601 timestamp."""
    return at.isoformat().replace("+00:00", "Z")


class Traffic:
    """Segment messages of one seeded journey, with unique message ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.messages: list[Message] = []

    def add(self, kind: str, at: datetime, ids: Mapping[str, str], **fields: Any) -> None:
        """One message of type kind at `at` from the identity fields ids (userId, ...)."""
        self.messages.append({"type": kind, "messageId": f"m{len(self.messages)}",
                              "timestamp": stamp(at), **ids, **fields})

    def track(self, at: datetime, ids: Mapping[str, str], event: str, channel: str,
              **properties: Any) -> None:
        """A track message on a channel."""
        self.add("track", at, ids, event=event, properties={"channel": channel, **properties})

    def page(self, at: datetime, ids: Mapping[str, str]) -> None:
        """A web page view, sometimes from a campaign or a referrer (the sessions' sources)."""
        context: Message = {}
        source = self.rng.choice(["direct", "campaign", "referrer"])
        if source == "campaign":
            context["campaign"] = {"source": self.rng.choice(["google", "newsletter"]),
                                   "medium": self.rng.choice(["cpc", "email"])}
        elif source == "referrer":
            context["page"] = {"url": "https://shop.example/", "referrer": "https://news.example/"}
        self.add("page", at, ids, name="Home", properties={"channel": "web"}, context=context)

    def customer(self, i: int, start: float, span: float) -> None:
        """Customer i: maybe anonymous at first, identified with traits, stages, surveys."""
        rng, user = self.rng, user_id(i)
        times = sorted(start + rng.uniform(0, span) for _ in range(rng.randint(4, 11)))
        at = [T0 + timedelta(days=t) for t in times]
        email = f"{user}@example.org"
        anonymous = rng.random() < 0.5
        known = {"userId": user}
        plan = rng.choice(["free", "pro"])
        if anonymous:  # web visits, then an identify with both ids merges them into one customer
            anon = {"anonymousId": f"anon-{i}"}
            self.page(at[0], anon)
            self.track(at[1], anon, "Product Viewed", "web")
            context: Message = {}
            if rng.random() < 0.5:  # a third customer merged in: known by its email only
                self.track(at[1] + timedelta(minutes=5), {}, "Email Clicked", "email",
                           email=email)
                context["traits"] = {"email": email}
            self.add("identify", at[2], {**anon, **known}, traits={"plan": plan},
                     context=context, properties={"channel": "web"})
            rest = at[3:]
        else:
            self.add("identify", at[0], known, traits={"plan": plan},
                     properties={"channel": rng.choice(["web", "email"])})
            rest = at[1:]
        channel = rng.choice(["web", "email", "store", "call"])
        first = {"web": "Product Viewed", "email": "Email Clicked", "store": "Store Visited",
                 "call": "Call Completed"}[channel]
        steps = [(first, channel), ("Checkout Started", "web"), ("Order Completed", channel),
                 ("Order Completed", "store"), ("Product Used", "web"),
                 ("Review Submitted", "web")]
        reached = rng.randint(1, len(steps))
        for n, when in enumerate(rest):
            roll = rng.random()
            if n < reached and roll < 0.7:
                event, where = steps[min(n, len(steps) - 1)]
                self.track(when, known, event, where)
            elif roll < 0.78:  # a trait changes: classes (first_channel, traits) move
                self.add("identify", when, known, traits={
                    "plan": rng.choice(["free", "pro"]), "tier": rng.choice(["a", "b"])},
                         properties={"channel": "web"})
            elif roll < 0.88:
                survey = rng.choice(["nps", "csat"])
                score = rng.randint(0, 10) if survey == "nps" else rng.randint(1, 5)
                self.track(when, known, "Survey Responded", rng.choice(["email", "web"]),
                           survey=survey, score=score)
            elif roll < 0.93:
                self.track(when, known, "Support Ticket Opened", "call", reason="support")
            elif roll < 0.97:
                self.add("group", when, known, groupId=rng.choice(["acme", "globex"]),
                         traits={"name": "Account"}, properties={"channel": "web"})
            else:
                self.page(when, known)


def journey(seed: int) -> tuple[list[list[Sent]], list[Sent], str, list[Sent]]:
    """Seeded traffic: the main chunks (by arrival, ~10% late), a chunk of two customers weeks
    later (the watermark moves, untouched customers lapse), the key of a customer to erase,
    and a last chunk after the erasure."""
    rng = random.Random(seed)
    traffic = Traffic(rng)
    users = rng.randint(30, 45)
    for i in range(users):
        traffic.customer(i, start=rng.uniform(0, SPAN_DAYS - 10), span=rng.choice([2, 10, 30, 60]))
    main = len(traffic.messages)

    def at(m: Message) -> datetime:
        return datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))

    # Weeks after the main traffic: one new customer and one returning one.
    quiet = max(at(m) for m in traffic.messages) + timedelta(days=QUIET_DAYS)
    traffic.track(quiet, {"userId": "late-1"}, "Store Visited", "store")
    traffic.track(quiet + timedelta(hours=2), {"userId": "late-1"}, "Order Completed", "store")
    traffic.track(quiet + timedelta(hours=3), {"userId": "u0"}, "Order Completed", "web")
    after_quiet = len(traffic.messages)
    # After the erasure: more events, one of them a day late.
    last = quiet + timedelta(days=5)
    traffic.track(last, {"userId": "u2"}, "Product Used", "web")
    traffic.track(last - timedelta(days=1), {"userId": "late-1"}, "Review Submitted", "web")
    traffic.track(last + timedelta(hours=1), {"userId": "late-2"}, "Email Clicked", "email")

    sent = []
    for m in traffic.messages[:main]:
        late = rng.random() < LATE_SHARE
        delay = timedelta(days=rng.uniform(0.2, LATE_DAYS)) if late else timedelta(seconds=1)
        sent.append(Sent(m, at(m) + delay))
    sent.sort(key=lambda s: s.received)
    bounds = [T0 + timedelta(days=SPAN_DAYS * c) for c in CUTS]
    chunks: list[list[Sent]] = [[] for _ in range(len(bounds) + 1)]
    for s in sent:
        chunks[sum(s.received >= b for b in bounds)].append(s)
    tail = [[Sent(m, at(m) + timedelta(seconds=1)) for m in ms]
            for ms in (traffic.messages[main:after_quiet], traffic.messages[after_quiet:])]
    victim = f"user_id:{user_id(rng.randrange(3, users))}"
    return [c for c in chunks if c], tail[0], victim, tail[1]


class Stepwise:
    """The real processor over an embedded log and a DuckLake under data_dir, fed chunk by
    chunk: each chunk is consumed to the end, so it becomes one or more warehouse commits."""

    def __init__(self, data_dir: Path, maintain_every: int) -> None:
        config = CoreConfig(models=tuple(load_models(MODELS)))
        self.data_dir = data_dir
        self.dead: list[Record] = []
        # No inlining and compaction at two files with deletes: some snapshots rewrite whole
        # tables (maintain.compact).
        self.writer = WarehouseWriter(WarehouseSettings(data_dir=data_dir, inline_row_limit=0,
                                                        compact_files=2))
        self.writer.open()
        self.log = EmbeddedLog(data_dir / "log", PARTITIONS)
        self.producer = EmbeddedLog(data_dir / "log", PARTITIONS)
        # Small batches: more snapshots. Frequent maintenance: some only merge files, some
        # rewrite them (the change feed is read around both).
        self.processor = Processor(
            consumer=self.log, writer=self.writer, state=JourneyState(config, self.writer),
            model_rows=list(model_rows(config.models)), batch_max_records=40,
            poll_timeout_s=0.001, dead_letter=lambda record, exc: self.dead.append(record),
            maintain_every=maintain_every)
        self.processor.start()

    def send(self, chunk: Sequence[Sent]) -> None:
        """Append the chunk to the log and run the processor until it has consumed it."""
        events = [normalize(s.message, s.received) for s in chunk]
        self.producer.append([(e.event_id.encode(), e.to_json()) for e in events])
        while self.processor.run_once().records:
            pass
        assert self.dead == []

    def erase(self, key: str) -> None:
        """Erase the customer holding key, as the processor applies a queued request."""
        eraser = Eraser(self.data_dir, self.writer, self.log, lambda: self.processor.state)
        with self.processor.exclusive():
            assert eraser.erase(key)["status"] == "erased"

    def close(self) -> None:
        """Close the log handles and the writer."""
        self.producer.close()
        self.log.close()
        self.writer.close()


@contextmanager
def stepwise(data_dir: Path, maintain_every: int) -> Iterator[Stepwise]:
    """A Stepwise pipeline, closed on exit."""
    pipeline = Stepwise(data_dir, maintain_every)
    try:
        yield pipeline
    finally:
        pipeline.close()


@contextmanager
def client(settings: ApiSettings, store: SnapshotStore) -> Iterator[TestClient]:
    """The analytics API over store."""
    app = FastAPI()
    app.include_router(api_router(settings, store))
    with TestClient(app) as c:
        yield c


def plain(value: Any) -> Any:
    """A hashable, comparable copy of a DuckDB or JSON value: floats to ROUND decimals."""
    if isinstance(value, float | Decimal):
        number = float(value)
        return repr(number) if math.isnan(number) else round(number, ROUND) + 0.0
    if isinstance(value, list | tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), plain(v)) for k, v in value.items()))
    return value


def relations(con: duckdb.DuckDBPyConnection) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every pre-aggregate (`__j_*`) and materialised table and every view (events and
    event_stages stay views over the snapshot) of a bound connection as a multiset of rows,
    the class id k replaced by what it stands for, (first_channel, traits), and without the
    group hash of the additive tables (a hash of k; assert_group_hashes checks it)."""
    cur = con.cursor()
    try:
        here = "database_name = current_database() AND NOT internal"
        names = sorted({r[0] for r in cur.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE {here}").fetchall()
            if r[0].startswith("__j_") or r[0] in MATERIALISED} | {r[0] for r in cur.execute(
                f"SELECT view_name FROM duckdb_views() WHERE {here}").fetchall()})
        classes = {k: (channel, traits) for k, channel, traits in cur.execute(
            "SELECT k, first_channel, traits FROM __j_class").fetchall()}
        out: dict[str, Counter[tuple[Any, ...]]] = {}
        for name in names:
            cur.execute(f'SELECT * FROM "{name}"')
            columns = [d[0] for d in cur.description or []]
            k = columns.index("k") if "k" in columns else None
            rows: Counter[tuple[Any, ...]] = Counter()
            for row in cur.fetchall():
                values = list(row)
                if k is not None and values[k] is not None:
                    values[k] = classes.get(values[k], ("no such class", values[k]))
                rows[plain([v for c, v in zip(columns, values, strict=True)
                            if c != GROUP_HASH])] += 1
            out[name] = rows
        return out
    finally:
        cur.close()


def assert_group_hashes(con: duckdb.DuckDBPyConnection, step: str) -> None:
    """Every additive pre-aggregate's group hash is the hash of its row's dims (what a delta
    finds its groups by)."""
    for table in TABLES:
        if table.additive:
            row = con.execute(f'SELECT count(*) FROM "{table.name}" '
                              f"WHERE {GROUP_HASH} IS DISTINCT FROM {table.group_hash}").fetchone()
            assert row == (0,), f"{step}: {table.name} has rows whose {GROUP_HASH} is stale"


def assert_same_relations(advanced: duckdb.DuckDBPyConnection,
                          built: duckdb.DuckDBPyConnection, step: str) -> None:
    """The two connections hold the same relations with the same rows (up to k numbering)."""
    assert_group_hashes(advanced, step)
    got, want = relations(advanced), relations(built)
    assert sorted(got) == sorted(want), f"{step}: relation names differ"
    assert {"__j_class", "__j_reach", "customers", "events", "event_stages"} <= set(want)
    for name, rows in want.items():
        if got[name] != rows:
            extra, missing = got[name] - rows, rows - got[name]
            raise AssertionError(
                f"{step}: {name} differs: {sum(extra.values())} rows only advanced "
                f"(e.g. {list(extra)[:3]}), {sum(missing.values())} rows only built "
                f"(e.g. {list(missing)[:3]})")


def queries() -> list[tuple[str, dict[str, str]]]:
    """The requests compared: the main endpoints (attribution by every method and key) of each
    model, each again filtered by a trait, and filters by first-touch channel and first_seen."""
    default, lifecycle = ({"model": m} for m in MODELS)
    pro = {"trait.plan": "pro"}
    main = ("/v1/funnel", "/v1/kpis", "/v1/journey-map", "/v1/dropoff", "/v1/transitions",
            "/v1/timeseries", "/v1/cohorts")
    return [
        *((path, default) for path in main),
        *(("/v1/attribution", {**default, "method": method, "by": by})
          for method in METHODS for by in BYS),
        ("/v1/paths", {**default, "by": "stage"}),
        ("/v1/paths", {**default, "by": "event", "steps": "20"}),
        *((path, lifecycle) for path in ("/v1/funnel", "/v1/kpis", "/v1/dropoff")),
        *((path, pro) for path in (*main, "/v1/paths")),
        ("/v1/attribution", {**pro, "method": "position_based", "by": "source"}),
        ("/v1/funnel", {"trait.plan": "free", "channel": "web"}),
        ("/v1/dropoff", {"channel": "email"}),
        ("/v1/funnel", {"from": stamp(T0 + timedelta(days=20)),
                        "to": stamp(T0 + timedelta(days=90))}),
        ("/v1/compare", {"a.trait.plan": "free", "b.trait.plan": "pro"}),
        ("/v1/funnel", {"level": "account"}),
    ]


def assert_same_answers(advanced: TestClient, built: TestClient, step: str) -> None:
    """Every request of queries() answers 200 and the same JSON from both APIs."""
    for path, params in queries():
        got = advanced.get(path, params=params, headers=AUTH)
        want = built.get(path, params=params, headers=AUTH)
        assert want.status_code == 200, f"{step}: {path} {params}: {want.text}"
        assert got.status_code == 200, f"{step}: {path} {params}: {got.text}"
        assert plain(got.json()) == plain(want.json()), f"{step}: {path} {params} differ"


def assert_same(store_inc: SnapshotStore, api_inc: TestClient, settings: ApiSettings,
                reader: WarehouseReader, step: str) -> None:
    """store_inc, advanced to the newest snapshot, equals a full build of that snapshot."""
    builds = store_inc.full_builds
    advanced = store_inc.refresh(force=True)
    full = SnapshotStore(reader, lambda: datetime.now(UTC), refresh_interval_s=0.0,
                         incremental=False)
    built = full.refresh(force=True)
    assert advanced is not None and built is not None
    assert (advanced.version, advanced.watermark) == (built.version, built.watermark), step
    for bound in (advanced, built):
        # Tiny data: one thread spares the CPU DuckDB spends handing work between threads.
        bound.con.execute("SET threads = 1")
    assert_same_relations(advanced.con, built.con, step)
    if store_inc.full_builds == builds:  # else both are full builds: their answers are alike
        with client(settings, full) as api_full:
            assert_same_answers(api_inc, api_full, step)
    assert full.current() is built, f"{step}: a commit arrived during the comparison"
    built.con.close()


def lapsed(store: SnapshotStore) -> int:
    """Customers of the default model lapsed at the store's snapshot."""
    with store.cursor() as (_, cur):
        row = cur.execute("SELECT count(*) FROM __j_stop WHERE model = 'default'").fetchone()
    return int(row[0]) if row else 0


# (seed, maintenance every n commits, a table created in the lake after the first chunk): the
# change feed is read around maintenance's snapshots (the last main chunk has maintenance amid
# its commits); a span that created a table (as an upgrade adding one would) is built whole.
@pytest.mark.parametrize(("seed", "maintain_every", "upgrade"), [(1, 5, False), (2, 10**9, True)])
def test_7_a_snapshot_advanced_in_place_equals_a_full_build(
        tmp_path: Path, seed: int, maintain_every: int, upgrade: bool) -> None:
    """After every chunk the processor commits (late events, merges, trait changes, lapsing by
    the watermark alone, an erasure), the incrementally advanced store and a fresh full build
    of the same snapshot hold the same tables and answer the same JSON."""
    chunks, quiet, victim, last = journey(seed)
    settings = ApiSettings(data_dir=tmp_path, api_tokens=[SecretStr(TOKEN)], warm_cache=False)
    reader = WarehouseReader(settings.warehouse_dir)
    with stepwise(tmp_path, maintain_every) as pipeline:
        pipeline.send(chunks[0])
        store_inc = SnapshotStore(reader, lambda: datetime.now(UTC), refresh_interval_s=0.0)
        assert store_inc.refresh(force=True) is not None  # a full build: nothing to compare yet
        with client(settings, store_inc) as api_inc:
            for n, chunk in enumerate(chunks[1:], 1):
                if upgrade and n == 1:
                    pipeline.writer.run(lambda con: con.execute(
                        f"CREATE TABLE {LAKE}.upgrade_probe (x INTEGER)"))
                if n == len(chunks) - 1:  # maintenance amid a span's commits
                    pipeline.send(chunk[:len(chunk) // 2])
                    pipeline.writer.maintain()
                    chunk = chunk[len(chunk) // 2:]
                builds = store_inc.full_builds
                pipeline.send(chunk)
                assert_same(store_inc, api_inc, settings, reader, f"chunk {n}")
                assert store_inc.full_builds == builds + (upgrade and n == 1), n
            # A compaction rewrites whole tables but `customers` (whose change feed names the
            # changed customers): the store moves to it with no customer replaced.
            writer = pipeline.writer
            writer.settings = writer.settings.model_copy(update={"compact_files": 1})
            compacted = writer.compact()
            assert compacted and "customers" not in compacted, compacted
            advances = store_inc.advances
            assert_same(store_inc, api_inc, settings, reader, "after a compaction")
            assert (store_inc.advances, store_inc.last_changed) == (advances + 1, 0)
            before = lapsed(store_inc)
            pipeline.send(quiet)
            assert_same(store_inc, api_inc, settings, reader, "watermark moved")
            # Customers the quiet chunk never touched lapsed: the watermark alone changed them.
            assert lapsed(store_inc) > before + 1
            # An erasure expires the snapshots it rewrote, so the change feed cannot answer and
            # the store builds this one whole; the next chunk advances from that build.
            pipeline.erase(victim)
            assert_same(store_inc, api_inc, settings, reader, f"erased {victim}")
            pipeline.send(last)
            assert_same(store_inc, api_inc, settings, reader, "after the erasure")
    # The first snapshot is a full build; the delta path must really have served later ones.
    assert store_inc.full_builds >= 1
    assert store_inc.advances >= 1
