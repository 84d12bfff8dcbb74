"""SPEC 7 through the real processor: Segment messages, normalised by the collector's code, are
appended to the real embedded log in any order and chunking (with producer retries), consumed by
`processor.runner.Processor` in micro-batches of any size, with restarts from the warehouse in
between (some after records were polled but not committed, as a crash would leave them); every
stored table then equals `derive(all events)` written by one single commit.

Unlike tests/processor/test_property.py (the pure core), this covers the consume loop, the
state's choice between the incremental path and re-derivation from the warehouse, the writer's
row-level deletes and inserts, and the restart from the stored customer_state.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.normalize import normalize
from journey.facts import Changes
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event
from processor import restore
from processor.config import core_config
from processor.derive import CoreConfig, derive
from processor.models_table import model_rows
from processor.runner import Processor
from processor.settings import ProcessorSettings
from processor.state import JourneyState
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.tables import TABLES
from warehouse.writer import WarehouseWriter

T0 = datetime(2026, 2, 2, 9, tzinfo=UTC)
RECEIVED = T0 + timedelta(days=3)
PARTITIONS = 3
LOG_KEYS = [b"k0", b"k1", b"k2", b"k3", b"k4"]
NAMES = [
    "Product Viewed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Order Completed",
    "Review Submitted",
    "Survey Responded",
    "Call Completed",
    "Product Used",
    "Email Clicked",
]
KINDS = ["track", "track", "track", "track", "page", "identify", "alias"]
CHANNELS = ["web", "web", "app", "email", "call", "store"]
# Where the campaign comes from: none, context.campaign, or utm parameters of the page URL.
CAMPAIGNS = [None, None, ("google", "cpc", "spring"), ("news", "email", "weekly")]
# Keys carried: u userId, a anonymousId, e traits.email, p context.traits.phone, l externalIds.
KEYSETS = ["a", "a", "a", "u", "ua", "ua", "e", "ea", "pa", "l", "el", "ue"]

# (person, keys, kind, name, channel, slot, jitter, campaign, utm, score, shared device)
Raw = tuple[int, str, str, str, str, int, float, int, bool, int, bool]
raw_message = st.tuples(
    st.integers(0, 2),
    st.sampled_from(KEYSETS),
    st.sampled_from(KINDS),
    st.sampled_from(NAMES),
    st.sampled_from(CHANNELS),
    st.integers(0, 8),
    st.sampled_from([0.0, 1.0, -1.0, 600.0]),
    st.integers(0, len(CAMPAIGNS) - 1),
    st.booleans(),
    st.integers(0, 10),
    st.sampled_from([False, False, True]),
)


def segment_message(index: int, raw: Raw) -> dict[str, Any]:
    """One Segment message as an SDK would send it."""
    person, keys, kind, name, channel, slot, jitter, campaign, utm, score, shared = raw
    at = T0 + timedelta(seconds=slot * 1800 + jitter)  # gaps around the 30-minute timeout
    msg: dict[str, Any] = {
        "type": kind,
        "messageId": f"m{index:03d}",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
    }
    context: dict[str, Any] = {"traits": {"c": index % 3}}
    properties: dict[str, Any] = {"channel": channel}
    if "u" in keys or kind == "alias":
        msg["userId"] = f"u{person}"
    # Every message needs a key: give one without any other an anonymousId.
    if "a" in keys or ("userId" not in msg and not set(keys) & set("epl")):
        msg["anonymousId"] = "dev-shared" if shared and person < 2 else f"a{person}-{slot % 3}"
    if "e" in keys:
        msg["traits"] = {"email": f" P{person}@X.org "}
    if "p" in keys:
        context["traits"]["phone"] = f"+1 555-{person}"
    if "l" in keys:
        context["externalIds"] = [{"id": f"L{person}", "type": "loyalty_card"}]
    if kind == "track":
        msg["event"] = name
        if name == "Survey Responded":
            properties.update(survey=["nps", "csat"][score % 2], score=score)
    elif kind == "page":
        del properties["channel"]
    elif kind == "identify":
        msg["traits"] = {**msg.get("traits", {}), "score": score, f"t{person}": slot}
    elif kind == "alias":  # the previous id may belong to another person: a refused link
        msg["previousId"] = [f"a{person}-{score % 3}", f"L{person}", f"a{(person + 1) % 3}-0"][
            slot % 3
        ]
    if CAMPAIGNS[campaign] is not None:
        source, medium, name_ = CAMPAIGNS[campaign]  # type: ignore[misc]
        if utm:
            query = f"utm_source={source}&utm_medium={medium}&utm_campaign={name_}"
            context["page"] = {"url": f"https://shop.example/p{slot}?{query}"}
        else:
            context["campaign"] = {"source": source, "medium": medium, "name": name_}
    elif kind == "page":
        context["page"] = {"url": f"https://shop.example/p{slot}", "referrer": "https://t.co/x"}
    msg["context"], msg["properties"] = context, properties
    return msg


def _open(
    data: Path, config: CoreConfig, batch_max: int, dead: list[Record]
) -> tuple[Processor, WarehouseWriter, EmbeddedLog]:
    """The pieces of processor.app.build, over the embedded log; dead letters go to `dead`."""
    writer = WarehouseWriter(WarehouseSettings(data_dir=data))
    writer.open()
    consumer = EmbeddedLog(data / "log", PARTITIONS)
    processor = Processor(
        consumer=consumer,
        writer=writer,
        state=JourneyState(config, writer),
        model_rows=list(model_rows(config.models)),
        batch_max_records=batch_max,
        poll_timeout_s=0.001,
        dead_letter=lambda record, exc: dead.append(record),
    )
    processor.start()
    return processor, writer, consumer


def _reference(data: Path, events: list[Event], config: CoreConfig) -> None:
    """The batch result: derive(all events) stored by one commit of a fresh warehouse."""
    changes = Changes()
    for fact in derive(events, config):
        changes.add_facts(fact)
    stored = [(e, -1, -1) for e in events]
    with WarehouseWriter(WarehouseSettings(data_dir=data)) as writer:
        writer.commit(
            stored, changes, offsets={}, watermark=max(e.timestamp for e in events),
            models=list(model_rows(config.models)),
        )


def _tables(data: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the current snapshot (events without their log position), rows sorted."""
    snap = WarehouseReader(data / "warehouse").current()
    assert snap is not None
    con = duckdb.connect()
    try:
        WarehouseReader(data / "warehouse").register_views(con, snap)
        out = {}
        for table in TABLES:  # customer_state is the processor's own, derive() has none
            columns = '* EXCLUDE (partition, "offset")' if table == "events" else "*"
            out[table] = con.execute(f'SELECT {columns} FROM "{table}" ORDER BY ALL').fetchall()
        out["meta"] = con.execute("SELECT watermark FROM meta").fetchall()
        return out
    finally:
        con.close()


def _offsets_point_at_their_records(data: Path) -> None:
    """Each stored event's (partition, offset) is a log record carrying that very event."""
    log = EmbeddedLog(data / "log", PARTITIONS)
    try:
        records = {(r.partition, r.offset): r for r in log.poll(10_000, 0.01)}
    finally:
        log.close()
    with WarehouseWriter(WarehouseSettings(data_dir=data)) as writer:
        for chunk in writer.iter_events(1000):
            for event, partition, offset in chunk:
                assert Event.from_json(records[(partition, offset)].value) == event


@contextmanager
def _restore_slices(customers: int) -> Iterator[None]:
    default = restore.RESTORE_SLICE_CUSTOMERS
    restore.RESTORE_SLICE_CUSTOMERS = customers
    try:
        yield
    finally:
        restore.RESTORE_SLICE_CUSTOMERS = default


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raws=st.lists(raw_message, min_size=6, max_size=30), data=st.data())
def test_7_processor_tables_equal_one_batch_commit_whatever_order_batching_and_restarts(
    raws: list[Raw], data: st.DataObject
) -> None:
    events = [normalize(segment_message(i, raw), RECEIVED) for i, raw in enumerate(raws)]
    config = core_config(ProcessorSettings(models=["default", "lifecycle"]))
    arrivals = data.draw(st.permutations(events), label="order")
    arrivals += data.draw(st.lists(st.sampled_from(events), max_size=4), label="retries")
    cuts = sorted(data.draw(st.sets(st.integers(1, len(arrivals)), max_size=6), label="cuts"))
    chunks = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]
    # A restart restores its customers in slices of this many (the default is one slice here).
    sliced = data.draw(st.sampled_from([1, 3, restore.RESTORE_SLICE_CUSTOMERS]), label="slice")
    with tempfile.TemporaryDirectory() as tmp, _restore_slices(sliced):
        live, ref = Path(tmp) / "live", Path(tmp) / "ref"
        producer = EmbeddedLog(live / "log", PARTITIONS)
        dead: list[Record] = []
        first_batch = 1 + data.draw(st.integers(0, 9), label="batch")
        processor, writer, consumer = _open(live, config, first_batch, dead)
        try:
            for chunk in (c for c in chunks if c):
                # Any key: one customer's events may land in several partitions, in any order.
                keys = data.draw(
                    st.lists(st.sampled_from(LOG_KEYS), min_size=len(chunk), max_size=len(chunk)),
                    label="keys",
                )
                producer.append([(k, e.to_json()) for k, e in zip(keys, chunk, strict=True)])
                for _ in range(data.draw(st.integers(0, 2), label="polls")):
                    processor.run_once()
                if data.draw(st.booleans(), label="restart"):
                    # A crash after a poll, before its commit: the restart must replay those.
                    consumer.poll(data.draw(st.integers(0, 5), label="lost"), 0.001)
                    writer.close()
                    consumer.close()
                    batch = 1 + data.draw(st.integers(0, 9), label="batch")
                    processor, writer, consumer = _open(live, config, batch, dead)
            while processor.run_once().records:
                pass
            assert writer.state().offsets == producer.end_offsets()
        finally:
            writer.close()
            consumer.close()
            producer.close()
        assert dead == []
        _reference(ref, events, config)
        got, want = _tables(live), _tables(ref)
        for table in want:
            assert got[table] == want[table], table
        assert len(got["events"]) == len(events)
        _offsets_point_at_their_records(live)
