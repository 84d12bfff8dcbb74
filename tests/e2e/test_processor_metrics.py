"""Issue 11: the processor's Prometheus series, under `journey up` (the processor is a child
process: its textfile is appended to /metrics) and from `journey processor --metrics-port`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import TOKEN, WRITE_KEY, Proc, free_port, track, wait_http

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
           **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _processors(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> set[str]:
    """The member ids in the `processor` label of the processor's series."""
    return {dict(labels)["processor"] for name, labels in samples
            if name.startswith("journey_processor_")}


def test_processor_series_under_journey_up(env: dict[str, str], tmp_path: Path,
                                           procs: list[Proc]) -> None:
    port = free_port()
    up = Proc(["up", "--port", str(port)], env, tmp_path / "up.log").start()
    procs.append(up)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/readyz", timeout_s=60, proc=up)
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    users = [f"m{i}" for i in range(6)]
    for n, user in enumerate(users):  # separate requests, so more than one batch
        answer = httpx.post(f"{base}/v1/batch", auth=(WRITE_KEY, ""), timeout=10,
                            json={"batch": track(5, user, start + timedelta(hours=n))})
        assert answer.status_code == 200, answer.text
        time.sleep(0.3)
    answer = httpx.post(f"{base}/v1/batch", auth=(WRITE_KEY, ""), timeout=10,
                        json={"batch": track(5, users[0], start)})  # duplicates: not new
    assert answer.status_code == 200

    deadline = time.monotonic() + 30
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    while time.monotonic() < deadline:
        samples = _samples(httpx.get(base + "/metrics").text)
        ids = _processors(samples)
        done = len(ids) == 1 and samples.get(
            ("journey_processor_records_total", (("processor", min(ids)),)), 0) >= 35
        lags = [v for (name, _), v in samples.items() if name == "journey_processor_lag_records"]
        if done and lags and not any(lags):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"processor series not caught up: {samples}\n{up.tail()}")

    [me] = _processors(samples)  # the one processor's member id: host-pid-start
    assert me.split("-")[0] and me.split("-")[-1].endswith("Z")
    assert _value(samples, "journey_processor_records_total", processor=me) == 35
    assert _value(samples, "journey_processor_new_events_total", processor=me) == 30
    assert _value(samples, "journey_processor_dead_letters_total", processor=me) == 0
    assert _value(samples, "journey_processor_customers", processor=me) == len(users)
    batches = _value(samples, "journey_processor_batch_records_count", processor=me)
    assert 2 <= batches <= 7
    assert _value(samples, "journey_processor_batch_records_sum", processor=me) == 35
    assert _value(samples, "journey_processor_commit_seconds_count", processor=me) == batches
    commit = _value(samples, "journey_processor_commit_seconds_sum", processor=me)
    assert 0 < commit <= _value(samples, "journey_processor_batch_seconds_sum", processor=me)
    last_commit = _value(samples, "journey_processor_last_commit_timestamp_seconds", processor=me)
    assert abs(time.time() - last_commit) < 60
    partitions = {dict(labels)["partition"] for (name, labels) in samples
                  if name == "journey_processor_lag_records"}
    assert partitions == {"0", "1", "2"}  # JOURNEY_PARTITIONS=3 in the e2e environment
    assert _value(samples, "journey_processor_partitions_owned", processor=me) == 3
    # The collector's and the API's series are there too, each once (the text parses).
    assert _value(samples, "journey_collector_events_total", outcome="accepted") == 35


def test_processor_alone_serves_its_metrics_port(env: dict[str, str], tmp_path: Path,
                                                 procs: list[Proc]) -> None:
    port = free_port()
    proc = Proc(["processor", "--metrics-port", str(port)], env, tmp_path / "p.log").start()
    procs.append(proc)
    wait_http(f"http://127.0.0.1:{port}/metrics", timeout_s=60, proc=proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples = _samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        # The port serves from the start; the gauges are set once the processor consumes.
        if any(name == "journey_processor_partitions_owned" and v for (name, _), v in
               samples.items()):
            break
        time.sleep(0.2)
    [me] = _processors(samples)
    assert _value(samples, "journey_processor_customers", processor=me) == 0
    assert _value(samples, "journey_processor_records_total", processor=me) == 0
    assert _value(samples, "journey_processor_partitions_owned", processor=me) == 3
    assert not any(name.startswith("journey_api") for name, _ in samples)
