"""Benchmark of `journey rebuild` (processor.rebuild.rebuild): re-derive every table from N stored
events.

    .venv/bin/python bench/bench_rebuild.py [--events 1000000 ...] [--models default,aida]

For each size it generates a multi-channel dataset (web visits over shared and several devices,
identify, email clicks, surveys, store orders with loyalty cards, calls; ~25 events a customer),
stores it with the warehouse writer in chunks, then runs the rebuild in a fresh child process
and prints: events, customers, seconds, events/s and the child's peak RSS. With more than one
size it also fits a line through the measured points and prints the --extrapolate size from it,
marked as extrapolated (a rebuild holds every event in memory, so 10M may not fit a small box).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script: the package is not installed

from journey.schema import Event, IdentityKey  # noqa: E402
from warehouse.settings import WarehouseSettings  # noqa: E402
from warehouse.writer import WarehouseWriter  # noqa: E402

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WEB_STEPS = ["Page Viewed", "Product List Viewed", "Product Viewed", "Products Searched",
             "Product Added", "Cart Viewed", "Checkout Started", "Order Completed"]
CAMPAIGNS = [("google", "cpc", "spring"), ("facebook", "social", "retarget"),
             ("newsletter", "email", "weekly")]
CHUNK = 100_000  # events per warehouse commit while storing
EVENTS_PER_CUSTOMER = 25


def _event(n: int, at: datetime, name: str, channel: str, keys: list[tuple[str, str]],
           campaign: tuple[str, str, str] | None = None, **extra: Any) -> Event:
    kind = {"Page Viewed": "page", "Identified": "identify"}.get(name, "track")
    if campaign:
        source, medium = campaign[0], campaign[1]
    else:
        source, medium = ("(direct)", "(none)") if channel == "web" else (channel, "(none)")
    return Event(
        event_id=f"ev-{n:010d}", type=kind, event=name, channel=channel,  # type: ignore[arg-type]
        timestamp=at, received_at=at, keys=tuple(IdentityKey(type=t, value=v) for t, v in keys),
        campaign_source=campaign[0] if campaign else None,
        campaign_medium=campaign[1] if campaign else None,
        campaign_name=campaign[2] if campaign else None, source=source, medium=medium, **extra,
    )


def customer_events(c: int, first_n: int, seed: int) -> list[Event]:
    """One customer's journey over ~a year; event ids numbered from first_n."""
    rng = random.Random(seed * 1_000_003 + c)
    devices = [("anonymous_id", f"a{c}-{d}") for d in range(rng.choice((1, 1, 2, 3)))]
    if c % 97 == 1:  # a household sharing a laptop with the previous customer
        devices.append(("anonymous_id", f"a{c - 1}-0"))
    email = ("email", f"c{c}@example.org")
    user = ("user_id", f"user-{c}") if rng.random() < 0.4 else None
    at = T0 + timedelta(seconds=rng.uniform(0, 300 * 86400))
    out: list[Event] = []
    known = False
    budget = max(1, int(rng.gauss(EVENTS_PER_CUSTOMER, EVENTS_PER_CUSTOMER / 3)))
    while len(out) < budget:
        n = first_n + len(out)
        channel = rng.choices(["web", "email", "store", "call"], [70, 15, 10, 5])[0]
        if channel == "web":
            device = rng.choice(devices)
            keys = [device, email] if known else [device]
            campaign = rng.choice(CAMPAIGNS) if rng.random() < 0.3 else None
            for step in WEB_STEPS[: rng.randint(1, len(WEB_STEPS))]:
                out.append(_event(first_n + len(out), at, step, "web", keys, campaign,
                                  page_url=f"https://shop.example/{step[:4].lower()}"))
                at += timedelta(seconds=rng.uniform(5, 240))
            if not known and rng.random() < 0.5:
                ids = [k for k in (user, email, device) if k]
                out.append(_event(first_n + len(out), at, "Identified", "web", ids,
                                  traits={"plan": rng.choice(["free", "pro"])}))
                known = True
        elif channel == "email":
            name = rng.choice(["Email Clicked", "Survey Responded"])
            props = {"survey": "nps", "score": rng.randint(0, 10)} if name[0] == "S" else {}
            out.append(_event(n, at, name, "email", [email], properties=props))
        elif channel == "store":
            keys = [email, ("loyalty_card", f"L{c}")]
            out.append(_event(n, at, "Order Completed", "store", keys, properties={"total": 42}))
        else:
            out.append(_event(n, at, "Call Completed", "call", [email]))
        at += timedelta(hours=rng.expovariate(1 / 200))
    return out


def chunks(events: int, seed: int) -> Iterator[list[Event]]:
    """About `events` events in chunks of ~CHUNK, customer by customer."""
    made, c, chunk = 0, 0, []
    while made < events:
        journey = customer_events(c, made, seed)[: events - made]
        chunk += journey
        made += len(journey)
        c += 1
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def store(data_dir: Path, events: int, seed: int, buckets: int) -> float:
    """Write the generated events to a fresh warehouse, chunk by chunk; seconds spent."""
    began = time.perf_counter()
    offset = 0
    with WarehouseWriter(WarehouseSettings(data_dir=data_dir, buckets=buckets)) as writer:
        for chunk in chunks(events, seed):
            stored = [(e, 0, offset + i) for i, e in enumerate(chunk)]
            offset += len(chunk)
            writer.commit(stored, buckets={}, offsets={0: offset},
                          watermark=max(e.timestamp for e in chunk))
    return time.perf_counter() - began


def rebuild_child(data_dir: Path, models: str, buckets: int) -> None:
    """In the child: run the rebuild and print its figures as JSON (RSS of this process only)."""
    from processor.rebuild import rebuild
    from processor.settings import ProcessorSettings

    result = rebuild(ProcessorSettings(data_dir=data_dir, models=models.split(","),
                                       buckets=buckets))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"events": result.events, "customers": result.customers,
                      "seconds": result.seconds, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024}))  # ru_maxrss is KiB on Linux


def measure(events: int, args: argparse.Namespace) -> dict[str, float]:
    """Store `events` events in a temporary warehouse and time a rebuild of it."""
    with tempfile.TemporaryDirectory(prefix="bench_rebuild_", dir=args.tmp) as tmp:
        store_s = store(Path(tmp), events, args.seed, args.buckets)
        out = subprocess.run(
            [sys.executable, __file__, "--child", tmp, "--models", args.models,
             "--buckets", str(args.buckets)],
            cwd=REPO, check=True, capture_output=True, text=True,
        ).stdout
        figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        figures["store_s"] = store_s
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000],
                        help="dataset sizes to measure (several: also extrapolate)")
    parser.add_argument("--models", default="default", help="active stage models, comma-separated")
    parser.add_argument("--buckets", type=int, default=64, help="warehouse buckets")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--extrapolate", type=int, default=10_000_000,
                        help="size to extrapolate to from the measured sizes")
    parser.add_argument("--tmp", default=None, help="directory for the temporary warehouses")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rebuild_child(args.child, args.models, args.buckets)
        return
    print(f"models: {args.models}; buckets: {args.buckets}; one process, 1 core for the derive")
    # Wall seconds suffer when other work shares the cores; CPU seconds of the child do not.
    print(f"{'events':>12} {'customers':>10} {'store s':>8} {'rebuild s':>10} {'events/s':>10} "
          f"{'cpu s':>8} {'events/cpu s':>12} {'peak RSS MiB':>13}")
    points = []
    for size in args.events:
        f = measure(size, args)
        points.append((f["events"], f["seconds"], f["cpu_s"], f["peak_rss_mb"]))
        print(f"{f['events']:>12,.0f} {f['customers']:>10,.0f} {f['store_s']:>8.1f} "
              f"{f['seconds']:>10.1f} {f['events'] / f['seconds']:>10,.0f} {f['cpu_s']:>8.1f} "
              f"{f['events'] / f['cpu_s']:>12,.0f} {f['peak_rss_mb']:>13,.0f}", flush=True)
    if len(points) >= 2 and args.extrapolate > max(p[0] for p in points):
        x = args.extrapolate
        seconds, cpu, rss = (_fit(points, column, x) for column in (1, 2, 3))
        print(f"{x:>12,} {'':>10} {'':>8} {seconds:>10.1f} {x / seconds:>10,.0f} {cpu:>8.1f} "
              f"{x / cpu:>12,.0f} {rss:>13,.0f}  EXTRAPOLATED (linear fit of the rows above, "
              "not measured)")


def _fit(points: list[tuple[float, float, float, float]], column: int, x: float) -> float:
    """Least-squares line through (events, column) evaluated at x."""
    xs = [p[0] for p in points]
    ys = [p[column] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sum(
        (a - mx) ** 2 for a in xs)
    return my + slope * (x - mx)


if __name__ == "__main__":
    main()
