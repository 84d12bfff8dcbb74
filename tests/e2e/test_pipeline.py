"""Issue 2, must-show 2: events posted to /v1/batch are visible in the API within 5 seconds,
on the real Kafka broker and on the embedded log."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import TOKEN, WRITE_KEY, Proc, free_port, track, wait_http

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _start_up(env: dict[str, str], tmp_path: Path, procs: list[Proc], kafka: str | None) -> str:
    port = free_port()
    args = ["up", "--port", str(port)]
    if kafka:
        args += ["--kafka-bootstrap", kafka]
    proc = Proc(args, env, tmp_path / "up.log").start()
    procs.append(proc)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz", proc=proc)
    return base


def _visible_within(base: str, key: str, expect_events: int, limit_s: float) -> float:
    """Seconds until the customer shows expect_events in a session sum and the funnel counts it."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        answer = httpx.get(f"{base}/v1/customers/{key}", headers=AUTH, timeout=5)
        if answer.status_code == 200:
            body = answer.json()
            if sum(s["event_count"] for s in body["sessions"]) == expect_events:
                return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"{key} not visible with {expect_events} events in {limit_s}s")


@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_batch_visible_in_api_within_5_seconds(
    backend: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path,
    procs: list[Proc],
) -> None:
    kafka = request.getfixturevalue("kafka_bootstrap") if backend == "kafka" else None
    base = _start_up(env, tmp_path, procs, kafka)
    wait_http(base + "/readyz", timeout_s=60, proc=procs[0])  # processor's first commit
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    batch = track(3, "alice", start) + track(1, "alice", start, event="Checkout Started")
    sent = time.monotonic()
    answer = httpx.post(f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""), timeout=10)
    assert answer.status_code == 200, answer.text
    _visible_within(base, "alice", 4, limit_s=5.0 - (time.monotonic() - sent))

    profile = httpx.get(f"{base}/v1/customers/user_id:alice", headers=AUTH).json()
    assert profile["stage"] == "decision"
    assert [s["stage"] for s in profile["stages"]] == ["awareness", "consideration", "decision"]
    funnel = httpx.get(f"{base}/v1/funnel", headers=AUTH).json()
    counts = {s["stage"]: s["customers"] for s in funnel["stages"]}
    assert counts == {
        "awareness": 1, "consideration": 1, "decision": 1, "retention": 0, "advocacy": 0,
    }
