"""Test data of the warehouse tests, and a workload that child processes run against a real root.

Run as a script (`python warehouse_workload.py DATA_DIR INLINE_ROW_LIMIT COMMITS [--readers]`)
it is the writer child of the crash and concurrency tests: it resumes from what is stored and
commits COMMITS times (0 = until killed). With --readers, threads of the same process meanwhile
poll the newest snapshot id, as the API does every 0.1 s, and read each new snapshot's figures;
it prints how many it read and exits 1 on an error or a snapshot whose figures disagree.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __name__ == "__main__":  # a child process: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import duckdb

from journey.facts import (
    AccountEventRow,
    Changes,
    ConflictRow,
    CustomerFacts,
    CustomerRow,
    EventStageRow,
    IdentityRow,
    SessionRow,
    StageEntryRow,
    SurveyRow,
    TransitionRow,
)
from journey.schema import Event, IdentityKey
from warehouse.reader import Snapshot, WarehouseReader, register_views
from warehouse.settings import WarehouseSettings
from warehouse.tables import DERIVED_ROWS
from warehouse.writer import WarehouseWriter

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
EVENTS_PER_COMMIT = 20
CUSTOMERS = 30


def make_event(i: int, customer: str, **changes: object) -> Event:
    """A canonical web event number i of a customer, one second after event i-1."""
    fields: dict[str, object] = {
        "event_id": f"e{i:07d}",
        "type": "track",
        "event": "Product Viewed",
        "channel": "web",
        "timestamp": T0 + timedelta(seconds=i),
        "received_at": T0 + timedelta(seconds=i, milliseconds=250),
        "keys": (IdentityKey(type="user_id", value=customer),
                 IdentityKey(type="anonymous_id", value=f"anon-{customer}")),
        "properties": {"i": i, "price": 9.5},
        "source": "(direct)",
        "medium": "(none)",
    }
    fields.update(changes)
    return Event.build(fields)


def make_facts(customer: str, events: int) -> CustomerFacts:
    """Derived facts of a customer with `events` events; every table gets rows but surveys."""
    last = T0 + timedelta(seconds=events)
    return CustomerFacts(
        customer=CustomerRow(customer, customer, T0, last, events, "web", "(direct)", "(none)",
                             {"plan": "pro", "events": events}),
        identities=[IdentityRow(customer, "user_id", customer, T0)],
        sessions=[SessionRow(f"s-{customer}", customer, "web", T0, last, float(events), events,
                             0, None, "(direct)", "(none)", None, ("default",))],
        stage_entries=[StageEntryRow(customer, "default", "awareness", 0, T0, False, "e0"),
                       StageEntryRow(customer, "default", "consideration", 1, last, False, "e1")],
        event_stages=[EventStageRow("e0", customer, f"s-{customer}", "default", T0,
                                    "Product Viewed", "web", None, "awareness", 0)],
        transitions=[TransitionRow(customer, "default", "awareness", "consideration", 1)],
        surveys=[SurveyRow("e9", customer, "default", last, "nps", 9.0, "consideration")]
        if events % 2 else [],
        account_events=[AccountEventRow(f"g-{customer}", customer, "acme", last,
                                        {"plan": "enterprise", "seats": events})],
        identity_conflicts=[ConflictRow(customer, "email", f"{customer}@shared.example", "e0",
                                        T0, "other")],
    )


def changes_for(counts: Counter[str], touched: set[str]) -> Changes:
    """Replace the facts of the touched customers, as the processor does: delete, then insert."""
    changes = Changes()
    for customer in sorted(touched):
        changes.add_facts(make_facts(customer, counts[customer]))
    for table in DERIVED_ROWS:
        changes.delete(table, "customer_id", frozenset(touched))
    return changes


def workload(writer: WarehouseWriter, commits: int) -> None:
    """Resume from the stored events, then commit batches of events with their facts and offset."""
    counts: Counter[str] = Counter()
    for chunk in writer.iter_events(1000):
        counts.update(event.primary_key.value for event, _, _ in chunk)
    done = 0
    while commits == 0 or done < commits:
        start = writer.state().offsets.get(0, 0)
        batch = []
        for i in range(start, start + EVENTS_PER_COMMIT):
            customer = f"c{(i * 7919) % CUSTOMERS:03d}"
            batch.append((make_event(i, customer), 0, i))
            counts[customer] += 1
        touched = {e.primary_key.value for e, _, _ in batch}
        writer.commit(batch, changes_for(counts, touched), {0: start + len(batch)},
                      batch[-1][0].timestamp, None)
        done += 1


def snapshot_figures(snap: Snapshot) -> tuple[int, int, int, int, int]:
    """(version, events rows, sum of customers.event_count, sum of sessions.event_count, stored
    offset of partition 0) of a snapshot, by SQL over a reader's views."""
    con = duckdb.connect()
    try:
        register_views(con, snap)
        row = con.execute(
            "SELECT (SELECT version FROM meta), (SELECT count(*) FROM events),"
            " (SELECT coalesce(sum(event_count), 0) FROM customers),"
            " (SELECT coalesce(sum(event_count), 0) FROM sessions),"
            " (SELECT coalesce(max(next_offset), 0) FROM journey_lake.journey_offsets)"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


def read_along(root: Path, stop: threading.Event, errors: list[str], read: list[int]) -> None:
    """Until stop: the newest snapshot id every millisecond, and each new snapshot's figures,
    which must agree (every event counted once in customers and sessions, offset = events)."""
    reader = WarehouseReader(root / "warehouse")
    seen = None
    while not stop.is_set():
        try:
            snap = reader.current()
            if snap is not None and snap.version != seen:
                seen = snap.version
                _, events, customers, sessions, offset = snapshot_figures(snap)
                if not events == customers == sessions == offset:
                    errors.append(f"snapshot {seen}: {events} {customers} {sessions} {offset}")
                read.append(seen)
        except Exception as error:  # every failure is reported, and fails the parent's test
            errors.append(repr(error))
        stop.wait(0.001)


if __name__ == "__main__":
    root, inline, n_commits = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    child_settings = WarehouseSettings(data_dir=root, inline_row_limit=inline, lock_timeout_s=30)
    stop, errors, read = threading.Event(), list[str](), list[int]()
    with WarehouseWriter(child_settings) as child:
        print("ready", flush=True)
        readers = [threading.Thread(target=read_along, args=(root, stop, errors, read))
                   for _ in range(2 if "--readers" in sys.argv else 0)]
        for thread in readers:
            thread.start()
        try:
            workload(child, n_commits)
        finally:
            stop.set()
            for thread in readers:
                thread.join()
    print(f"read {len(set(read))} snapshots", flush=True)
    if errors:
        print("\n".join(errors[:5]), flush=True)
        sys.exit(1)
