"""SPEC 2.4 erasure end to end on the embedded log and on Kafka: `journey up`,
DELETE /v1/customers/{key} and `journey erase`, then every file under the data directory read
with its own reader, restarts (committed offsets, then on the embedded log a fresh warehouse
replaying the log from the start), dead-letter replay, events in flight at the DELETE and an
event received after it."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import ROOT, TOKEN, WRITE_KEY, Proc, free_port, wait_http

AUTH = {"Authorization": f"Bearer {TOKEN}"}
VICTIM = {"user": "erase-me-user-7f3a", "email": "erase-me-7f3a@example.com",
          "anon": "erase-me-anon-7f3a", "late_anon": "erase-me-late-anon-7f3a"}
CLI_VICTIM = {"user": "erase-cli-user-5d2e", "email": "erase-cli-5d2e@example.com"}
OTHER = {"user": "keep-me-user-9b1c", "email": "keep-me-9b1c@example.com"}
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _person(p: dict[str, str], n: int, tag: str, anon: str | None = None) -> list[dict[str, Any]]:
    """An identify with the email, then n page views and a checkout, a minute apart."""
    ident: dict[str, Any] = {"type": "identify", "userId": p["user"], "messageId": f"{tag}-id",
                             "traits": {"email": p["email"]}, "timestamp": _iso(START)}
    if anon:
        ident["anonymousId"] = anon
    msgs = [ident]
    for i in range(n):
        event = "Checkout Started" if i == n - 1 else "Product Viewed"
        msgs.append({"type": "track", "event": event, "userId": p["user"],
                     "messageId": f"{tag}-{i}", "properties": {"email": p["email"]},
                     "timestamp": _iso(START + timedelta(minutes=i + 1))})
    return msgs


def _post(base: str, batch: list[dict[str, Any]], status: int = 200) -> httpx.Response:
    answer = httpx.post(f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""),
                        timeout=30)
    assert answer.status_code == status, answer.text
    return answer


def _until(check: Any, what: str, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {limit_s}s: {what}")


def _status(base: str, key: str) -> int:
    return httpx.get(f"{base}/v1/customers/{key}", headers=AUTH, timeout=10).status_code


def _customers(base: str) -> int:
    return int(httpx.get(f"{base}/v1/kpis", headers=AUTH, timeout=10).json()["customers"])


def _funnel_first(base: str) -> int:
    stages = httpx.get(f"{base}/v1/funnel", headers=AUTH, timeout=10).json()["stages"]
    return int(stages[0]["customers"])


def _strings(data_dir: Path) -> tuple[str, list[str]]:
    """Every file under data_dir read with its own reader, as one text; and what was read."""
    parts: list[str] = []
    read: list[str] = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        head = path.read_bytes()[:16]
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            parts += [repr(table.column(i).to_pylist()) for i in range(table.num_columns)]
            read.append(f"parquet:{path.name}")
        elif head.startswith(b"SQLite format 3"):
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                tables = [r[0] for r in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")]
                for table in tables:
                    for row in con.execute(f'SELECT * FROM "{table}"'):
                        parts += [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                                  for v in row]
            finally:
                con.close()
            parts.append(path.read_bytes().decode("utf-8", "replace"))  # free pages too
            read.append(f"sqlite:{path.name}")
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
            read.append(f"bytes:{path.name}")
    return "\n".join(parts).lower(), read


def _wiped(path: Path) -> bool:
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


def _up(env: dict[str, str], tmp_path: Path, procs: list[Proc], port: int) -> Proc:
    proc = Proc(["up", "--port", str(port)], env, tmp_path / "up.log").start()
    procs.append(proc)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
    return proc


@pytest.mark.parametrize("backend", ["embedded", pytest.param("kafka", marks=pytest.mark.kafka)])
def test_2_4_erasure_leaves_no_trace_and_stays_erased(
    backend: str, request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path,
    procs: list[Proc],
) -> None:
    env = {**env, "JOURNEY_INLINE_ROW_LIMIT": "5"}  # the customer's rows land in Parquet files
    if backend == "kafka":
        env["JOURNEY_KAFKA_BOOTSTRAP"] = request.getfixturevalue("kafka_bootstrap")
    data = Path(env["JOURNEY_DATA_DIR"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    up = _up(env, tmp_path, procs, port)
    _post(base, _person(OTHER, 30, "other"))
    _post(base, _person(VICTIM, 40, "victim", anon=VICTIM["anon"]))
    _post(base, _person(CLI_VICTIM, 20, "cli"))
    # A dead letter of the customer's: an event of no known type.
    _post(base, [{"type": "frobnicate", "userId": VICTIM["user"],
                  "traits": {"email": VICTIM["email"]}, "messageId": "victim-bad"}], 400)
    _until(lambda: _status(base, VICTIM["email"]) == 200 and _status(base, CLI_VICTIM["email"])
           == 200 and _status(base, OTHER["email"]) == 200, "three customers visible")
    assert _customers(base) == 3
    before, _ = _strings(data)
    assert VICTIM["email"] in before  # the scan sees the values it looks for

    # What a `journey doctor --repair` moved aside: unreadable by design, so erasure removes it.
    moved = data / "quarantine" / "20260101T000000.000000Z" / "deadletter"
    moved.mkdir(parents=True)
    (moved / "letters.jsonl.bad-lines").write_text(f'{{"cut": "{VICTIM["email"]}')

    # In flight: sent just before the DELETE, linking a new anonymous id to the email.
    _post(base, [{"type": "track", "event": "Product Viewed", "anonymousId": VICTIM["late_anon"],
                  "properties": {"email": VICTIM["email"]}, "messageId": "victim-late",
                  "timestamp": _iso(START + timedelta(hours=2))}])
    answer = httpx.delete(f"{base}/v1/customers/email:{VICTIM['email']}", headers=AUTH,
                          timeout=90)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "erased"
    assert answer.json()["quarantine_removed"] is True and not (data / "quarantine").exists()
    assert httpx.delete(f"{base}/v1/customers/nobody-has-this-key", headers=AUTH,
                        timeout=90).status_code == 404

    cli = subprocess.run([sys.executable, "-m", "journey", "erase", CLI_VICTIM["email"]],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    def gone() -> None:
        for key in (VICTIM["user"], VICTIM["email"], VICTIM["anon"], VICTIM["late_anon"],
                    CLI_VICTIM["user"], CLI_VICTIM["email"]):
            assert _status(base, key) == 404, key
        assert _status(base, OTHER["email"]) == 200
        assert _customers(base) == 1
        assert _funnel_first(base) == 1

    # `journey erase` went through the processor; the API serves the new snapshot within moments.
    _until(lambda: _status(base, CLI_VICTIM["email"]) == 404, "the API on the new snapshot", 5)
    gone()
    text, read = _strings(data)
    assert any(r.startswith("parquet:") for r in read) and any(r.startswith("sqlite:")
                                                               for r in read)
    for value in (*VICTIM.values(), *CLI_VICTIM.values()):
        assert value not in text, (value, read)
    assert OTHER["email"] in text and OTHER["user"] in text
    assert (backend == "embedded") == any((data / "log").glob("*.sqlite3"))  # the log in use

    # Replaying dead letters brings nothing back.
    replay = httpx.post(f"{base}/v1/deadletters/replay", headers=AUTH, timeout=30)
    assert replay.status_code == 200, replay.text
    time.sleep(1)
    gone()

    # An event received after the erasure is new data.
    _post(base, [{"type": "track", "event": "Product Viewed", "userId": VICTIM["user"],
                  "messageId": "victim-after", "timestamp": _iso(START + timedelta(days=1))}])
    _until(lambda: _status(base, VICTIM["user"]) == 200, "the new event's customer")
    assert _status(base, VICTIM["email"]) == 404

    # A restart replays from the committed offsets; a fresh warehouse replays the whole log (not
    # on Kafka: the topic keeps the records until its retention, and the erasures went with the
    # warehouse, README "Erasure").
    for wipe in (False, True) if backend == "embedded" else (False,):
        up.stop()
        if wipe:  # the processor child may still be closing its files for a moment
            _until(lambda: _wiped(data / "warehouse"), "the warehouse removed", 10)
        up = _up(env, tmp_path, procs, port)
        _until(lambda: _status(base, OTHER["email"]) == 200, "the other customer after restart",
               60)
        _until(lambda: _status(base, VICTIM["user"]) == 200, "the new data after restart", 30)
        events = httpx.get(f"{base}/v1/customers/{VICTIM['user']}/events", headers=AUTH,
                           timeout=10).json()
        assert len(events) == 1, events
        assert _status(base, VICTIM["email"]) == 404
        assert _status(base, CLI_VICTIM["email"]) == 404
        assert _customers(base) == 2
