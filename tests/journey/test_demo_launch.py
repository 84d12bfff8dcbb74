"""`journey demo` loads data that ends now, web orders via a `KEY:web` key, three models."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.settings import IngestSettings
from journey.launch import DEMO_MODELS, post_demo, processor_env
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

KEY, BACKEND = "wk-demo-front", "wk-demo-back"


def stored(log: EmbeddedLog) -> list[Event]:
    log.seek(dict.fromkeys(log.partitions(), 0))
    found: list[Event] = []
    while batch := log.poll(1000, 0.05):
        found.extend(Event.from_json(r.value) for r in batch)
    return found


def test_demo_data_ends_now_and_backend_orders_take_the_key_channel(tmp_path: Path) -> None:
    settings = IngestSettings(data_dir=tmp_path, partitions=2,
                              write_keys=[SecretStr(KEY), SecretStr(f"{BACKEND}:web")])
    log = EmbeddedLog(settings.log_dir, settings.partitions, busy_timeout_s=0.2)
    began = datetime.now(UTC)
    try:
        with TestClient(create_app(settings, log)) as client:
            sent = post_demo(client, KEY, customers=40, backend_key=BACKEND)
        events = stored(log)
    finally:
        log.close()
    assert len(events) == sent > 0
    newest = max(e.timestamp for e in events)
    assert began - timedelta(days=3) < newest <= datetime.now(UTC)
    assert min(e.timestamp for e in events) >= began - timedelta(days=151)
    orders = [e for e in events if e.event == "Order Completed"]
    by_channel = Counter(e.channel for e in orders)
    assert by_channel["web"] > 0 and "other" not in by_channel
    # The backend's orders carry no channel of their own: only the key's default made them web.
    web_orders = [e for e in orders if e.channel == "web"]
    assert all("channel" not in e.context for e in web_orders)
    assert all("channel" in e.context for e in events if e.event != "Order Completed")


@pytest.mark.parametrize(("demo", "models"), [(True, DEMO_MODELS), (False, None)])
def test_demo_runs_several_stage_models(
    demo: bool, models: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("JOURNEY_MODELS", raising=False)
    env = processor_env(IngestSettings(data_dir=tmp_path), demo)
    assert env.get("JOURNEY_MODELS") == models
    assert env["JOURNEY_DATA_DIR"] == str(tmp_path.resolve())
    if demo:
        assert set(DEMO_MODELS.split(",")) >= {"default", "aida", "lifecycle"}
