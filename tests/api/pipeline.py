"""A real warehouse from Segment messages: normalised by the collector's code, appended to the
embedded log in chunks, consumed by the real processor (its state and micro-batches) and read
back by the API's store, for API tests whose answers depend on derived facts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.routes import api_router
from api.settings import ApiSettings
from api.store import SnapshotStore
from ingest.normalize import normalize
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from processor.derive import CoreConfig
from processor.models_table import model_rows
from processor.runner import Processor
from processor.stages.model import load_models
from processor.state import JourneyState
from warehouse.reader import WarehouseReader
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter

TOKEN = "pipeline-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2025, 1, 1, 9, tzinfo=UTC)
PARTITIONS = 2


def day(n: float) -> datetime:
    """T0 plus n days."""
    return T0 + timedelta(days=n)


def track(message_id: str, user: str, event: str, at: datetime, channel: str = "web",
          **properties: Any) -> dict[str, Any]:
    """A Segment track message of user on a channel."""
    return {"type": "track", "messageId": message_id, "userId": user, "event": event,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "properties": {"channel": channel, **properties}}


def identify(message_id: str, user: str, at: datetime, **traits: Any) -> dict[str, Any]:
    """A Segment identify message setting traits."""
    return {"type": "identify", "messageId": message_id, "userId": user, "traits": traits,
            "timestamp": at.isoformat().replace("+00:00", "Z"), "properties": {"channel": "web"}}


def process(data_dir: Path, messages: Sequence[dict[str, Any]], chunks: Sequence[int] = (),
            batch_max: int = 1000, models: tuple[str, ...] = ("default",)) -> None:
    """Messages through the log and the processor into the warehouse under data_dir; `chunks`
    cuts the messages into appends (the processor polls after each), batch_max its batches."""
    received = max(datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
                   for m in messages) + timedelta(seconds=1)
    events = [normalize(m, received) for m in messages]
    config = CoreConfig(models=tuple(load_models(models)))
    dead: list[Record] = []
    writer = WarehouseWriter(WarehouseSettings(data_dir=data_dir, grace_period_s=0.0))
    writer.open()
    log = EmbeddedLog(data_dir / "log", PARTITIONS)
    producer = EmbeddedLog(data_dir / "log", PARTITIONS)
    try:
        processor = Processor(consumer=log, writer=writer, state=JourneyState(config, writer),
                              model_rows=list(model_rows(config.models)),
                              batch_max_records=batch_max, poll_timeout_s=0.001,
                              dead_letter=lambda record, exc: dead.append(record))
        processor.start()
        start = 0
        for end in [*chunks, len(events)]:
            producer.append([(e.event_id.encode(), e.to_json()) for e in events[start:end]])
            processor.run_once()
            start = end
        while processor.run_once().records:
            pass
    finally:
        producer.close()
        log.close()
        writer.close()
    assert dead == []


@contextmanager
def client(data_dir: Path) -> Iterator[TestClient]:
    """The analytics API over the warehouse under data_dir."""
    settings = ApiSettings(data_dir=data_dir, api_tokens=[SecretStr(TOKEN)], warm_cache=False)
    store = SnapshotStore(WarehouseReader(settings.warehouse_dir), lambda: datetime.now(UTC),
                          refresh_interval_s=0.0)
    app = FastAPI()
    app.include_router(api_router(settings, store))
    with TestClient(app) as c:
        yield c
