"""SPEC 2.4: an erasure whose commit was made before a crash is finished when its request is
applied again (the warehouse no longer names the customer; the request recorded it)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq

from processor import erasure_requests as requests
from processor.derive import CoreConfig
from processor.erasure import Eraser
from processor.state import JourneyState
from tests.processor.conftest import T0, Make
from warehouse import erase
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

VALUE = "resume-me-4c1d@example.com"


def _parquet_text(root: Path) -> str:
    tables = [pq.read_table(p) for p in root.rglob("*.parquet")]
    return repr([t.to_pylist() for t in tables])


def test_2_4_a_request_interrupted_after_its_commit_is_finished(tmp_path: Path,
                                                                 make: Make) -> None:
    writer = WarehouseWriter(WarehouseSettings(data_dir=tmp_path, inline_row_limit=0))
    writer.open()
    try:
        state = JourneyState(CoreConfig(), writer)
        events = [make("r1", 0, user="ur", email=VALUE), make("k1", 0, user="uk", email="k@x.io")]
        applied = state.apply(events)
        writer.commit([(e, 0, i) for i, e in enumerate(applied.new_events)], applied.changes,
                      {0: 2}, None)
        rid = requests.submit(tmp_path, VALUE)
        # What Eraser.erase does up to the commit, then a crash before the purge.
        found = erase.find(writer, VALUE)
        assert found is not None
        now = writer.state().committed_at
        assert now is not None
        requests.begin(tmp_path, rid, {"key": VALUE, "customer_id": found.customer_id,
                                       "keys": [list(k) for k in found.keys],
                                       "erased_at": now.isoformat()})
        erase.delete_customer(writer, found, now)
        assert erase.find(writer, VALUE) is None
        assert VALUE in _parquet_text(writer.root)  # deleted, not yet gone from the files

        assert Eraser(tmp_path, writer, None, lambda: state).apply_pending() == 1
        result = orjson.loads((requests.request_dir(tmp_path) / f"{rid}.result").read_bytes())
        assert result["status"] == "erased" and result["customer_id"] == found.customer_id
        text = _parquet_text(writer.root)
        assert VALUE not in text and "k@x.io" in text
        assert not list(requests.request_dir(tmp_path).glob("*.request"))
    finally:
        writer.close()


def test_2_4_erasing_a_customer_removes_the_conflicts_that_name_its_key(tmp_path: Path,
                                                                        make: Make) -> None:
    """A neighbour's refused link (SPEC 5.1 identity conflicts) holds the erased customer's key
    value: its row goes with the customer, in the same transaction."""
    shared = "shared-9e1f@example.com"
    writer = WarehouseWriter(WarehouseSettings(data_dir=tmp_path, inline_row_limit=0))
    writer.open()
    try:
        state = JourneyState(CoreConfig(), writer)
        events = [make("a1", 0, user="ann", email=shared), make("b1", 60, user="bob", email=shared),
                  make("b2", 120, user="bob", anon="bob-device")]
        applied = state.apply(events)
        writer.commit([(e, 0, i) for i, e in enumerate(applied.new_events)], applied.changes,
                      {0: 3}, None)

        def conflicts() -> list[tuple[object, ...]]:
            return [tuple(r.values()) for b in writer.scan(
                "SELECT key_value, event_id FROM identity_conflicts ORDER BY event_id")
                for r in b.to_pylist()]

        assert conflicts() == [(shared, "b1")]  # bob's event carried ann's email
        found = erase.find(writer, "ann")
        assert found is not None
        erase.delete_customer(writer, found, writer.state().committed_at or T0)
        assert conflicts() == []
        assert erase.find(writer, "bob") is not None and erase.find(writer, "bob-device")
    finally:
        writer.close()
