"""SPEC 2.4 in the processor's memory: an erased customer is forgotten (its neighbours in a
component stay), older events with its keys are dropped, newer ones are new data; and the
embedded log and the dead-letter files lose exactly the erased customer's records."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from journey.deadletter import DeadLetter, DeadLetterStore, rewrite_without
from journey.facts import Changes
from journey.hashing import key_hash
from journey.log.base import ErasableLog
from journey.log.embedded import EmbeddedLog
from journey.schema import Event
from processor.derive import CoreConfig, derive_customers
from processor.memory import MemoryWarehouse
from processor.sessions import micros
from processor.state import DERIVED, JourneyState
from tests.processor.conftest import T0, Make


def _apply(state: JourneyState, wh: MemoryWarehouse, events: list[Event]) -> list[str]:
    applied = state.apply(events)
    wh.commit(applied.new_events, applied.changes)
    return [e.event_id for e in applied.new_events]


def _erase(state: JourneyState, wh: MemoryWarehouse, user: str, at_s: float) -> str:
    """What processor/erasure.py does, on the in-memory warehouse."""
    cid = next(r.customer_id for r in wh.tables["customers"] if r.user_id == user)
    keys = {(r.type, r.value) for r in wh.tables["identities"] if r.customer_id == cid}
    hashes = [key_hash(t, v) for t, v in keys]
    changes = Changes()
    for table in DERIVED:
        changes.delete(table, "customer_id", {cid})
    wh.commit([], changes)
    for h in hashes:
        wh._events.pop(h, None)
    state.forget(cid, hashes, micros(T0 + timedelta(seconds=at_s)))
    return cid


def test_2_4_forgotten_customer_stays_gone_and_newer_events_are_new_data(make: Make) -> None:
    wh = MemoryWarehouse()
    config = CoreConfig()
    state = JourneyState(config, wh)
    _apply(state, wh, [make("a1", 0, user="ua", email="a@x.io", anon="an-a"),
                       make("a2", 60, user="ua"), make("b1", 0, user="ub", email="b@x.io")])
    assert state.customers == 2
    _erase(state, wh, "ua", at_s=120)
    assert state.customers == 1
    # Received before the erasure (a replay, or in flight): dropped, whatever its id.
    assert _apply(state, wh, [make("a3", 90, anon="an-a"), make("a1", 0, user="ua")]) == []
    assert not [r for r in wh.tables["customers"] if r.user_id == "ua"]
    # Received after it: a new customer with every key of the new event.
    assert _apply(state, wh, [make("a4", 200, user="ua", email="a@x.io")]) == ["a4"]
    assert state.customers == 2
    new = next(r.customer_id for r in wh.tables["customers"] if r.user_id == "ua")
    keys = {(r.type, r.value) for r in wh.tables["identities"] if r.customer_id == new}
    (facts, _), = derive_customers([make("a4", 200, user="ua", email="a@x.io")], config)
    assert keys == {(r.type, r.value) for r in facts.identities} == {
        ("user_id", "ua"), ("email", "a@x.io")}


def test_2_4_erasing_one_customer_of_a_component_keeps_its_neighbour(make: Make) -> None:
    wh = MemoryWarehouse()
    state = JourneyState(CoreConfig(), wh)
    # One email, two user_ids: the link is refused, one component holds two customers.
    _apply(state, wh, [make("a1", 0, user="ua", email="s@x.io"),
                       make("c1", 10, user="uc", email="s@x.io")])
    assert state.customers == 2
    _erase(state, wh, "ua", at_s=100)
    assert state.customers == 1
    assert _apply(state, wh, [make("c2", 200, user="uc")]) == ["c2"]
    users = {r.user_id for r in wh.tables["customers"]}
    assert users == {"uc"}
    assert state.customers == 1


def test_2_4_embedded_log_erase_leaves_no_copy(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log", partitions=2, topic="t")
    try:
        assert isinstance(log, ErasableLog)
        log.append([(b"k1", b'{"email":"gone-1a2b@example.com"}'), (b"k2", b'{"email":"kept"}'),
                    (b"k1", b'{"email":"gone-1a2b@example.com","n":2}')])
        ends = log.end_offsets()
        assert log.erase(lambda value: b"gone-1a2b" in value) == 2
        log.seek(dict.fromkeys(log.partitions(), 0))
        values = [r.value for r in log.poll(10, 0.1)]
        assert values == [b'{"email":"kept"}']
        assert log.end_offsets() == ends  # offsets of the log do not move
    finally:
        log.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "log").iterdir())
    assert b"gone-1a2b" not in raw and b"kept" in raw


def test_2_4_dead_letters_rewritten_without_the_customer(tmp_path: Path) -> None:
    store = DeadLetterStore(tmp_path, stage="collector")
    store.append([DeadLetter(received_at=T0, reason="bad", event={"email": "gone@x.io"}),
                  DeadLetter(received_at=T0, reason="bad", event={"email": "kept@x.io"})])
    assert rewrite_without(tmp_path, lambda line: b'"gone@x.io"' in line) == 1
    store.append([DeadLetter(received_at=T0, reason="later", event={"n": 1})])  # still appends
    text = (tmp_path / "collector.jsonl").read_bytes()
    assert b"gone@x.io" not in text and b"kept@x.io" in text and b"later" in text
