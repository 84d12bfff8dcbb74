"""Per-customer stage evaluation (SPEC 4.2) of one compiled stage model.

Decisions the SPEC leaves open, made here once:
- A stage reached by an event is *inferred* unless that event matches one of the stage's own
  rules (`any` included): the first event of a customer reaching decision makes awareness
  explicit (it matched `any`) and consideration inferred.
- `where` compares numbers as numbers (a numeric string property counts as its number), strings
  as strings and booleans only with booleans. A missing or null property fails every op,
  `ne` included. A property name is looked up as given, then as a dotted path.
- Before a model's first stage is reached (possible only without `any`), the stage at an event
  is index -1 (`NO_STAGE`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from journey.schema import Event
from processor.stages.model import StageModel

NO_STAGE = -1
Cond = tuple[str, str, Any]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A non-`any` rule ready for matching. With nth > 1 its count of matches so far (capped at
    nth) is the bit field `(Progress.counts >> shift) & mask`; `shift` is -1 when nth is 1."""

    shift: int
    mask: int
    stage: int
    channels: frozenset[str] | None
    conds: tuple[Cond, ...]
    nth: int


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """A stage model indexed by event name for fast evaluation."""

    model: StageModel
    names: tuple[str, ...]
    conversion: int
    any_first: bool
    by_event: Mapping[str, tuple[CompiledRule, ...]]
    # Indexed by a stage index, NO_STAGE (-1) included: "" for stage_at, None for own_stage.
    at_names: tuple[str, ...]
    own_names: tuple[str | None, ...]


@dataclass(slots=True)
class Evaluation:
    """Per event (in order): own stage and stage at it; the stage entries; the transitions."""

    own: list[int]
    at: list[int]
    entries: list[tuple[int, int, bool]]  # (stage index, event index, inferred)
    transitions: dict[tuple[int, int], int]


def compile_model(model: StageModel) -> CompiledModel:
    """Index a validated model's rules by event name."""
    by_event: dict[str, list[CompiledRule]] = {}
    shift = 0
    any_first = False
    for stage_index, stage in enumerate(model.stages):
        for rule in stage.rules:
            if rule.any:
                any_first = True
                continue
            conds = tuple(
                (prop, op, value) for prop, ops in rule.where.items() for op, value in ops.items()
            )
            channels = frozenset(rule.channel) if rule.channel is not None else None
            # One int holds every counter: no per-customer list, and small ints are shared.
            bits = rule.nth.bit_length() if rule.nth > 1 else 0
            compiled = CompiledRule(
                shift if bits else -1, (1 << bits) - 1, stage_index, channels, conds, rule.nth
            )
            shift += bits
            for name in dict.fromkeys(rule.event):
                by_event.setdefault(name, []).append(compiled)
    return CompiledModel(
        model,
        model.stage_names,
        model.conversion_index,
        any_first,
        {k: tuple(v) for k, v in by_event.items()},
        (*model.stage_names, ""),
        (*model.stage_names, None),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _equal(prop: Any, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(prop, bool):
        return isinstance(prop, bool) and isinstance(value, bool) and prop is value
    if isinstance(value, int | float):
        return _number(prop) == value
    return isinstance(prop, str) and prop == value


def _compare(prop: Any, op: str, value: Any) -> bool:
    if isinstance(value, str):
        if not isinstance(prop, str):
            return False
        left: Any = prop
    else:
        left = _number(prop)
        if left is None:
            return False
    if op == "gt":
        return bool(left > value)
    if op == "gte":
        return bool(left >= value)
    if op == "lt":
        return bool(left < value)
    return bool(left <= value)


def lookup(properties: Mapping[str, Any], name: str) -> Any:
    """A property by name, else by dotted path into nested objects; None when absent."""
    if name in properties:
        return properties[name]
    node: Any = properties
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def conditions_hold(conds: Sequence[Cond], properties: Mapping[str, Any]) -> bool:
    """True when every `where` condition holds for these properties."""
    for name, op, value in conds:
        prop = lookup(properties, name)
        if prop is None:
            return False
        if op == "eq":
            ok = _equal(prop, value)
        elif op == "ne":
            ok = not _equal(prop, value)
        elif op == "in":
            ok = any(_equal(prop, v) for v in value)
        else:
            ok = _compare(prop, op, value)
        if not ok:
            return False
    return True


class Progress(msgspec.Struct, array_like=True, gc=False):
    """One customer's running place in one model: all that evaluating its next event needs."""

    reached: int = NO_STAGE
    last_own: int = NO_STAGE
    counts: int = 0  # the nth counters, as bit fields (CompiledRule.shift and mask)
    transitions: tuple[int, ...] = ()  # flat (from, to, count) triples sorted by (from, to)


def start(model: CompiledModel) -> Progress:
    """The progress of a customer before its first event."""
    return Progress()


def _count_transition(flat: tuple[int, ...], src: int, dst: int) -> tuple[int, ...]:
    # At most stages * (stages - 1) pairs, so a linear scan of a flat tuple stays cheap.
    for i in range(0, len(flat), 3):
        if flat[i] == src and flat[i + 1] == dst:
            return (*flat[: i + 2], flat[i + 2] + 1, *flat[i + 3 :])
        if (flat[i], flat[i + 1]) > (src, dst):
            return (*flat[:i], src, dst, 1, *flat[i:])
    return (*flat, src, dst, 1)


def transition_counts(flat: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(from, to, count) of each own-stage change in `Progress.transitions`, by (from, to)."""
    return [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


def advance(model: CompiledModel, progress: Progress, event: Event) -> tuple[int, int, int]:
    """Apply the customer's next event; (own stage, stage before it, bits of stages it matched).

    Afterwards `progress.reached` is the stage at the event; stages between the two are entered.
    """
    own = NO_STAGE
    matched = 1 if model.any_first else 0  # bit s set: the event matches a rule of stage s
    for rule in model.by_event.get(event.event, ()):
        if rule.channels is not None and event.channel not in rule.channels:
            continue
        if rule.conds and not conditions_hold(rule.conds, event.properties):
            continue
        if rule.shift >= 0:  # nth counts every match of the other conditions
            count = (progress.counts >> rule.shift) & rule.mask
            if count < rule.nth:  # capped: past nth the rule always matches
                count += 1
                progress.counts += 1 << rule.shift
            if count < rule.nth:
                continue
        matched |= 1 << rule.stage
        own = max(own, rule.stage)
    before = progress.reached
    top = max(own, 0 if model.any_first else NO_STAGE)
    if top > before:
        progress.reached = top
    if own != NO_STAGE:
        last = progress.last_own
        if last != NO_STAGE and own != last:
            progress.transitions = _count_transition(progress.transitions, last, own)
        progress.last_own = own
    return own, before, matched


def evaluate(model: CompiledModel, events: Sequence[Event]) -> Evaluation:
    """Evaluate one customer's events, in (timestamp, event_id) order, against one model."""
    progress = start(model)
    own_list: list[int] = []
    at_list: list[int] = []
    entries: list[tuple[int, int, bool]] = []
    for i, event in enumerate(events):
        own, before, matched = advance(model, progress, event)
        reached = progress.reached
        if reached > before:
            entries.extend((s, i, not (matched >> s) & 1) for s in range(before + 1, reached + 1))
        own_list.append(own)
        at_list.append(reached)
    transitions = {(src, dst): n for src, dst, n in transition_counts(progress.transitions)}
    return Evaluation(own_list, at_list, entries, transitions)
