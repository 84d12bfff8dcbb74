"""SPEC 7 as a property: streaming any order and batching through the processor's state (the
incremental path for in-order events, re-derivation from stored events for late ones and merges)
gives exactly derive(all events), on generated multi-channel data with shared devices, aliases,
campaigns, gaps around the session timeout and surveys.

Refused (conflicting user_id) links are generated too: derive sorts by event time, so once all
events are in, the result cannot depend on arrival order; SPEC 7's exemption is not needed here.
So are group calls (SPEC 5.1 accounts) and the refused links themselves (identity conflicts).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey.facts import CustomerFacts
from journey.schema import Event
from processor.derive import CoreConfig, derive
from processor.memory import MemoryWarehouse
from processor.stages.model import preset
from processor.state import JourneyState

CONFIG = CoreConfig(models=(preset("default"), preset("lifecycle")))
NAMES = [
    "Page Viewed",
    "Product Viewed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Order Completed",
    "Review Submitted",
    "Survey Responded",
    "Identified",
    "Aliased",
    "Aliased",
    "Aliased",
    "Call Completed",
    "Product Used",
    "Grouped",
]
CHANNELS = ["web", "web", "app", "email", "call", "store"]
CAMPAIGNS = [None, None, ("google", "cpc", "a"), ("news", "email", "b")]

# Which keys an event carries: u user_id, a anonymous_id (one of three devices per person, or a
# device shared by persons 0 and 1), e email, p phone, l loyalty_card. Mostly one or two keys, so
# that customers form through few links, and aliases matter.
KEYSETS = ["a", "a", "a", "u", "ua", "ua", "e", "ea", "p", "pa", "l", "el", "ue"]
# One raw event: (person, keys, name, channel, slot, jitter, campaign, score, shared)
Raw = tuple[int, str, str, str, int, float, int, int, bool]
raw_event = st.tuples(
    st.integers(0, 2),
    st.sampled_from(KEYSETS),
    st.sampled_from(NAMES),
    st.sampled_from(CHANNELS),
    st.integers(0, 12),
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 600.0]),
    st.integers(0, len(CAMPAIGNS) - 1),
    st.integers(0, 10),
    st.sampled_from([False, False, True]),
)


def _build(make: Any, index: int, raw: Raw) -> Event:
    person, keys, name, channel, slot, jitter, campaign, score, shared = raw
    anon = "dev-shared" if shared and person < 2 else f"a{person}-{slot % 3}"
    kw: dict[str, Any] = {
        "user": f"u{person}" if "u" in keys or name == "Aliased" else None,
        "anon": anon if "a" in keys else None,
        "email": f"p{person}@x.org" if "e" in keys else None,
        "phone": f"555{person}" if "p" in keys else None,
        "extra_keys": {"loyalty_card": f"L{person}"} if "l" in keys else None,
    }
    if name == "Aliased":
        kw["previous_id"] = [f"a{person}-{score % 3}", f"L{person}", f"x{person}"][slot % 3]
    if name in ("Page Viewed", "Identified", "Aliased"):
        channel = "web"
    if name == "Identified":
        kw["traits"] = {"score": score, f"t{person}": slot}
    if name == "Grouped":
        kw["properties"] = {"group_id": f"acct{score % 2}",
                            "group_traits": {"plan": ["free", "pro"][slot % 2], f"t{person}": 1}}
    if name == "Survey Responded":
        kw["properties"] = {"survey": ["nps", "csat"][score % 2], "score": score}
    built: Event = make(
        f"e{index:03d}",
        slot * 1800 + jitter,
        name,
        channel=channel,
        campaign=CAMPAIGNS[campaign],
        context={"traits": {"c": index % 3}},
        **kw,
    )
    return built


TABLES = ("identities", "customers", "sessions", "stage_entries", "event_stages", "transitions",
          "surveys", "account_events", "identity_conflicts")


def _stream(batches: list[list[Event]]) -> dict[str, list[object]]:
    """Every derived table after streaming the batches through the state, rows sorted."""
    warehouse = MemoryWarehouse()
    state = JourneyState(CONFIG, warehouse)
    for batch in batches:
        applied = state.apply(batch)
        warehouse.commit(applied.new_events, applied.changes)
    return {t: sorted(warehouse.tables.get(t, []), key=repr) for t in TABLES}


def _tables(facts: list[CustomerFacts]) -> dict[str, list[object]]:
    rows: dict[str, list[object]] = {t: [] for t in TABLES}
    for f in facts:
        rows["customers"].append(f.customer)
        for t in (*TABLES[2:], "identities"):
            rows[t].extend(getattr(f, t))
    return {t: sorted(r, key=repr) for t, r in rows.items()}


def _check_invariants(facts: list[CustomerFacts], events: list[Event]) -> None:
    for model in CONFIG.models:
        rows = [r for f in facts for r in f.event_stages if r.model == model.name]
        assert sorted(r.event_id for r in rows) == sorted(e.event_id for e in events)
    for f in facts:
        assert sum(s.event_count for s in f.sessions) == f.customer.event_count
        assert len([i for i in f.identities if i.type == "user_id"]) <= 1
        for model in CONFIG.models:
            entries = [e.stage_index for e in f.stage_entries if e.model == model.name]
            assert entries == list(range(len(entries)))  # reaching k reaches every earlier one
            at = [r.stage_at_index for r in f.event_stages if r.model == model.name]
            assert at == sorted(at) and at[-1] == len(entries) - 1


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raws=st.lists(raw_event, min_size=10, max_size=40),
    data=st.data(),
)
def test_7_any_order_and_batching_gives_the_batch_result(
    make: Any, raws: list[Raw], data: st.DataObject
) -> None:
    events = [_build(make, i, raw) for i, raw in enumerate(raws)]
    expected = derive(events, CONFIG)
    _check_invariants(expected, events)
    order = data.draw(st.permutations(events), label="arrival order")
    resent = data.draw(st.lists(st.sampled_from(events), max_size=5), label="retries")
    arrivals = order + resent
    cuts = sorted(data.draw(st.sets(st.integers(1, len(arrivals)), max_size=20), label="cuts"))
    batches = [arrivals[a:b] for a, b in zip([0, *cuts], [*cuts, len(arrivals)], strict=True)]
    assert _stream([b for b in batches if b]) == _tables(expected)
