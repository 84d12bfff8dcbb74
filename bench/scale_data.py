"""Realistic multi-channel traffic for the scale benchmark, written straight to a log.

Per customer about 10 events: web or app visits under an anonymous id (with campaigns), product
views, carts and orders; half of them sign up (an identify with user_id and email, which gives
the customer its user_id); a fifth call the call centre first under their phone number and are
merged into the web customer when they identify with it; some buy in store with a loyalty card
and answer an NPS survey by email. A share of events (`late`) arrives up to 3 days after its time.
Customers start one after another over `days` days, so the log is roughly in time order.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATE_S = 3 * 86400
PER_CUSTOMER = 7.6  # events per customer on average, measured on this generator
CAMPAIGNS = [None, None, None, ("google", "cpc", "spring"), ("newsletter", "email", "weekly")]
PRODUCTS = ["Product Viewed", "Product List Viewed", "Product Viewed", "Cart Viewed",
            "Product Added"]


def _event(n: int, at: float, name: str, channel: str, keys: list[dict[str, str]],
           kind: str = "track", **extra: Any) -> dict[str, Any]:
    stamp = (T0 + timedelta(seconds=at)).isoformat().replace("+00:00", "Z")
    campaign = extra.pop("campaign", None)
    event = {
        "event_id": f"e{n}", "type": kind, "event": name, "channel": channel,
        "timestamp": stamp, "received_at": stamp, "keys": keys,
        "properties": extra.pop("properties", {}), "traits": extra.pop("traits", {}),
        "context": {}, "source": channel if channel not in ("web", "app") else "(direct)",
        "medium": "(none)", "page_url": extra.pop("page_url", None),
    }
    if campaign:
        event.update(campaign_source=campaign[0], campaign_medium=campaign[1],
                     campaign_name=campaign[2], source=campaign[0], medium=campaign[1])
    return event


def customer_events(
    i: int, start: float, rng: random.Random, first_id: int
) -> list[dict[str, Any]]:
    """About ten canonical events of customer i, in time order, ids from first_id."""
    anon = {"type": "anonymous_id", "value": f"a{i}"}
    phone = {"type": "phone", "value": f"1555{i:07d}"}
    email = {"type": "email", "value": f"c{i}@example.com"}
    user = {"type": "user_id", "value": f"u{i}"}
    out: list[dict[str, Any]] = []
    at = start
    channel = "web" if rng.random() < 0.8 else "app"

    def add(name: str, ch: str, keys: list[dict[str, str]], **extra: Any) -> None:
        nonlocal at
        out.append(_event(first_id + len(out), at, name, ch, keys, **extra))
        at += rng.uniform(20, 600)

    called = rng.random() < 0.2
    if called:
        add("Call Completed", "call", [phone])
        at += rng.uniform(3600, 86400)
    campaign = rng.choice(CAMPAIGNS)
    add("Page Viewed", channel, [anon], kind="page", campaign=campaign,
        page_url=f"https://shop.example/l{i % 50}")
    for _ in range(rng.randint(2, 4)):
        add(rng.choice(PRODUCTS), channel, [anon], properties={"sku": f"s{rng.randint(1, 500)}"})
    if rng.random() < 0.5:
        keys = [user, anon, email] + ([phone] if called else [])
        add("Identified", channel, keys, kind="identify",
            traits={"plan": rng.choice(["free", "pro"]), "email": email["value"]})
        add("Checkout Started", channel, [user, anon])
        add("Order Completed", channel, [user, anon], properties={"revenue": rng.randint(5, 300)})
        at += rng.uniform(86400, 20 * 86400)
        if rng.random() < 0.4:
            add("Store Visited", "store", [{"type": "loyalty_card", "value": f"L{i}"}, email])
            add("Order Completed", "store", [{"type": "loyalty_card", "value": f"L{i}"}, email])
        add("Survey Responded", "email", [email],
            properties={"survey": "nps", "score": rng.randint(0, 10)})
    else:
        at += rng.uniform(1800, 5 * 86400)
        add("Page Viewed", channel, [anon], kind="page", page_url="https://shop.example/")
        add("Product Viewed", channel, [anon], properties={"sku": f"s{rng.randint(1, 500)}"})
    return out


def stream(events: int, late: float, days: float = 100.0, seed: int = 11
           ) -> Iterator[tuple[bytes, bytes]]:
    """(log key, canonical event JSON) in arrival order: about `events` events."""
    rng = random.Random(seed)
    step = days * 86400 / max(1.0, events / PER_CUSTOMER)
    pending: list[tuple[float, int, bytes, bytes]] = []  # (arrival, seq, key, value)
    seq = 0
    made = 0
    i = -1
    while made < events:
        i += 1
        start = i * step
        while pending and pending[0][0] <= start:
            _, _, key, value = heapq.heappop(pending)
            yield key, value
        for event in customer_events(i, start, rng, made):
            made += 1
            ts = (datetime.fromisoformat(event["timestamp"]) - T0).total_seconds()
            arrival = ts + (rng.uniform(0, LATE_S) if rng.random() < late else 0.0)
            key = next((k["value"] for k in event["keys"] if k["type"] == "anonymous_id"),
                       event["keys"][0]["value"]).encode()
            seq += 1
            heapq.heappush(pending, (arrival, seq, key, orjson.dumps(event)))
    while pending:
        _, _, key, value = heapq.heappop(pending)
        yield key, value
