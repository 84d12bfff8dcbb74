"""`journey status`: the processor's last commit and its lag per partition, read while it runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from journey import metrics
from journey.cli import app
from journey.settings import CommonSettings
from tests.e2e.conftest import ROOT, Proc
from tests.e2e.test_crash import append_all, demo_events
from tests.e2e.test_doctor import PARTITIONS, _append, _messages, _records, run_processor
from warehouse.settings import WarehouseSettings
from warehouse.writer import WarehouseWriter


def _status(data: Path) -> dict[str, object]:
    result = CliRunner().invoke(app, ["status", "--data-dir", str(data), "--json"])
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = orjson.loads(result.output.strip().splitlines()[-1])
    return answer


def test_status_shows_the_last_commit_and_the_lag_per_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JOURNEY_KAFKA_BOOTSTRAP", "JOURNEY_CATALOG_URL", "JOURNEY_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JOURNEY_PARTITIONS", str(PARTITIONS))
    data = tmp_path / "data"
    first = _records([m for u in range(5) for m in _messages(f"s{u}", f"s{u}@x.org", u)])
    _append(data, first)
    run_processor(data)
    done = _status(data)
    assert done["running"] is False and done["lag"] == 0 and done["version"]
    assert done["committed_at"] and done["watermark"]
    partitions = done["partitions"]
    assert isinstance(partitions, dict)
    assert sum(p["committed"] for p in partitions.values()) == len(first)

    later = _records(_messages("late", "late@x.org", 30))
    _append(data, later)  # acknowledged, not processed yet
    with WarehouseWriter(WarehouseSettings(data_dir=data)):  # as a running processor holds it
        waiting = _status(data)
    assert waiting["running"] is True and waiting["lag"] == len(later)
    assert waiting["version"] == done["version"]
    run_processor(data)
    assert _status(data)["lag"] == 0


def _status_of(env: dict[str, str], *more: str) -> str:
    """`journey status` run as the operator would, in its own process (its Kafka client too)."""
    done = subprocess.run([sys.executable, "-m", "journey", "status", *more], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _members(env: dict[str, str]) -> list[dict[str, Any]]:
    answer = orjson.loads(_status_of(env, "--json").strip().splitlines()[-1])
    members: list[dict[str, Any]] = answer["processors"]
    return members


def _owned(member: dict[str, Any]) -> set[int]:
    return {int(p) for p in member["partitions"]}


@pytest.mark.kafka
def test_status_shows_each_processor_of_a_group_and_a_killed_one_as_stale(
    env: dict[str, str], tmp_path: Path, procs: list[Proc], kafka_bootstrap: str,
) -> None:
    env = {**env, "JOURNEY_KAFKA_BOOTSTRAP": kafka_bootstrap, "JOURNEY_PARTITIONS": "4"}
    settings = CommonSettings(data_dir=Path(env["JOURNEY_DATA_DIR"]),
                              kafka_bootstrap=kafka_bootstrap, topic=env["JOURNEY_TOPIC"],
                              partitions=4)
    append_all(settings, demo_events(customers=20))
    first, second = (Proc(["processor"], env, tmp_path / f"p{i}.log") for i in (1, 2))
    procs.extend([first, second])
    first.start()
    # Not at once: two processors creating a fresh warehouse's catalog together collide
    # ("database is locked"), which is the warehouse's business, not what this test is about.
    deadline = time.monotonic() + 60
    while not any(m["role"] == "active" for m in _members(env)):
        assert first.alive() and time.monotonic() < deadline, first.tail()
        time.sleep(0.3)
    second.start()

    deadline = time.monotonic() + 120
    members: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        assert first.alive() and second.alive(), first.tail() + second.tail()
        members = _members(env)
        owned = [_owned(m) for m in members]
        # Each member reports its partitions after the rebalance reached it: until both have,
        # one may still list partitions the other already took.
        if (len(members) == 2 and all(m["role"] == "active" and m["lag"] == 0 for m in members)
                and all(owned) and set.union(*owned) == {0, 1, 2, 3}
                and sum(map(len, owned)) == 4):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{members}\n{first.tail()}\n{second.tail()}")
    a, b = members
    assert not _owned(a) & _owned(b), "a partition is owned twice"
    assert {m["pid"] for m in members} == {first.popen.pid, second.popen.pid}  # type: ignore[union-attr]
    assert not any(m["stale"] for m in members)
    assert all(m["group"] == f"journey-processors.{env['JOURNEY_TOPIC']}" for m in members)
    assert any(m["last_commit"] for m in members)
    for m in members:
        for partition in m["partitions"].values():
            assert partition["lag"] == 0 and partition["end"] == partition["committed"]
    # /metrics: each processor's lag series cover the partitions it owns, no other.
    text = metrics.read_textfile(settings.data_dir).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    for m in members:
        mine = [s for s in samples if s.labels.get("processor") == m["id"]]
        assert {int(s.labels["partition"]) for s in mine
                if s.name == "journey_processor_lag_records"} == _owned(m)
        assert [s.value for s in mine if s.name == "journey_processor_partitions_owned"] == [
            len(_owned(m))]

    killed = next(m for m in members if m["pid"] == first.popen.pid)  # type: ignore[union-attr]
    first.kill()  # SIGKILL: it cannot remove its record
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        members = _members(env)
        by_id = {m["id"]: m for m in members}
        survivor = next(m for m in members if m["id"] != killed["id"])
        # The group gives the dead member's partitions to the survivor after its session timeout.
        if by_id[killed["id"]]["stale"] and _owned(survivor) == {0, 1, 2, 3}:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"{members}\n{second.tail()}")
    assert not survivor["stale"]
    text = _status_of(env)
    assert f"{killed['id']}: STALE" in text and "processors: 1 running, 1 stale" in text
    assert f"{survivor['id']}: active" in text and "partitions 0,1,2,3" in text

    second.stop()  # a clean stop removes its record
    assert [m["id"] for m in _members(env)] == [killed["id"]]


def test_status_shows_the_embedded_logs_active_processor_and_its_standby(
    env: dict[str, str], tmp_path: Path, procs: list[Proc],
) -> None:
    active, standby = (Proc(["processor"], env, tmp_path / f"{n}.log") for n in ("a", "s"))
    procs.extend([active, standby])
    active.start()
    deadline = time.monotonic() + 60
    while not any(m["role"] == "active" for m in _members(env)):
        assert active.alive() and time.monotonic() < deadline, active.tail()
        time.sleep(0.3)
    standby.start()
    deadline = time.monotonic() + 60
    while len(members := _members(env)) < 2:
        assert standby.alive() and time.monotonic() < deadline, standby.tail()
        time.sleep(0.3)
    roles = {m["pid"]: (m["role"], _owned(m), m["group"], m["stale"]) for m in members}
    assert roles == {active.popen.pid: ("active", {0, 1, 2}, None, False),  # type: ignore[union-attr]
                     standby.popen.pid: ("standby", set(), None, False)}  # type: ignore[union-attr]
    standby.stop()
    active.stop()
    assert _members(env) == []
