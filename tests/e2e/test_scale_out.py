"""Issue 9 (SPEC 6.4, 7): several processors share a topic of 12 partitions and one warehouse
through a Kafka consumer group; one is SIGKILLed mid-stream, another joins later, and every table
equals what a single processor stores from the same records (row for row, ids included).

The records are demo customers whose channels are keyed by different identity keys (a browser
by its anonymous id, a call by phone, a store visit by loyalty card), so one customer's events
land on several partitions and are linked later (merges across partitions); one event in ten is
held back and appended after the rest (late events, up to the whole demo period late).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from journey.schema import Event
from journey.settings import CommonSettings
from tests.e2e.conftest import Proc
from tests.e2e.test_crash import (
    append_all,
    committed,
    demo_events,
    log_end,
    run_until_caught_up,
    table_rows,
)

PARTITIONS = 12
pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _hidden_order(events: list[Event]) -> list[Event]:
    rng = random.Random(9)
    late = [e for e in events if rng.random() < 0.1]
    held = {e.event_id for e in late}
    return [e for e in events if e.event_id not in held] + late


def _wait_for_commits(settings: CommonSettings, procs: list[Proc], more: int) -> None:
    start, _ = committed(settings)
    deadline = time.monotonic() + 120
    while committed(settings)[0] < start + more:
        assert time.monotonic() < deadline, "no commits"
        for proc in procs:
            assert proc.alive(), proc.tail()
        time.sleep(0.05)


def _wait_caught_up(settings: CommonSettings, procs: list[Proc]) -> None:
    end = log_end(settings)
    deadline = time.monotonic() + 240
    while True:
        _, offsets = committed(settings)
        if all(offsets.get(p, 0) >= n for p, n in end.items()):
            return
        assert time.monotonic() < deadline, "not caught up:\n" + "\n".join(
            p.tail() for p in procs)
        for proc in procs:
            assert proc.alive(), proc.tail()
        time.sleep(0.2)


@pytest.mark.parametrize("catalog", ["sqlite", "postgres"])
def test_6_4_three_processors_with_a_kill_and_a_join_equal_one_processor(
    catalog: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path,
    procs: list[Proc], kafka_bootstrap: str,
) -> None:
    events = _hidden_order(demo_events(customers=100))
    runs: dict[str, tuple[CommonSettings, dict[str, str]]] = {}
    for name in ("single", "group"):
        run_env = {**env, "JOURNEY_DATA_DIR": str(tmp_path / name),
                   "JOURNEY_KAFKA_BOOTSTRAP": kafka_bootstrap,
                   "JOURNEY_TOPIC": f"{env['JOURNEY_TOPIC']}.{name}",
                   "JOURNEY_PARTITIONS": str(PARTITIONS)}
        if name == "group":  # small batches: many commits, so the kill and the join land mid-way
            run_env["JOURNEY_BATCH_MAX_RECORDS"] = "200"
        if catalog == "postgres":
            run_env["JOURNEY_CATALOG_URL"] = request.getfixturevalue("postgres").catalog_url()
        settings = CommonSettings(data_dir=tmp_path / name, kafka_bootstrap=kafka_bootstrap,
                                  topic=run_env["JOURNEY_TOPIC"], partitions=PARTITIONS,
                                  catalog_url=run_env.get("JOURNEY_CATALOG_URL"))
        runs[name] = (settings, run_env)

    single, single_env = runs["single"]
    append_all(single, events)
    alone = Proc(["processor"], single_env, tmp_path / "single.log")
    procs.append(alone)
    run_until_caught_up(alone, single, log_end(single))

    group, group_env = runs["group"]
    half = len(events) // 2
    append_all(group, events[:half])
    members = [Proc(["processor"], group_env, tmp_path / f"member{i}.log") for i in range(4)]
    procs.extend(members)
    for member in members[:3]:
        member.start()
    _wait_for_commits(group, members[:3], 3)
    members[1].kill()  # mid-stream: its partitions go to the others after the session timeout
    append_all(group, events[half:])
    _wait_for_commits(group, [members[0], members[2]], 2)
    members[3].start()  # joins later: the group hands it some partitions
    running = [members[0], members[2], members[3]]
    _wait_caught_up(group, running)
    for member in running:
        member.stop()

    got, expected = table_rows(group), table_rows(single)
    assert len(expected["events"]) == len(events)
    for table, rows in expected.items():
        assert got[table] == rows, table
    joined = (tmp_path / "member3.log").read_text()
    assert "assigned" in joined, "the member that joined later was given no partition"
