"""SPEC 4.2: stage evaluation per customer (own stage, stage at event, entries, transitions)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journey.facts import CustomerFacts
from processor.derive import CoreConfig, derive
from processor.stages.evaluate import conditions_hold
from processor.stages.model import preset, validate_model

Spec = list[tuple[str, float, dict[str, Any]]]


def _facts(make: Any, events: Spec, config: CoreConfig | None = None) -> CustomerFacts:
    built = [make(eid, at, **{"anon": "A", **kw}) for eid, at, kw in events]
    [facts] = derive(built, config or CoreConfig())
    return facts


def _entries(f: CustomerFacts, model: str = "default") -> list[tuple[str, str, bool]]:
    return [(e.stage, e.event_id, e.inferred) for e in f.stage_entries if e.model == model]


def _at(f: CustomerFacts, model: str = "default") -> list[tuple[str, str | None, str]]:
    return [(r.event_id, r.own_stage, r.stage_at) for r in f.event_stages if r.model == model]


def test_4_2_purchase_with_no_recorded_consideration_infers_it(make: Any) -> None:
    f = _facts(make, [("v", 0, {}), ("o", 60, {"event": "Order Completed", "channel": "store"})])
    assert _entries(f) == [
        ("awareness", "v", False),
        ("consideration", "o", True),
        ("decision", "o", False),
    ]
    entered = {e.stage: e.entered_at for e in f.stage_entries}
    assert entered["consideration"] == entered["decision"] == f.event_stages[1].timestamp


def test_4_2_first_event_reaching_decision_makes_awareness_explicit(make: Any) -> None:
    f = _facts(make, [("o", 0, {"event": "Checkout Started"})])
    assert _entries(f) == [
        ("awareness", "o", False),
        ("consideration", "o", True),
        ("decision", "o", False),
    ]


def test_4_2_second_purchase_reaches_retention_through_nth(make: Any) -> None:
    f = _facts(
        make,
        [
            ("o1", 0, {"event": "Order Completed"}),
            ("p", 10, {"event": "Product Viewed"}),
            ("o2", 86400, {"event": "Order Completed"}),
            ("o3", 90000, {"event": "Order Completed"}),
        ],
    )
    assert _at(f) == [
        ("o1", "decision", "decision"),
        ("p", "consideration", "decision"),
        ("o2", "retention", "retention"),
        ("o3", "retention", "retention"),
    ]
    assert _entries(f)[-1] == ("retention", "o2", False)


def test_4_2_backward_move_decision_to_consideration_is_a_transition(make: Any) -> None:
    f = _facts(
        make,
        [
            ("p1", 0, {"event": "Product Viewed"}),
            ("c1", 10, {"event": "Checkout Started"}),
            ("x", 15, {}),  # no own stage: skipped
            ("p2", 20, {"event": "Product Viewed"}),
            ("p3", 25, {"event": "Cart Viewed"}),  # same stage again: no transition
            ("c2", 30, {"event": "Checkout Started"}),
        ],
    )
    got = {(t.from_stage, t.to_stage): t.transitions for t in f.transitions}
    assert got == {("consideration", "decision"): 2, ("decision", "consideration"): 1}
    assert [r.stage_at for r in f.event_stages] == ["consideration"] + ["decision"] * 5


def test_4_2_advocacy_from_nps_promoter_only(make: Any) -> None:
    survey = "Survey Responded"
    f = _facts(
        make,
        [
            ("d", 0, {"event": survey, "properties": {"survey": "nps", "score": 6}}),
            ("c", 5, {"event": survey, "properties": {"survey": "csat", "score": 5}}),
            ("p", 10, {"event": survey, "properties": {"survey": "nps", "score": 9}}),
        ],
    )
    assert _at(f) == [
        ("d", None, "awareness"),
        ("c", None, "awareness"),
        ("p", "advocacy", "advocacy"),
    ]
    assert [(s.event_id, s.survey, s.score, s.stage_at) for s in f.surveys] == [
        ("d", "nps", 6.0, "awareness"),
        ("c", "csat", 5.0, "awareness"),
        ("p", "nps", 9.0, "advocacy"),
    ]
    inferred = [e.stage for e in f.stage_entries if e.inferred]
    assert inferred == ["consideration", "decision", "retention"]


@pytest.mark.parametrize(
    ("properties", "kept"),
    [
        ({"survey": "nps", "score": 10}, ("nps", 10.0)),
        ({"survey": "NPS ", "score": "7"}, ("nps", 7.0)),
        ({"survey": "ces", "score": 7.0}, ("ces", 7.0)),
        ({"survey": "csat", "score": 0}, None),  # outside 1..5
        ({"survey": "nps", "score": 11}, None),
        ({"survey": "nps", "score": True}, None),
        ({"survey": "nps"}, None),
        ({"survey": "nps", "score": "high"}, None),
        ({"survey": "poll", "score": 3}, None),
    ],
)
def test_5_surveys_need_known_survey_and_score_in_scale(
    make: Any, properties: dict[str, Any], kept: tuple[str, float] | None
) -> None:
    f = _facts(make, [("s", 0, {"event": "Survey Responded", "properties": properties})])
    assert [(s.survey, s.score) for s in f.surveys] == ([kept] if kept else [])


WHERE_CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"score": {"gte": 9}}, {"score": 9}, True),
    ({"score": {"gte": 9}}, {"score": 8.99}, False),
    ({"score": {"gte": 9}}, {"score": "10"}, True),
    ({"score": {"gt": 9}}, {"score": 9}, False),
    ({"score": {"lt": 3, "gte": 1}}, {"score": 2}, True),
    ({"score": {"lte": 3}}, {"score": 3.0}, True),
    ({"score": {"gte": 9}}, {}, False),
    ({"score": {"gte": 9}}, {"score": None}, False),
    ({"plan": {"eq": "pro"}}, {"plan": "pro"}, True),
    ({"plan": {"eq": "pro"}}, {"plan": "Pro"}, False),
    ({"plan": {"ne": "pro"}}, {"plan": "free"}, True),
    ({"plan": {"ne": "pro"}}, {}, False),
    ({"plan": {"in": ["pro", "team"]}}, {"plan": "team"}, True),
    ({"plan": {"in": ["pro", "team"]}}, {"plan": "free"}, False),
    ({"qty": {"eq": 2}}, {"qty": 2.0}, True),
    ({"gift": {"eq": True}}, {"gift": True}, True),
    ({"gift": {"eq": True}}, {"gift": 1}, False),
    ({"qty": {"eq": 1}}, {"qty": True}, False),
    ({"day": {"gte": "2026-01-01"}}, {"day": "2026-02-01"}, True),
    ({"day": {"gte": "2026-01-01"}}, {"day": 5}, False),
    ({"cart.total": {"gt": 100}}, {"cart": {"total": 150}}, True),
    ({"cart.total": {"gt": 100}}, {"cart.total": 50, "cart": {"total": 150}}, False),
]


@pytest.mark.parametrize(("where", "properties", "holds"), WHERE_CASES)
def test_4_1_where_operators(
    where: dict[str, Any], properties: dict[str, Any], holds: bool
) -> None:
    conds = [(prop, op, value) for prop, ops in where.items() for op, value in ops.items()]
    assert conditions_hold(conds, properties) is holds


def _model(stages: list[dict[str, Any]], conversion: str) -> CoreConfig:
    raw = {"name": "m", "conversion_stage": conversion, "stages": stages}
    return CoreConfig(models=(validate_model(raw, "m.toml"),))


def test_4_1_nth_counts_only_events_matching_the_other_conditions(make: Any) -> None:
    config = _model(
        [
            {"name": "seen", "rules": [{"any": True}]},
            {
                "name": "loyal",
                "rules": [
                    {
                        "event": "Order Completed",
                        "channel": ["store"],
                        "where": {"total": {"gte": 50}},
                        "nth": 2,
                    }
                ],
            },
        ],
        "loyal",
    )
    f = _facts(
        make,
        [
            (
                "o1",
                0,
                {"event": "Order Completed", "channel": "store", "properties": {"total": 60}},
            ),
            ("o2", 1, {"event": "Order Completed", "channel": "web", "properties": {"total": 60}}),
            (
                "o3",
                2,
                {"event": "Order Completed", "channel": "store", "properties": {"total": 10}},
            ),
            (
                "o4",
                3,
                {"event": "Order Completed", "channel": "store", "properties": {"total": 50}},
            ),
            (
                "o5",
                4,
                {"event": "Order Completed", "channel": "store", "properties": {"total": 99}},
            ),
        ],
        config,
    )
    assert [(r.event_id, r.own_stage) for r in f.event_stages] == [
        ("o1", None),
        ("o2", None),
        ("o3", None),
        ("o4", "loyal"),
        ("o5", "loyal"),
    ]
    assert f.sessions[3].converted_models == ("m",)


def test_4_1_model_without_any_has_no_stage_before_its_first_match(make: Any) -> None:
    config = _model(
        [
            {"name": "lead", "rules": [{"event": "Signed Up"}]},
            {"name": "customer", "rules": [{"event": "Order Completed"}]},
        ],
        "customer",
    )
    f = _facts(make, [("v", 0, {}), ("o", 5, {"event": "Order Completed"})], config)
    assert [(r.stage_at, r.stage_at_index) for r in f.event_stages] == [("", -1), ("customer", 1)]
    assert _entries(f, "m") == [("lead", "o", True), ("customer", "o", False)]


def test_4_1_several_models_at_once(make: Any) -> None:
    config = CoreConfig(models=(preset("default"), preset("aida"), preset("lifecycle")))
    f = _facts(
        make,
        [
            ("p", 0, {"event": "Product Viewed"}),
            ("o", 60, {"event": "Order Completed"}),
            (
                "c",
                999,
                {"event": "Call Completed", "channel": "call", "properties": {"reason": "support"}},
            ),
        ],
        config,
    )
    stage_at = {(r.model, r.event_id): r.stage_at for r in f.event_stages}
    assert stage_at == {
        ("default", "p"): "consideration",
        ("default", "o"): "decision",
        ("default", "c"): "decision",
        ("aida", "p"): "interest",
        ("aida", "o"): "action",
        ("aida", "c"): "action",
        ("lifecycle", "p"): "explore",
        ("lifecycle", "o"): "purchase",
        ("lifecycle", "c"): "care",
    }
    assert f.sessions[0].converted_models == ("default", "aida", "lifecycle")
    assert _entries(f, "lifecycle")[-2:] == [("use", "c", True), ("care", "c", False)]


# A reference of SPEC 4.2 written straight from the definitions, quadratic and obvious, to
# check the single-pass evaluator against.
def _rule_matches(rule: Any, events: list[Any], i: int) -> bool:
    if rule.any:
        return True

    def other(e: Any) -> bool:
        conds = [(p, op, v) for p, ops in rule.where.items() for op, v in ops.items()]
        return (
            e.event in rule.event
            and (rule.channel is None or e.channel in rule.channel)
            and conditions_hold(conds, e.properties)
        )

    return other(events[i]) and sum(1 for e in events[: i + 1] if other(e)) >= rule.nth


def _reference(model: Any, events: list[Any]) -> tuple[list[Any], list[Any], dict[Any, int]]:
    stages = model.stages
    matches = [
        {s for s, st in enumerate(stages) for r in st.rules if _rule_matches(r, events, i)}
        for i in range(len(events))
    ]
    own = [
        max(
            (
                s
                for s, st in enumerate(stages)
                for r in st.rules
                if not r.any and _rule_matches(r, events, i)
            ),
            default=None,
        )
        for i in range(len(events))
    ]
    reached = [max((max(m) for m in matches[: i + 1] if m), default=-1) for i in range(len(events))]
    entries = []
    for s in range(len(stages)):
        first = next((i for i, r in enumerate(reached) if r >= s), None)
        if first is not None:
            entries.append((stages[s].name, events[first].event_id, s not in matches[first]))
    at = [
        (e.event_id, None if o is None else stages[o].name, stages[r].name if r >= 0 else "")
        for e, o, r in zip(events, own, reached, strict=True)
    ]
    seq = [o for o in own if o is not None]
    moves: dict[Any, int] = {}
    for a, b in itertools.pairwise(seq):
        if a != b:
            moves[(stages[a].name, stages[b].name)] = (
                moves.get((stages[a].name, stages[b].name), 0) + 1
            )
    return entries, at, moves


CUSTOM = validate_model(
    {
        "name": "custom",
        "conversion_stage": "buyer",
        "stages": [
            {"name": "visitor", "rules": [{"event": ["Page Viewed", "Product Viewed"]}]},
            {
                "name": "lead",
                "rules": [
                    {"event": "Signed Up", "channel": ["web", "app"]},
                    {"event": "Product Viewed", "nth": 3},
                ],
            },
            {
                "name": "buyer",
                "rules": [{"event": "Order Completed", "where": {"total": {"gte": 20}}}],
            },
            {
                "name": "fan",
                "rules": [
                    {
                        "event": "Order Completed",
                        "nth": 2,
                        "where": {"total": {"gte": 20}},
                        "channel": ["store"],
                    },
                    {
                        "event": "Survey Responded",
                        "where": {"survey": {"in": ["nps"]}, "score": {"gt": 8}},
                    },
                ],
            },
        ],
    },
    "custom.toml",
)
STEP = st.tuples(
    st.sampled_from(
        [
            "Page Viewed",
            "Product Viewed",
            "Signed Up",
            "Order Completed",
            "Survey Responded",
            "Checkout Started",
            "Subscription Renewed",
        ]
    ),
    st.sampled_from(["web", "app", "store", "email"]),
    st.integers(0, 40),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_4_2_evaluation_equals_the_definition(make: Any, steps: list[tuple[str, str, int]]) -> None:
    events = [
        make(
            f"e{i:02d}",
            i * 60,
            name,
            channel=channel,
            anon="A",
            properties={"total": n, "survey": "nps", "score": n % 11},
        )
        for i, (name, channel, n) in enumerate(steps)
    ]
    config = CoreConfig(models=(preset("default"), CUSTOM))
    [f] = derive(events, config)
    for model in config.models:
        entries, at, moves = _reference(model, events)
        assert _entries(f, model.name) == entries
        assert _at(f, model.name) == at
        got = {
            (t.from_stage, t.to_stage): t.transitions
            for t in f.transitions
            if t.model == model.name
        }
        assert got == moves
