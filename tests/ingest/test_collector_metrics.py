"""/metrics carries the collector's series (requests by route and status, events accepted and
rejected, log append latency) under `journey collector` and under `journey up`'s one app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.settings import ApiSettings
from ingest.app import create_app as collector_app
from ingest.settings import IngestSettings
from journey.log.embedded import EmbeddedLog
from journey.server import create_app as all_in_one

Basic = Callable[..., dict[str, str]]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.mark.parametrize("role", ["collector", "up"])
def test_collector_series_count_requests_events_and_log_latency(
    role: str, tmp_path: Path, basic: Basic, write_key: str,
) -> None:
    ingest = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr(write_key)], partitions=2)
    log = EmbeddedLog(ingest.log_dir, ingest.partitions, busy_timeout_s=0.2)
    app: FastAPI = (collector_app(ingest, log) if role == "collector" else
                    all_in_one(ingest, ApiSettings(data_dir=tmp_path, api_tokens=[]), log))
    try:
        with TestClient(app) as client:
            before = scrape(client)
            good = {"type": "track", "userId": "u1", "event": "Signed Up"}
            bad = {"type": "track", "event": "No identity"}
            batch = client.post("/v1/batch", json={"batch": [good, good, bad]}, headers=basic())
            assert batch.status_code == 200
            assert client.post("/v1/track", json=good, headers=basic("wrong")).status_code == 401
            after = scrape(client)
    finally:
        log.close()
    route = "journey_collector_requests_total"
    assert delta(after, before, route, route="/v1/batch", status="200") == 1
    assert delta(after, before, route, route="/v1/track", status="401") == 1
    events = "journey_collector_events_total"
    assert delta(after, before, events, outcome="accepted") == 2
    assert delta(after, before, events, outcome="rejected") == 1
    appends = delta(after, before, "journey_collector_log_append_seconds_count")
    assert appends == 1  # one request, one durable append
    assert delta(after, before, "journey_collector_log_append_seconds_sum") > 0
