"""SPEC 1.3 dead letters can be listed and replayed (HTTP, CLI logic), each at most once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from ingest.app import create_app
from ingest.replay import list_letters, replay
from ingest.routes import Collector
from ingest.settings import IngestSettings
from journey.cli import app as cli
from journey.deadletter import DeadLetterStore
from journey.log.base import Record
from journey.log.embedded import EmbeddedLog
from journey.schema import Event

Basic = Callable[..., dict[str, str]]
ReadLog = Callable[[EmbeddedLog], list[Record]]
TOKEN = "tok-replay-test"
BIG = {"type": "track", "event": "Note Added", "anonymousId": "anon-9",
       "properties": {"note": "x" * 400}}
NO_KEY = {"type": "track", "event": "Product Viewed", "anonymousId": "undefined",
          "messageId": "still-bad"}


@pytest.fixture
def strict(tmp_path: Path, write_key: str) -> IngestSettings:
    """A collector that is too strict (a 300-byte event limit): the 'bug' to be fixed."""
    return IngestSettings(data_dir=tmp_path, write_keys=[SecretStr(write_key)],
                          api_tokens=[SecretStr(TOKEN)], max_event_bytes=300, partitions=4)


@pytest.fixture
def dead(strict: IngestSettings, log: EmbeddedLog, basic: Basic) -> IngestSettings:
    """Two dead letters in the collector's store: one too big for `strict`, one with no key."""
    with TestClient(create_app(strict, log, lambda: datetime(2024, 5, 1, tzinfo=UTC))) as client:
        answer = client.post("/v1/batch", json={"batch": [BIG, NO_KEY]}, headers=basic())
    assert answer.status_code == 400
    return strict


def fixed(settings: IngestSettings, log: EmbeddedLog) -> Collector:
    relaxed = settings.model_copy(update={"max_event_bytes": 32 * 1024})
    return Collector(relaxed, log, DeadLetterStore(settings.data_dir / "deadletter"))


def test_1_3_replay_appends_the_letters_that_now_pass_once(
    dead: IngestSettings, log: EmbeddedLog, read_log: ReadLog,
) -> None:
    directory = dead.data_dir / "deadletter"
    now = datetime(2024, 5, 2, tzinfo=UTC)
    first = replay(directory, fixed(dead, log), now)
    assert first.replayed == 1 and first.already == 0
    assert [reason for _, reason in first.failing] == [
        "no identity key: userId, anonymousId, email, phone and context.externalIds are all "
        "missing or blocked"]
    (record,) = read_log(log)
    event = Event.from_json(record.value)
    assert event.event == "Note Added" and event.event_id.startswith("dl-")
    assert event.received_at == datetime(2024, 5, 1, tzinfo=UTC)  # the original receive time
    again = replay(directory, fixed(dead, log), now)
    assert (again.replayed, again.already, len(again.failing)) == (0, 1, 1)
    assert len(read_log(log)) == 1
    marks = {item.letter.index: item.replayed for item in list_letters(directory)}
    assert marks == {0: True, 1: False}  # BIG was batch item 0, NO_KEY item 1


def test_1_3_replay_since_skips_older_letters(dead: IngestSettings, log: EmbeddedLog) -> None:
    later = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(seconds=1)
    result = replay(dead.data_dir / "deadletter", fixed(dead, log), later, since=later)
    assert (result.replayed, result.already, result.failing) == (0, 0, [])


@pytest.fixture
def admin(dead: IngestSettings, log: EmbeddedLog) -> Iterator[TestClient]:
    relaxed = dead.model_copy(update={"max_event_bytes": 32 * 1024})
    with TestClient(create_app(relaxed, log)) as client:
        yield client


def test_1_3_deadletter_endpoints_need_an_api_token(admin: TestClient, basic: Basic) -> None:
    assert admin.get("/v1/deadletters").status_code == 401
    assert admin.get("/v1/deadletters", headers=basic()).status_code == 401  # write keys are public
    assert admin.post("/v1/deadletters/replay",
                      headers={"Authorization": "Bearer nope"}).status_code == 401


def test_1_3_list_then_replay_over_http(admin: TestClient, log: EmbeddedLog,
                                        read_log: ReadLog) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    listed = admin.get("/v1/deadletters?limit=10", headers=auth).json()["dead_letters"]
    assert len(listed) == 2 and not any(letter["replayed"] for letter in listed)
    assert {letter["index"] for letter in listed} == {0, 1}
    bad_since = admin.post("/v1/deadletters/replay?since=tuesday", headers=auth)
    assert bad_since.status_code == 400
    done = admin.post("/v1/deadletters/replay?since=2024-05-01T00:00:00Z", headers=auth).json()
    assert done["replayed"] == 1 and done["already_replayed"] == 0
    assert [f["reason"][:15] for f in done["still_failing"]] == ["no identity key"]
    assert len(read_log(log)) == 1
    relisted = admin.get("/v1/deadletters", headers=auth).json()["dead_letters"]
    assert sorted(letter["replayed"] for letter in relisted) == [False, True]


def test_1_3_cli_lists_and_replays_dead_letters(dead: IngestSettings, log: EmbeddedLog,
                                                read_log: ReadLog) -> None:
    log.close()  # the CLI opens the embedded log itself
    runner = CliRunner()
    env = {"JOURNEY_MAX_EVENT_BYTES": str(32 * 1024), "JOURNEY_PARTITIONS": "4",
           "COLUMNS": "200"}
    data_dir = str(dead.data_dir)
    listed = runner.invoke(cli, ["deadletter", "list", "--data-dir", data_dir], env=env)
    assert listed.exit_code == 0, listed.output
    assert "no identity key" in listed.output
    replayed = runner.invoke(cli, ["deadletter", "replay", "--data-dir", data_dir], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1, still failing 1, already replayed 0" in replayed.output
    reopened = EmbeddedLog(dead.log_dir, 4, busy_timeout_s=0.2)
    try:
        assert [Event.from_json(r.value).event for r in read_log(reopened)] == ["Note Added"]
    finally:
        reopened.close()
