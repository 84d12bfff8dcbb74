"""Benchmark of the incremental journey core: extend() calls per CPU second, resume and
encode/decode rates, and the memory of one customer's running state.

Run from the repository root: `.venv/bin/python -m bench.bench_incremental [--customers N]`.
One process, so rates are per core. Memory is measured with tracemalloc over `--customers`
running states kept alive (events are dropped as they are applied), both as built live and as
restored by decode().
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from journey.schema import Event, IdentityKey
from processor import ids, incremental
from processor.derive import CoreConfig
from processor.incremental import Running
from processor.stages.model import preset

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# A typical customer: two web visits (the second from a campaign), an email click, a purchase,
# an identify call with a few traits.
STEPS: list[tuple[str, str, float]] = [
    ("Page Viewed", "web", 0),
    ("Product List Viewed", "web", 40),
    ("Product Viewed", "web", 90),
    ("Identified", "web", 120),
    ("Email Clicked", "email", 86_400),
    ("Page Viewed", "web", 90_000),
    ("Product Viewed", "web", 90_060),
    ("Cart Viewed", "web", 90_100),
    ("Checkout Started", "web", 90_160),
    ("Order Completed", "web", 90_200),
]
CAMPAIGN = ("newsletter", "email", "weekly")


def _history(n: int, rng: random.Random) -> list[Event]:
    anon, email = f"anon-{n}-{rng.random():.6f}", f"person{n}@example.org"
    start = T0 + timedelta(seconds=rng.randrange(0, 86_400 * 30))
    events = []
    for i, (name, channel, at) in enumerate(STEPS):
        campaign = CAMPAIGN if i == 5 else (None, None, None)
        keys = [IdentityKey(type="anonymous_id", value=anon)]
        if name == "Identified" or channel == "email":
            keys.insert(0, IdentityKey(type="email", value=email))
        moment = start + timedelta(seconds=at, microseconds=rng.randrange(1_000_000))
        events.append(
            Event(
                event_id=f"{n:08d}-{i:02d}-{rng.randrange(10**9)}",
                type="identify" if name == "Identified" else "page" if name == "Page Viewed"
                else "track",
                event=name,
                channel=channel,  # type: ignore[arg-type]
                timestamp=moment,
                received_at=moment,
                keys=tuple(keys),
                traits={"name": f"Person {n}", "plan": "pro", "age": 30 + n % 40}
                if name == "Identified" else {},
                context={"traits": {"locale": "en-GB"}} if i == 0 else {},
                properties={"total": 42.5} if name == "Order Completed" else {},
                campaign_source=campaign[0],
                campaign_medium=campaign[1],
                campaign_name=campaign[2],
                source=campaign[0] or ("email" if channel == "email" else "(direct)"),
                medium=campaign[1] or "(none)",
                page_url=f"https://shop.example.org/p/{i}" if name == "Page Viewed" else None,
            )
        )
    # As the processor gets them: decoded from the log, no string shared between customers.
    return [Event.from_json(e.to_json()) for e in events]


def _extend_all(
    run: Running, events: list[Event], config: CoreConfig, rows: str = ""
) -> None:
    """Extend by every event; rows "batch": one net set of rows at the end, "event": per event."""
    seen: set[tuple[str, str]] = set()
    pending = None
    for event in events:
        new = [(k.type, k.value) for k in event.keys if (k.type, k.value) not in seen]
        seen.update(new)
        delta = incremental.extend(run, event, new, config)
        if rows == "event":
            delta.facts()
        elif rows == "batch":
            if pending is None:
                pending = delta
            else:
                pending.merge(delta)
    if pending is not None:
        pending.facts()


def _cid(events: list[Event]) -> str:
    key = events[0].keys[0]
    return ids.customer_id(None, key.type, key.value)


def _rate(fn: Callable[[], int]) -> float:
    begin = time.process_time()
    count = fn()
    return count / (time.process_time() - begin)


def _speed(config: CoreConfig, customers: int) -> dict[str, float]:
    rng = random.Random(7)
    histories = [_history(n, rng) for n in range(customers)]
    runs: list[Running] = []

    def extends(rows: str) -> Callable[[], int]:
        def run_all() -> int:
            runs[:] = [incremental.start(_cid(h), None, config) for h in histories]
            for run, history in zip(runs, histories, strict=True):
                _extend_all(run, history, config, rows)
            return customers * len(STEPS)

        return run_all

    def resumes() -> int:
        for history in histories:
            incremental.resume(_cid(history), None, history, config)
        return customers * len(STEPS)

    blobs: list[bytes] = []

    def encodes() -> int:
        blobs.extend(incremental.encode(run) for run in runs)
        return customers

    def decodes() -> int:
        for blob in blobs:
            incremental.decode(blob)
        return customers

    rates = {
        "extend/s": _rate(extends("")),
        "batch/s": _rate(extends("batch")),
        "event/s": _rate(extends("event")),
        "resume events/s": _rate(resumes),
    }
    rates["encode/s"] = _rate(encodes)
    rates["decode/s"] = _rate(decodes)
    rates["encoded bytes"] = sum(map(len, blobs)) / customers
    return rates


def _memory(config: CoreConfig, customers: int, restored: bool) -> float:
    rng = random.Random(11)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    kept: list[Any] = []
    for n in range(customers):
        history = _history(n, rng)
        run = incremental.start(_cid(history), None, config)
        _extend_all(run, history, config)
        kept.append(incremental.decode(incremental.encode(run)) if restored else run)
        del history, run
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return (used - 8 * len(kept)) / customers  # the list's own pointers are not state


def main() -> None:
    """Print one table row per model set."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=20_000, help="running states measured")
    parser.add_argument("--speed-customers", type=int, default=3_000)
    args = parser.parse_args()
    sets = {
        "default": CoreConfig(),
        "default+lifecycle+aida": CoreConfig(
            models=(preset("default"), preset("lifecycle"), preset("aida"))
        ),
    }
    print("Rates per CPU second. extend: extend() alone (rows not built); +rows per batch: the")
    print("customer's 10 events in one batch, deltas merged, rows built once; +rows per event:")
    print("rows built after every extend (one-event batches).")
    print("| models | extend/s | +rows per batch | +rows per event | resume events/s | encode/s "
          "| decode/s | encoded B | live B/customer | restored B/customer |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, config in sets.items():
        rates = _speed(config, args.speed_customers)
        live = _memory(config, args.customers, restored=False)
        restored = _memory(config, args.customers, restored=True)
        print(
            f"| {name} | {rates['extend/s']:,.0f} | {rates['batch/s']:,.0f} "
            f"| {rates['event/s']:,.0f} | {rates['resume events/s']:,.0f} "
            f"| {rates['encode/s']:,.0f} | {rates['decode/s']:,.0f} "
            f"| {rates['encoded bytes']:.0f} | {live:.0f} | {restored:.0f} |"
        )


if __name__ == "__main__":
    main()
