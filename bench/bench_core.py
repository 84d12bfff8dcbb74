"""Benchmark of the pure journey core: derive() in one batch, and streaming through the
processor's state (incremental path, re-derivation from an in-memory store) in micro-batches,
on a generated realistic multi-channel dataset.

Run from the repository root: `.venv/bin/python -m bench.bench_core [--events N] [--customers N]`.
Everything runs in one process, so the figures (events per CPU second) are per core.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from journey.schema import Event, IdentityKey
from processor.derive import CoreConfig, derive
from processor.memory import MemoryWarehouse
from processor.stages.model import preset
from processor.state import JourneyState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CAMPAIGNS = [
    ("google", "cpc", "spring"),
    ("facebook", "social", "retarget"),
    ("newsletter", "email", "weekly"),
]
WEB_STEPS = [
    "Page Viewed",
    "Product List Viewed",
    "Product Viewed",
    "Products Searched",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
]


def _event(
    n: int, at: datetime, name: str, channel: str, keys: list[tuple[str, str]], **extra: Any
) -> Event:
    kind = {"Page Viewed": "page", "Identified": "identify", "Aliased": "alias"}.get(name, "track")
    campaign = extra.pop("campaign", None)
    if campaign:
        source, medium = campaign[0], campaign[1]
    elif channel == "web":
        source, medium = "(direct)", "(none)"
    else:
        source, medium = channel, "(none)"
    fields: dict[str, Any] = {
        "event_id": f"ev-{n:09d}",
        "type": kind,
        "event": name,
        "channel": channel,
        "timestamp": at,
        "received_at": at,
        "keys": tuple(IdentityKey(type=t, value=v) for t, v in keys),
        "campaign_source": campaign[0] if campaign else None,
        "campaign_medium": campaign[1] if campaign else None,
        "campaign_name": campaign[2] if campaign else None,
        "source": source,
        "medium": medium,
        **extra,
    }
    return Event.build(fields)


def generate(customers: int, events: int, seed: int = 1) -> list[Event]:
    """About `events` events of `customers` people over 90 days, in event-time order."""
    rng = random.Random(seed)
    per = max(events // customers, 1)
    out: list[Event] = []
    n = 0
    for c in range(customers):
        anon = [("anonymous_id", f"a{c}-{d}") for d in range(rng.choice((1, 1, 2)))]
        email = ("email", f"c{c}@example.org")
        user = ("user_id", f"user-{c}") if rng.random() < 0.4 else None
        at = T0 + timedelta(seconds=rng.uniform(0, 80 * 86400))
        known = False
        budget = max(1, int(rng.gauss(per, per / 3)))
        while budget > 0:
            channel = rng.choices(["web", "email", "store", "call"], [70, 15, 10, 5])[0]
            if channel == "web":
                device = rng.choice(anon)
                keys = [device, email] if known else [device]
                campaign = rng.choice(CAMPAIGNS) if rng.random() < 0.3 else None
                for step in WEB_STEPS[: rng.randint(1, len(WEB_STEPS))][:budget]:
                    out.append(
                        _event(
                            n,
                            at,
                            step,
                            "web",
                            keys,
                            campaign=campaign,
                            page_url=f"https://shop.example/{step[:4]}",
                        )
                    )
                    campaign = None
                    n += 1
                    budget -= 1
                    at += timedelta(seconds=rng.uniform(5, 240))
                if not known and budget > 0 and rng.random() < 0.5:
                    keys = [k for k in (user, email, device) if k]
                    out.append(
                        _event(
                            n,
                            at,
                            "Identified",
                            "web",
                            keys,
                            traits={"plan": rng.choice(["free", "pro"])},
                        )
                    )
                    known, n, budget = True, n + 1, budget - 1
            elif channel == "email":
                name = rng.choice(["Email Clicked", "Survey Responded"])
                props = {"survey": "nps", "score": rng.randint(0, 10)} if name[0] == "S" else {}
                out.append(_event(n, at, name, "email", [email], properties=props))
                n, budget = n + 1, budget - 1
            else:
                name = "Order Completed" if channel == "store" else "Call Completed"
                keys = [email, ("loyalty_card", f"L{c}")] if channel == "store" else [email]
                out.append(_event(n, at, name, channel, keys, properties={"total": 42}))
                n, budget = n + 1, budget - 1
            at += timedelta(hours=rng.expovariate(1 / 30))
    out.sort(key=Event.order_key)
    return out


def stream(events: list[Event], config: CoreConfig, batch: int) -> int:
    """Feed events through the processor's state like the processor; return customer count."""
    store = MemoryWarehouse()
    state = JourneyState(config, store)
    for start in range(0, len(events), batch):
        applied = state.apply(events[start : start + batch])
        store.commit(applied.new_events, applied.changes)
    return state.customers


def main() -> None:
    """Print events/s per core for derive() and for streaming."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    began = time.perf_counter()
    events = generate(args.customers, args.events)
    print(f"generated {len(events):,} events in {time.perf_counter() - began:.1f}s")
    rows = []
    for models in (("default",), ("default", "aida", "lifecycle")):
        config = CoreConfig(models=tuple(preset(m) for m in models))
        began = time.process_time()
        facts = derive(events, config)
        batch_s = time.process_time() - began
        began = time.process_time()
        streamed = stream(events, config, args.batch)
        stream_s = time.process_time() - began
        assert streamed == len(facts)
        rows.append((len(models), len(facts), batch_s, stream_s))
    # CPU seconds of this process: the machine may be shared, and one process uses one core.
    print(
        f"{'models':>6} {'customers':>9} {'derive cpu s':>12} {'derive ev/s':>12} "
        f"{'stream cpu s':>12} {'stream ev/s':>12}  (stream batches of {args.batch:,})"
    )
    for count, customers, batch_s, stream_s in rows:
        print(
            f"{count:>6} {customers:>9,} {batch_s:>12.2f} {len(events) / batch_s:>12,.0f} "
            f"{stream_s:>12.2f} {len(events) / stream_s:>12,.0f}"
        )


if __name__ == "__main__":
    main()
