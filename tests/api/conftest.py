"""Hand-made warehouses for the API tests: tables named and shaped exactly like the warehouse views,
filled from small datasets whose metric values the tests work out by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import orjson
import pytest

from api.settings import ApiSettings
from api.store import SnapshotStore

TOKEN = "test-token"

COLUMNS: dict[str, str] = {
    "events": """event_id VARCHAR, type VARCHAR, event VARCHAR, channel VARCHAR,
        timestamp TIMESTAMPTZ, received_at TIMESTAMPTZ, timestamp_flagged BOOLEAN, key_type VARCHAR,
        key_value VARCHAR, keys VARCHAR, previous_id VARCHAR, properties VARCHAR, traits VARCHAR,
        context VARCHAR, campaign_source VARCHAR, campaign_medium VARCHAR, campaign_name VARCHAR,
        source VARCHAR, medium VARCHAR, page_url VARCHAR, partition INTEGER, "offset" BIGINT""",
    "identities": "customer_id VARCHAR, type VARCHAR, value VARCHAR, first_seen TIMESTAMPTZ",
    "customers": """customer_id VARCHAR, user_id VARCHAR, first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ, event_count BIGINT, first_channel VARCHAR, first_source VARCHAR,
        first_medium VARCHAR, traits VARCHAR""",
    "sessions": """session_id VARCHAR, customer_id VARCHAR, channel VARCHAR, start TIMESTAMPTZ,
        "end" TIMESTAMPTZ, duration_s DOUBLE, event_count BIGINT, page_views BIGINT,
        landing_page VARCHAR, source VARCHAR, medium VARCHAR, campaign VARCHAR,
        converted_models VARCHAR[]""",
    "stage_entries": """customer_id VARCHAR, model VARCHAR, stage VARCHAR, stage_index INTEGER,
        entered_at TIMESTAMPTZ, inferred BOOLEAN, event_id VARCHAR""",
    "event_stages": """event_id VARCHAR, customer_id VARCHAR, session_id VARCHAR, model VARCHAR,
        timestamp TIMESTAMPTZ, event VARCHAR, channel VARCHAR, own_stage VARCHAR, stage_at VARCHAR,
        stage_at_index INTEGER""",
    "transitions": """customer_id VARCHAR, model VARCHAR, from_stage VARCHAR, to_stage VARCHAR,
        transitions BIGINT""",
    "surveys": """event_id VARCHAR, customer_id VARCHAR, model VARCHAR, timestamp TIMESTAMPTZ,
        survey VARCHAR, score DOUBLE, stage_at VARCHAR""",
    "models": """model VARCHAR, stage VARCHAR, stage_index INTEGER, conversion_stage BOOLEAN,
        lapse_after_s DOUBLE""",
    "meta": "version BIGINT, committed_at TIMESTAMPTZ, watermark TIMESTAMPTZ",
}

DEFAULT_STAGES = ("awareness", "consideration", "decision", "retention", "advocacy")
DAY = 86_400.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(days: float = 0.0, seconds: float = 0.0) -> datetime:
    """T0 plus a number of days and seconds."""
    return T0 + timedelta(days=days, seconds=seconds)


@dataclass
class Dataset:
    """Rows per table; helpers add whole customers so tests stay short."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in COLUMNS})
    watermark: datetime | None = None
    version: int = 1

    def model(self, name: str = "default", stages: tuple[str, ...] = DEFAULT_STAGES,
              conversion: str = "decision", lapse_after_s: float = 90 * DAY) -> None:
        for i, stage in enumerate(stages):
            self.rows["models"].append({"model": name, "stage": stage, "stage_index": i + 1,
                                        "conversion_stage": stage == conversion,
                                        "lapse_after_s": lapse_after_s})

    def customer(self, cid: str, first_seen: datetime, last_seen: datetime | None = None, *,
                 events: int = 1, channel: str = "web", traits: dict[str, Any] | None = None,
                 keys: tuple[tuple[str, str], ...] = ()) -> None:
        self.rows["customers"].append({
            "customer_id": cid, "user_id": next((v for t, v in keys if t == "user_id"), None),
            "first_seen": first_seen, "last_seen": last_seen or first_seen, "event_count": events,
            "first_channel": channel, "first_source": "(direct)", "first_medium": "(none)",
            "traits": orjson.dumps(traits or {}).decode()})
        for t, v in keys or (("anonymous_id", f"anon-{cid}"),):
            self.rows["identities"].append({"customer_id": cid, "type": t, "value": v,
                                            "first_seen": first_seen})

    def stages(self, cid: str, entered: list[datetime], model: str = "default",
               names: tuple[str, ...] = DEFAULT_STAGES, inferred: tuple[int, ...] = ()) -> None:
        """The customer reached stages 1..len(entered), entering stage k at entered[k-1]."""
        for i, when in enumerate(entered):
            self.rows["stage_entries"].append({
                "customer_id": cid, "model": model, "stage": names[i], "stage_index": i + 1,
                "entered_at": when, "inferred": i + 1 in inferred, "event_id": f"{cid}-s{i}"})

    def session(self, sid: str, cid: str, start: datetime, *, channel: str = "web",
                source: str = "(direct)", converted: tuple[str, ...] = (),
                duration_s: float = 0.0, events: int = 1) -> None:
        self.rows["sessions"].append({
            "session_id": sid, "customer_id": cid, "channel": channel, "start": start,
            "end": start + timedelta(seconds=duration_s), "duration_s": duration_s,
            "event_count": events, "page_views": events if channel == "web" else 0,
            "landing_page": None, "source": source, "medium": "(none)", "campaign": None,
            "converted_models": list(converted)})

    def event(self, eid: str, cid: str, when: datetime, event: str, stage_at: str, *,
              own_stage: str | None = None, channel: str = "web", model: str = "default",
              session_id: str = "", key: tuple[str, str] | None = None) -> None:
        self.rows["event_stages"].append({
            "event_id": eid, "customer_id": cid, "session_id": session_id or f"{cid}-sess",
            "model": model, "timestamp": when, "event": event, "channel": channel,
            "own_stage": own_stage, "stage_at": stage_at,
            "stage_at_index": DEFAULT_STAGES.index(stage_at) + 1})
        if key is not None and model == "default":
            kt, kv = key
            self.rows["events"].append({
                "event_id": eid, "type": "track", "event": event, "channel": channel,
                "timestamp": when, "received_at": when, "timestamp_flagged": False,
                "key_type": kt, "key_value": kv,
                "keys": orjson.dumps([{"type": kt, "value": kv}]).decode(), "previous_id": None,
                "properties": "{}", "traits": "{}", "context": "{}", "campaign_source": None,
                "campaign_medium": None, "campaign_name": None, "source": "(direct)",
                "medium": "(none)", "page_url": None, "partition": 0, "offset": 0})

    def survey(self, eid: str, cid: str, survey: str, score: float, stage_at: str,
               model: str = "default") -> None:
        self.rows["surveys"].append({"event_id": eid, "customer_id": cid, "model": model,
                                     "timestamp": T0, "survey": survey, "score": score,
                                     "stage_at": stage_at})

    def transition(self, cid: str, frm: str, to: str, n: int = 1) -> None:
        self.rows["transitions"].append({"customer_id": cid, "model": "default",
                                         "from_stage": frm, "to_stage": to, "transitions": n})

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Create every table and insert the rows."""
        self.rows["meta"] = [{"version": self.version, "committed_at": T0,
                              "watermark": self.watermark}]
        for table, columns in COLUMNS.items():
            con.execute(f"CREATE TABLE {table} ({columns})")
            rows = self.rows[table]
            if rows:
                names = list(rows[0])
                cols = ", ".join(f'"{n}"' for n in names)
                marks = ", ".join("?" for _ in names)
                con.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                [[r[n] for n in names] for r in rows])


@dataclass(frozen=True)
class MemorySnapshot:
    version: int
    watermark: datetime | None


class MemoryWarehouse:
    """A warehouse reader over a Dataset: `current()` and `register_views()` like the real one."""

    def __init__(self, data: Dataset | None) -> None:
        self.data = data

    def current(self) -> MemorySnapshot | None:
        if self.data is None:
            return None
        return MemorySnapshot(self.data.version, self.data.watermark)

    def register_views(self, con: duckdb.DuckDBPyConnection, snap: MemorySnapshot) -> None:
        assert self.data is not None and snap.version == self.data.version
        self.data.load(con)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(":memory:")
    c.execute("SET GLOBAL TimeZone = 'UTC'")
    yield c
    c.close()


@pytest.fixture
def data() -> Dataset:
    d = Dataset()
    d.model()
    return d


class FakeClock:
    """A settable wall clock (the store takes time as an argument)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_store(wh: MemoryWarehouse, clock: FakeClock | None = None) -> SnapshotStore:
    """A store over a memory warehouse that re-checks the manifest on every request."""
    return SnapshotStore(wh, clock or FakeClock(), register=wh.register_views,
                         refresh_interval_s=0.0)


@pytest.fixture
def settings() -> ApiSettings:
    return ApiSettings(api_tokens=[TOKEN])  # type: ignore[list-item]
