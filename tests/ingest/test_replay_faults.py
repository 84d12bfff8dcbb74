"""SPEC 1.3 / 6.5: one dead letter that trips the normaliser fails alone; replay keeps working."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from ingest.app import create_app
from ingest.settings import IngestSettings
from journey.deadletter import DeadLetter, DeadLetterStore
from journey.log.embedded import EmbeddedLog
from tests.ingest.conftest import ReadLog

TOKEN = "tok-replay-faults"
WEIRD = {"type": "page", "anonymousId": "anon-1", "messageId": "weird",
         "context": {"page": {"referrer": 123}}}
GOOD = {"type": "track", "event": "Signed Up", "anonymousId": "anon-2", "messageId": "good"}


def test_1_3_a_letter_with_a_non_string_referrer_does_not_block_replay(
    tmp_path: Path, log: EmbeddedLog, read_log: ReadLog, write_key: str,
) -> None:
    settings = IngestSettings(data_dir=tmp_path, write_keys=[SecretStr(write_key)],
                              api_tokens=[SecretStr(TOKEN)])
    when = datetime(2024, 5, 1, tzinfo=UTC)
    DeadLetterStore(settings.data_dir / "deadletter").append([
        DeadLetter(received_at=when, write_key=None, reason="old bug", index=i, event=event)
        for i, event in enumerate([WEIRD, GOOD])])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(settings, log)) as client:
        for _ in range(2):  # the second call must not be stuck on the same letter either
            answer = client.post("/v1/deadletters/replay", headers=auth)
            assert answer.status_code == 200, answer.text
        failing = answer.json()["still_failing"]
    stored = [r.value for r in read_log(log)]
    # The normaliser now ignores a referrer that is not a string: both letters are replayed.
    assert len(stored) == 2 and any(b'"good"' in v for v in stored)
    assert failing == []
